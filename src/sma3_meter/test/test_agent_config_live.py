"""Cached configuration with the catalog down, broker change without restart, default configurations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sma3_meter.dsp import PhasorSample

from .conftest import AgentFactory, Catalog, Recorder, wait_until

FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}


def test_start_on_cache_with_catalog_down_then_catalog_returns(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_factory: AgentFactory, tmp_path: Path
) -> None:
    mgmt, _data = recorder
    cache = tmp_path / "meter-cache"
    catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
    first = agent_factory("MS1", cache_dir=cache)
    wait_until(lambda: catalog.device("MS1"), 10, "MS1 registered")
    first.close()
    assert (cache / "MS1.config.json").exists()

    catalog.stop()
    started = time.time()
    second = agent_factory("MS1", cache_dir=cache)
    status_topic = "sma3/mgmt/devices/MS1/status"
    _t, beat = mgmt.wait_json(status_topic, lambda m: m.get("config_source") == "cache", 5)
    assert _t > started
    assert beat["state"] == "online" and beat["health"] == "degraded"
    assert beat["algorithms"] == ["sag_reporting"] and beat["config_version"] == 1
    assert "running on cached configuration version 1" in beat["reason"]
    assert "catalog unreachable" in beat["reason"]
    assert not second.agent.registered

    back = time.time()
    catalog.start()
    wait_until(
        lambda: (d := catalog.device("MS1")) is not None and d["alive"] and d["config_version"] == 1,
        10,
        "MS1 registered after the catalog came back",
    )
    wait_until(
        lambda: any(t > back and m["health"] == "ok" for t, m in mgmt.json(status_topic)),
        5,
        "a healthy heartbeat on the catalog's configuration",
    )
    assert second.agent.config_source == "catalog"


def test_data_broker_change_applied_without_restart(
    catalog: Catalog, brokers: Any, mosquitto_factory: Any, agent_factory: AgentFactory
) -> None:
    catalog.stop()
    catalog.other_data = mosquitto_factory()
    catalog.start()
    new_data = Recorder(catalog.other_data, ["sma3/#"])
    try:
        catalog.put_config("MS2", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
        running = agent_factory("MS2")
        links = running.links
        wait_until(lambda: links.connected() == {"management": True, "data": True}, 10, "both brokers")
        management = links.connections["management"]
        assert links.connections["data"].broker.port == brokers[1].port

        catalog.put_config(
            "MS2", {**FAST, "brokers": {"data": "data2"}, "algorithms": [{"name": "sag_reporting"}]}
        )
        wait_until(
            lambda: links.connections["data"].broker.name == "data2" and links.connected()["data"],
            10,
            "the agent on the new data broker",
        )
        assert links.connections["management"] is management  # untouched
        assert running.agent.config is not None and running.agent.config.version == 2
        sag = np.array([0.5, 1.0, 1.0]) * 22000.0 / np.sqrt(3.0)
        running.agent.on_phasors(
            PhasorSample(10, 50.0, 0.0, np.concatenate([sag, np.zeros(3)]).astype(complex))
        )
        _t, msg = new_data.wait_json("sma3/data/meters/MS2/sag", lambda m: True, 5)
        assert msg["state"] == "start" and abs(msg["v_pu"][0] - 0.5) < 1e-9
    finally:
        new_data.close()


def test_default_configuration_runs_the_role_defaults(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_factory: AgentFactory
) -> None:
    # No stored configuration: the catalog derives one from the network's meters table (version 0)
    # with its role defaults, which the agent runs as they are.
    mgmt, _data = recorder
    running = agent_factory("MH2")
    # the first beats may go out while it registers and connects ("degraded: not registered")
    _t, beat = mgmt.wait_json("sma3/mgmt/devices/MH2/status", lambda m: m["health"] == "ok", 10)
    assert beat["config_version"] == 0 and beat["algorithms"] == ["fault_location"]
    assert {s.name: s.state for s in running.agent.algorithm_status()}.keys() == {"fault_location"}
    device = wait_until(lambda: catalog.device("MH2"), 10, "MH2 registered")
    assert device["algorithms"] == ["fault_location"] and device["grid"]["feeder"] == "L7"


def test_reregisters_after_delete_and_finds_new_peers_by_event(
    catalog: Catalog, agent_factory: AgentFactory
) -> None:
    catalog.put_config("MH1", {**FAST, "algorithms": [{"name": "fault_location"}]})
    catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
    # periodic look-ups and checks far away: only catalog events can explain what follows
    head = agent_factory("MH1", peers_refresh_s=3600.0, refresh_s=3600.0)
    runner = wait_until(lambda: head.agent.runners.get("fault_location"), 10, "fault_location")
    wait_until(lambda: head.agent.registered, 10, "MH1 registered")
    assert runner.peers == set()

    agent_factory("MS1")  # a secondary joins the feeder: event 'created' -> look-up -> subscription
    wait_until(lambda: runner.peers == {"MS1"}, 5, "MS1 found through the 'created' event")
    wait_until(
        lambda: "sma3/data/meters/MS1/sag" in head.links.active_subscriptions("data"), 5, "subscription"
    )

    first = head.agent.registrations
    with catalog.operator() as op:
        assert op.delete("/devices/MH1").status_code == 204
    wait_until(
        lambda: catalog.device("MH1") is not None and head.agent.registrations > first,
        5,
        "MH1 registered again after the 'deleted' event",
    )
