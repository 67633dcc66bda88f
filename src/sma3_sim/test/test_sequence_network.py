"""Fault currents of the OpenDSS model against a hand-derived sequence-network solution.

Network: a source equivalent (22 kV, 400 MVA three-phase, 300 MVA single-phase, X/R 10) feeding one
4 km cable; no loads, no shunt capacitance, so the sequence networks are two series impedances:

    Z1 = Z1_source + z1 * l,   Z2 = Z1,   Z0 = Z0_source + z0 * l

with ``|Z1_source| = kV^2 / MVA3`` at the X/R angle and ``|2 Z1_source + Z0_source| = 3 kV^2 / MVA1``
(same angle), derived here again from the definitions. Faults (Blackburn, ch. 4 and 10), with ``E``
the phase-to-ground source EMF, ``a = exp(j 2 pi / 3)``:

    three-phase       I_a = E / (Z1 + rf)
    phase-to-ground   I_a = 3 E / (Z1 + Z2 + Z0 + 3 (rf + rg))
    phase-to-phase    I_b = -j sqrt(3) E / (Z1 + Z2 + 2 rf)
    two-phase-ground  I1 = E / (Z1 + Z2 || Z0'),  I2 = -I1 Z0' / (Z2 + Z0'),  I0 = -I1 Z2 / (Z2 + Z0'),
                      I_b = I0 + a^2 I1 + a I2,  I_c = I0 + a I1 + a^2 I2     (bolted: Z0' = Z0)
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

from sma3_grid.model import Bus, Line, Meter, Network, NetworkInfo
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import Simulator

KV = 22.0
MVA3 = 400.0
MVA1 = 300.0
XR = 10.0
LENGTH = 4.0
R1, X1, R0, X0 = 0.125, 0.11, 0.52, 0.41  # ohm/km
E = KV * 1e3 / math.sqrt(3.0)
A = cmath.exp(2j * math.pi / 3)
BOLTED = 1e-6  # ohm: the scenario's resistances of a bolted fault (the model's floor)
TOL = 0.005


def _network() -> Network:
    info = NetworkInfo("one-line", KV, 50.0, "S", MVA3, MVA1, XR)
    buses = [Bus("S", "primary", 0.0, 0.0), Bus("F", "secondary", 1.0, 0.0)]
    lines = [Line("L", "F", "S", LENGTH, R1, X1, R0, X0, 0.0, 0.0)]
    meters = [Meter("M", "S", "L", "feeder_head"), Meter("MF", "F", "L", "secondary")]
    return Network(info, buses, lines, meters=meters)


def _sequence_impedances(fraction: float) -> tuple[complex, complex]:
    angle = math.atan(XR)
    z1_source = cmath.rect(KV**2 / MVA3, angle)
    z0_source = cmath.rect(3 * KV**2 / MVA1 - 2 * abs(z1_source), angle)
    length = LENGTH * fraction
    return z1_source + complex(R1, X1) * length, z0_source + complex(R0, X0) * length


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(_network())


def _close(measured: complex, expected: complex) -> None:
    assert abs(measured - expected) <= TOL * abs(expected), (measured, expected)


@pytest.mark.parametrize("position", [1.0, 0.5])
def test_three_phase(simulator: Simulator, position: float) -> None:
    z1, _ = _sequence_impedances(position)
    solution = simulator.solve(FaultScenario("L", position, "ABC", BOLTED, BOLTED))
    expected = E / z1
    for k in range(3):
        _close(solution.fault_current[k], expected * A ** (-k))
    # no loads, no capacitance: the feeder-head meter sees the fault current itself
    np.testing.assert_allclose(solution.fault["M"].i, solution.fault_current, rtol=1e-6)


@pytest.mark.parametrize(
    ("position", "rf", "rg"), [(1.0, BOLTED, BOLTED), (0.5, BOLTED, BOLTED), (1.0, 5.0, 2.0)]
)
def test_phase_to_ground(simulator: Simulator, position: float, rf: float, rg: float) -> None:
    z1, z0 = _sequence_impedances(position)
    solution = simulator.solve(FaultScenario("L", position, "AG", rf, rg))
    _close(solution.fault_current[0], 3 * E / (2 * z1 + z0 + 3 * (rf + rg)))
    assert abs(solution.fault_current[1]) < 1e-6 and abs(solution.fault_current[2]) < 1e-6


@pytest.mark.parametrize("rf", [BOLTED, 3.0])
def test_phase_to_phase(simulator: Simulator, rf: float) -> None:
    z1, _ = _sequence_impedances(1.0)
    solution = simulator.solve(FaultScenario("L", 1.0, "BC", rf, BOLTED))
    expected_b = -1j * math.sqrt(3) * E / (2 * z1 + 2 * rf)
    _close(solution.fault_current[1], expected_b)
    _close(solution.fault_current[2], -expected_b)


def test_two_phase_to_ground(simulator: Simulator) -> None:
    z1, z0 = _sequence_impedances(1.0)
    z2 = z1
    i1 = E / (z1 + z2 * z0 / (z2 + z0))
    i2 = -i1 * z0 / (z2 + z0)
    i0 = -i1 * z2 / (z2 + z0)
    solution = simulator.solve(FaultScenario("L", 1.0, "BCG", BOLTED, BOLTED))
    _close(solution.fault_current[1], i0 + A**2 * i1 + A * i2)
    _close(solution.fault_current[2], i0 + A * i1 + A**2 * i2)
    _close(complex(np.sum(solution.fault_current)), 3 * i0)


def test_source_short_circuit_powers(simulator: Simulator) -> None:
    """A bolted fault at the source bus draws the specified short-circuit powers."""
    three = simulator.solve(FaultScenario("L", 0.0, "ABC", BOLTED, BOLTED))
    single = simulator.solve(FaultScenario("L", 0.0, "AG", BOLTED, BOLTED))
    # S = sqrt(3) * kV * kA (MVA)
    assert math.sqrt(3) * KV * abs(three.fault_current[0]) / 1e3 == pytest.approx(MVA3, rel=TOL)
    assert math.sqrt(3) * KV * abs(single.fault_current[0]) / 1e3 == pytest.approx(MVA1, rel=TOL)


def test_meter_at_far_end_sees_no_fault_current(simulator: Simulator) -> None:
    solution = simulator.solve(FaultScenario("L", 0.5, "AG", BOLTED, BOLTED))
    assert np.abs(solution.fault["MF"].i).max() < 1e-6
    assert solution.distance_km == {"M": pytest.approx(2.0), "MF": pytest.approx(2.0)}
    assert solution.carries_fault_current == {"M": True, "MF": False}
    # the far-end bus hangs on the faulted point: its phase-A voltage equals the fault voltage
    np.testing.assert_allclose(solution.fault["MF"].v, solution.fault_voltage, atol=1e-6)
