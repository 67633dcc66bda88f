"""Fault scenarios: where, what type, which resistances and how far the loads are from the forecast.

The ten shunt fault types follow the usual naming: the faulted phases, then ``G`` when the fault
involves ground (``ABC`` is the three-phase fault without ground; for a balanced fault ground plays
no role). Resistances follow the fault block of EMT simulators (e.g. the paper's ``Ron`` and ``Rg``):
each faulted phase reaches a common fault point through ``rf_ohm`` and, for grounded faults, that
point reaches ground through ``rg_ohm``. A phase-to-ground fault therefore has ``rf + rg`` in its
loop, a phase-to-phase fault ``2 rf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "FAULT_TYPES",
    "FaultScenario",
    "ScenarioError",
    "fault_phases",
    "is_grounded",
]

FAULT_TYPES: tuple[str, ...] = ("AG", "BG", "CG", "AB", "BC", "CA", "ABG", "BCG", "CAG", "ABC")

_PHASE_INDEX = {"A": 0, "B": 1, "C": 2}


class ScenarioError(ValueError):
    """A fault scenario is invalid; the message names the field and the problem."""


def fault_phases(fault_type: str) -> tuple[int, ...]:
    """Indices (0 = A, 1 = B, 2 = C) of the phases involved in a fault type.

    Parameters
    ----------
    fault_type : str
        One of :data:`FAULT_TYPES`.

    Returns
    -------
    tuple of int
        Sorted phase indices, e.g. ``(0, 2)`` for ``CA``.
    """
    if fault_type not in FAULT_TYPES:
        raise ScenarioError(f"fault_type: unknown fault type {fault_type!r}; expected one of {FAULT_TYPES}")
    return tuple(sorted(_PHASE_INDEX[p] for p in fault_type.rstrip("G")))


def is_grounded(fault_type: str) -> bool:
    """Whether a fault type involves ground (``AG``, ``ABG``, ...)."""
    if fault_type not in FAULT_TYPES:
        raise ScenarioError(f"fault_type: unknown fault type {fault_type!r}; expected one of {FAULT_TYPES}")
    return fault_type.endswith("G")


@dataclass(frozen=True)
class FaultScenario:
    """One shunt fault on a line of a network, plus the loading of the network when it happens.

    Parameters
    ----------
    line_id : str
        Faulted line (must be energized: part of the closed radial tree).
    position : float
        Fault position as a fraction of the line length from its upstream end, 0..1.
    fault_type : str
        One of :data:`FAULT_TYPES`.
    rf_ohm : float
        Fault resistance of each faulted phase to the fault point, ohm (>= 0). Values below
        1e-6 ohm are solved as 1e-6 ohm.
    rg_ohm : float
        Resistance from the fault point to ground for grounded fault types, ohm (>= 0; ignored for
        ``AB BC CA ABC``).
    load_factor : float
        Common multiplier of every forecast load (>= 0).
    load_spread : float
        Relative standard deviation of each load around ``forecast * load_factor``: the actual load
        is ``forecast * load_factor * max(0, 1 + load_spread * N(0, 1))`` drawn per load, same
        multiplier for P and Q.
    seed : int
        Seed of the load draw (and of anything random downstream that takes the scenario's seed).
    """

    line_id: str
    position: float
    fault_type: str
    rf_ohm: float = 0.001
    rg_ohm: float = 0.001
    load_factor: float = 1.0
    load_spread: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.line_id, str) or not self.line_id:
            raise ScenarioError(f"line_id: expected a non-empty line id, got {self.line_id!r}")
        if not (math.isfinite(self.position) and 0.0 <= self.position <= 1.0):
            raise ScenarioError(f"position: must be a fraction in [0, 1], got {self.position}")
        fault_phases(self.fault_type)
        for name in ("rf_ohm", "rg_ohm", "load_factor", "load_spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ScenarioError(f"{name}: must be a finite number >= 0, got {value}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ScenarioError(f"seed: must be a non-negative integer, got {self.seed!r}")

    @property
    def phases(self) -> tuple[int, ...]:
        """Indices of the faulted phases (0 = A)."""
        return fault_phases(self.fault_type)

    @property
    def grounded(self) -> bool:
        """Whether the fault involves ground."""
        return is_grounded(self.fault_type)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dictionary of the scenario fields."""
        return {
            "line_id": self.line_id,
            "position": self.position,
            "fault_type": self.fault_type,
            "rf_ohm": self.rf_ohm,
            "rg_ohm": self.rg_ohm,
            "load_factor": self.load_factor,
            "load_spread": self.load_spread,
            "seed": self.seed,
        }
