"""MQTT adapter on the management broker (thin shell around the registry).

Subscribes to every device's status topic and queues the raw messages; a worker thread parses
and validates them in batches and applies each batch as :class:`Heartbeat` records in one
transaction (the paho network thread does as little as possible: the GIL it holds is what
``GET /devices`` waits for under heartbeat load). Announces registry events on the events topic (and new
configuration versions, retained, on each device's config topic).
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from sma3_catalog.metrics import CatalogMetrics
from sma3_catalog.models import DeviceStatus, Event
from sma3_catalog.registry import Heartbeat, Registry
from sma3_catalog.topics import Topics

log = logging.getLogger(__name__)

#: A message as received: topic, payload bytes, reception time (epoch s).
_Received = tuple[str, bytes | bytearray, float]


@dataclass(frozen=True)
class MqttSettings:
    """How the catalog connects to the management broker.

    ``ca_file`` (with optional client ``certfile``/``keyfile``) turns TLS on when ``tls`` is True.
    """

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    keepalive_s: int = 30


class MqttLink:
    """Connects the registry to the management broker.

    Parameters
    ----------
    settings
        Broker address and credentials.
    topics
        Topic layout.
    registry
        Where heartbeats are applied and whose events are announced.
    metrics
        Counters updated for heartbeats and the connection state.
    batch_size, batch_wait_s
        The worker applies at most ``batch_size`` heartbeats per transaction; after the first
        message of a batch it waits ``batch_wait_s`` (s) for more (not when a backlog is queued).
    """

    def __init__(
        self,
        settings: MqttSettings,
        topics: Topics,
        registry: Registry,
        metrics: CatalogMetrics,
        batch_size: int = 1000,
        batch_wait_s: float = 0.05,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.registry = registry
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.connected = threading.Event()
        self._queue: queue.SimpleQueue[_Received | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sma3-catalog-{uuid.uuid4().hex[:8]}",
            # MQTT 3.1.1: what the catalog uses (subscribe, publish, retain) is the same as in 5, and
            # paho spends about half as much time per received message without v5 properties.
            protocol=mqtt.MQTTv311,
        )
        if settings.username is not None:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.certfile,
                keyfile=settings.keyfile,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("management broker refused the catalog: %s", reason)
            return
        client.subscribe(self.topics.status_filter, qos=1)
        self.connected.set()
        self.metrics.mqtt_connected.set(1)
        log.info("connected to management broker %s:%s", self.settings.host, self.settings.port)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        log.warning("disconnected from management broker: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # only queue: parsing happens in the worker, in batches
        self._queue.put((msg.topic, msg.payload, time.time()))

    def _parse(self, batch: list[_Received]) -> list[Heartbeat]:
        """Valid heartbeats of a batch of received messages; invalid ones are logged and counted."""
        beats: list[Heartbeat] = []
        invalid = 0
        for topic, payload, received in batch:
            device_id = self.topics.device_id_from_status(topic)
            if device_id is None:
                invalid += 1
                log.warning("ignored message on unexpected topic %r", topic)
                continue
            try:
                status = DeviceStatus.model_validate_json(payload)
            except ValidationError as exc:
                invalid += 1
                log.warning("invalid heartbeat from %s on %s: %s", device_id, topic, exc.errors()[:3])
                continue
            beats.append(Heartbeat(device_id=device_id, status=status, received=received))
        if invalid:
            self.metrics.heartbeats.labels("invalid").inc(invalid)
        return beats

    # ------------------------------------------------------------------ heartbeat worker
    def _drain(self) -> None:
        while True:
            first = self._queue.get()
            stop = first is None
            batch = [] if first is None else [first]
            if not stop and self._queue.qsize() < self.batch_size:
                # Let the batch gather while asleep instead of waking for each message: every
                # wake-up is a hand-off of the GIL that the request path then waits for.
                time.sleep(self.batch_wait_s)
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[_Received]) -> None:
        """Parse a batch of received messages and apply its heartbeats in one transaction."""
        beats = self._parse(batch)
        try:
            result = self.registry.heartbeat_many(beats)
        except Exception:
            # Keep serving heartbeats after a database hiccup; the failure is logged and counted.
            log.exception("applying %d heartbeats failed", len(beats))
            self.metrics.heartbeats.labels("failed").inc(len(beats))
            return
        self.metrics.heartbeats.labels("refreshed").inc(result.refreshed)
        self.metrics.heartbeats.labels("unknown").inc(result.unknown)
        self.metrics.heartbeats.labels("superseded").inc(len(beats) - result.refreshed - result.unknown)

    def pending(self) -> int:
        """Heartbeats received but not applied yet."""
        return self._queue.qsize()

    # ------------------------------------------------------------------ announcements
    def announce(self, event: Event) -> None:
        """Registry listener: publish ``event`` on the events topic (QoS 1)."""
        payload = event.model_dump_json()
        self.client.publish(self.topics.events, payload, qos=1)
        if event.type == "configured":
            note = json.dumps({"device_id": event.device_id, "version": event.config_version})
            self.client.publish(self.topics.config(event.device_id), note, qos=1, retain=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background (reconnecting on loss) and start the heartbeat worker."""
        self._worker = threading.Thread(target=self._drain, name="catalog-heartbeats", daemon=True)
        self._worker.start()
        self.registry.add_listener(self.announce)
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the worker after it applied what was queued."""
        self.registry.remove_listener(self.announce)
        self.client.disconnect()
        self.client.loop_stop()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
