"""The meter-agent ROS node over real ROS 2, real mosquitto (management + data) and the real catalog.

Feeder head: a ``FaultEvent`` whose record appears after the event -> ``FaultLocation`` on ROS and the
location on the data broker, with the secondaries' sag evidence; ``GetDeviceConfig``; ``DeviceStatus``.
Secondary: ``PhasorFrame`` on ROS -> sag and outage reports on the data broker, last gasp; a
``FaultEvent`` is not located when the configuration has no ``fault_location``.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sma3_grid.comtrade import write_comtrade
from sma3_grid.io import load_network
from sma3_rostest.runtime import require_ros
from sma3_rostest.services import call_until_answered
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import solve
from sma3_sim.waveforms import SamplingConfig, synthesize

from .conftest import AgentFactory, Catalog, Recorder, agent_env, device_token, wait_until

require_ros()

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from sma3_interfaces.msg import DeviceStatus, FaultEvent, FaultLocation, PhasorFrame  # noqa: E402
from sma3_interfaces.srv import GetDeviceConfig  # noqa: E402
from sma3_meter.agent.algorithms import FaultLocation as FaultLocationRunner  # noqa: E402
from sma3_meter.dsp import PhasorSample  # noqa: E402
from sma3_meter.nodes.agent import MeterAgentNode  # noqa: E402
from sma3_meter.nodes.convert import phasor_frame_msg, phasor_sample_from_msg  # noqa: E402
from sma3_meter.record_wait import RecordWait  # noqa: E402

pytestmark = pytest.mark.ros
TIMEOUT_S = 15.0
FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}
SECONDARY = [
    {"name": "sag_reporting", "parameters": {"sag_threshold_pu": 0.95}},
    {"name": "outage_detection", "parameters": {"hold_s": 0.04}},
]
NS = f"/agent{uuid.uuid4().hex[:8]}"  # isolates these tests' topics from other ROS users


@pytest.fixture
def ros() -> Iterator[SingleThreadedExecutor]:
    rclpy.init()
    executor = SingleThreadedExecutor()
    yield executor
    for node in list(executor.get_nodes()):
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown()
    rclpy.try_shutdown()


def _spin_until(executor: SingleThreadedExecutor, done: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while not (value := done()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {TIMEOUT_S} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)
    return value


def _spin_for(executor: SingleThreadedExecutor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)


def _spin_until_json(
    executor: SingleThreadedExecutor, data: Recorder, topic: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Spin the node (its callbacks feed the agent) until a matching message reaches the broker."""
    found = _spin_until(
        executor,
        lambda: next((m for _t, m in data.json(topic) if predicate(m)), None),
        f"a matching message on {topic}",
    )
    return found  # type: ignore[no-any-return]


def _agent_node(
    executor: SingleThreadedExecutor, catalog: Catalog, device_id: str, tmp_path: Path
) -> MeterAgentNode:
    token_file = tmp_path / f"{device_id}.token"
    token_file.write_text(device_token(device_id) + "\n")
    values: dict[str, object] = {
        "device_id": device_id,
        "catalog_url": catalog.url,
        "token_file": str(token_file),
        "cache_dir": str(tmp_path / f"node-cache-{device_id}"),
        "ip": "127.0.0.1",
        "refresh_s": 0.5,
        "retry_s": 0.3,
        "peers_refresh_s": 1.0,
    }
    node = MeterAgentNode(
        namespace=NS, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )
    executor.add_node(node)
    return node


def _report(index: int, v: np.ndarray, i: np.ndarray) -> PhasorSample:
    return PhasorSample(index, 50.0, 0.0, np.concatenate([v, i]).astype(complex))


