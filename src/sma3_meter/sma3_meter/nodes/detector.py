"""ROS 2 phasor/detection node: ``WaveformFrame`` -> ``PhasorFrame``, ``FaultEvent`` (+ COMTRADE
record), ``OutageAlarm``.

Every frame goes through :class:`sma3_meter.detection.SignalChain`; each cycle report becomes a
``PhasorFrame``; each fault a COMTRADE record (``record_pre_s`` + ``record_post_s`` around the
inception, :class:`sma3_meter.records.RecordCapture`), a ``FaultEvent`` and a log line; loss of
voltage and restoration an ``OutageAlarm``. On SIGTERM/SIGPWR the node publishes a last-gasp
``OutageAlarm`` before the process exits.

Parameters
----------
meter_id : str
    Meter id (only frames of this meter are processed; '' = any).
bus_id : str
    Bus of the meter, written in outage alarms.
nominal_hz : float
    Nominal frequency, Hz.
nominal_voltage_v : float
    Nominal phase-to-ground RMS voltage, V (outage thresholds).
record_dir : str
    Folder of the COMTRADE records.
record_pre_s, record_post_s : float
    Record window before/after inception, s (0.5 + 0.5).
record_binary : bool
    BINARY (default) or ASCII ``.dat``.
record_flush_after_s : float
    A pending record is written with the samples received so far when no frame arrives for this long
    (s; the stream stopped or a replay ended before the post-fault window was complete).
publish_on : str
    ``detection`` (default): the ``FaultEvent`` is published as soon as the fault is classified (one
    cycle after inception, the lowest latency); ``record_path`` then names the record that appears
    ``record_post_s`` after inception (written whole: the ``.cfg`` appears last). ``record``: published
    once the record is on disk, for consumers that read ``record_path`` at once.
report_sags : bool
    Also report faults seen only as voltage sags (not on the measured line) as ``FaultEvent``.
waveform_topic, phasor_topic, fault_topic, outage_topic : str
    Topics (``waveform``, ``phasors``, ``fault_event``, ``outage_alarm``).
"""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from sma3_interfaces.msg import FaultEvent, OutageAlarm, PhasorFrame, WaveformFrame
from sma3_meter.detection import (
    ChainSettings,
    Disturbance,
    FaultCleared,
    FaultDetected,
    OutageChange,
    OutageMonitor,
    OutageSettings,
    SignalChain,
)
from sma3_meter.nodes.convert import block_from_msg, fault_event_msg, outage_alarm_msg, phasor_frame_msg
from sma3_meter.nodes.qos import EVENT_QOS
from sma3_meter.nodes.spin import spin_with_last_gasp
from sma3_meter.records import RecordCapture, event_id

__all__ = ["DetectorNode", "main"]


