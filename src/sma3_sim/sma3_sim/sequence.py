"""Sequence impedances of the source equivalent and of fault loops.

Used for the OpenDSS source (:mod:`sma3_sim.opendss`) and for the time constant of the DC offset
of fault currents (:mod:`sma3_sim.solver`). Loads and line capacitance are neglected here; they do
not matter for the X/R of a fault loop.

References
----------
J. L. Blackburn, *Symmetrical Components for Power Systems Engineering*, Marcel Dekker, 1993,
ch. 4 and 10 (sequence networks of shunt faults).
"""

from __future__ import annotations

import math

from sma3_grid.model import Network, NetworkInfo
from sma3_sim.scenario import FaultScenario, fault_phases, is_grounded

__all__ = ["fault_loop_impedance", "path_impedances", "source_impedances", "time_constant_s"]


def source_impedances(info: NetworkInfo) -> tuple[complex, complex]:
    """Positive- and zero-sequence impedance (ohm) of the upstream equivalent at the source bus.

    ``|Z1| = kV^2 / sc_mva_3ph`` with ``X1/R1 = x_over_r``; ``Z0`` has the same X/R and is chosen so
    that a bolted phase-to-ground fault at the source draws ``I1 = sc_mva_1ph / (sqrt(3) kV)``, i.e.
    ``|2 Z1 + Z0| = 3 kV^2 / sc_mva_1ph`` (the convention of OpenDSS ``Vsource`` ``MVAsc1``).

    Parameters
    ----------
    info : sma3_grid.model.NetworkInfo
        ``nominal_kv`` (kV line-to-line), ``sc_mva_3ph``, ``sc_mva_1ph`` (MVA), ``x_over_r``.

    Returns
    -------
    tuple of complex
        ``(Z1, Z0)`` in ohm.
    """
    kv = info.nominal_kv
    if info.sc_mva_3ph <= 0 or info.sc_mva_1ph <= 0 or info.x_over_r <= 0:
        raise ValueError("network: sc_mva_3ph, sc_mva_1ph and x_over_r must be positive")
    unit = complex(1.0, info.x_over_r) / math.hypot(1.0, info.x_over_r)  # unit phasor of the X/R angle
    z1 = kv * kv / info.sc_mva_3ph * unit
    # |2 Z1 + Z0| = 3 kV^2 / MVA1 with Z0 = m * unit and Z1 parallel to unit: 2|Z1| + m = target.
    m = 3.0 * kv * kv / info.sc_mva_1ph - 2.0 * abs(z1)
    if m <= 0:
        raise ValueError(
            f"network: sc_mva_1ph = {info.sc_mva_1ph} MVA exceeds 1.5 x sc_mva_3ph; zero-sequence "
            "impedance of the source would be negative"
        )
    return z1, m * unit


def path_impedances(net: Network, scenario: FaultScenario) -> tuple[complex, complex]:
    """Series Z1 and Z0 (ohm) from the source EMF to the fault point of a scenario.

    Source equivalent plus the lines from the source bus to the fault (the faulted line counted up
    to ``position``).
    """
    z1, z0 = source_impedances(net.info)
    line_ids = list(net.path_lines(net.info.source_bus, net.upstream_bus(scenario.line_id)))
    for line_id in line_ids:
        line = net.lines[line_id]
        z1 += complex(line.r1, line.x1) * line.length_km
        z0 += complex(line.r0, line.x0) * line.length_km
    line = net.lines[scenario.line_id]
    z1 += complex(line.r1, line.x1) * line.length_km * scenario.position
    z0 += complex(line.r0, line.x0) * line.length_km * scenario.position
    return z1, z0


def fault_loop_impedance(z1: complex, z0: complex, fault_type: str, rf_ohm: float, rg_ohm: float) -> complex:
    """Impedance (ohm) that sets the fault current of a shunt fault, from the sequence networks.

    Parameters
    ----------
    z1, z0 : complex
        Thevenin positive/zero-sequence impedance at the fault point, ohm (Z2 = Z1).
    fault_type : str
        One of :data:`sma3_sim.scenario.FAULT_TYPES`.
    rf_ohm, rg_ohm : float
        Fault resistance per phase and ground resistance, ohm.

    Returns
    -------
    complex
        ``Z1 + rf`` (three-phase), ``2 (Z1 + rf)`` (phase-to-phase), ``2 Z1 + Z0 + 3 (rf + rg)``
        (phase-to-ground), ``Z1 + rf + (Z1 + rf) || (Z0 + rf + 3 rg)`` (two-phase-to-ground).
    """
    n = len(fault_phases(fault_type))
    zf1 = z1 + rf_ohm
    if n == 3:
        return zf1
    if n == 1:
        return 2.0 * z1 + z0 + 3.0 * (rf_ohm + rg_ohm)
    if not is_grounded(fault_type):
        return 2.0 * zf1
    zf0 = z0 + rf_ohm + 3.0 * rg_ohm
    return zf1 + zf1 * zf0 / (zf1 + zf0)


def time_constant_s(z: complex, frequency_hz: float) -> float:
    """Decay time constant ``L/R = X / (omega R)`` (s) of an impedance ``z`` (ohm); 0 if not inductive."""
    if z.real <= 0.0 or z.imag <= 0.0:
        return 0.0
    return z.imag / (2.0 * math.pi * frequency_hz * z.real)
