"""MQTT shell of the meter agent (paho-mqtt 2.x, callback API version 2, MQTT v5).

:class:`MqttLinks` holds the two connections the configuration names (management and data),
sets the catalog's Last Will on the management connection, keeps the subscriptions across
reconnections and hands received messages to the agent's callbacks. A broker change replaces
only that connection.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sma3_catalog.models import BrokerInfo, LastWill

__all__ = ["MqttConnection", "MqttCredentials", "MqttLinks"]

log = logging.getLogger(__name__)

Purpose = Literal["management", "data"]
OnMessage = Callable[[str, bytes], None]


@dataclass(frozen=True)
class MqttCredentials:
    """Username and password the meter uses for a ``credentials_ref``."""

    username: str
    password: str | None = None


class MqttConnection:
    """One broker connection (background network loop, automatic reconnection).

    Parameters
    ----------
    purpose
        ``management`` or ``data`` (for logs and client ids).
    broker
        Address and TLS flag from the configuration.
    client_id
        MQTT client id.
    on_message
        Called with (topic, payload) from paho's network thread.
    credentials
        Username/password, None for anonymous.
    ca_file
        CA bundle for TLS (None: the system's trust store).
    will
        Last Will (management connection).
    keepalive_s
        MQTT keep-alive (s); the broker publishes the Will after 1.5 times this without traffic.
    """

    def __init__(
        self,
        purpose: Purpose,
        broker: BrokerInfo,
        client_id: str,
        on_message: OnMessage,
        credentials: MqttCredentials | None = None,
        ca_file: str | None = None,
        will: LastWill | None = None,
        keepalive_s: int = 10,
    ) -> None:
        self.purpose = purpose
        self.broker = broker
        self.on_message = on_message
        self.connected = threading.Event()
        self._topics: set[str] = set()
        #: Topic filters the broker acknowledged (SUBACK with a granted QoS).
        self.active: set[str] = set()
        self._pending: dict[int, str] = {}
        self._early_acks: dict[int, list[Any]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if credentials is not None:
            self.client.username_pw_set(credentials.username, credentials.password)
        if broker.tls:
            self.client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.keepalive_s = keepalive_s

    def start(self) -> None:
        """Connect in the background (retrying until :meth:`stop`)."""
        log.info(
            "connecting to %s broker %s:%d%s",
            self.purpose,
            self.broker.host,
            self.broker.port,
            " (TLS)" if self.broker.tls else "",
        )
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive_s)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error(
                "%s broker %s:%d refused the meter: %s",
                self.purpose,
                self.broker.host,
                self.broker.port,
                reason,
            )
            return
        with self._lock:
            topics = sorted(self._topics)
            self.active.clear()
        for topic in topics:
            self._subscribe(topic)
        self.connected.set()
        log.info("connected to %s broker %s:%d", self.purpose, self.broker.host, self.broker.port)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was:
            log.warning(
                "disconnected from %s broker %s:%d: %s",
                self.purpose,
                self.broker.host,
                self.broker.port,
                reason,
            )

    def _subscribe(self, topic: str) -> None:
        rc, mid = self.client.subscribe(topic, qos=1)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            log.warning("%s subscription to %s not sent: %s", self.purpose, topic, mqtt.error_string(rc))
            return
        with self._lock:
            early = self._early_acks.pop(mid, None)
            if early is None:
                self._pending[mid] = topic
        if early is not None:  # the SUBACK overtook the bookkeeping
            self._acknowledged(topic, early)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        with self._lock:
            topic = self._pending.pop(mid, None)
            if topic is None:
                self._early_acks[mid] = list(reasons)
                return
        self._acknowledged(topic, list(reasons))

    def _acknowledged(self, topic: str, reasons: list[Any]) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("%s broker refused the subscription to %s: %s", self.purpose, topic, failed[0])
            return
        with self._lock:
            if topic in self._topics:
                self.active.add(topic)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.on_message(msg.topic, bytes(msg.payload))
        except Exception:
            # A failing handler must not kill paho's network thread; the failure is logged in full.
            log.exception("handling a %s message on %s failed", self.purpose, msg.topic)

    def set_subscriptions(self, topics: set[str]) -> None:
        """Hold exactly ``topics`` (subscribe the new ones, unsubscribe the dropped ones)."""
        with self._lock:
            added = sorted(topics - self._topics)
            removed = sorted(self._topics - topics)
            self._topics = set(topics)
            self.active -= set(removed)
        if not self.connected.is_set():
            return  # _on_connect subscribes to everything
        for topic in removed:
            self.client.unsubscribe(topic)
        for topic in added:
            self._subscribe(topic)
        if added or removed:
            log.info("%s subscriptions: +%s -%s", self.purpose, added, removed)

    def active_topics(self) -> set[str]:
        """Topic filters the broker acknowledged."""
        with self._lock:
            return set(self.active)

    def publish(self, topic: str, payload: str, qos: int = 1) -> mqtt.MQTTMessageInfo:
        """Publish (queued by paho while reconnecting)."""
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("%s publish on %s not sent now: %s", self.purpose, topic, mqtt.error_string(info.rc))
        return info

    def stop(self, final: tuple[str, str] | None = None, timeout_s: float = 2.0) -> None:
        """Publish ``final`` (topic, payload) if connected, disconnect cleanly and stop the loop."""
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1)
            try:
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("final message on %s not confirmed: %s", final[0], exc)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()


class MqttLinks:
    """The agent's management and data connections (implements ``core.BrokerLinks``).

    Parameters
    ----------
    device_id
        Used for client ids ``sma3-meter-{id}-mgmt`` / ``-data``.
    credentials
        By ``credentials_ref`` of the brokers; the key ``*`` serves every other reference. A broker
        whose reference has no credentials is used anonymously (logged).
    ca_files
        CA bundle paths by ``ca_ref``.
    keepalive_s
        MQTT keep-alive of both connections (s).
    """

    def __init__(
        self,
        device_id: str,
        credentials: Mapping[str, MqttCredentials] | None = None,
        ca_files: Mapping[str, str] | None = None,
        keepalive_s: int = 10,
    ) -> None:
        self.device_id = device_id
        self.credentials = dict(credentials or {})
        self.ca_files = dict(ca_files or {})
        self.keepalive_s = keepalive_s
        self.on_management: OnMessage = lambda _t, _p: None
        self.on_data: OnMessage = lambda _t, _p: None
        self.connections: dict[str, MqttConnection] = {}
        self._subscriptions: dict[str, set[str]] = {"management": set(), "data": set()}
        self._lock = threading.Lock()

    def bind(self, on_management: OnMessage, on_data: OnMessage) -> None:
        """Set the receivers of management and data messages."""
        self.on_management = on_management
        self.on_data = on_data

    def _make(self, purpose: Purpose, broker: BrokerInfo, will: LastWill | None) -> MqttConnection:
        creds = None
        if broker.credentials_ref is not None:
            creds = self.credentials.get(broker.credentials_ref, self.credentials.get("*"))
            if creds is None:
                log.info(
                    "no credentials '%s' provisioned for %s broker %s: connecting anonymously",
                    broker.credentials_ref,
                    purpose,
                    broker.name,
                )
        ca = self.ca_files.get(broker.ca_ref) if broker.ca_ref is not None else None
        if broker.tls and broker.ca_ref is not None and ca is None:
            log.info(
                "no CA file for '%s': verifying %s broker with the system trust store", broker.ca_ref, purpose
            )
        suffix = "mgmt" if purpose == "management" else "data"
        receiver: OnMessage = (
            (lambda t, p: self.on_management(t, p))
            if purpose == "management"
            else (lambda t, p: self.on_data(t, p))
        )
        conn = MqttConnection(
            purpose,
            broker,
            f"sma3-meter-{self.device_id}-{suffix}",
            receiver,
            credentials=creds,
            ca_file=ca,
            will=will,
            keepalive_s=self.keepalive_s,
        )
        conn.set_subscriptions(self._subscriptions[purpose])
        return conn

    def configure(
        self,
        management: BrokerInfo,
        data: BrokerInfo,
        will: LastWill,
        reconnect_management: bool,
        reconnect_data: bool,
    ) -> None:
        """(Re)connect the flagged brokers; the others keep their connection."""
        for purpose, broker, flag, conn_will in (
            ("management", management, reconnect_management, will),
            ("data", data, reconnect_data, None),
        ):
            if not flag and purpose in self.connections:
                continue
            with self._lock:
                old = self.connections.get(purpose)
            if old is not None:
                # Stop first: a second session with the same client id would take the old one over
                # and make the broker publish its Last Will.
                log.info("leaving %s broker %s:%d", purpose, old.broker.host, old.broker.port)
                old.stop()
            conn = self._make(purpose, broker, conn_will)  # type: ignore[arg-type]
            with self._lock:
                self.connections[purpose] = conn
            conn.start()

    def set_subscriptions(self, purpose: Purpose, topics: set[str]) -> None:
        """Topic filters to hold on ``purpose``'s broker."""
        with self._lock:
            self._subscriptions[purpose] = set(topics)
            conn = self.connections.get(purpose)
        if conn is not None:
            conn.set_subscriptions(set(topics))

    def publish(self, purpose: Purpose, topic: str, payload: str) -> None:
        """Publish with QoS 1 on ``purpose``'s broker (logged and dropped before configuration)."""
        with self._lock:
            conn = self.connections.get(purpose)
        if conn is None:
            log.warning("no %s broker configured: message on %s dropped", purpose, topic)
            return
        conn.publish(topic, payload)

    def connected(self) -> dict[str, bool]:
        """Connection state by purpose (only configured brokers)."""
        with self._lock:
            return {p: c.connected.is_set() for p, c in self.connections.items()}

    def active_subscriptions(self, purpose: Purpose) -> set[str]:
        """Topic filters the ``purpose`` broker acknowledged."""
        with self._lock:
            conn = self.connections.get(purpose)
        return conn.active_topics() if conn is not None else set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until every configured broker is connected."""
        with self._lock:
            conns = list(self.connections.values())
        return all(c.connected.wait(timeout_s) for c in conns)

    def close(self, final: tuple[str, str] | None) -> None:
        """Publish ``final`` on management, then disconnect both (a clean disconnect: no Will)."""
        with self._lock:
            conns = dict(self.connections)
            self.connections.clear()
        mgmt = conns.pop("management", None)
        if mgmt is not None:
            mgmt.stop(final)
        for conn in conns.values():
            conn.stop()
