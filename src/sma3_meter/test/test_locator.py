"""Fault locator core on a small branched feeder with exact OpenDSS phasors (sma3_sim)."""

from __future__ import annotations

import numpy as np
import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Bus, Line, Load, Meter, Network, NetworkInfo, Switch
from sma3_meter.location import (
    FAULT_TYPES,
    LoadEvidence,
    LocationError,
    LocatorSettings,
    OutageEvidence,
    SagEvidence,
    evidence_meters,
    load_evidence_meters,
    locate,
)
from sma3_meter.location.feeder import measured_sequences
from sma3_meter.location.locator import feeder_model
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import FaultSolution, MeterPhasors, Simulator

AL185 = {"r1": 0.168, "x1": 0.113, "r0": 0.78, "x0": 0.28, "c1": 280.0, "c0": 280.0}
AL240 = {"r1": 0.129, "x1": 0.107, "r0": 0.74, "x0": 0.27, "c1": 320.0, "c0": 320.0}


def _branched(extra_meters: tuple[Meter, ...] = ()) -> Network:
    """Two feeders; feeder 1 has two branch points and laterals of different cable and length."""
    info = NetworkInfo("branched", 22.0, 50.0, "S", 400.0, 300.0, 10.0)
    lines = [
        Line("L1", "S", "B1", 1.2, **AL240),
        Line("L2", "B1", "B2", 0.8, **AL240),
        Line("L3", "B2", "B3", 0.55, **AL185),
        Line("L4", "B4", "B1", 0.6, **AL185),  # stored against the flow: orientation is computed
        Line("L5", "B4", "B5", 0.7, **AL185),
        Line("L6", "B2", "B6", 0.45, **AL185),
        Line("L7", "B4", "B7", 1.3, **AL240),
        Line("L8", "S", "C1", 2.0, **AL240),
        Line("L9", "C1", "B5", 0.9, **AL185),  # tie line with a normally-open point
    ]
    buses = [Bus("S", "primary", 0, 0)] + [
        Bus(b, "secondary", k, 1) for k, b in enumerate(["B1", "B2", "B3", "B4", "B5", "B6", "B7", "C1"])
    ]
    loads = [
        Load("B1", 400, 120),
        Load("B2", 300, 90),
        Load("B3", 500, 150),
        Load("B4", 250, 70),
        Load("B5", 600, 190),
        Load("B6", 200, 60),
        Load("B7", 350, 100),
        Load("C1", 800, 240),
    ]
    switches = [
        Switch("CB1", "L1", "S", "breaker", False, True),
        Switch("CB2", "L8", "S", "breaker", False, True),
        Switch("R4", "L4", "B1", "recloser", False, True),
        Switch("NOP", "L9", "B5", "load_break_switch", True, True),
    ]
    meters = [
        Meter("H", "S", "L1", "feeder_head"),
        Meter("M3", "B3", "L3", "secondary"),
        Meter("M5", "B5", "L5", "secondary"),
        Meter("M6", "B6", "L6", "secondary"),
        Meter("M7", "B7", "L7", "secondary"),
        *extra_meters,
    ]
    return Network(info, buses, lines, loads, switches, meters)


@pytest.fixture(scope="module")
def net() -> Network:
    return _branched()


@pytest.fixture(scope="module")
def sim(net: Network) -> Simulator:
    return Simulator(net)


def _expected_resistance(fault_type: str, rf: float, rg: float) -> tuple[float, float | None]:
    if len(fault_type) == 2 and fault_type.endswith("G"):
        return rf + rg, None
    if fault_type in ("ABG", "BCG", "CAG"):
        return rf, rg
    return rf, None


CASES = [("L3", 0.3, 0.5, 1.0), ("L5", 0.85, 2.0, 3.0), ("L2", 0.5, 0.001, 0.001), ("L7", 0.1, 8.0, 4.0)]


@pytest.mark.parametrize("fault_type", FAULT_TYPES)
def test_exact_phasors_recover_distance_and_resistance(net: Network, sim: Simulator, fault_type: str) -> None:
    for line_id, position, rf, rg in CASES:
        sol = sim.solve(
            FaultScenario(line_id, position, fault_type, rf, rg, load_factor=1.1, load_spread=0.2)
        )
        result = locate(net, "H", sol.pre["H"], sol.fault["H"], fault_type, actual_loads=sol.actual_loads)
        assert result.fault_type == fault_type
        on_line = [c for c in result.candidates if c.line_id == line_id]
        assert on_line, f"{fault_type} on {line_id}: true section missing from {result.candidates}"
        cand = on_line[0]
        true_km = position * net.lines[line_id].length_km
        assert abs(cand.distance_from_upstream_km - true_km) < 1e-3
        assert (
            abs(cand.distance_from_meter_km - (net.distance_km("S", net.upstream_bus(line_id)) + true_km))
            < 1e-3
        )
        r_exp, rg_exp = _expected_resistance(fault_type, rf, rg)
        assert abs(cand.fault_resistance_ohm - r_exp) < 0.1
        if rg_exp is None:
            assert cand.ground_resistance_ohm is None
        else:
            assert cand.ground_resistance_ohm is not None
            assert abs(cand.ground_resistance_ohm - rg_exp) < 0.1
        assert cand.upstream_bus == net.upstream_bus(line_id)
        assert cand.downstream_bus == net.downstream_bus(line_id)
        assert cand.residual_ohm < 1e-3
        assert abs(sum(c.score for c in result.candidates) - 1.0) < 1e-9


