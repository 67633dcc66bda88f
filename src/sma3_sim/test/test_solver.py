"""Solver behaviour on the shipped ``mini`` network: fault types, loads, trip state, distances, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_sim.scenario import FAULT_TYPES, FaultScenario, ScenarioError, fault_phases
from sma3_sim.solver import Simulator, actual_loads, solve


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


@pytest.fixture(scope="module")
def simulator(mini: Network) -> Simulator:
    return Simulator(mini)


@pytest.mark.parametrize("fault_type", FAULT_TYPES)
def test_every_fault_type_shows_its_faulted_phases(simulator: Simulator, fault_type: str) -> None:
    solution = simulator.solve(FaultScenario("L3", 0.4, fault_type))
    faulted = set(fault_phases(fault_type))
    fault_current = np.abs(solution.fault_current)
    head = solution.fault["MH1"]
    pre = solution.pre["MH1"]
    for k in range(3):
        if k in faulted:
            assert fault_current[k] > 2000.0  # kA-level currents at a bolted fault near the substation
            assert abs(head.i[k]) > 20 * abs(pre.i[k])
            if fault_type.endswith("G") or fault_type == "ABC":  # bolted to ground / balanced
                assert abs(solution.fault_voltage[k]) < 0.05 * abs(solution.fault_point_pre_voltage[k])
        else:
            assert fault_current[k] < 1e-6
            assert abs(head.i[k]) < 3 * abs(pre.i[k])
    if len(faulted) == 2:  # the two faulted phases are joined at the fault point
        j, k = sorted(faulted)
        v = solution.fault_voltage
        assert abs(v[j] - v[k]) < 0.01 * abs(solution.fault_point_pre_voltage[j])
    ground = abs(np.sum(solution.fault_current))
    if fault_type.endswith("G"):
        assert ground > 1000.0
    else:
        assert ground < 1e-6 * fault_current.max()


def test_fault_at_line_ends_and_pre_state_is_independent_of_the_fault(simulator: Simulator) -> None:
    first = simulator.solve(FaultScenario("L3", 0.0, "AG"))
    last = simulator.solve(FaultScenario("L3", 1.0, "AG"))
    inside = simulator.solve(FaultScenario("L3", 0.5, "AG"))
    # a fault farther away draws less current
    assert abs(first.fault_current[0]) > abs(inside.fault_current[0]) > abs(last.fault_current[0])
    # pre-fault state does not depend on where the fault will be, nor on earlier scenarios
    for meter in first.pre:
        np.testing.assert_allclose(first.pre[meter].v, last.pre[meter].v, rtol=1e-9)
        np.testing.assert_allclose(first.pre[meter].i, inside.pre[meter].i, rtol=1e-9)
    again = simulator.solve(FaultScenario("L3", 1.0, "AG"))
    np.testing.assert_allclose(again.fault["MH1"].i, last.fault["MH1"].i, rtol=1e-9)


def test_pre_fault_load_flow_matches_the_actual_loads(mini: Network, simulator: Simulator) -> None:
    solution = simulator.solve(FaultScenario("L8", 0.5, "AB", load_factor=0.8, load_spread=0.2, seed=7))
    loads = solution.actual_loads
    assert loads == actual_loads(mini, 0.8, 0.2, 7)
    feeder_buses = {"B1", "B2", "B3", "B4", "B5", "B6"}
    head = solution.pre["MH1"]
    power_kva = complex(np.sum(head.v * np.conj(head.i))) / 1e3
    expected = sum(loads[b] for b in feeder_buses)
    # feeder-head power = loads (scaled by |V|^2 of constant-impedance loads) + small losses / charging
    assert power_kva.real == pytest.approx(expected.real, rel=0.03)
    assert abs(power_kva.imag - expected.imag) < 0.12 * abs(expected)


def test_actual_loads_spread_is_seeded() -> None:
    net = load_network("mini")
    a = actual_loads(net, 1.0, 0.3, seed=1)
    b = actual_loads(net, 1.0, 0.3, seed=1)
    c = actual_loads(net, 1.0, 0.3, seed=2)
    assert a == b and a != c
    for bus, load in net.loads.items():
        ratio = a[bus].real / load.p_kw
        assert ratio >= 0.0
        assert a[bus].imag == pytest.approx(load.q_kvar * ratio)
    assert actual_loads(net, 0.5, 0.0, seed=3) == {
        b: complex(x.p_kw, x.q_kvar) * 0.5 for b, x in net.loads.items()
    }


def test_post_trip_state(simulator: Simulator) -> None:
    solution = simulator.solve(FaultScenario("L3", 0.5, "ABC"))
    assert solution.feeder_line == "L1"
    post = solution.post_trip
    assert np.abs(post["MH1"].i).max() < 1e-3  # the tripped feeder carries nothing
    assert np.abs(post["MS2"].v).max() < 1e-3  # voltages collapse downstream of the breaker
    # the busbar and the healthy feeder recover their pre-fault state (less the tripped load)
    np.testing.assert_allclose(np.abs(post["MH2"].i), np.abs(solution.pre["MH2"].i), rtol=0.02)
    np.testing.assert_allclose(np.abs(post["MH1"].v), np.abs(solution.pre["MH1"].v), rtol=0.02)


def test_distances_and_fault_path(mini: Network, simulator: Simulator) -> None:
    solution = simulator.solve(FaultScenario("L4", 0.25, "AG"))
    # L4 runs B3 -> B4 (0.2 km); B3 is L1 0.5 + L2 0.2 + L3 0.25 = 0.95 km from the source
    assert solution.distance_km["MH1"] == pytest.approx(0.95 + 0.05)
    assert solution.distance_km["MS2"] == pytest.approx(0.15)  # MS2 sits at B4, the far end of L4
    assert solution.distance_km["MH2"] == pytest.approx(1.0)  # same busbar as MH1
    assert solution.carries_fault_current == {"MH1": True, "MH2": False, "MS1": False, "MS2": False}
    assert solution.dc_time_constant_s["MH1"] > 0.0
    assert all(t <= solution.dc_time_constant_s["MH1"] for t in solution.dc_time_constant_s.values())


def test_open_switches_de_energize(mini: Network) -> None:
    # open SW1 (L3 at B2): B3 and B4 lose supply, MS2 reads nothing
    opened = mini.with_switch_states(mini.open_switches | {"SW1"})
    solution = Simulator(opened).solve(FaultScenario("L8", 0.5, "AG"))
    assert np.abs(solution.pre["MS2"].v).max() == 0.0
    assert solution.distance_km["MS2"] is None
    with pytest.raises(ScenarioError, match="not energized"):
        Simulator(opened).solve(FaultScenario("L3", 0.5, "AG"))


def test_bad_scenarios(mini: Network) -> None:
    with pytest.raises(ScenarioError, match="unknown line"):
        solve(mini, FaultScenario("NOPE", 0.5, "AG"))
    with pytest.raises(ScenarioError, match="not energized"):
        solve(mini, FaultScenario("L11", 0.5, "AG"))  # the NOP line
    with pytest.raises(ScenarioError, match="position"):
        FaultScenario("L1", 1.5, "AG")
    with pytest.raises(ScenarioError, match="fault_type"):
        FaultScenario("L1", 0.5, "AX")
    with pytest.raises(ScenarioError, match="rf_ohm"):
        FaultScenario("L1", 0.5, "AG", rf_ohm=-1.0)


def test_module_solve_reuses_the_simulator(mini: Network) -> None:
    a = solve(mini, FaultScenario("L2", 0.5, "CA", rf_ohm=2.0))
    b = solve(mini, FaultScenario("L2", 0.5, "CA", rf_ohm=2.0))
    np.testing.assert_allclose(a.fault_current, b.fault_current)
    truth = a.truth()
    assert truth["scenario"]["fault_type"] == "CA"
    assert set(truth["pre"]) == set(mini.meters)


def test_constant_power_loads(mini: Network) -> None:
    """With constant-PQ loads the feeder head carries the set-points (plus losses and charging)."""
    simulator = Simulator(mini, load_model="pq")
    solution = simulator.solve(FaultScenario("L3", 0.5, "ABC", load_factor=1.3))
    head = solution.pre["MH1"]
    power_kva = complex(np.sum(head.v * np.conj(head.i))) / 1e3
    expected = sum(solution.actual_loads[b] for b in ("B1", "B2", "B3", "B4", "B5", "B6"))
    assert power_kva.real == pytest.approx(expected.real, rel=0.01)
    assert np.abs(solution.post_trip["MH1"].i).max() < 1e-3
    assert np.abs(solution.fault_current).min() > 2000.0
    with pytest.raises(ValueError, match="load_model"):
        Simulator(mini, load_model="zip")