class DetectorNode(Node):
    """Phasors, fault and outage detection of one meter's waveform stream."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("detector", **kwargs)  # type: ignore[arg-type]
        p = self.declare_parameter
        p("meter_id", "")
        p("bus_id", "")
        p("nominal_hz", 50.0)
        p("nominal_voltage_v", 22000.0 / math.sqrt(3.0))
        p("record_dir", "records")
        p("record_pre_s", 0.5)
        p("record_post_s", 0.5)
        p("record_binary", True)
        p("record_flush_after_s", 1.0)
        p("publish_on", "detection")
        p("report_sags", False)
        p("waveform_topic", "waveform")
        p("phasor_topic", "phasors")
        p("fault_topic", "fault_event")
        p("outage_topic", "outage_alarm")
        value = self._param
        self.meter_id = str(value("meter_id"))
        self.bus_id = str(value("bus_id"))
        self.nominal_hz = float(value("nominal_hz"))
        self.publish_on = str(value("publish_on"))
        if self.publish_on not in ("record", "detection"):
            raise ValueError(f"detector: publish_on must be 'record' or 'detection', got {self.publish_on!r}")
        self.record_dir = Path(str(value("record_dir"))).resolve()
        self.settings = ChainSettings(
            outage=OutageSettings(nominal_voltage_v=float(value("nominal_voltage_v"))),
            report_sags=bool(value("report_sags")),
        )
        self.phasor_pub = self.create_publisher(PhasorFrame, str(value("phasor_topic")), 50)
        self.fault_pub = self.create_publisher(FaultEvent, str(value("fault_topic")), EVENT_QOS)
        self.outage_pub = self.create_publisher(OutageAlarm, str(value("outage_topic")), EVENT_QOS)
        self.create_subscription(WaveformFrame, str(value("waveform_topic")), self._on_frame, 50)
        self.record_flush_after_s = float(value("record_flush_after_s"))
        self._last_frame = time.monotonic()
        self.create_timer(0.2, self._flush_stale_records)
        self.chain: SignalChain | None = None
        self.capture: RecordCapture | None = None
        self._rate = 0.0
        self._anchor: tuple[int, datetime] = (0, datetime(1970, 1, 1, tzinfo=timezone.utc))
        self._saturated_until = -1
        self._gap_until = -1
        self._waiting: dict[str, FaultEvent] = {}  # event id -> FaultEvent waiting for its record
        self.faults_published = 0
        self._last_meter = self.meter_id
        self.fault_publish_times: list[float] = []  # time.monotonic() of each FaultEvent (latency bench)
        self.get_logger().info(
            f"detector for meter {self.meter_id or '(any)'}: records in {self.record_dir}, "
            f"FaultEvent on {self.publish_on}"
        )

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- time ------------------------------------------------------------------------------------
    def _time_of(self, index: int) -> datetime:
        first, when = self._anchor
        return when + timedelta(seconds=(index - first) / self._rate)

    # -- input -----------------------------------------------------------------------------------
    def _on_frame(self, msg: WaveformFrame) -> None:
        if self.meter_id and msg.meter_id != self.meter_id:
            return
        self._last_frame = time.monotonic()
        try:
            block = block_from_msg(msg)
        except ValueError as exc:
            self.get_logger().error(str(exc))
            return
        if self.chain is None or msg.sample_rate_hz != self._rate:
            self._start(msg)
        assert self.chain is not None and self.capture is not None
        self._anchor = (block.first_index, block.first_time)
        n = block.n_samples
        window = self.chain.n
        if any(block.saturated):
            self._saturated_until = block.first_index + n - 1 + window - 1  # last window touching it
        if block.gap_samples:
            self._gap_until = block.first_index + window - 1
        out = self.chain.process(block.samples, block.first_index)
        for event in out.events:  # events first: a FaultEvent goes out before anything else
            self._on_event(event, msg)
        meter = self._meter(msg)
        for rep in out.reports:
            quality = 0
            if rep.sample_index <= self._saturated_until:
                quality |= PhasorFrame.QUALITY_SATURATED
            if rep.sample_index <= self._gap_until:
                quality |= PhasorFrame.QUALITY_GAP
            self.phasor_pub.publish(phasor_frame_msg(rep, meter, self._time_of(rep.sample_index), quality))
        for path in self.capture.push(block.samples, block.first_index, block.first_time):
            self._on_record(path)

    def _meter(self, msg: WaveformFrame) -> str:
        self._last_meter = self.meter_id or msg.meter_id
        return self._last_meter

    def _start(self, msg: WaveformFrame) -> None:
        self._rate = float(msg.sample_rate_hz)
        self.chain = SignalChain(self._rate, self.nominal_hz, self.settings)
        self.capture = RecordCapture(
            self._meter(msg),
            self._rate,
            self.nominal_hz,
            self.record_dir,
            pre_s=float(self._param("record_pre_s")),
            post_s=float(self._param("record_post_s")),
            binary=bool(self._param("record_binary")),
        )

    # -- output ----------------------------------------------------------------------------------
    def _on_event(self, event: object, msg: WaveformFrame) -> None:
        meter = self._meter(msg)
        log = self.get_logger()
        if isinstance(event, FaultDetected):
            # Latency first: the FaultEvent is built and (publish_on=detection) published before the
            # record is armed and the log line written.
            assert self.capture is not None
            inception = self._time_of(event.inception_index)
            eid = event_id(meter, inception)
            path = self.record_dir / f"{eid}.cfg"
            fault_msg = fault_event_msg(
                event,
                eid,
                meter,
                inception,
                self._time_of(event.prefault.sample_index),
                self._time_of(event.fault.sample_index),
                str(path),
                datetime.now(timezone.utc),
            )
            if self.publish_on == "detection":
                self._publish_fault(fault_msg)
            else:
                self._waiting[str(path)] = fault_msg
            self.capture.trigger(event.inception_index, name=eid)
            mags = np.abs(event.fault.i)
            log.info(
                f"FAULT {event.fault_type} at {inception.isoformat()} (sample {event.inception_index}), "
                f"fault currents {np.round(mags, 1).tolist()} A; record {path}"
            )
        elif isinstance(event, FaultCleared):
            how = "breaker trip" if event.breaker_open else "cleared downstream / self-extinguished"
            log.info(f"fault cleared at {self._time_of(event.clearing_index).isoformat()} ({how})")
        elif isinstance(event, OutageChange):
            self.outage_pub.publish(
                outage_alarm_msg(event, meter, self.bus_id, self._time_of(event.sample_index))
            )
            volts = np.round(event.v_mag, 0).tolist()
            log.warning(f"outage alarm kind {event.kind}: phases {event.phases}, V {volts}")
        elif isinstance(event, Disturbance):
            log.info(f"disturbance at sample {event.index} (not a fault here): {event.reason}")

    def _on_record(self, path: Path) -> None:
        self.get_logger().info(f"record written: {path}")
        waiting = self._waiting.pop(str(path), None)
        if waiting is not None:
            waiting.header.stamp = self.get_clock().now().to_msg()
            self._publish_fault(waiting)

    def _publish_fault(self, msg: FaultEvent) -> None:
        self.fault_pub.publish(msg)
        self.fault_publish_times.append(time.monotonic())
        self.faults_published += 1

    def _flush_stale_records(self) -> None:
        stale = time.monotonic() - self._last_frame > self.record_flush_after_s
        if self.capture is not None and self.capture.pending and stale:
            self.get_logger().warning("waveform stream stopped: writing pending records as they are")
            self.flush_records()

    def flush_records(self) -> None:
        """Write pending records with the samples received so far (and publish their events)."""
        if self.capture is not None:
            for path in self.capture.flush():
                self._on_record(path)

    def publish_last_gasp(self, reason: str) -> None:
        """Publish the last-gasp ``OutageAlarm`` (called from the SIGTERM/SIGPWR handler)."""
        monitor = self.chain.outage if self.chain is not None else OutageMonitor(self.settings.outage)
        change = monitor.last_gasp()
        when = (
            self._time_of(change.sample_index)
            if change.sample_index >= 0 and self._rate > 0
            else datetime.now(timezone.utc)
        )
        self.outage_pub.publish(
            outage_alarm_msg(change, self.meter_id or self._last_meter, self.bus_id, when)
        )
        self.get_logger().warning(f"last gasp ({reason}): phases {change.phases}")
        time.sleep(0.05)  # let the middleware send it before the process goes


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run sma3_meter detector``.

    rclpy's own signal handlers are not installed: SIGTERM/SIGPWR publish the last gasp and end the
    process through :func:`install_last_gasp_handler`, SIGINT raises KeyboardInterrupt; the loop
    spins with a timeout so that Python handles the signals promptly.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = DetectorNode()
    return spin_with_last_gasp(node, node.publish_last_gasp, before_destroy=node.flush_records)


if __name__ == "__main__":
    sys.exit(main())