def test_feeder_head_node_locates_the_record_with_peer_evidence(
    catalog: Catalog,
    recorder: tuple[Recorder, Recorder],
    agent_factory: AgentFactory,
    tmp_path: Path,
    ros: SingleThreadedExecutor,
) -> None:
    _mgmt, data = recorder
    catalog.put_config("MS1", {**FAST, "algorithms": SECONDARY})
    catalog.put_config("MS2", {**FAST, "algorithms": SECONDARY})
    served = catalog.put_config(
        "MH1", {**FAST, "algorithms": [{"name": "fault_location", "parameters": {"evidence_wait_s": 0.3}}]}
    )
    ms1, ms2 = agent_factory("MS1"), agent_factory("MS2")
    wait_until(lambda: catalog.device("MS1") and catalog.device("MS2"), 10, "secondaries registered")

    node = _agent_node(ros, catalog, "MH1", tmp_path)
    probe = Node("agent_probe", namespace=NS)
    ros.add_node(probe)
    locations: list[FaultLocation] = []
    statuses: list[DeviceStatus] = []
    probe.create_subscription(FaultLocation, "fault_location", locations.append, 10)
    probe.create_subscription(DeviceStatus, "device_status", statuses.append, 10)
    events = probe.create_publisher(FaultEvent, "fault_event", 10)
    runner = _spin_until(ros, node.agent.fault_locator, "fault_location started from the configuration")
    assert isinstance(runner, FaultLocationRunner)
    peer_topics = {f"sma3/data/meters/{m}/{k}" for m in ("MS1", "MS2") for k in ("sag", "outage")}
    _spin_until(
        ros,
        lambda: (
            runner.peers == {"MS1", "MS2"} and node.agent.links.active_subscriptions("data") >= peer_topics
        ),
        "peers looked up and subscribed",
    )
    _spin_until(ros, lambda: events.get_subscription_count() > 0, "the node's FaultEvent subscription")

    # DeviceStatus on ROS with the heartbeat's content
    status = _spin_until(
        ros, lambda: next((s for s in statuses if s.config_version == str(served["version"])), None), "status"
    )
    assert status.device_id == "MH1" and status.role == "feeder_head"
    assert list(status.algorithms) == ["fault_location"]
    assert status.uptime_s > 0

    # GetDeviceConfig: the configuration the catalog serves
    client: Any = probe.create_client(GetDeviceConfig, "get_device_config")

    def get_config(device_id: str) -> GetDeviceConfig.Response:
        return call_until_answered(
            client,
            GetDeviceConfig.Request(device_id=device_id),
            lambda t: ros.spin_once(timeout_sec=t),
            what="GetDeviceConfig",
            timeout_s=TIMEOUT_S,
        )

    response = get_config("MH1")
    assert response.success, response.message
    assert response.config_version == str(served["version"])
    document = json.loads(response.config_json)
    assert [a["name"] for a in document["algorithms"]] == ["fault_location"]
    assert document["role"] == "feeder_head"
    refused = get_config("MS9")
    assert not refused.success and "MS9" in refused.message

    # a fault on L3; the secondaries see the sag (their evidence reaches the head over the data broker)
    net = load_network("mini")
    sol = solve(net, FaultScenario("L3", 0.4, "AG", rf_ohm=5.0, load_spread=0.1, seed=2))
    for running, meter in ((ms1, "MS1"), (ms2, "MS2")):
        for k in range(3):
            running.agent.on_phasors(_report(1000 + 64 * k, sol.pre[meter].v, sol.pre[meter].i))
        for k in range(3, 6):
            running.agent.on_phasors(_report(1000 + 64 * k, sol.fault[meter].v, sol.fault[meter].i))
    _spin_until(
        ros, lambda: len(runner.current_evidence()) == 4, "sags and pre-fault powers of both secondaries"
    )

    # the detector announces the event before the record is written
    record_cfg = tmp_path / "records" / "MH1-event.cfg"
    events.publish(
        FaultEvent(
            event_id="MH1-event",
            meter_id="MH1",
            fault_type="AG",
            inception_sample_index=81600,
            record_path=str(record_cfg),
        )
    )
    _spin_for(ros, 0.4)
    assert not locations
    staged = write_comtrade(
        synthesize(net, sol, "MH1", SamplingConfig(inception_angle_rad=0.3), seed=4), tmp_path / "stage.cfg"
    )
    record_cfg.parent.mkdir()
    shutil.move(staged.with_suffix(".dat"), record_cfg.with_suffix(".dat"))
    shutil.move(staged, record_cfg)  # the .cfg last, as the detector writes it
    loc = _spin_until(ros, lambda: locations and locations[0], "FaultLocation on ROS")
    assert loc.event_id == "MH1-event" and loc.meter_id == "MH1" and loc.fault_type == "AG"
    assert abs(loc.inception_s - 0.5) < 1e-3
    assert list(loc.evidence_meters) == ["MS1", "MS2"]
    best = loc.candidates[0]
    assert best.line_id == "L3"
    assert abs(best.distance_from_upstream_km - 0.4 * net.lines["L3"].length_km) < 0.01

    # the runner published the same location on the data broker
    published = _spin_until_json(ros, data, "sma3/data/meters/MH1/location", lambda m: True)
    assert published["inception_index"] == 81600 and published["evidence"] == ["MS1", "MS2"]
    assert published["candidates"][0]["line_id"] == "L3"
    assert published["candidates"][0]["distance_from_upstream_km"] == pytest.approx(
        best.distance_from_upstream_km, abs=1e-6
    )


