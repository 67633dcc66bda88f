"""Feeder head and secondary agents: sag/outage data through the data broker, fault location."""

from __future__ import annotations

import json
import math

import numpy as np

from sma3_grid.io import load_network
from sma3_meter.agent.algorithms import FaultLocation
from sma3_meter.detection import FaultDetected, classify_fault
from sma3_meter.dsp import PhasorSample
from sma3_meter.location import LoadEvidence, OutageEvidence, SagEvidence
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import solve

from .conftest import AgentFactory, Catalog, Recorder, wait_until

FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}
V_NOMINAL = 22000.0 / math.sqrt(3.0)


def report(index: int, v: np.ndarray, i: np.ndarray) -> PhasorSample:
    """A steady cycle report as the signal chain produces it."""
    return PhasorSample(index, 50.0, 0.0, np.concatenate([v, i]).astype(complex))


def test_feeder_head_locates_with_secondary_sag_data(
    catalog: Catalog, recorder: tuple[Recorder, Recorder], agent_factory: AgentFactory
) -> None:
    _mgmt, data = recorder
    secondary = [
        {"name": "sag_reporting", "parameters": {"sag_threshold_pu": 0.95}},
        {"name": "outage_detection", "parameters": {"hold_s": 0.04}},
    ]
    catalog.put_config("MS1", {**FAST, "algorithms": secondary})
    catalog.put_config("MS2", {**FAST, "algorithms": secondary})
    catalog.put_config(
        "MH1", {**FAST, "algorithms": [{"name": "fault_location", "parameters": {"evidence_wait_s": 0.3}}]}
    )
    ms1, ms2 = agent_factory("MS1"), agent_factory("MS2")
    wait_until(lambda: catalog.device("MS1") and catalog.device("MS2"), 10, "secondaries registered")
    head = agent_factory("MH1")
    wait_until(lambda: "fault_location" in head.agent.runners, 10, "fault_location started")
    runner = head.agent.runners["fault_location"]
    assert isinstance(runner, FaultLocation)
    wait_until(lambda: runner.peers == {"MS1", "MS2"}, 10, "peers looked up in the catalog")
    wait_until(
        lambda: (
            "sma3/data/meters/MS1/sag"
            in ((catalog.device("MH1") or {}).get("endpoints", {}).get("mqtt_subscribes", []))
        ),
        10,
        "MH1 registration listing its subscriptions",
    )
    wait_until(
        lambda: (
            head.links.active_subscriptions("data")
            >= {f"sma3/data/meters/{m}/{k}" for m in ("MS1", "MS2") for k in ("sag", "outage")}
        ),
        10,
        "the broker acknowledging MH1's subscriptions",
    )

    # a single-phase fault on L3 (feeder L1), simulated; each meter sees its own phasors
    net = load_network("mini")
    sol = solve(net, FaultScenario(line_id="L3", position=0.4, fault_type="AG", rf_ohm=5.0))
    for running, meter in ((ms1, "MS1"), (ms2, "MS2")):
        pre, flt = sol.pre[meter], sol.fault[meter]
        for k in range(5):
            running.agent.on_phasors(report(1000 + 128 * k, pre.v, pre.i))
        for k in range(5, 8):
            running.agent.on_phasors(report(1000 + 128 * k, flt.v, flt.i))
    for meter in ("MS1", "MS2"):
        _t, sag = data.wait_json(f"sma3/data/meters/{meter}/sag", lambda m: m["state"] == "start", 5)
        np.testing.assert_allclose(sag["v_mag"], np.abs(sol.fault[meter].v), rtol=1e-9)
        np.testing.assert_allclose(sag["v_pu"], np.abs(sol.fault[meter].v) / V_NOMINAL, rtol=1e-9)
        assert sag["sample_index"] == 1000 + 128 * 5

    # the head keeps the secondaries' data as locator evidence: fault-state sags, pre-fault powers
    wait_until(lambda: len(runner.current_evidence()) == 4, 5, "evidence of both secondaries")
    evidence = runner.current_evidence()
    sags = [e for e in evidence if isinstance(e, SagEvidence)]
    loads = [e for e in evidence if isinstance(e, LoadEvidence)]
    assert [e.meter_id for e in sags] == ["MS1", "MS2"] and [e.meter_id for e in loads] == ["MS1", "MS2"]
    np.testing.assert_allclose(sags[0].v_mag, np.abs(sol.fault["MS1"].v), rtol=1e-9)
    for e in loads:
        expected = complex(np.sum(sol.pre[e.meter_id].v * np.conj(sol.pre[e.meter_id].i)))
        assert abs(e.s_va - expected) < 1e-6 * abs(expected)

    # the signal chain of the head reports the fault: located with the evidence, published
    pre, flt = sol.pre["MH1"], sol.fault["MH1"]
    head.agent.on_phasors(report(1000, pre.v, pre.i))
    classification = classify_fault(pre.v, pre.i, flt.v, flt.i)
    assert classification.fault_type == "AG" and classification.forward
    event = FaultDetected(1640, classification, report(1600, pre.v, pre.i), report(1768, flt.v, flt.i))
    head.agent.on_chain_event(event)
    _t, located = data.wait_json("sma3/data/meters/MH1/location", lambda m: True, 5)
    assert located["fault_type"] == "AG" and located["inception_index"] == 1640
    assert located["evidence"] == ["MS1", "MS2"]
    best = located["candidates"][0]
    # Without the sag data the head alone cannot tell L3 from the lateral L5 (equal scores).
    assert best["line_id"] == "L3" and best["score"] > 0.9
    assert abs(best["distance_from_upstream_km"] - 0.4 * 0.25) < 0.01
    status = {s.name: s for s in head.agent.algorithm_status()}["fault_location"]
    assert status.state == "running" and "evidence from 2/2 peers" in status.detail

    # after the trip MS2 loses its voltage: outage alarm on the data broker, outage evidence at the head
    zero = np.zeros(3, dtype=complex)
    for k in range(8, 12):
        ms2.agent.on_phasors(report(1000 + 128 * k, zero, zero))
    _t, alarm = data.wait_json("sma3/data/meters/MS2/outage", lambda m: True, 5)
    assert alarm["kind"] == "loss_of_voltage" and alarm["phases"] == [True, True, True]
    wait_until(
        lambda: any(isinstance(e, OutageEvidence) and e.meter_id == "MS2" for e in runner.current_evidence()),
        5,
        "outage evidence of MS2",
    )
    # a collapse stays below the sag threshold: MS2's sag has not ended
    assert [m["state"] for _t, m in data.json("sma3/data/meters/MS2/sag")] == ["start"]
    beat = json.loads(head.agent.status_payload())
    assert beat["algorithms"] == ["fault_location"] and beat["health"] == "ok"
