"""The locator node over real ROS 2: a record -> FaultEvent -> FaultLocation, and the LocateFault service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sma3_grid.comtrade import write_comtrade
from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_meter.location import LoadEvidence, SagEvidence
from sma3_rostest.runtime import require_ros
from sma3_rostest.services import call_until_answered
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import FaultSolution, solve
from sma3_sim.waveforms import SamplingConfig, synthesize

require_ros()

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from sma3_interfaces.msg import FaultEvent, FaultLocation, OutageAlarm, PhasorFrame  # noqa: E402
from sma3_interfaces.srv import LocateFault  # noqa: E402
from sma3_meter.nodes.acquisition import AcquisitionNode  # noqa: E402
from sma3_meter.nodes.convert import time_from_datetime  # noqa: E402
from sma3_meter.nodes.detector import DetectorNode  # noqa: E402
from sma3_meter.nodes.locator import LocatorNode  # noqa: E402
from sma3_meter.nodes.qos import EVENT_QOS  # noqa: E402

pytestmark = pytest.mark.ros
TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


@pytest.fixture(scope="module")
def solution(mini: Network) -> FaultSolution:
    return solve(mini, FaultScenario("L6", 0.4, "AB", 0.8, 0.0, load_spread=0.1, seed=9))


@pytest.fixture(scope="module")
def record_cfg(mini: Network, solution: FaultSolution, tmp_path_factory: pytest.TempPathFactory) -> Path:
    record = synthesize(mini, solution, "MH1", SamplingConfig(inception_angle_rad=0.3), seed=4)
    return write_comtrade(record, tmp_path_factory.mktemp("node") / "mh1.cfg")


NS = f"/loc{uuid.uuid4().hex[:8]}"  # isolates these tests' topics from other ROS users


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


def _params(**values: object) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def _locator(executor: SingleThreadedExecutor, **params: object) -> LocatorNode:
    node = LocatorNode(namespace=NS, parameter_overrides=_params(**params))
    executor.add_node(node)
    return node


def _spin_until(executor: SingleThreadedExecutor, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {TIMEOUT_S} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


def _sag_frame(meter_id: str, v_mag: np.ndarray, stamp: object) -> PhasorFrame:
    frame = PhasorFrame()
    frame.header.stamp = stamp
    frame.header.frame_id = meter_id
    frame.meter_id = meter_id
    frame.v_mag = [float(x) for x in v_mag]
    frame.quality = PhasorFrame.QUALITY_OK
    return frame


def test_fault_event_to_fault_location(
    ros: SingleThreadedExecutor, mini: Network, solution: FaultSolution, record_cfg: Path
) -> None:
    locator = _locator(ros, enabled=True, network="mini", meter_id="MH1")
    probe = Node("locator_probe", namespace=NS)
    ros.add_node(probe)
    received: list[FaultLocation] = []
    probe.create_subscription(FaultLocation, "fault_location", received.append, 10)
    events = probe.create_publisher(FaultEvent, "fault_event", 10)
    frames = probe.create_publisher(PhasorFrame, "phasors", 100)
    alarms = probe.create_publisher(OutageAlarm, "outage_alarm", 10)
    _spin_until(
        ros, lambda: events.get_subscription_count() > 0 and frames.get_subscription_count() > 0, "links"
    )

    # the secondary meters' fault-state voltages, stamped inside the fault window
    start = SamplingConfig().start_time
    inception = start + timedelta(seconds=0.5)
    # and their pre-fault powers, stamped before it
    pre_power = {m: solution.pre[m].v * np.conj(solution.pre[m].i) for m in ("MS1", "MS2")}
    for meter in ("MS1", "MS2"):
        for k in range(3):
            stamp = time_from_datetime(inception - timedelta(seconds=0.1 + 0.02 * k))
            frame = _sag_frame(meter, np.abs(solution.pre[meter].v), stamp)
            frame.p_w = [float(x) for x in pre_power[meter].real]
            frame.q_var = [float(x) for x in pre_power[meter].imag]
            frames.publish(frame)
        for k in range(3):
            stamp = time_from_datetime(inception + timedelta(seconds=0.1 + 0.02 * k))
            frames.publish(_sag_frame(meter, np.abs(solution.fault[meter].v), stamp))
    alarm = OutageAlarm(meter_id="MS2", bus_id="B4", kind=OutageAlarm.LOSS_OF_VOLTAGE)
    alarm.header.stamp = time_from_datetime(inception + timedelta(seconds=0.3))
    alarms.publish(alarm)
    _spin_until(
        ros, lambda: len(locator._frames.get("MS2", ())) == 6 and "MS2" in locator._outages, "evidence"
    )
    gathered = locator._evidence("MH1", inception, 0.02)
    loads = {e.meter_id: e.s_va for e in gathered if isinstance(e, LoadEvidence)}
    sags = {e.meter_id for e in gathered if isinstance(e, SagEvidence)}
    assert sags == {"MS1", "MS2"}
    assert loads.keys() == {"MS1", "MS2"}
    for meter, s_va in loads.items():
        assert abs(s_va - complex(np.sum(pre_power[meter]))) < 1e-6 * abs(s_va)

    event = FaultEvent(event_id="MH1-test", meter_id="MH1", fault_type="AB", record_path=str(record_cfg))
    events.publish(event)
    _spin_until(ros, lambda: bool(received), "FaultLocation")
    loc = received[0]
    assert loc.event_id == "MH1-test"
    assert loc.meter_id == "MH1"
    assert loc.fault_type == "AB"
    assert abs(loc.inception_s - 0.5) < 1e-3
    assert loc.inception_time.sec == time_from_datetime(inception).sec
    assert loc.evidence_meters == ["MS1", "MS2"]
    best = loc.candidates[0]
    assert best.line_id == "L6"
    assert abs(best.distance_from_upstream_km - 0.4 * mini.lines["L6"].length_km) < 0.005
    assert (best.upstream_substation, best.downstream_substation) == ("B2", "B5")
    assert abs(best.fault_resistance_ohm - 0.8) < 0.2
    assert loc.computation_time_s > 0

    # a tool that subscribes after the fact (transient-local) still gets the location
    late: list[FaultLocation] = []
    probe.create_subscription(FaultLocation, "fault_location", late.append, EVENT_QOS)
    _spin_until(ros, lambda: bool(late), "the location, subscribing late")
    assert late[0].event_id == "MH1-test" and late[0].candidates[0].line_id == "L6"


def test_locate_fault_service(ros: SingleThreadedExecutor, record_cfg: Path, tmp_path: Path) -> None:
    _locator(ros, enabled=True, network="mini", meter_id="MH1")
    client_node = Node("locator_client", namespace=NS)
    ros.add_node(client_node)
    client: Any = client_node.create_client(LocateFault, "locate_fault")

    def call(path: str, meter: str = "") -> LocateFault.Response:
        return call_until_answered(
            client,
            LocateFault.Request(record_path=path, meter_id=meter),
            lambda t: ros.spin_once(timeout_sec=t),
            what="LocateFault",
            timeout_s=TIMEOUT_S,
            attempt_s=10.0,
        )

    ok = call(str(record_cfg))
    assert ok.success, ok.message
    assert ok.location.fault_type == "AB"
    assert any(c.line_id == "L6" for c in ok.location.candidates)
    missing = call(str(tmp_path / "none.cfg"))
    assert not missing.success
    assert "no such file" in missing.message
    unknown = call(str(record_cfg), "M77")
    assert not unknown.success
    assert "M77" in unknown.message


def test_disabled_node_stays_idle(ros: SingleThreadedExecutor) -> None:
    locator = _locator(ros, network="mini")
    assert not locator.enabled
    assert list(locator.subscriptions) == []
    assert not [p for p in locator.publishers if p.msg_type is FaultLocation]
    assert not [s for s in locator.services if s.srv_type is LocateFault]


def test_replayed_waveforms_to_fault_location(
    ros: SingleThreadedExecutor, mini: Network, tmp_path: Path
) -> None:
    """End to end over ROS: acquisition (replay) -> detector (FaultEvent + record) -> locator."""
    solution = solve(mini, FaultScenario("L3", 0.7, "BCG", 0.4, 0.8, load_spread=0.1, seed=3))
    source = write_comtrade(
        synthesize(mini, solution, "MH1", SamplingConfig(trip_after_s=0.25), seed=8), tmp_path / "src.cfg"
    )
    probe = Node("locator_probe", namespace=NS)
    ros.add_node(probe)
    received: list[FaultLocation] = []
    probe.create_subscription(FaultLocation, "fault_location", received.append, 10)
    _locator(ros, enabled=True, network="mini", meter_id="MH1")
    detector = DetectorNode(
        namespace=NS,
        parameter_overrides=_params(
            meter_id="MH1",
            bus_id="SRC",
            record_dir=str(tmp_path / "records"),
            nominal_voltage_v=22000.0 / 3**0.5,
        ),
    )
    ros.add_node(detector)
    deadline = time.monotonic() + 0.3  # discovery before the data flows
    while time.monotonic() < deadline:
        ros.spin_once(timeout_sec=0.02)
    acquisition = AcquisitionNode(
        namespace=NS,
        parameter_overrides=_params(meter_id="MH1", backend="replay", sources=[str(source)], speed=4.0),
    )
    ros.add_node(acquisition)
    _spin_until(ros, lambda: bool(received), "the FaultLocation of the replayed fault")
    loc = received[0]
    assert loc.meter_id == "MH1" and loc.fault_type == "BCG"
    assert loc.event_id  # the detector's event id
    cand = next(c for c in loc.candidates if c.line_id == "L3")
    assert abs(cand.distance_from_upstream_km - 0.7 * mini.lines["L3"].length_km) < 0.01
    assert loc.candidates[0].score >= cand.score


def test_executable_rejects_bad_network() -> None:
    """The ``locator`` program exits 2 with a one-line reason when its network is unusable."""
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo / "src" / "sma3_meter"), *sys.path]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sma3_meter.nodes.locator",
            "--ros-args",
            "-p",
            "enabled:=true",
            "-p",
            "network:=atlantis",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "atlantis" in proc.stderr.strip().splitlines()[-1]