def test_secondary_node_reports_from_ros_phasors(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], tmp_path: Path, ros: SingleThreadedExecutor
) -> None:
    _mgmt, data = recorder
    served = catalog.put_config("MS2", {**FAST, "algorithms": SECONDARY})
    node = _agent_node(ros, catalog, "MS2", tmp_path)
    probe = Node("agent_probe", namespace=NS)
    ros.add_node(probe)
    locations: list[FaultLocation] = []
    statuses: list[DeviceStatus] = []
    probe.create_subscription(FaultLocation, "fault_location", locations.append, 10)
    probe.create_subscription(DeviceStatus, "device_status", statuses.append, 10)
    frames = probe.create_publisher(PhasorFrame, "phasors", 100)
    events = probe.create_publisher(FaultEvent, "fault_event", 10)
    _spin_until(ros, lambda: "outage_detection" in node.agent.runners, "algorithms started")
    _spin_until(
        ros,
        lambda: frames.get_subscription_count() > 0 and events.get_subscription_count() > 0,
        "the node's subscriptions",
    )
    # registered and running, waiting for the signal chain (an early heartbeat may still say "not registered")
    before = _spin_until(
        ros,
        lambda: next((s for s in statuses if s.health == DeviceStatus.HEALTH_OK), None),
        "a healthy DeviceStatus",
    )
    assert before.config_version == str(served["version"]) and before.role == "secondary"
    assert "waiting for signal-chain input" in before.detail

    # PhasorFrames of the detector: normal, sag, then loss of voltage (frames of other meters ignored)
    net = load_network("mini")
    sol = solve(net, FaultScenario("L3", 0.4, "AG", rf_ohm=5.0))
    pre, flt = sol.pre["MS2"], sol.fault["MS2"]
    zero = np.zeros(3, dtype=complex)
    stamp = SamplingConfig().start_time
    sent = [_report(5000 + 64 * k, pre.v, pre.i) for k in range(3)]
    sent += [_report(5000 + 64 * k, flt.v, flt.i) for k in range(3, 6)]
    sent += [_report(5000 + 64 * k, zero, zero) for k in range(6, 10)]
    frames.publish(phasor_frame_msg(sent[3], "MS1", stamp))  # another meter's
    for sample in sent:
        frames.publish(phasor_frame_msg(sample, "MS2", stamp))
    sag = _spin_until_json(ros, data, "sma3/data/meters/MS2/sag", lambda m: m["state"] == "start")
    np.testing.assert_allclose(sag["v_mag"], np.abs(flt.v), rtol=1e-9)
    assert sag["sample_index"] == 5000 + 64 * 3
    alarm = _spin_until_json(
        ros, data, "sma3/data/meters/MS2/outage", lambda m: m["kind"] == "loss_of_voltage"
    )
    assert alarm["phases"] == [True, True, True]
    sag_runner = node.agent.runners["sag_reporting"]
    _spin_until(ros, lambda: sag_runner.reports >= len(sent), "every frame of MS2 fed to the agent")
    _spin_for(ros, 0.2)
    assert sag_runner.reports == len(sent)  # MS1's frame was not fed

    # no fault_location in the configuration: the event is not located
    events.publish(FaultEvent(event_id="MS2-event", meter_id="MS2", record_path=str(tmp_path / "x.cfg")))
    _spin_for(ros, 0.5)
    assert not locations and len(node._records) == 0

    # the last gasp goes out on the data broker (the SIGTERM/SIGPWR handler of main() calls it)
    node.last_gasp("SIGPWR")
    gasp = _spin_until_json(ros, data, "sma3/data/meters/MS2/outage", lambda m: m["kind"] == "last_gasp")
    assert gasp["meter_id"] == "MS2"


