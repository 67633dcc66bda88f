"""ROS 2 acquisition node: a DAQ backend -> ``WaveformFrame`` messages (one nominal cycle each).

Parameters
----------
meter_id : str
    Meter id (network description), stamped in every frame.
backend : str
    ``uldaq``, ``mcculw``, ``sim`` or ``replay``.
sample_rate_hz : float
    Sampling rate, Hz (3200; 6400 optional). Replay and sim take the rate of their source.
nominal_hz : float
    Nominal frequency, Hz (50 or 60).
frame_samples : int
    Samples per frame; 0 (default) = one nominal cycle.
inputs, gains, offsets_v : str
    Hardware backends: DAQ inputs of VA VB VC IA IB IC ("0,1,2,3,4,5"), primary units per DAQ volt
    (VT/CT scaling, "3000,3000,3000,4000,4000,4000"), DAQ offsets in V.
unique_id : str
    uldaq: device serial ('' = first device).
board_num : int; discover : bool
    mcculw: board number; create it from the first USB device instead of InstaCal's configuration.
sources : str[]
    replay: COMTRADE ``.cfg`` files and rosbag2 directories.
speed : float; loop : bool
    replay/sim: pacing (1.0 real time, 0 as fast as possible); replay: start again at the end.
sim_network, sim_line_id, sim_fault_type, sim_position, sim_rf_ohm, sim_fault_at_s,
sim_trip_after_s, sim_duration_s, seed
    sim: network and fault scenario (negative times = none), see :class:`sma3_meter.daq.sim.SimBackend`.
topic : str
    Output topic (default ``waveform``).
shutdown_at_end : bool
    Shut the node down when a finite source (replay, sim with a duration) ends.
wait_for_subscribers : int
    Start acquiring only once this many subscribers listen to the topic (0 = at once); lets a replay
    or simulation start when the detector is connected.

Gaps (DAQ overrun, lost samples) keep the sample counter continuous with real time: the next frame
starts at the right index and carries ``gap_samples``; each gap is logged as a warning.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from sma3_interfaces.msg import WaveformFrame
from sma3_meter.daq import DaqBackend, DaqError, EndOfDataError, Framer, create_backend
from sma3_meter.dsp.phasor import samples_per_cycle
from sma3_meter.nodes.convert import waveform_frame_msg

__all__ = ["AcquisitionNode", "main"]


class AcquisitionNode(Node):
    """Reads the DAQ backend in a thread and publishes ``WaveformFrame`` frames."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("acquisition", **kwargs)  # type: ignore[arg-type]
        p = self.declare_parameter
        p("meter_id", "meter")
        p("backend", "sim")
        p("sample_rate_hz", 3200.0)
        p("nominal_hz", 50.0)
        p("frame_samples", 0)
        p("inputs", "0,1,2,3,4,5")
        p("gains", "3000,3000,3000,4000,4000,4000")
        p("offsets_v", "0,0,0,0,0,0")
        p("unique_id", "")
        p("board_num", 0)
        p("discover", True)
        p("sources", [""])
        p("speed", 1.0)
        p("loop", False)
        p("sim_network", "mini")
        p("sim_line_id", "")
        p("sim_fault_type", "AG")
        p("sim_position", 0.5)
        p("sim_rf_ohm", 0.001)
        p("sim_fault_at_s", -1.0)
        p("sim_trip_after_s", -1.0)
        p("sim_duration_s", -1.0)
        p("seed", 0)
        p("topic", "waveform")
        p("shutdown_at_end", False)
        p("wait_for_subscribers", 0)
        value = self._param
        self.meter_id = str(value("meter_id"))
        self.nominal_hz = float(value("nominal_hz"))
        kind = str(value("backend"))
        options = {
            "sample_rate_hz": value("sample_rate_hz"),
            "inputs": value("inputs"),
            "gains": value("gains"),
            "offsets_v": value("offsets_v"),
            "unique_id": value("unique_id"),
            "board_num": value("board_num"),
            "discover": value("discover"),
            "sources": [s for s in value("sources") if s],
            "speed": value("speed"),
            "loop": value("loop"),
            "network": value("sim_network"),
            "meter_id": self.meter_id,
            "line_id": value("sim_line_id"),
            "fault_type": value("sim_fault_type"),
            "position": value("sim_position"),
            "rf_ohm": value("sim_rf_ohm"),
            "fault_at_s": value("sim_fault_at_s"),
            "trip_after_s": value("sim_trip_after_s"),
            "duration_s": value("sim_duration_s"),
            "seed": value("seed"),
            "block_samples": int(value("frame_samples"))
            or samples_per_cycle(float(value("sample_rate_hz")), self.nominal_hz),
        }
        self.backend: DaqBackend = create_backend(kind, options)
        self.sample_rate_hz = float(self.backend.sample_rate_hz)
        frame = int(value("frame_samples")) or samples_per_cycle(self.sample_rate_hz, self.nominal_hz)
        self.framer = Framer(frame, self.sample_rate_hz)
        self.publisher = self.create_publisher(WaveformFrame, str(value("topic")), 50)
        self.shutdown_at_end = bool(value("shutdown_at_end"))
        self.wait_for_subscribers = int(value("wait_for_subscribers"))
        self.frames_published = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self.backend.start()  # a missing library or device fails here, with a one-line reason
        self._thread = threading.Thread(target=self._run, name="acquisition", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"meter {self.meter_id}: {kind} acquisition at {self.sample_rate_hz:g} Hz, "
            f"{frame}-sample frames on '{self.publisher.topic_name}'"
        )

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _run(self) -> None:
        try:
            while self.publisher.get_subscription_count() < self.wait_for_subscribers:
                if self._stop.wait(0.01):
                    return
            while not self._stop.is_set():
                block = self.backend.read(timeout_s=0.1)
                if block is None:
                    continue
                for frame in self.framer.push(block):
                    if frame.gap_samples:
                        self.get_logger().warning(
                            f"{frame.gap_samples} samples lost before sample {frame.first_index} "
                            f"(total lost {self.framer.total_gap_samples})"
                        )
                    self.publisher.publish(waveform_frame_msg(frame, self.meter_id, self.sample_rate_hz))
                    self.frames_published += 1
        except EndOfDataError:
            self.get_logger().info(f"source finished after {self.frames_published} frames")
            if self.shutdown_at_end:
                rclpy.try_shutdown(context=self.context)
        except DaqError as exc:
            self.get_logger().error(str(exc))
            rclpy.try_shutdown(context=self.context)
        finally:
            self.finished.set()

    def destroy_node(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.backend.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run sma3_meter acquisition``."""
    rclpy.init(args=args)
    try:
        node = AcquisitionNode()
    except DaqError as exc:
        print(f"acquisition: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
