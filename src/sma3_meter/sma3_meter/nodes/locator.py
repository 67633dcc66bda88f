"""ROS 2 shell of the fault locator: ``FaultEvent`` in, ``FaultLocation`` out, ``LocateFault`` service.

Runs only when the parameter ``enabled`` is true (the catalog configures ``fault_location`` on
feeder-head meters); otherwise the node stays idle and says so once.

Parameters
----------
enabled : bool
    Run the locator (default false).
network : str
    Network description: shipped name (``turin22``), folder or ``.xlsx``.
meter_id : str
    Meter this node locates for (default meter of the service; events name their own meter).
fault_event_topic, fault_location_topic, phasor_topic, outage_topic : str
    Topics of ``FaultEvent`` (in), ``FaultLocation`` (out), ``PhasorFrame`` and ``OutageAlarm`` of the
    other meters (in, used as evidence). Defaults ``fault_event``, ``fault_location``, ``phasors``,
    ``outage_alarm``.
service_name : str
    Name of the ``LocateFault`` service (default ``locate_fault``).
sag_window_s : float
    Phasor frames of other meters stamped between inception + 2 cycles and inception + this many
    seconds are averaged into voltage-sag evidence (default 0.3).
pre_window_s : float
    Phasor frames of other meters stamped between inception - this many seconds and inception - 1
    cycle are averaged into pre-fault power evidence (``P + jQ`` summed over the phases), which
    scales the forecast loads below each of them (default 0.2).
outage_window_s : float
    Outage alarms stamped between inception and inception + this many seconds count (default 10).
record_wait_s : float
    How long to wait for the record of an event that announces it before it is written, s (default
    5; the detector publishes at detection and writes the record ``record_post_s`` later).

The algorithm (:func:`sma3_meter.location.pipeline.locate_record`) is the one of ``sma3-locate``.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node

from sma3_grid.comtrade import ComtradeError, read_comtrade
from sma3_grid.io import load_network
from sma3_interfaces.msg import FaultEvent, FaultLocation, OutageAlarm, PhasorFrame
from sma3_interfaces.srv import LocateFault
from sma3_meter.location import (
    LoadEvidence,
    LocationError,
    OutageEvidence,
    SagEvidence,
    evidence_meters,
    load_evidence_meters,
)
from sma3_meter.location.pipeline import locate_record, with_evidence
from sma3_meter.nodes.convert import datetime_from_time, fault_location_msg
from sma3_meter.nodes.qos import EVENT_QOS
from sma3_meter.record_wait import RecordWait

__all__ = ["LocatorNode", "main"]

_BAD_QUALITY = PhasorFrame.QUALITY_SATURATED | PhasorFrame.QUALITY_GAP | PhasorFrame.QUALITY_TRANSIENT
_OUTAGE_KINDS = (OutageAlarm.LAST_GASP, OutageAlarm.LOSS_OF_VOLTAGE)


class LocatorNode(Node):
    """The locator node; see the module notes for parameters and topics."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("locator", **kwargs)  # type: ignore[arg-type]
        self.declare_parameter("enabled", False)
        self.declare_parameter("network", "")
        self.declare_parameter("meter_id", "")
        self.declare_parameter("fault_event_topic", "fault_event")
        self.declare_parameter("fault_location_topic", "fault_location")
        self.declare_parameter("phasor_topic", "phasors")
        self.declare_parameter("outage_topic", "outage_alarm")
        self.declare_parameter("service_name", "locate_fault")
        self.declare_parameter("sag_window_s", 0.3)
        self.declare_parameter("pre_window_s", 0.2)
        self.declare_parameter("outage_window_s", 10.0)
        self.declare_parameter("record_wait_s", 5.0)
        self.enabled = bool(self.get_parameter("enabled").value)
        if not self.enabled:
            self.get_logger().info("fault location disabled (parameter enabled is false)")
            return
        source = str(self.get_parameter("network").value)
        if not source:
            raise ValueError("locator: parameter 'network' is empty; name a network description")
        self.net = load_network(source)
        self.meter_id = str(self.get_parameter("meter_id").value)
        if self.meter_id and self.meter_id not in self.net.meters:
            raise ValueError(f"locator: meter_id {self.meter_id!r} is not in network {self.net.info.name!r}")
        self.sag_window_s = float(self.get_parameter("sag_window_s").value)
        self.pre_window_s = float(self.get_parameter("pre_window_s").value)
        self.outage_window_s = float(self.get_parameter("outage_window_s").value)
        self.record_wait_s = float(self.get_parameter("record_wait_s").value)
        # Events whose record is not on disk yet (the detector publishes at detection).
        self._records: RecordWait[FaultEvent] = RecordWait(self.record_wait_s)
        self.create_timer(0.05, self._check_records)
        self._frames: dict[str, deque[PhasorFrame]] = {}
        self._outages: dict[str, deque[OutageAlarm]] = {}
        self.publisher = self.create_publisher(
            FaultLocation, str(self.get_parameter("fault_location_topic").value), EVENT_QOS
        )
        self.create_subscription(
            FaultEvent, str(self.get_parameter("fault_event_topic").value), self._on_event, 10
        )
        self.create_subscription(
            PhasorFrame, str(self.get_parameter("phasor_topic").value), self._on_frame, 100
        )
        self.create_subscription(
            OutageAlarm, str(self.get_parameter("outage_topic").value), self._on_outage, 50
        )
        self.create_service(LocateFault, str(self.get_parameter("service_name").value), self._on_request)
        self.get_logger().info(
            f"fault location on network {self.net.info.name!r} for meter {self.meter_id!r}"
        )

    # -- inputs ---------------------------------------------------------------------------------
    def _on_frame(self, msg: PhasorFrame) -> None:
        self._frames.setdefault(msg.meter_id, deque(maxlen=200)).append(msg)

    def _on_outage(self, msg: OutageAlarm) -> None:
        self._outages.setdefault(msg.meter_id, deque(maxlen=20)).append(msg)

    def _on_event(self, msg: FaultEvent) -> None:
        if not msg.record_path:
            self.get_logger().warning(f"fault event {msg.event_id!r}: no record, cannot locate")
            return
        if Path(msg.record_path).exists():
            self._locate_event(msg)
        else:
            self._records.add(msg.record_path, msg)

    def _check_records(self) -> None:
        ready, expired = self._records.collect()
        for waited in expired:
            wait = self._records.timeout_s
            self.get_logger().error(
                f"fault event {waited.item.event_id!r}: no record {waited.path} after {wait} s"
            )
        for waited in ready:
            self._locate_event(waited.item)

    def _locate_event(self, msg: FaultEvent) -> None:
        meter_id = msg.meter_id or self.meter_id
        try:
            location = self.locate(msg.record_path, meter_id, msg.event_id)
        except (LocationError, ComtradeError, OSError) as exc:
            self.get_logger().error(f"fault event {msg.event_id!r}: {exc}")
            return
        self.publisher.publish(location)
        best = location.candidates[0] if location.candidates else None
        where = (
            "no feasible location"
            if best is None
            else (f"{best.line_id} {best.distance_from_upstream_km * 1e3:.0f} m from {best.upstream_bus}")
        )
        self.get_logger().info(f"fault {msg.event_id!r} {location.fault_type}: {where}")

    def _on_request(
        self, request: LocateFault.Request, response: LocateFault.Response
    ) -> LocateFault.Response:
        meter_id = request.meter_id or self.meter_id
        try:
            response.location = self.locate(request.record_path, meter_id, "")
            response.success = True
            response.message = ""
        except (LocationError, ComtradeError, OSError) as exc:
            response.success = False
            response.message = " ".join(str(exc).split())
        return response

    # -- work -----------------------------------------------------------------------------------
    def _evidence(
        self, meter_id: str, inception: datetime, period_s: float
    ) -> list[SagEvidence | OutageEvidence | LoadEvidence]:
        out: list[SagEvidence | OutageEvidence | LoadEvidence] = []
        start = inception + timedelta(seconds=2 * period_s)
        stop = inception + timedelta(seconds=self.sag_window_s)
        pre_start = inception - timedelta(seconds=self.pre_window_s)
        pre_stop = inception - timedelta(seconds=period_s)
        last = inception + timedelta(seconds=self.outage_window_s)
        loadable = set(load_evidence_meters(self.net, meter_id))
        for other in evidence_meters(self.net, meter_id):
            good = [f for f in self._frames.get(other, ()) if not f.quality & _BAD_QUALITY]
            stamps = [datetime_from_time(f.header.stamp) for f in good]
            sags = [f.v_mag for f, t in zip(good, stamps, strict=True) if start <= t <= stop]
            if sags:
                out.append(SagEvidence(other, np.mean(np.array(sags, dtype=float), axis=0)))
            pre = [f for f, t in zip(good, stamps, strict=True) if pre_start <= t <= pre_stop]
            if pre and other in loadable:
                p_w = float(np.mean([np.sum(f.p_w) for f in pre]))
                q_var = float(np.mean([np.sum(f.q_var) for f in pre]))
                out.append(LoadEvidence(other, complex(p_w, q_var)))
            alarms = [
                a
                for a in self._outages.get(other, ())
                if a.kind in _OUTAGE_KINDS and inception <= datetime_from_time(a.header.stamp) <= last
            ]
            if alarms:
                out.append(OutageEvidence(other, True))
        return out

    def locate(self, record_path: str, meter_id: str, event_id: str) -> FaultLocation:
        """Locate the fault of a record and build the ``FaultLocation`` message.

        Raises
        ------
        LocationError, ComtradeError, OSError
            Bad record, unknown meter, no fault in the record.
        """
        if not meter_id:
            raise LocationError("no meter id: the request names none and parameter meter_id is empty")
        if meter_id not in self.net.meters:
            raise LocationError(f"meter {meter_id!r} is not in network {self.net.info.name!r}")
        path = Path(record_path)
        if not path.is_file():
            raise LocationError(f"record {record_path!r}: no such file")
        record = read_comtrade(path)
        located = locate_record(self.net, record, meter_id)
        inception = record.start_time + timedelta(seconds=located.inception_s)
        evidence = self._evidence(meter_id, inception, 1.0 / self.net.info.frequency_hz)
        if evidence:
            located = with_evidence(self.net, located, evidence)
        note = located.result.rejected_note()
        if note is not None:
            self.get_logger().warning(note)
        stamp = datetime.now(timezone.utc)
        return fault_location_msg(
            located, self.net, event_id, inception, [e.meter_id for e in evidence], stamp
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``locator`` executable."""
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    try:
        node = LocatorNode()
    except (ValueError, LocationError, OSError) as exc:
        print(f"locator: {' '.join(str(exc).split())}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