def test_phasor_frame_round_trip() -> None:
    """PhasorFrame -> PhasorSample keeps the phasors, index and flags of the detector's frame."""
    v = np.array([12000 + 300j, -6000 - 10000j, -6000 + 10000j])
    i = np.array([100 - 20j, -60 - 80j, -40 + 90j])
    sample = PhasorSample(777, 50.02, 0.1, np.concatenate([v, i]), locked=False, transient=True)
    msg = phasor_frame_msg(sample, "MS1", SamplingConfig().start_time, PhasorFrame.QUALITY_GAP)
    back = phasor_sample_from_msg(msg)
    np.testing.assert_allclose(back.phasors, sample.phasors, rtol=1e-12)
    assert (back.sample_index, back.frequency_hz, back.rocof_hz_s) == (777, 50.02, 0.1)
    assert not back.locked and back.transient
    msg.quality = PhasorFrame.QUALITY_OK
    assert phasor_sample_from_msg(msg).transient is False


def _node_command(catalog: Catalog, device_id: str, tmp_path: Path, *params: str) -> list[str]:
    token_file = tmp_path / f"{device_id}.token"
    token_file.write_text(device_token(device_id) + "\n")
    values = {
        "device_id": device_id,
        "catalog_url": catalog.url,
        "token_file": str(token_file),
        "cache_dir": str(tmp_path / f"proc-cache-{device_id}"),
        "refresh_s": "0.5",
    }
    args = [a for k, v in values.items() for a in ("-p", f"{k}:={v}")]
    args += [a for p in params for a in ("-p", p)]
    return [sys.executable, "-m", "sma3_meter.nodes.agent", "--ros-args", "-r", f"__ns:={NS}", *args]


def test_node_process_last_gasp_and_clean_stop(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], tmp_path: Path
) -> None:
    """``meter_agent`` as a process: SIGTERM publishes the last gasp, then the offline heartbeat."""
    mgmt, data = recorder
    catalog.put_config("MS1", {**FAST, "algorithms": SECONDARY})
    log = tmp_path / "node.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _node_command(catalog, "MS1", tmp_path), stdout=out, stderr=subprocess.STDOUT, env=agent_env()
        )
        try:
            mgmt.wait_json("sma3/mgmt/devices/MS1/status", lambda m: m.get("state") == "online", 20)
            wait_until(lambda: catalog.device("MS1"), 10, "MS1 registered by the node process")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 128 + signal.SIGTERM, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    _t, gasp = data.wait_json("sma3/data/meters/MS1/outage", lambda m: m["kind"] == "last_gasp", 5)
    assert gasp["meter_id"] == "MS1"
    mgmt.wait_json(
        "sma3/mgmt/devices/MS1/status",
        lambda m: m.get("state") == "offline" and m.get("reason") == "shutdown",
        5,
    )


def test_node_process_rejects_missing_parameter(catalog: Catalog, tmp_path: Path) -> None:
    """Exit 2 with a one-line reason naming the parameter."""
    cmd = _node_command(catalog, "MS1", tmp_path, "catalog_url:=ftp://nowhere")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=agent_env(), timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("meter_agent: parameter catalog_url")


def test_record_wait(tmp_path: Path) -> None:
    """Items leave the queue once their record exists (after the minimum wait) or after the timeout."""
    now = [100.0]
    waiting: RecordWait[str] = RecordWait(2.0, clock=lambda: now[0])
    a, b = tmp_path / "a.cfg", tmp_path / "b.cfg"
    waiting.add(str(a), "event-a", min_wait_s=0.5)
    waiting.add(str(b), "event-b")
    a.write_text("cfg")
    assert waiting.collect() == ([], []) and len(waiting) == 2  # a: minimum wait not over
    now[0] += 0.6
    ready, expired = waiting.collect()
    assert [(w.path, w.item) for w in ready] == [(str(a), "event-a")] and expired == []
    now[0] += 1.5
    ready, expired = waiting.collect()
    assert ready == [] and [w.item for w in expired] == ["event-b"] and len(waiting) == 0
    with pytest.raises(ValueError, match="timeout"):
        RecordWait(0.0)
