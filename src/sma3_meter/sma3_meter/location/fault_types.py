"""Fault-point equations of the ten shunt fault types, as real linear least squares in resistances.

At the fault point the phase voltages ``V`` and the fault currents ``I`` (phase currents flowing
from the network into the fault) satisfy the fault network of the type:

- single phase to ground ``kG``: ``V_k = R * I_k`` with ``R = Rf + Rg`` (only the loop resistance is
  observable);
- phase to phase ``jk``: each phase through ``Rf`` to a floating fault node,
  ``V_j - V_k = Rf * (I_j - I_k)``;
- two phases to ground ``jkG``: each phase through ``Rf`` to a node grounded through ``Rg``,
  ``V_j = Rf I_j + Rg (I_j + I_k)`` and ``V_k = Rf I_k + Rg (I_j + I_k)``;
- three phase ``ABC``: each phase through ``Rf`` to a star point,
  ``V_a - V_b = Rf (I_a - I_b)`` and ``V_b - V_c = Rf (I_b - I_c)`` (holds grounded or not).

Each type is written ``b - sum_p theta_p * a_p = 0`` over one or two complex equations with real,
non-negative parameters ``theta`` (ohm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FAULT_TYPES", "FaultEquations", "fault_equations", "solve_resistances"]

FAULT_TYPES = ("AG", "BG", "CG", "AB", "BC", "CA", "ABG", "BCG", "CAG", "ABC")
_PHASE = {"A": 0, "B": 1, "C": 2}

#: Equation set: list of right-hand sides ``b_e`` and, per parameter, the list of coefficients ``a_pe``.
Equations = tuple[list[np.ndarray], list[list[np.ndarray]]]


@dataclass(frozen=True)
class FaultEquations:
    """Fault network of one fault type.

    Attributes
    ----------
    fault_type : str
        ``AG`` ... ``ABC``.
    parameters : tuple[str, ...]
        Names of the resistance parameters: ``("loop",)`` (Rf + Rg), ``("rf",)`` or ``("rf", "rg")``.
    faulted : tuple[int, ...]
        Faulted phase indices (0 = A).
    build : Callable
        ``build(V, I) -> (b_list, a_lists)`` for phase arrays with the phase on the last axis.
    """

    fault_type: str
    parameters: tuple[str, ...]
    faulted: tuple[int, ...]
    build: Callable[[np.ndarray, np.ndarray], Equations]


def _ground(k: int) -> Callable[[np.ndarray, np.ndarray], Equations]:
    def build(v: np.ndarray, i: np.ndarray) -> Equations:
        return [v[..., k]], [[i[..., k]]]

    return build


def _phase_phase(j: int, k: int) -> Callable[[np.ndarray, np.ndarray], Equations]:
    def build(v: np.ndarray, i: np.ndarray) -> Equations:
        return [v[..., j] - v[..., k]], [[i[..., j] - i[..., k]]]

    return build


def _two_ground(j: int, k: int) -> Callable[[np.ndarray, np.ndarray], Equations]:
    def build(v: np.ndarray, i: np.ndarray) -> Equations:
        both = i[..., j] + i[..., k]
        return [v[..., j], v[..., k]], [[i[..., j], i[..., k]], [both, both]]

    return build


def _three(v: np.ndarray, i: np.ndarray) -> Equations:
    return (
        [v[..., 0] - v[..., 1], v[..., 1] - v[..., 2]],
        [[i[..., 0] - i[..., 1], i[..., 1] - i[..., 2]]],
    )


def fault_equations(fault_type: str) -> FaultEquations:
    """Fault network of a fault type (``AG BG CG AB BC CA ABG BCG CAG ABC``).

    Raises
    ------
    ValueError
        For an unknown type.
    """
    ft = fault_type.strip().upper()
    if ft not in FAULT_TYPES:
        raise ValueError(f"unknown fault type {fault_type!r}; expected one of {' '.join(FAULT_TYPES)}")
    if ft == "ABC":
        return FaultEquations(ft, ("rf",), (0, 1, 2), _three)
    if len(ft) == 2 and ft[1] == "G":
        k = _PHASE[ft[0]]
        return FaultEquations(ft, ("loop",), (k,), _ground(k))
    j, k = _PHASE[ft[0]], _PHASE[ft[1]]
    if len(ft) == 2:
        return FaultEquations(ft, ("rf",), (j, k), _phase_phase(j, k))
    return FaultEquations(ft, ("rf", "rg"), (j, k), _two_ground(j, k))


def solve_resistances(eq: Equations) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative real least squares for the resistance parameters, vectorised.

    Parameters
    ----------
    eq : tuple
        ``(b_list, a_lists)`` with complex arrays of a common shape ``shape``.

    Returns
    -------
    theta : numpy.ndarray
        ``shape + (n_params,)`` resistances (ohm), each >= 0.
    misfit : numpy.ndarray
        ``shape`` root-mean-square misfit of the equations divided by the RMS coefficient
        magnitude, in ohm (for a single-phase fault: the apparent reactance at the fault point).
    """
    b_list, a_lists = eq
    c = sum(np.abs(b) ** 2 for b in b_list)
    h = [sum(np.real(np.conj(a) * b) for a, b in zip(col, b_list, strict=True)) for col in a_lists]
    g = [
        [sum(np.real(np.conj(ap) * aq) for ap, aq in zip(cp, cq, strict=True)) for cq in a_lists]
        for cp in a_lists
    ]
    tiny = 1e-300
    if len(a_lists) == 1:
        g00 = np.maximum(g[0][0], tiny)
        t0 = np.maximum(h[0] / g00, 0.0)
        j = c - 2.0 * t0 * h[0] + t0 * t0 * g00
        theta = t0[..., None]
        scale = g00
    else:
        g00 = np.maximum(g[0][0], tiny)
        g11 = np.maximum(g[1][1], tiny)
        g01 = g[0][1]
        det = g00 * g11 - g01 * g01
        det = np.where(np.abs(det) < tiny, tiny, det)
        u0 = (h[0] * g11 - h[1] * g01) / det
        u1 = (h[1] * g00 - h[0] * g01) / det
        options = [
            (u0, u1),
            (np.maximum(h[0] / g00, 0.0), np.zeros_like(u0)),
            (np.zeros_like(u0), np.maximum(h[1] / g11, 0.0)),
        ]
        best_j = np.full(np.shape(c), np.inf)
        t0 = np.zeros(np.shape(c))
        t1 = np.zeros(np.shape(c))
        for k, (a0, a1) in enumerate(options):
            jk = c - 2.0 * (a0 * h[0] + a1 * h[1]) + a0 * a0 * g00 + 2.0 * a0 * a1 * g01 + a1 * a1 * g11
            if k == 0:
                jk = np.where((a0 >= 0.0) & (a1 >= 0.0), jk, np.inf)
            better = jk < best_j
            best_j = np.where(better, jk, best_j)
            t0 = np.where(better, a0, t0)
            t1 = np.where(better, a1, t1)
        j = best_j
        theta = np.stack([t0, t1], axis=-1)
        scale = 0.5 * (g00 + g11)
    misfit = np.sqrt(np.maximum(j, 0.0) / scale)
    return theta, misfit