def test_candidates_lie_at_the_same_electrical_distance(net: Network, sim: Simulator) -> None:
    sol = sim.solve(FaultScenario("L3", 0.4, "AG", 0.5, 0.5))
    result = locate(net, "H", sol.pre["H"], sol.fault["H"], "AG", actual_loads=sol.actual_loads)
    lines = {c.line_id for c in result.candidates}
    assert "L3" in lines
    # every candidate explains the head measurement (the multiple-estimation problem) ...
    assert all(c.residual_ohm < 1e-3 for c in result.candidates)
    # ... and sections upstream of the fault or on the other feeder never do
    assert not lines & {"L1", "L2", "L8", "L9"}


def test_forecast_loads_scaled_by_measured_power(net: Network, sim: Simulator) -> None:
    sol = sim.solve(FaultScenario("L5", 0.5, "BC", 1.0, 0.0, load_factor=1.25))
    result = locate(net, "H", sol.pre["H"], sol.fault["H"], "BC")
    assert abs(result.load_scale.real - 1.25) < 0.02
    assert abs(result.load_scale.imag - 1.25) < 0.05
    cand = next(c for c in result.candidates if c.line_id == "L5")
    assert abs(cand.distance_from_upstream_km - 0.35) < 0.005


def _load_evidence(sol: FaultSolution, meters: tuple[str, ...]) -> list[LoadEvidence]:
    """Pre-fault three-phase power of each meter, sum of V I* over the phases (VA)."""
    return [LoadEvidence(m, complex(np.sum(sol.pre[m].v * np.conj(sol.pre[m].i)))) for m in meters]


# M4 looks down L4 from its upstream bus B1 (zone B4 B5 B7), M5 and M7 sit at the downstream ends of
# L5 and L7 inside that zone: nested zones, both meter positions.
ZONE_METERS = ("M3", "M4", "M5", "M6", "M7")
ZONES = {"H": {"B1", "B2"}, "M3": {"B3"}, "M4": {"B4"}, "M5": {"B5"}, "M6": {"B6"}, "M7": {"B7"}}


@pytest.fixture(scope="module")
def zoned() -> Network:
    return _branched((Meter("M4", "B1", "L4", "secondary"),))


def test_load_evidence_scales_each_zone_to_its_measured_power(zoned: Network) -> None:
    sol = Simulator(zoned).solve(
        FaultScenario("L5", 0.5, "AG", 1.0, 1.0, load_factor=0.9, load_spread=0.4, seed=7)
    )
    model = feeder_model(zoned, "H")
    v_pre, i_pre = measured_sequences(sol.pre["H"], "pre")
    flows = [model.power_flow(e.meter_id, e.s_va) for e in _load_evidence(sol, ZONE_METERS)]
    assert [f.at_downstream_end for f in flows] == [True, False, True, True, True]
    state = model.estimate_loads(v_pre, i_pre, flows=flows)
    single = model.estimate_loads(v_pre, i_pre)
    # constant-impedance loads at nominal voltage: S = 3 V_nom^2 conj(Y)
    modelled = {
        bus: 3.0 * model.v_phase_nominal**2 * np.conj(y[1]) / 1e3
        for bus, y in zip(model.down_bus, state.load_y, strict=True)
    }
    shared = {
        bus: 3.0 * model.v_phase_nominal**2 * np.conj(y[1]) / 1e3
        for bus, y in zip(model.down_bus, single.load_y, strict=True)
    }
    worst_single = 0.0
    for zone, buses in ZONES.items():
        actual = sum(sol.actual_loads[b] for b in buses)
        got = sum(modelled[b] for b in buses)
        assert abs(got - actual) < 0.002 * abs(actual), (
            f"zone {zone}: {got} kVA modelled, {actual} kVA actual"
        )
        worst_single = max(worst_single, abs(sum(shared[b] for b in buses) - actual) / abs(actual))
    assert worst_single > 0.05  # one shared factor could not have matched the zones
    total_actual = sum(sol.actual_loads[b] for b in set().union(*ZONES.values()))
    assert abs(state.load_scale.real * sum(zoned.loads[b].p_kw for b in modelled) - total_actual.real) < 1.0


