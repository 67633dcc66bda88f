"""Heartbeats, Last Will and announcements over a real mosquitto; the example ACL enforced."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from sma3_catalog.mqtt_link import MqttSettings
from sma3_testing import MosquittoBroker, MqttUser

from .conftest import DEVICE_TOKENS, CatalogFactory, RunningCatalog, registration
from .sse import SseReader

ACL_FILE = Path(__file__).resolve().parents[1] / "config" / "mosquitto.acl"


class Listener:
    """A paho client recording (topic, payload) of what it receives."""

    def __init__(self, broker: MosquittoBroker, topics: list[str], user: MqttUser | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user.username, user.password)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(5)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> tuple[str, bytes, bool]:
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(m) for m in self.messages), timeout_s), (
                self.messages
            )
            return next(m for m in self.messages if predicate(m))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publisher(broker: MosquittoBroker, user: MqttUser | None = None, client_id: str = "") -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user.username, user.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


@pytest.fixture
def mqtt_catalog(
    catalog_factory: CatalogFactory, mosquitto_broker: MosquittoBroker, sqlite_url: str
) -> RunningCatalog:
    """A catalog linked to a real broker (SQLite; registry paths run on both databases elsewhere)."""
    settings = MqttSettings(host=mosquitto_broker.host, port=mosquitto_broker.port)
    running = catalog_factory(sqlite_url, mqtt=settings, offline_grace_s=1.0)
    assert running.service.mqtt is not None and running.service.mqtt.connected.wait(5)
    return running


def test_heartbeats_refresh_expires(mqtt_catalog: RunningCatalog, mosquitto_broker: MosquittoBroker) -> None:
    pub = publisher(mosquitto_broker)
    try:
        with mqtt_catalog.client() as c:
            first = c.put("/devices/M2", json=registration(ttl=1.5)).json()
            status = {"state": "online", "algorithms": ["outage_report", "sag_report"], "config_version": 0}
            for _ in range(6):  # 3 s of heartbeats, twice the TTL
                pub.publish("sma3/mgmt/devices/M2/status", json.dumps(status), qos=1).wait_for_publish(5)
                time.sleep(0.5)
            record = c.get("/devices/M2")
            assert record.status_code == 200, "heartbeats must keep the record alive past its TTL"
            body = record.json()
            assert body["expires"] > first["expires"] and body["last_heartbeat"] is not None
            assert body["modified"] == first["modified"], "a plain heartbeat changes nothing but expiry"
            # a heartbeat reporting other algorithms updates the record
            status["algorithms"] = ["outage_report"]
            status["health"] = "degraded"
            pub.publish("sma3/mgmt/devices/M2/status", json.dumps(status), qos=1).wait_for_publish(5)
            deadline = time.time() + 3
            while c.get("/devices/M2").json()["algorithms"] != ["outage_report"]:
                assert time.time() < deadline
                time.sleep(0.05)
            assert c.get("/devices/M2").json()["health"] == "degraded"
            assert [d["id"] for d in c.get("/devices", params={"algorithm": "sag_report"}).json()] == []
            # invalid payloads and unknown devices are counted, not fatal
            pub.publish("sma3/mgmt/devices/M2/status", b"{broken", qos=1).wait_for_publish(5)
            pub.publish("sma3/mgmt/devices/ZZ/status", json.dumps(status), qos=1).wait_for_publish(5)
            time.sleep(0.5)
            metrics = httpx.get(mqtt_catalog.url + "/metrics").text
            assert 'sma3_catalog_heartbeats_total{result="invalid"} 1.0' in metrics
            assert 'sma3_catalog_heartbeats_total{result="unknown"} 1.0' in metrics
            # silence: expiry follows within TTL + 1 s of the last heartbeat
            last = time.time()
            deadline = last + 1.5 + 1.0 + 0.5
            while c.get("/devices/M2").status_code == 200:
                assert time.time() < deadline, "record not removed within TTL + 1 s of the last heartbeat"
                time.sleep(0.05)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_events_announced_on_mqtt(mqtt_catalog: RunningCatalog, mosquitto_broker: MosquittoBroker) -> None:
    listener = Listener(mosquitto_broker, ["sma3/mgmt/events", "sma3/mgmt/devices/+/config"])
    try:
        with mqtt_catalog.client() as c:
            c.put("/devices/M2", json=registration())
            c.put("/devices/M2/config", json={"network": "tiny"})
            c.delete("/devices/M2")
        listener.wait_for(lambda m: m[0] == "sma3/mgmt/events" and json.loads(m[1])["type"] == "deleted")
        events = [json.loads(p)["type"] for t, p, _r in listener.messages if t == "sma3/mgmt/events"]
        assert events == ["created", "configured", "deleted"]
        _topic, payload, _ = listener.wait_for(lambda m: m[0] == "sma3/mgmt/devices/M2/config")
        assert json.loads(payload) == {"device_id": "M2", "version": 1}
    finally:
        listener.close()
    late = Listener(mosquitto_broker, ["sma3/mgmt/devices/M2/config"])
    try:
        _t, payload, retained = late.wait_for(lambda m: True)
        assert retained and json.loads(payload)["version"] == 1, "config announcements are retained"
    finally:
        late.close()


@pytest.fixture
def meter_process(mqtt_catalog: RunningCatalog) -> Iterator[subprocess.Popen[str]]:
    with mqtt_catalog.client() as c:
        assert (
            c.put("/devices/M2/config", json={"network": "tiny", "heartbeat_interval_s": 0.5}).status_code
            == 200
        )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("meter_process.py")),
            mqtt_catalog.api,
            "M2",
            DEVICE_TOKENS["M2"],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    proc.stdout.close()


def test_last_will_marks_killed_meter_dead(
    mqtt_catalog: RunningCatalog, meter_process: subprocess.Popen[str]
) -> None:
    events = SseReader(mqtt_catalog.api + "/events")
    try:
        with mqtt_catalog.client() as c:
            record = c.get("/devices/M2").json()
            assert record["alive"] is True and record["ttl"] == 1.5
            time.sleep(1.0)
            assert c.get("/devices/M2").json()["last_heartbeat"] is not None
            killed = time.time()
            meter_process.kill()  # abrupt: no DISCONNECT, the broker publishes the Last Will
            dead = events.wait_for(lambda m: m.event == "updated" and m.data["device"]["alive"] is False, 3)
            assert dead.data["reason"] == "last_will"
            assert time.time() - killed < 1.0, "the Last Will must be noticed at once"
            assert [d["id"] for d in c.get("/devices", params={"alive": "false"}).json()] == ["M2"]
            gone = events.wait_for(lambda m: m.event == "expired", 4)
            assert gone.data["reason"] == "offline"
            assert time.time() - killed <= 1.5 + 1.0, "expired within TTL + 1 s of the kill"
            assert c.get("/devices/M2").status_code == 404
    finally:
        events.close()


def test_example_acl_stops_meters_on_catalog_topics(mosquitto_factory: Any) -> None:
    catalog_user = MqttUser("sma3-catalog", "catalog-pw")
    fdir_user = MqttUser("sma3-fdir", "fdir-pw")
    meter = MqttUser("M2", "meter-pw")
    broker = mosquitto_factory(users=[catalog_user, fdir_user, meter], acl=ACL_FILE.read_text())
    catalog_view = Listener(broker, ["sma3/mgmt/#"], catalog_user)
    fdir_view = Listener(broker, ["sma3/data/#"], fdir_user)
    pub = publisher(broker, meter, client_id="M2")
    try:
        denied = [
            "sma3/mgmt/events",  # only the catalog announces changes
            "sma3/mgmt/devices/M2/config",  # only the catalog announces configurations
            "sma3/mgmt/devices/M3/status",  # a meter cannot heartbeat for another one
            "sma3/data/fdir/commands",  # only FDIR commands switches
            "sma3/data/meters/M3/phasors",  # nor publish another meter's data
        ]
        allowed = ["sma3/mgmt/devices/M2/status", "sma3/data/meters/M2/phasors"]
        for topic in [*denied, *allowed]:
            pub.publish(topic, b'{"spoof": true}', qos=1).wait_for_publish(5)
        catalog_view.wait_for(lambda m: m[0] == allowed[0])
        fdir_view.wait_for(lambda m: m[0] == allowed[1])
        time.sleep(0.3)
        received = {t for t, _p, _r in catalog_view.messages + fdir_view.messages}
        assert received == set(allowed)
        anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        refused = threading.Event()
        anonymous.on_connect = lambda _c, _u, _f, reason, _p: refused.set() if reason.is_failure else None
        anonymous.connect(broker.host, broker.port)
        anonymous.loop_start()
        assert refused.wait(5), "anonymous clients must be refused"
        anonymous.loop_stop()
    finally:
        for closer in (catalog_view.close, fdir_view.close, pub.loop_stop, pub.disconnect):
            closer()


def test_catalog_with_broker_credentials(
    catalog_factory: CatalogFactory, mosquitto_factory: Any, sqlite_url: str
) -> None:
    """The catalog logs in with its own user under the example ACL and still gets heartbeats."""
    catalog_user = MqttUser("sma3-catalog", "catalog-pw")
    meter = MqttUser("M2", "meter-pw")
    broker = mosquitto_factory(users=[catalog_user, meter], acl=ACL_FILE.read_text())
    running = catalog_factory(
        sqlite_url,
        mqtt=MqttSettings(host=broker.host, port=broker.port, username="sma3-catalog", password="catalog-pw"),
    )
    assert running.service.mqtt is not None and running.service.mqtt.connected.wait(5)
    events = Listener(broker, ["sma3/mgmt/events"], catalog_user)
    pub = publisher(broker, meter, client_id="M2")
    try:
        with running.client() as c:
            c.put("/devices/M2", json=registration(ttl=30))
            before = c.get("/devices/M2").json()["expires"]
            pub.publish("sma3/mgmt/devices/M2/status", b'{"state": "online"}', qos=1).wait_for_publish(5)
            deadline = time.time() + 3
            while c.get("/devices/M2").json()["last_heartbeat"] is None:
                assert time.time() < deadline
                time.sleep(0.05)
            assert c.get("/devices/M2").json()["expires"] > before
        events.wait_for(lambda m: json.loads(m[1])["type"] == "created")
        assert httpx.get(running.url + "/healthz").json()["mqtt"] is True
    finally:
        events.close()
        pub.loop_stop()
        pub.disconnect()
