"""The meter agent against the real catalog, two real mosquitto brokers and real processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from .conftest import AgentFactory, Catalog, Recorder, agent_command, wait_until

FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}


def test_register_heartbeat_live_reconfigure_then_kill(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_process: Any, tmp_path: Path
) -> None:
    mgmt, _data = recorder
    catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
    proc = agent_process(agent_command(catalog, "MS1", tmp_path / "cache", "--refresh", "5"))

    # registration with what the configuration asked for
    device = wait_until(lambda: catalog.device("MS1"), 15, "MS1 registered")
    assert device["role"] == "secondary"
    assert device["grid"] == {"network": "mini", "feeder": "L1", "lateral": None, "bus": "B5", "line": "L6"}
    assert device["algorithms"] == ["sag_reporting"] and device["config_version"] == 1
    assert device["ttl"] == 1.5 and device["endpoints"]["ip"] == "127.0.0.1"
    assert "sma3/data/meters/MS1/sag" in device["endpoints"]["mqtt_publishes"]
    assert "sma3/mgmt/devices/MS1/config" in device["endpoints"]["mqtt_subscribes"]

    # heartbeats on the documented topic, a DeviceStatus the catalog accepts
    status_topic = "sma3/mgmt/devices/MS1/status"
    _t, beat = mgmt.wait_json(
        status_topic, lambda m: m.get("config_version") == 1 and m["health"] == "ok", 10
    )
    assert beat["state"] == "online" and beat["algorithms"] == ["sag_reporting"]
    assert beat["health"] == "ok" and beat["config_source"] == "catalog"
    assert beat["algorithm_status"] == [
        {
            "name": "sag_reporting",
            "state": "waiting",
            "detail": "no phasors received from the signal chain yet",
        }
    ]
    wait_until(lambda: len(mgmt.json(status_topic)) >= 5, 5, "five heartbeats")
    intervals = sorted(np.diff([t for t, _ in mgmt.json(status_topic)][-4:]))
    assert 0.2 < intervals[1] < 0.5  # median of the last three intervals; configured 0.3 s
    assert catalog.device("MS1")["last_heartbeat"] is not None  # type: ignore[index]

    # the operator changes the configuration: applied live, announced by registration and heartbeat
    catalog.put_config(
        "MS1",
        {
            **FAST,
            "algorithms": [
                {"name": "outage_detection", "parameters": {"hold_s": 0.04}},
                {"name": "sag_reporting", "parameters": {"sag_threshold_pu": 0.8}},
            ],
        },
    )
    wait_until(
        lambda: (
            (d := catalog.device("MS1")) is not None
            and d["config_version"] == 2
            and d["algorithms"] == ["outage_detection", "sag_reporting"]
        ),
        10,
        "configuration 2 applied",
    )
    _t, beat = mgmt.wait_json(status_topic, lambda m: m.get("config_version") == 2, 10)
    assert beat["algorithms"] == ["outage_detection", "sag_reporting"]
    assert proc.poll() is None  # same process: no restart
    cached = json.loads((tmp_path / "cache" / "MS1.config.json").read_text())
    assert cached["version"] == 2

    # abrupt death: Last Will 'offline', then 'expired' within TTL + 1 s
    proc.send_signal(signal.SIGKILL)
    killed = time.time()
    proc.wait(timeout=5)
    _t, will = mgmt.wait_json(status_topic, lambda m: m.get("state") == "offline", 5)
    assert will["reason"] == "last_will"
    t_expired, expired = mgmt.wait_json(
        "sma3/mgmt/events", lambda m: m["type"] == "expired" and m["device_id"] == "MS1", 1.5 + 1.0
    )
    assert t_expired - killed <= 1.5 + 1.0
    assert expired["reason"] == "offline"  # noticed through the Last Will, not only by the TTL
    assert catalog.device("MS1") is None


def test_clean_stop_announces_offline(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_process: Any, tmp_path: Path
) -> None:
    mgmt, _data = recorder
    catalog.put_config("MS2", {**FAST, "algorithms": [{"name": "outage_detection"}]})
    proc = agent_process(agent_command(catalog, "MS2", tmp_path / "cache"))
    wait_until(lambda: catalog.device("MS2"), 15, "MS2 registered")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    _t, last = mgmt.wait_json("sma3/mgmt/devices/MS2/status", lambda m: m.get("state") == "offline", 5)
    assert last["reason"] == "shutdown"  # a clean disconnect: the Will is not sent
    mgmt.wait_json("sma3/mgmt/events", lambda m: m["type"] == "expired" and m["device_id"] == "MS2", 3)


def test_catalog_restart_agent_survives_and_reregisters(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_factory: AgentFactory
) -> None:
    mgmt, _data = recorder
    catalog.put_config("MS2", {**FAST, "ttl_s": 1.0, "algorithms": [{"name": "sag_reporting"}]})
    running = agent_factory("MS2")
    agent = running.agent
    wait_until(lambda: catalog.device("MS2"), 10, "MS2 registered")
    first = agent.registrations

    catalog.stop()
    status_topic = "sma3/mgmt/devices/MS2/status"
    stopped = time.time()
    _t, beat = mgmt.wait_json(status_topic, lambda m: "catalog unreachable" in m.get("reason", ""), 5)
    assert beat["state"] == "online" and beat["algorithms"] == ["sag_reporting"]
    assert beat["health"] == "degraded"
    assert agent.catalog_reachable is False and agent.config is not None
    time.sleep(max(0.0, stopped + 1.5 - time.time()))  # longer than the TTL: the record expires
    n_before = len(mgmt.json(status_topic))
    wait_until(lambda: len(mgmt.json(status_topic)) > n_before + 1, 3, "heartbeats while the catalog is down")

    restarted = time.time()
    catalog.start()  # same database, same port
    wait_until(
        lambda: (d := catalog.device("MS2")) is not None and d["alive"] and agent.registrations > first,
        10,
        "MS2 registered again",
    )
    wait_until(
        lambda: any(t > restarted and m["health"] == "ok" for t, m in mgmt.json(status_topic)),
        5,
        "a healthy heartbeat after the restart",
    )
    assert agent.health()[0] == "ok" and agent.config_source == "catalog"
