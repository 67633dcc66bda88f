#!/usr/bin/env python3
"""Benchmark of the self-configuring meter agent (issue 6) on real middleware.

Starts two mosquitto brokers (management, data), the Device Catalog (SQLite, uvicorn) and two
agents in this process (MS1 secondary with ``sag_reporting``, MH1 feeder head with
``fault_location``), all on loopback, then measures:

- start-up: agent object created -> configuration applied, registered, first heartbeat;
- live reconfiguration: operator ``PUT /devices/MS1/config`` -> new version applied by the agent
  (pushed by the catalog's MQTT announcement; periodic re-fetch is set to 1 h so it cannot help)
  -> registration in the catalog shows it; and the agent's catalog requests per change;
- peer data: MS1 gets a sag report -> MH1 holds the new SagEvidence (through the data broker).

Usage::

    .venv/bin/python bench/bench_agent.py [--changes 30] [--sags 100]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for sub in ("src/sma3_catalog", "src/sma3_grid", "src/sma3_meter", "tools"):
    sys.path.insert(0, str(ROOT / sub))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from sma3_catalog.api import create_app  # noqa: E402
from sma3_catalog.auth import Principal, TokenTable  # noqa: E402
from sma3_catalog.models import BrokerInfo  # noqa: E402
from sma3_catalog.mqtt_link import MqttSettings  # noqa: E402
from sma3_catalog.service import CatalogService, CatalogSettings  # noqa: E402
from sma3_meter.agent.algorithms import FaultLocation  # noqa: E402
from sma3_meter.agent.core import AgentSettings, MeterAgent  # noqa: E402
from sma3_meter.agent.mqtt import MqttLinks  # noqa: E402
from sma3_meter.dsp import PhasorSample  # noqa: E402
from sma3_testing import MosquittoBroker, UvicornServer  # noqa: E402

OPERATOR = "bench-operator-token"
V_NOM = 22000.0 / math.sqrt(3.0)


def token(device_id: str) -> str:
    return f"bench-token-{device_id}"


def wait(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.perf_counter() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.0005)


def percentiles(values: list[float]) -> str:
    arr = np.asarray(values) * 1e3
    return f"p50 {np.percentile(arr, 50):7.1f} ms  p99 {np.percentile(arr, 99):7.1f} ms  (n={len(arr)})"


#: What the agent sends per change (the script itself only PUTs configs and GETs the record).
AGENT_CALLS = {("GET", "/api/v1/devices/{device_id}/config"), ("PUT", "/api/v1/devices/{device_id}")}


def agent_requests(service: CatalogService) -> float:
    """Catalog HTTP requests of the kinds only the agents send (from the catalog's counters)."""
    total = 0.0
    for metric in service.metrics.registry.collect():
        for sample in metric.samples:
            key = (sample.labels.get("method"), sample.labels.get("route"))
            if sample.name == "sma3_catalog_http_requests_total" and key in AGENT_CALLS:
                total += sample.value
    return total


def start_agent(
    device_id: str, catalog_url: str, cache: Path
) -> tuple[MeterAgent, threading.Event, threading.Thread]:
    settings = AgentSettings(
        device_id=device_id,
        catalog_url=catalog_url,
        token=token(device_id),
        cache_dir=cache,
        refresh_s=3600.0,
        retry_s=0.5,
        peers_refresh_s=3600.0,
    )
    links = MqttLinks(device_id)
    agent = MeterAgent(settings, links)
    links.bind(agent.on_management_message, agent.on_data_message)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop, 0.005), daemon=True)
    thread.start()
    return agent, stop, thread


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=30, help="Live configuration changes to time.")
    parser.add_argument("--sags", type=int, default=100, help="Sag reports to time.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sma3-bench-agent-") as tmp_name:
        tmp = Path(tmp_name)
        mgmt = MosquittoBroker(tmp / "mgmt").start()
        data = MosquittoBroker(tmp / "data").start()
        tokens = TokenTable()
        tokens.add(OPERATOR, Principal(name="operator", role="operator"))
        for device_id in ("MH1", "MS1"):
            tokens.add(token(device_id), Principal(name=device_id, role="device", device_id=device_id))
        service = CatalogService(
            CatalogSettings(
                db_url=f"sqlite:///{tmp / 'catalog.db'}",
                mqtt=MqttSettings(host=mgmt.host, port=mgmt.port),
                brokers=[
                    BrokerInfo(name="mgmt", purpose="management", host=mgmt.host, port=mgmt.port),
                    BrokerInfo(name="data", purpose="data", host=data.host, port=data.port),
                ],
                networks={"mini": "mini"},
                tokens=tokens,
            )
        )
        server = UvicornServer(create_app(service)).start()
        operator = httpx.Client(
            base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=10
        )
        agents: list[tuple[MeterAgent, threading.Event, threading.Thread]] = []
        try:
            wait(lambda: service.mqtt is not None and service.mqtt.connected.is_set(), 10, "catalog MQTT")
            spec: dict[str, Any] = {"network": "mini", "heartbeat_interval_s": 1.0}
            operator.put(
                "/devices/MS1/config", json={**spec, "algorithms": [{"name": "sag_reporting"}]}
            ).raise_for_status()
            operator.put(
                "/devices/MH1/config",
                json={
                    **spec,
                    "algorithms": [{"name": "fault_location", "parameters": {"evidence_wait_s": 0.1}}],
                },
            ).raise_for_status()

            # ---------------------------------------------------------------- start-up
            t0 = time.perf_counter()
            agents.append(start_agent("MS1", server.url, tmp / "cache"))
            ms1 = agents[-1][0]
            wait(
                lambda: ms1.registered and ms1.links.connected() == {"management": True, "data": True},
                10,
                "MS1",
            )
            startup = time.perf_counter() - t0
            print(f"start-up (fetch, apply, connect 2 brokers, register): {startup * 1e3:.1f} ms")

            # ---------------------------------------------------------------- live reconfiguration
            applied: list[float] = []
            registered: list[float] = []
            before = agent_requests(service)
            for k in range(args.changes):
                threshold = 0.80 + 0.005 * (k % 20)
                t0 = time.perf_counter()
                r = operator.put(
                    "/devices/MS1/config",
                    json={
                        **spec,
                        "algorithms": [
                            {"name": "sag_reporting", "parameters": {"sag_threshold_pu": threshold}}
                        ],
                    },
                )
                r.raise_for_status()
                version = r.json()["version"]
                wait(lambda v=version: ms1.config is not None and ms1.config.version == v, 10, "applied")
                applied.append(time.perf_counter() - t0)
                wait(
                    lambda v=version: operator.get("/devices/MS1").json().get("config_version") == v,
                    10,
                    "registered",
                )
                registered.append(time.perf_counter() - t0)
            per_change = (agent_requests(service) - before) / args.changes
            print(f"config change -> applied by the agent:      {percentiles(applied)}")
            print(f"config change -> registration shows it:     {percentiles(registered)}")
            print(
                f"agent requests to the catalog per change (GET config + PUT registration): {per_change:.2f}"
            )

            # ---------------------------------------------------------------- peer data
            agents.append(start_agent("MH1", server.url, tmp / "cache"))
            mh1 = agents[-1][0]
            runner = wait(lambda: mh1.runners.get("fault_location"), 10, "fault_location")
            assert isinstance(runner, FaultLocation)
            wait(
                lambda: "sma3/data/meters/MS1/sag" in mh1.links.active_subscriptions("data"),
                10,
                "subscription",
            )
            normal = np.array([1.0, 1.0, 1.0]) * V_NOM
            latencies: list[float] = []
            for k in range(args.sags):
                depth = 0.3 + 0.4 * (k % 50) / 50
                sag = np.array([depth, 1.0, 1.0]) * V_NOM
                ms1.on_phasors(
                    PhasorSample(2 * k, 50.0, 0.0, np.concatenate([normal, np.zeros(3)]).astype(complex))
                )
                t0 = time.perf_counter()
                ms1.on_phasors(
                    PhasorSample(2 * k + 1, 50.0, 0.0, np.concatenate([sag, np.zeros(3)]).astype(complex))
                )
                wait(
                    lambda s=sag: any(abs(e.v_mag[0] - s[0]) < 1e-6 for e in runner.current_evidence()),
                    5,
                    "evidence",
                )
                latencies.append(time.perf_counter() - t0)
            print(f"sag at MS1 -> SagEvidence at MH1 (data broker): {percentiles(latencies)}")
        finally:
            for _agent, stop, thread in agents:
                stop.set()
                thread.join(timeout=10)
            operator.close()
            server.stop()
            data.stop()
            mgmt.stop()


if __name__ == "__main__":
    main()
