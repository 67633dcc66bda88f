"""ROS 2 shell of the self-configuring meter agent (:class:`sma3_meter.agent.core.MeterAgent`).

The agent (catalog, brokers, heartbeat, on-board algorithms) runs in its own thread; this node
connects it to the meter's signal chain on ROS:

- ``PhasorFrame`` of this meter (detector) -> :meth:`MeterAgent.on_phasors` (sag reporting, outage
  detection with its own :class:`~sma3_meter.detection.OutageMonitor`, fault location's input count);
- ``FaultEvent`` of this meter -> when the configuration runs ``fault_location``: wait for the
  event's COMTRADE record, locate it (:meth:`MeterAgent.locate_record`: the record pipeline with
  the peers' sag/outage evidence the runner holds; the runner publishes the result on the data
  broker) and publish ``FaultLocation``; otherwise the event is not used (the configuration
  decides);
- every heartbeat of the agent -> ``DeviceStatus`` (same content as the MQTT heartbeat);
- service ``GetDeviceConfig`` -> the configuration in force (JSON) and its version;
- SIGTERM/SIGPWR (:func:`main`) -> last-gasp alarm of ``outage_detection`` on the data broker, then a
  clean stop (``offline`` heartbeat).

Parameters
----------
device_id, catalog_url, token_file, cache_dir : str
    The meter's id, the catalog base URL, the file holding its bearer token, the configuration cache
    folder (all required).
ip, rest_base_url, catalog_ca : str
    End-points announced in the registration; CA bundle of an https catalog ('' = none).
mqtt_username, mqtt_password_file, mqtt_credentials : str
    Broker credentials as the ``sma3-meter-agent`` options of the same names ('' = none).
ca : str[]
    ``REF=PATH`` CA bundles of the brokers' ``ca_ref``.
refresh_s, retry_s, peers_refresh_s : float
    Configuration re-fetch period, retry period while the catalog is down, peers look-up period, s.
record_wait_s : float
    How long to wait for the record of a ``FaultEvent``, s (default 5).
phasor_topic, fault_event_topic, fault_location_topic, device_status_topic : str
    Topics (``phasors``, ``fault_event``, ``fault_location``, ``device_status``).
config_service : str
    Name of the ``GetDeviceConfig`` service (``get_device_config``).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import rclpy
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from sma3_grid.comtrade import ComtradeError, read_comtrade
from sma3_interfaces.msg import DeviceStatus, FaultEvent, FaultLocation, PhasorFrame
from sma3_interfaces.srv import GetDeviceConfig
from sma3_meter.agent.cli import OptionError, build_agent_settings, start_agent
from sma3_meter.location import LocationError
from sma3_meter.nodes.convert import fault_location_msg, phasor_sample_from_msg, time_from_datetime
from sma3_meter.nodes.qos import EVENT_QOS
from sma3_meter.nodes.spin import spin_with_last_gasp
from sma3_meter.record_wait import RecordWait

__all__ = ["MeterAgentNode", "fault_location_msg", "main", "phasor_sample_from_msg"]

#: ROS parameter of each start-up option of :func:`sma3_meter.agent.cli.build_agent_settings`.
_PARAMETER_OF = {
    "id": "device_id",
    "catalog": "catalog_url",
    "cache": "cache_dir",
    "token": "token_file",
    "refresh": "refresh_s",
    "retry": "retry_s",
    "peers_refresh": "peers_refresh_s",
}


class MeterAgentNode(Node):
    """The meter agent on ROS; see the module notes for parameters, topics and the service.

    Raises
    ------
    OptionError
        A parameter is missing or unusable (the message names it).
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("meter_agent", **kwargs)  # type: ignore[arg-type]
        self._closed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for name in ("device_id", "catalog_url", "token_file", "cache_dir", "ip", "rest_base_url"):
            self.declare_parameter(name, "")
        for name in ("catalog_ca", "mqtt_username", "mqtt_password_file", "mqtt_credentials"):
            self.declare_parameter(name, "")
        self.declare_parameter("ca", Parameter.Type.STRING_ARRAY)
        self.declare_parameter("refresh_s", 30.0)
        self.declare_parameter("retry_s", 2.0)
        self.declare_parameter("peers_refresh_s", 60.0)
        self.declare_parameter("record_wait_s", 5.0)
        self.declare_parameter("phasor_topic", "phasors")
        self.declare_parameter("fault_event_topic", "fault_event")
        self.declare_parameter("fault_location_topic", "fault_location")
        self.declare_parameter("device_status_topic", "device_status")
        self.declare_parameter("config_service", "get_device_config")

        def text(name: str) -> str | None:
            value = str(self.get_parameter(name).value)
            return value or None

        def path(name: str) -> Path | None:
            value = text(name)
            return Path(value) if value is not None else None

        for name in ("device_id", "catalog_url", "token_file", "cache_dir"):
            if text(name) is None:
                raise OptionError(f"parameter {name} is empty")
        settings, links = build_agent_settings(
            device_id=str(text("device_id")),
            catalog=str(text("catalog_url")),
            cache=Path(str(text("cache_dir"))),
            token_file=path("token_file"),
            catalog_ca=path("catalog_ca"),
            ip=text("ip"),
            rest_base_url=text("rest_base_url"),
            mqtt_username=text("mqtt_username"),
            mqtt_password_file=path("mqtt_password_file"),
            mqtt_credentials=path("mqtt_credentials"),
            ca=self._string_array("ca"),
            refresh=float(self.get_parameter("refresh_s").value),
            retry=float(self.get_parameter("retry_s").value),
            peers_refresh=float(self.get_parameter("peers_refresh_s").value),
            name=lambda key: f"parameter {_PARAMETER_OF.get(key, key)}",
        )
        self.device_id = settings.device_id
        self._records: RecordWait[tuple[FaultEvent, float]] = RecordWait(
            float(self.get_parameter("record_wait_s").value)
        )
        self._started = time.monotonic()
        self.status_pub = self.create_publisher(DeviceStatus, str(text("device_status_topic")), 10)
        self.location_pub = self.create_publisher(FaultLocation, str(text("fault_location_topic")), EVENT_QOS)
        self.create_subscription(PhasorFrame, str(text("phasor_topic")), self._on_phasors, 100)
        self.create_subscription(FaultEvent, str(text("fault_event_topic")), self._on_fault_event, 10)
        self.create_service(GetDeviceConfig, str(text("config_service")), self._on_config_request)
        self.create_timer(0.05, self._check_records)

        self.agent = start_agent(settings, links)
        self.agent.heartbeat_listeners.append(self._on_heartbeat)
        self._thread = threading.Thread(
            target=self.agent.run, args=(self._stop,), name=f"agent-{self.device_id}", daemon=True
        )
        self._thread.start()
        self.get_logger().info(
            f"meter agent {self.device_id}: catalog {self.agent.client.base}, cache {settings.cache_dir}"
        )

    def _string_array(self, name: str) -> list[str]:
        try:
            return [str(x) for x in self.get_parameter(name).value]
        except ParameterUninitializedException:  # statically typed, not given
            return []

    # -- signal chain -> agent ------------------------------------------------------------------
    def _on_phasors(self, msg: PhasorFrame) -> None:
        if msg.meter_id and msg.meter_id != self.device_id:
            return
        try:
            self.agent.on_phasors(phasor_sample_from_msg(msg))
        except ValueError as exc:
            self.get_logger().error(f"phasor frame not used: {exc}")

    def _on_fault_event(self, msg: FaultEvent) -> None:
        if msg.meter_id and msg.meter_id != self.device_id:
            return
        runner = self.agent.fault_locator()
        if runner is None:
            self.get_logger().info(
                f"fault event {msg.event_id!r}: fault_location is not in the configuration; not located"
            )
            return
        if not msg.record_path:
            self.get_logger().warning(f"fault event {msg.event_id!r}: no record, cannot locate")
            return
        # The detector announces the record before its post-fault window is complete; the peers'
        # sag reports need evidence_wait_s to arrive.
        self._records.add(msg.record_path, (msg, time.time()), min_wait_s=runner.evidence_wait_s)

    def _check_records(self) -> None:
        ready, expired = self._records.collect()
        for waited in expired:
            event_id = waited.item[0].event_id
            wait = self._records.timeout_s
            self.get_logger().error(f"fault event {event_id!r}: no record {waited.path} after {wait} s")
        for waited in ready:
            self._locate(*waited.item)

    def _locate(self, msg: FaultEvent, detected: float) -> None:
        try:
            record = read_comtrade(Path(msg.record_path))
            out = self.agent.locate_record(record, int(msg.inception_sample_index), detected)
        except (LocationError, ComtradeError, OSError) as exc:
            self.get_logger().error(f"fault event {msg.event_id!r}: {' '.join(str(exc).split())}")
            return
        runner = self.agent.fault_locator()
        if out is None or runner is None or runner.context.network is None:
            self.get_logger().info(f"fault event {msg.event_id!r}: fault_location stopped meanwhile")
            return
        located, evidence = out
        inception = record.start_time + timedelta(seconds=located.inception_s)  # naive = UTC
        location = fault_location_msg(
            located, runner.context.network, msg.event_id, inception, evidence, datetime.now(timezone.utc)
        )
        self.location_pub.publish(location)
        best = location.candidates[0] if location.candidates else None
        where = (
            "no feasible location"
            if best is None
            else f"{best.line_id} {best.distance_from_upstream_km * 1e3:.0f} m from {best.upstream_bus}"
        )
        self.get_logger().info(f"fault {msg.event_id!r} {location.fault_type}: {where}, evidence {evidence}")

    # -- agent -> ROS ---------------------------------------------------------------------------
    def _on_heartbeat(self, payload: str) -> None:
        """Called in the agent's heartbeat thread with the heartbeat JSON just published."""
        if self._closed.is_set():
            return
        body = json.loads(payload)
        config = self.agent.config_in_force()
        msg = DeviceStatus()
        msg.header.stamp = time_from_datetime(datetime.now(timezone.utc))
        msg.header.frame_id = self.device_id
        msg.device_id = self.device_id
        msg.role = config.role if config is not None else ""
        msg.algorithms = list(body.get("algorithms", []))
        version = body.get("config_version")
        msg.config_version = str(version) if version is not None else ""
        msg.firmware_version = self.agent.settings.firmware_version
        failed = any(s.get("state") == "failed" for s in body.get("algorithm_status", []))
        if failed:
            msg.health = DeviceStatus.HEALTH_FAILED
        elif body.get("health") == "degraded":
            msg.health = DeviceStatus.HEALTH_DEGRADED
        else:
            msg.health = DeviceStatus.HEALTH_OK
        msg.detail = str(body.get("reason", ""))
        msg.uptime_s = time.monotonic() - self._started
        self.status_pub.publish(msg)

    def _on_config_request(
        self, request: GetDeviceConfig.Request, response: GetDeviceConfig.Response
    ) -> GetDeviceConfig.Response:
        if request.device_id and request.device_id != self.device_id:
            response.success = False
            response.message = f"this node serves device {self.device_id!r}, not {request.device_id!r}"
            return response
        config = self.agent.config_in_force()
        if config is None:
            response.success = False
            response.message = "no configuration in force yet (catalog not reached, no cached configuration)"
            return response
        response.success = True
        response.message = f"configuration from {self.agent.config_source}"
        response.config_version = str(config.version)
        response.config_json = config.model_dump_json()
        return response

    # -- life cycle -----------------------------------------------------------------------------
    def last_gasp(self, reason: str) -> None:
        """Publish the last-gasp alarms of ``outage_detection`` (from the SIGTERM/SIGPWR handler)."""
        count = self.agent.last_gasp()
        self.get_logger().warning(f"last gasp ({reason}): {count} alarm(s) published")

    def close(self) -> None:
        """Stop the agent (``offline`` heartbeat, brokers disconnected); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._stop.set()
        if self._thread is None:  # the constructor failed before starting the agent
            return
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            self.get_logger().error("the agent thread did not stop within 15 s")

    def destroy_node(self) -> None:
        """Stop the agent, then destroy the node."""
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run sma3_meter meter_agent``.

    rclpy's signal handlers are not installed: SIGTERM/SIGPWR publish the last gasp and end the
    process through :func:`install_last_gasp_handler` (the agent then stops cleanly), SIGINT raises
    KeyboardInterrupt. The agent's Python log (catalog, brokers, algorithms) goes to stderr at level
    INFO. Exit status 2 with a one-line reason on unusable parameters.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = MeterAgentNode()
    except (OptionError, ValueError) as exc:
        print(f"meter_agent: {' '.join(str(exc).split())}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    return spin_with_last_gasp(node, node.last_gasp)


if __name__ == "__main__":
    sys.exit(main())
