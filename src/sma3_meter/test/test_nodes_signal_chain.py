"""The meter signal chain over real ROS 2: acquisition node -> detector node -> FaultEvent + record."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sma3_grid.comtrade import read_comtrade, write_comtrade
from sma3_grid.io import load_network
from sma3_rostest.runtime import require_ros
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import solve
from sma3_sim.waveforms import SamplingConfig, synthesize

require_ros()

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from sma3_interfaces.msg import FaultEvent, OutageAlarm, PhasorFrame, WaveformFrame  # noqa: E402
from sma3_meter.nodes.acquisition import AcquisitionNode  # noqa: E402
from sma3_meter.nodes.detector import DetectorNode  # noqa: E402

pytestmark = pytest.mark.ros
TIMEOUT_S = 30.0
V_NOM = 22000.0 / math.sqrt(3.0)


@pytest.fixture
def ros() -> Iterator[tuple[SingleThreadedExecutor, str]]:
    rclpy.init()
    executor = SingleThreadedExecutor()
    namespace = f"/t{uuid.uuid4().hex[:8]}"  # isolates this test's topics from other ROS users
    yield executor, namespace
    for node in list(executor.get_nodes()):
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown()
    rclpy.try_shutdown()


class Listener(Node):
    def __init__(self, namespace: str) -> None:
        super().__init__("listener", namespace=namespace)
        self.faults: list[FaultEvent] = []
        self.phasors: list[PhasorFrame] = []
        self.outages: list[OutageAlarm] = []
        self.frames: list[WaveformFrame] = []
        self.create_subscription(FaultEvent, "fault_event", self.faults.append, 10)
        self.create_subscription(PhasorFrame, "phasors", self.phasors.append, 100)
        self.create_subscription(OutageAlarm, "outage_alarm", self.outages.append, 10)
        self.create_subscription(WaveformFrame, "waveform", self.frames.append, 100)


def _params(**values: object) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def _spin(
    executor: SingleThreadedExecutor, done: Callable[[], bool], what: str, timeout: float = TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        executor.spin_once(timeout_sec=0.02)


def _spin_for(executor: SingleThreadedExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.02)


@pytest.fixture(scope="module")
def fault_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = load_network("mini")
    solution = solve(net, FaultScenario("L4", 0.5, "AG", rf_ohm=20.0, rg_ohm=20.0, seed=2))
    record = synthesize(net, solution, "MH1", SamplingConfig(trip_after_s=0.1), seed=5)
    return write_comtrade(record, tmp_path_factory.mktemp("src") / "mh1_ag.cfg", binary=True)


def test_replay_to_fault_event_and_record(ros, fault_record: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    executor, ns = ros
    listener = Listener(ns)
    executor.add_node(listener)
    detector = DetectorNode(
        namespace=ns,
        parameter_overrides=_params(
            meter_id="MH1",
            bus_id="SRC",
            record_dir=str(tmp_path / "records"),
            nominal_voltage_v=V_NOM,
            publish_on="record",  # the event comes with its record already on disk
        ),
    )
    executor.add_node(detector)
    _spin_for(executor, 0.3)  # discovery before the data flows
    acquisition = AcquisitionNode(
        namespace=ns,
        parameter_overrides=_params(
            meter_id="MH1", backend="replay", sources=[str(fault_record)], speed=4.0, wait_for_subscribers=2
        ),
    )
    executor.add_node(acquisition)
    _spin(executor, lambda: len(listener.faults) >= 1, "the FaultEvent")
    _spin(executor, acquisition.finished.is_set, "the end of the replay")
    _spin_for(executor, 0.5)  # nothing else may come

    assert len(listener.faults) == 1
    event = listener.faults[0]
    assert event.fault_type == "AG" and event.meter_id == "MH1" and event.ground
    assert list(event.faulted_phases) == [True, False, False]
    assert abs(event.inception_sample_index - 1600) <= 3  # 0.5 s into the record, within 1 ms
    assert event.fault.i_mag[0] > 3 * event.prefault.i_mag[0]
    record_path = Path(event.record_path)
    assert record_path.is_file() and record_path.parent == (tmp_path / "records").resolve()
    record = read_comtrade(record_path)
    assert record.station == "MH1" and 3190 <= record.n_samples <= 3200  # 0.5 s + the rest of the replay
    assert abs(record.trigger_s - 0.5) <= 0.001
    assert list(record.channels) == ["VA", "VB", "VC", "IA", "IB", "IC"]

    frames = listener.frames
    assert [f.first_sample_index for f in frames] == [64 * k for k in range(len(frames))]
    assert len(frames) == 50 and all(f.gap_samples == 0 for f in frames)
    assert len(listener.phasors) >= 45
    steady = [p for p in listener.phasors if p.sample_index < 1500]
    assert all(abs(p.v_mag[0] - V_NOM) < 0.1 * V_NOM for p in steady)
    assert all(abs(p.frequency_hz - 50.0) < 0.01 for p in steady[6:])
    assert any(p.quality & PhasorFrame.QUALITY_TRANSIENT for p in listener.phasors)

    detector.publish_last_gasp("SIGTERM")
    _spin(executor, lambda: any(o.kind == OutageAlarm.LAST_GASP for o in listener.outages), "the last gasp")


def test_sim_backend_to_fault_event_on_detection(ros, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    executor, ns = ros
    listener = Listener(ns)
    executor.add_node(listener)
    detector = DetectorNode(
        namespace=ns,
        parameter_overrides=_params(
            meter_id="MH1",
            record_dir=str(tmp_path),
            nominal_voltage_v=V_NOM,
            publish_on="detection",
            record_post_s=0.2,
        ),
    )
    executor.add_node(detector)
    _spin_for(executor, 0.3)
    acquisition = AcquisitionNode(
        namespace=ns,
        parameter_overrides=_params(
            meter_id="MH1",
            backend="sim",
            sim_network="mini",
            sim_line_id="L6",
            sim_fault_type="BC",
            sim_fault_at_s=0.3,
            sim_duration_s=0.7,
            speed=2.0,
            seed=3,
        ),
    )
    executor.add_node(acquisition)
    _spin(executor, acquisition.finished.is_set, "the end of the simulation")
    _spin_for(executor, 0.5)
    assert [f.fault_type for f in listener.faults] == ["BC"]
    assert abs(listener.faults[0].inception_sample_index - 960) <= 3
    assert Path(listener.faults[0].record_path).is_file()


def test_detector_process_sends_last_gasp_on_sigterm(ros, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    executor, ns = ros
    listener = Listener(ns)
    executor.add_node(listener)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sma3_meter.nodes.detector",
            "--ros-args",
            "-r",
            f"__ns:={ns}",
            "-p",
            "meter_id:=MS1",
            "-p",
            "bus_id:=B5",
            "-p",
            f"record_dir:={tmp_path}",
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        publisher = listener.create_publisher(WaveformFrame, "waveform", 10)
        _spin(executor, lambda: publisher.get_subscription_count() >= 1, "the detector process", timeout=20.0)
        _spin(
            executor,
            lambda: listener.count_publishers("outage_alarm") >= 1,
            "the outage publisher",
            timeout=20.0,
        )
        _spin_for(executor, 0.3)
        proc.send_signal(signal.SIGTERM)
        _spin(executor, lambda: bool(listener.outages), "the last-gasp alarm", timeout=10.0)
        alarm = listener.outages[0]
        assert alarm.kind == OutageAlarm.LAST_GASP and alarm.meter_id == "MS1" and alarm.bus_id == "B5"
        assert list(alarm.phases) == [True, True, True]
        output, _ = proc.communicate(timeout=10.0)
        assert "last gasp (SIGTERM)" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_message_conversions_round_trip() -> None:
    from datetime import datetime, timezone

    import numpy as np

    from sma3_meter.daq.base import Frame
    from sma3_meter.dsp import PhasorSample
    from sma3_meter.nodes.convert import (
        block_from_msg,
        datetime_from_time,
        phasor_frame_msg,
        time_from_datetime,
        waveform_frame_msg,
    )

    when = datetime(2026, 11, 27, 16, 22, 53, 123456, tzinfo=timezone.utc)
    stamp = time_from_datetime(when)
    assert datetime_from_time(stamp) == when and stamp.nanosec == 123456000
    samples = np.arange(6 * 5, dtype=float).reshape(6, 5)
    frame = Frame(1000, samples, when, 7, (False, True, False, False, False, False))
    msg = waveform_frame_msg(frame, "MH1", 3200.0)
    block = block_from_msg(msg)
    assert np.array_equal(block.samples, samples) and block.first_index == 1000 and block.gap_samples == 7
    assert block.saturated[1] and block.first_time == when
    msg.ic = [1.0]
    with pytest.raises(ValueError, match="channel lengths differ"):
        block_from_msg(msg)
    phasors = np.array([100 * np.exp(0.5j), 90, 80, 10 * np.exp(-0.2j), 9, 8], dtype=complex)
    pf = phasor_frame_msg(PhasorSample(63, 50.01, 0.1, phasors, locked=False, transient=True), "MH1", when)
    assert pf.v_mag[0] == pytest.approx(100) and pf.v_ang[0] == pytest.approx(0.5)
    assert pf.p_w[0] == pytest.approx(1000 * np.cos(0.7)) and pf.q_var[0] == pytest.approx(1000 * np.sin(0.7))
    assert pf.quality == PhasorFrame.QUALITY_FREQUENCY_UNLOCKED | PhasorFrame.QUALITY_TRANSIENT