def test_load_evidence_sharpens_a_resistive_fault(zoned: Network) -> None:
    line_id, position = "L7", 0.55
    sol = Simulator(zoned).solve(
        FaultScenario(line_id, position, "CG", 30.0, 10.0, load_factor=1.15, load_spread=0.4, seed=11)
    )
    true_km = position * zoned.lines[line_id].length_km

    def error_m(evidence: list[LoadEvidence]) -> float:
        result = locate(zoned, "H", sol.pre["H"], sol.fault["H"], "CG", evidence=evidence)
        cand = next(c for c in result.candidates if c.line_id == line_id)
        return abs(cand.distance_from_upstream_km - true_km) * 1e3

    shared, zoned_error = error_m([]), error_m(_load_evidence(sol, ZONE_METERS))
    assert zoned_error < 0.5 * shared, (zoned_error, shared)
    assert zoned_error < 2.0


def test_implausible_load_evidence_is_left_out_and_reported(zoned: Network) -> None:
    sol = Simulator(zoned).solve(FaultScenario("L7", 0.4, "AG", 5.0, 5.0, load_spread=0.3, seed=5))
    good = _load_evidence(sol, ZONE_METERS)
    # M4's current transformer connected the wrong way round: its power comes with the wrong sign
    flipped = [LoadEvidence(e.meter_id, -e.s_va) if e.meter_id == "M4" else e for e in good]
    without = [e for e in good if e.meter_id != "M4"]
    result = locate(zoned, "H", sol.pre["H"], sol.fault["H"], "AG", evidence=flipped)
    reference = locate(zoned, "H", sol.pre["H"], sol.fault["H"], "AG", evidence=without)
    assert result.rejected_evidence == ("M4",)
    assert reference.rejected_evidence == ()
    assert result.candidates == reference.candidates
    note = result.rejected_note()
    assert note is not None and note.startswith("pre-fault power of M4 not used")
    assert reference.rejected_note() is None


def test_load_evidence_meters_measure_sections_of_the_feeder() -> None:
    # M9 sits at B5 (below H) but measures the open tie line L9: its sags count, its power does not
    net = _branched((Meter("M4", "B1", "L4", "secondary"), Meter("M9", "B5", "L9", "secondary")))
    assert evidence_meters(net, "H") == ["M3", "M4", "M5", "M6", "M7", "M9"]
    assert load_evidence_meters(net, "H") == ["M3", "M4", "M5", "M6", "M7"]
    assert load_evidence_meters(net, "M4") == ["M5", "M7"]


def test_load_evidence_bad_inputs_are_named(zoned: Network) -> None:
    sol = Simulator(zoned).solve(FaultScenario("L3", 0.5, "AG"))
    pre, flt = sol.pre["H"], sol.fault["H"]
    with pytest.raises(LocationError, match="'H' is the locating meter"):
        locate(zoned, "H", pre, flt, "AG", evidence=[LoadEvidence("H", 1e6 + 0j)])
    with pytest.raises(LocationError, match="not a section of the feeder below meter 'M4'"):
        locate(zoned, "M4", sol.pre["M4"], sol.fault["M4"], "AG", evidence=[LoadEvidence("M3", 1e5 + 0j)])
    with pytest.raises(LocationError, match="not finite"):
        locate(zoned, "H", pre, flt, "AG", evidence=[LoadEvidence("M3", complex(float("nan"), 0.0))])
    with pytest.raises(LocationError, match="meter 'nope'"):
        locate(zoned, "H", pre, flt, "AG", evidence=[LoadEvidence("nope", 1e5 + 0j)])


@pytest.mark.parametrize(
    ("line_id", "position", "fault_type"),
    [("L3", 0.6, "AG"), ("L6", 0.6, "CA"), ("L7", 0.3, "ABC"), ("L5", 0.6, "BCG")],
)
def test_sag_evidence_picks_the_lateral(
    net: Network, sim: Simulator, line_id: str, position: float, fault_type: str
) -> None:
    sol = sim.solve(FaultScenario(line_id, position, fault_type, 0.5, 0.5, load_spread=0.2, seed=3))
    head = locate(net, "H", sol.pre["H"], sol.fault["H"], fault_type)
    assert len(head.candidates) >= 2  # the head alone cannot tell the laterals apart
    sags = [SagEvidence(m, np.abs(sol.fault[m].v)) for m in ("M3", "M5", "M6", "M7")]
    ranked = locate(net, "H", sol.pre["H"], sol.fault["H"], fault_type, evidence=sags)
    assert ranked.candidates[0].line_id == line_id
    assert ranked.candidates[0].evidence_misfit < 0.01
    assert ranked.candidates[0].score > 0.5


