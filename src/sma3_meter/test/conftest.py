"""Fixtures of the meter-agent tests: two real mosquitto brokers, the real catalog on uvicorn,
agents in-process (thread) or as ``sma3-meter-agent`` processes, and an MQTT recorder."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from sma3_catalog.api import create_app
from sma3_catalog.auth import Principal, TokenTable
from sma3_catalog.models import BrokerInfo
from sma3_catalog.mqtt_link import MqttSettings
from sma3_catalog.service import CatalogService, CatalogSettings
from sma3_meter.agent.core import AgentSettings, MeterAgent
from sma3_meter.agent.mqtt import MqttCredentials, MqttLinks
from sma3_testing import MosquittoBroker, MqttUser, UvicornServer, free_port

REPO = Path(__file__).resolve().parents[3]
OPERATOR_TOKEN = "operator-token-agent-tests"
DEVICE_IDS = ("MH1", "MH2", "MS1", "MS2")


def device_token(device_id: str) -> str:
    """The bearer token of a test meter."""
    return f"token-{device_id}-0123456789"


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.05) -> Any:
    """First truthy ``predicate()`` within ``timeout_s`` s; AssertionError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class Catalog:
    """The real catalog (SQLite file) served by uvicorn on a fixed port; restartable on the same DB."""

    db_url: str
    management: MosquittoBroker
    data: MosquittoBroker
    other_data: MosquittoBroker | None = None
    mqtt_user: MqttUser | None = None
    #: (certificate, key) PEM files: HTTPS for the REST API, TLS brokers with ``ca_ref`` 'test-ca'.
    tls: tuple[Path, Path] | None = None
    port: int = field(default_factory=free_port)
    server: UvicornServer | None = None
    service: CatalogService | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else True

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def start(self) -> Catalog:
        tokens = TokenTable()
        tokens.add(OPERATOR_TOKEN, Principal(name="operator", role="operator"))
        for device_id in DEVICE_IDS:
            tokens.add(device_token(device_id), Principal(name=device_id, role="device", device_id=device_id))
        ref = "device" if self.mqtt_user is not None else None
        tls = {"tls": True, "ca_ref": "test-ca"} if self.tls else {}
        brokers = [
            BrokerInfo(
                name="mgmt",
                purpose="management",
                host=self.management.host,
                port=self.management.port,
                credentials_ref=ref,
                **tls,
            ),
            BrokerInfo(
                name="data",
                purpose="data",
                host=self.data.host,
                port=self.data.port,
                credentials_ref=ref,
                **tls,
            ),
        ]
        if self.other_data is not None:
            brokers.append(
                BrokerInfo(name="data2", purpose="data", host=self.other_data.host, port=self.other_data.port)
            )
        settings = CatalogSettings(
            db_url=self.db_url,
            mqtt=MqttSettings(
                host=self.management.host,
                port=self.management.port,
                username=self.mqtt_user.username if self.mqtt_user else None,
                password=self.mqtt_user.password if self.mqtt_user else None,
                tls=self.tls is not None,
                ca_file=str(self.tls[0]) if self.tls else None,
                keepalive_s=5,
            ),
            brokers=brokers,
            default_brokers={"management": "mgmt", "data": "data"},
            networks={"mini": "mini"},
            tokens=tokens,
            default_ttl_s=30.0,
            offline_grace_s=0.3,
            expiry_poll_s=0.1,
        )
        self.service = CatalogService(settings)
        ssl_files = {"ssl_certfile": str(self.tls[0]), "ssl_keyfile": str(self.tls[1])} if self.tls else {}
        self.server = UvicornServer(create_app(self.service), port=self.port, **ssl_files).start()
        wait_until(
            lambda: self.service is not None and self.service.mqtt.connected.is_set(), 10, "catalog MQTT"
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def operator(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api,
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
            timeout=10,
            verify=self.verify,
        )

    def put_config(self, device_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        with self.operator() as c:
            r = c.put(f"/devices/{device_id}/config", json=spec)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def device(self, device_id: str) -> dict[str, Any] | None:
        r = httpx.get(f"{self.api}/devices/{device_id}", timeout=10, verify=self.verify)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


class Recorder:
    """A real MQTT client collecting every message under ``topics`` with its arrival time."""

    def __init__(self, broker: MosquittoBroker, topics: list[str], user: MqttUser | None = None) -> None:
        self.messages: list[tuple[float, str, bytes]] = []
        self._cond = threading.Condition()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_connect(client: mqtt.Client, *_args: Any) -> None:
            for t in topics:
                client.subscribe(t, qos=1)

        def on_subscribe(*_args: Any) -> None:
            ready.set()

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            with self._cond:
                self.messages.append((time.time(), msg.topic, bytes(msg.payload)))
                self._cond.notify_all()

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        if user is not None:
            self.client.username_pw_set(user.username, user.password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("recorder could not subscribe")

    def json(self, topic: str) -> list[tuple[float, dict[str, Any]]]:
        with self._cond:
            return [(t, json.loads(p)) for t, top, p in self.messages if top == topic]

    def wait_json(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> tuple[float, dict[str, Any]]:
        def find() -> tuple[float, dict[str, Any]] | None:
            return next(((t, m) for t, m in self.json(topic) if predicate(m)), None)

        return wait_until(find, timeout_s, f"a matching message on {topic}")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class RunningAgent:
    """An agent running in a thread of the test process."""

    agent: MeterAgent
    links: MqttLinks
    stop: threading.Event
    thread: threading.Thread

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture
def brokers(mosquitto_factory: Any) -> tuple[MosquittoBroker, MosquittoBroker]:
    """(management, data) brokers."""
    return mosquitto_factory(), mosquitto_factory()


@pytest.fixture
def catalog(brokers: tuple[MosquittoBroker, MosquittoBroker], tmp_path: Path) -> Iterator[Catalog]:
    """The catalog serving the shipped ``mini`` network; meters MH1 MH2 MS1 MS2 have tokens."""
    management, data = brokers
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}", management, data).start()
    yield cat
    cat.stop()


@pytest.fixture
def recorder(brokers: tuple[MosquittoBroker, MosquittoBroker]) -> Iterator[tuple[Recorder, Recorder]]:
    """(management, data) recorders of everything under sma3/#."""
    management, data = brokers
    rec = Recorder(management, ["sma3/#"]), Recorder(data, ["sma3/#"])
    yield rec
    for r in rec:
        r.close()


AgentFactory = Callable[..., RunningAgent]


@pytest.fixture
def agent_factory(catalog: Catalog, tmp_path: Path) -> Iterator[AgentFactory]:
    """Start in-process agents: ``start(device_id, **AgentSettings overrides)``."""
    started: list[RunningAgent] = []

    def start(
        device_id: str, credentials: dict[str, MqttCredentials] | None = None, **overrides: Any
    ) -> RunningAgent:
        overrides.setdefault("refresh_s", 0.5)
        overrides.setdefault("retry_s", 0.3)
        overrides.setdefault("peers_refresh_s", 1.0)
        overrides.setdefault("http_timeout_s", 1.0)
        overrides.setdefault("cache_dir", tmp_path / f"cache-{device_id}")
        settings = AgentSettings(
            device_id=device_id, catalog_url=catalog.url, token=device_token(device_id), **overrides
        )
        links = MqttLinks(device_id, credentials, keepalive_s=5)
        agent = MeterAgent(settings, links)
        links.bind(agent.on_management_message, agent.on_data_message)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), name=f"agent-{device_id}", daemon=True)
        thread.start()
        running = RunningAgent(agent, links, stop, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def agent_command(catalog: Catalog, device_id: str, cache: Path, *extra: str) -> list[str]:
    """Command line of an ``sma3-meter-agent`` process."""
    return [
        sys.executable,
        "-m",
        "sma3_meter.agent.cli",
        "--id",
        device_id,
        "--catalog",
        catalog.url,
        "--token",
        device_token(device_id),
        "--cache",
        str(cache),
        "--ip",
        "127.0.0.1",
        *extra,
    ]


def agent_env() -> dict[str, str]:
    """Environment for agent processes: the workspace's packages on PYTHONPATH."""
    paths = [str(REPO / "src" / p) for p in ("sma3_grid", "sma3_catalog", "sma3_meter", "sma3_sim")]
    paths.append(str(REPO / "tools"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``sma3-meter-agent`` processes (stdout+stderr to a log file); killed after the test."""
    procs: list[tuple[subprocess.Popen[str], Any]] = []

    def start(cmd: list[str]) -> subprocess.Popen[str]:
        log = open(tmp_path / f"agent-{len(procs)}.log", "w")  # noqa: SIM115 - closed after the test
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=agent_env())
        procs.append((proc, log))
        return proc

    yield start
    for proc, log in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()
