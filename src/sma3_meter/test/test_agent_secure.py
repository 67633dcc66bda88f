"""The agent on brokers with passwords and the catalog's example ACL (mosquitto drops what it forbids)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sma3_meter.agent.algorithms import FaultLocation
from sma3_meter.agent.mqtt import MqttCredentials
from sma3_meter.dsp import PhasorSample
from sma3_testing import MosquittoBroker, MqttUser

from .conftest import REPO, AgentFactory, Catalog, Recorder, wait_until

ACL = (REPO / "src" / "sma3_catalog" / "config" / "mosquitto.acl").read_text()
CATALOG_USER = MqttUser("sma3-catalog", "catalog-secret")
FDIR_USER = MqttUser("sma3-fdir", "fdir-secret")
METERS = {m: MqttUser(m, f"{m}-mqtt-secret") for m in ("MH1", "MS1")}
FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}


@pytest.fixture
def brokers(mosquitto_factory: Any) -> tuple[MosquittoBroker, MosquittoBroker]:
    """(management, data) brokers refusing anonymous clients, with the example ACL."""
    users = [CATALOG_USER, FDIR_USER, *METERS.values()]
    return mosquitto_factory(users=users, acl=ACL), mosquitto_factory(users=users, acl=ACL)


@pytest.fixture
def catalog(brokers: tuple[MosquittoBroker, MosquittoBroker], tmp_path: Path) -> Iterator[Catalog]:
    """The catalog logging in as sma3-catalog; brokers handed out with credentials_ref 'device'."""
    management, data = brokers
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}", management, data, mqtt_user=CATALOG_USER).start()
    yield cat
    cat.stop()


def creds(meter: str) -> dict[str, MqttCredentials]:
    return {"device": MqttCredentials(meter, METERS[meter].password)}


def test_agents_work_within_the_example_acl(
    catalog: Catalog, brokers: tuple[MosquittoBroker, MosquittoBroker], agent_factory: AgentFactory
) -> None:
    management, data = brokers
    events = Recorder(management, ["sma3/mgmt/events"], user=FDIR_USER)
    observed = Recorder(data, ["sma3/data/#"], user=FDIR_USER)
    try:
        catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
        catalog.put_config("MH1", {**FAST, "algorithms": [{"name": "fault_location"}]})
        ms1 = agent_factory("MS1", credentials=creds("MS1"))
        wait_until(lambda: catalog.device("MS1"), 10, "MS1 registered")
        head = agent_factory("MH1", credentials=creds("MH1"))
        # heartbeats pass the ACL (only the meter itself may write its status topic)
        wait_until(
            lambda: (d := catalog.device("MH1")) is not None and d["last_heartbeat"] is not None,
            10,
            "a heartbeat of MH1 applied by the catalog",
        )
        assert head.links.connected() == {"management": True, "data": True}
        runner = wait_until(lambda: head.agent.runners.get("fault_location"), 10, "fault_location")
        assert isinstance(runner, FaultLocation)
        wait_until(lambda: runner.peers == {"MS1"}, 10, "MS1 as peer of MH1")
        wait_until(lambda: ms1.agent.registered and head.agent.registered, 10, "both registered")
        wait_until(
            lambda: any(m["type"] == "updated" for _t, m in events.json("sma3/mgmt/events")),
            5,
            "catalog events",
        )
        # the secondary's sag crosses the data broker (meters write only under sma3/data/meters/<own id>/)
        v = np.array([0.5, 1.0, 1.0]) * 22000.0 / math.sqrt(3.0)
        sample = PhasorSample(100, 50.0, 0.0, np.concatenate([v, np.zeros(3)]).astype(complex))
        wait_until(
            lambda: "sma3/data/meters/MS1/sag" in head.links.active_subscriptions("data"),
            10,
            "the broker acknowledging MH1's subscription",
        )
        ms1.agent.on_phasors(sample)
        (evidence,) = wait_until(runner.current_evidence, 5, "MS1's sag at MH1")
        assert evidence.meter_id == "MS1" and abs(evidence.v_mag[0] - v[0]) < 1e-6
        observed.wait_json("sma3/data/meters/MS1/sag", lambda m: m["state"] == "start", 5)
        assert head.agent.health() == ("ok", "waiting for signal-chain input: fault_location")
    finally:
        events.close()
        observed.close()