def test_outage_evidence_downranks_inconsistent_candidates(net: Network, sim: Simulator) -> None:
    # a fault on L5 (below recloser R4 on L4): the recloser trips, B5 and B7 lose voltage, B3 not
    sol = sim.solve(FaultScenario("L5", 0.5, "AG", 0.2, 0.2))
    outages = [OutageEvidence("M5", True), OutageEvidence("M7", True), OutageEvidence("M3", False)]
    result = locate(net, "H", sol.pre["H"], sol.fault["H"], "AG", evidence=outages)
    below_recloser = {"L4", "L5", "L7"}
    assert result.candidates[0].line_id in below_recloser
    others = [c for c in result.candidates if c.line_id not in below_recloser]
    assert others, "the test needs a candidate on another lateral"
    assert all(c.score < 1e-2 for c in others)
    assert all(c.evidence_misfit > 0 for c in others)


def test_bad_inputs_are_named(net: Network, sim: Simulator) -> None:
    sol = sim.solve(FaultScenario("L3", 0.5, "AG"))
    pre, flt = sol.pre["H"], sol.fault["H"]
    with pytest.raises(LocationError, match="meter 'nope'"):
        locate(net, "nope", pre, flt, "AG")
    with pytest.raises(LocationError, match="fault type"):
        locate(net, "H", pre, flt, "XG")
    with pytest.raises(LocationError, match="pre-fault voltage"):
        locate(net, "H", MeterPhasors(np.zeros(2, complex), pre.i), flt, "AG")
    with pytest.raises(LocationError, match="evidence names meter 'Z9'"):
        locate(net, "H", pre, flt, "AG", evidence=[OutageEvidence("Z9")])
    with pytest.raises(LocationError, match="below 10 %"):
        locate(net, "H", MeterPhasors(pre.v * 1e-3, pre.i), flt, "AG")
    with pytest.raises(LocationError, match="upstream end"):
        locate(net, "M3", pre, flt, "AG")


def test_settings_search_resolution_is_respected(net: Network, sim: Simulator) -> None:
    sol = sim.solve(FaultScenario("L7", 0.77, "ABG", 0.3, 0.7))
    coarse = LocatorSettings(refine_rounds=1)
    fine = locate(net, "H", sol.pre["H"], sol.fault["H"], "ABG", actual_loads=sol.actual_loads)
    rough = locate(
        net, "H", sol.pre["H"], sol.fault["H"], "ABG", actual_loads=sol.actual_loads, settings=coarse
    )
    true_km = 0.77 * 1.3
    err_fine = abs(next(c for c in fine.candidates if c.line_id == "L7").distance_from_upstream_km - true_km)
    err_rough = abs(
        next(c for c in rough.candidates if c.line_id == "L7").distance_from_upstream_km - true_km
    )
    assert err_fine < 1e-3
    assert err_fine <= err_rough


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


@pytest.mark.parametrize("fault_type", FAULT_TYPES)
def test_mini_exact_phasors_every_type(mini: Network, fault_type: str) -> None:
    sim = Simulator(mini)
    for line_id, position, rf, rg in [
        ("L3", 0.35, 0.2, 0.4),
        ("L12", 0.7, 3.0, 1.0),
        ("L6", 0.5, 0.001, 0.001),
    ]:
        sol = sim.solve(
            FaultScenario(line_id, position, fault_type, rf, rg, load_factor=0.9, load_spread=0.3, seed=4)
        )
        result = locate(
            mini, "MH1", sol.pre["MH1"], sol.fault["MH1"], fault_type, actual_loads=sol.actual_loads
        )
        cand = next(c for c in result.candidates if c.line_id == line_id)
        assert abs(cand.distance_from_upstream_km - position * mini.lines[line_id].length_km) < 1e-3
        r_exp, rg_exp = _expected_resistance(fault_type, rf, rg)
        assert abs(cand.fault_resistance_ohm - r_exp) < 0.1
        if rg_exp is not None:
            assert cand.ground_resistance_ohm is not None
            assert abs(cand.ground_resistance_ohm - rg_exp) < 0.1


def test_substations_around_a_junction(mini: Network) -> None:
    """A fault on L5 (B2 -> junction J1 -> B5 / B6): nearest substations B2 and B6 (0.12 km < 0.2 km)."""
    sol = Simulator(mini).solve(FaultScenario("L5", 0.5, "AG", 0.1, 0.1))
    result = locate(mini, "MH1", sol.pre["MH1"], sol.fault["MH1"], "AG", actual_loads=sol.actual_loads)
    cand = next(c for c in result.candidates if c.line_id == "L5")
    assert (cand.upstream_bus, cand.downstream_bus) == ("B2", "J1")
    assert (cand.upstream_substation, cand.downstream_substation) == ("B2", "B6")
