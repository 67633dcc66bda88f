"""Fault type classification (AG ... ABC) from pre-fault and fault phasors.

Phase selection uses the *superimposed* currents ``dI = I_fault - I_prefault`` (the change caused by
the fault), which removes the load current: with a load of the same order as the fault current
(resistive faults up to tens of ohms on MV feeders), the total currents do not reveal the faulted
phases, the superimposed ones do (Phadke and Thorp, *Computer Relaying for Power Systems*, 2nd ed.,
section 4.6; the "delta quantities" phase selectors of modern line relays). A phase is faulted when
its superimposed current is at least ``phase_ratio`` times the largest one; ground is involved when
the superimposed zero-sequence current ``|3 dI0|`` is at least ``ground_ratio`` times the largest
phase change, or when the zero-sequence voltage rises by more than ``v0_ratio`` of the pre-fault
positive-sequence voltage.

A change is accepted as a fault only when it is unbalanced (ground involved, or negative-sequence
change ``|dI2| >= unbalance_ratio |dI1|``) or, when balanced, when it exceeds the overcurrent
pick-up (``overcurrent_ratio`` times the pre-fault current and at least ``min_fault_current_a``):
balanced load steps are not faults. A change without pre-fault voltage, or where every voltage
collapses below ``collapse_ratio`` of the pre-fault positive sequence without fault current (the
upstream breaker opened), is not a fault either.

When the superimposed currents are too small (the meter is not on the fault path, e.g. at a
secondary substation), the phases are selected from the voltage sags instead (``basis="voltage"``):
with a zero-sequence voltage rise, the sagging phase-to-ground voltages; otherwise the collapsing
phase-to-phase loop (all three loops: ABC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sma3_meter.dsp.sequence import sequence_components

__all__ = ["FAULT_TYPES", "ClassifierSettings", "FaultClassification", "classify_fault", "fault_type_name"]

FAULT_TYPES: tuple[str, ...] = ("AG", "BG", "CG", "AB", "BC", "CA", "ABG", "BCG", "CAG", "ABC")
_PAIR_NAMES = {(0, 1): "AB", (1, 2): "BC", (0, 2): "CA"}


@dataclass(frozen=True)
class ClassifierSettings:
    """Thresholds of :func:`classify_fault` (dimensionless ratios unless a unit is given)."""

    phase_ratio: float = 0.4
    ground_ratio: float = 0.1
    v0_ratio: float = 0.05
    unbalance_ratio: float = 0.2
    overcurrent_ratio: float = 1.5
    min_fault_current_a: float = 10.0
    min_sag: float = 0.1
    collapse_ratio: float = 0.2
    direction_angle_rad: float = 1.05


@dataclass(frozen=True)
class FaultClassification:
    """Outcome of :func:`classify_fault`.

    Attributes
    ----------
    fault_type : str or None
        One of :data:`FAULT_TYPES`, or None when the change is not a fault.
    phases : tuple of bool
        Faulted phases A, B, C.
    ground : bool
        Ground involved.
    basis : str
        ``"current"`` (superimposed currents) or ``"voltage"`` (voltage sags).
    reason : str
        Human-readable explanation (why not a fault, or the deciding figures).
    forward : bool
        The fault is downstream of the meter, on the measured line's side (the fault current flows
        through the meter); False for faults behind the meter or on other feeders.
    """

    fault_type: str | None
    phases: tuple[bool, bool, bool]
    ground: bool
    basis: str
    reason: str
    forward: bool = False


def fault_type_name(phases: tuple[bool, bool, bool] | list[bool], ground: bool) -> str:
    """Name of the fault type for the faulted ``phases`` (A, B, C) and ground involvement.

    Raises
    ------
    ValueError
        No phase is faulted.
    """
    idx = tuple(k for k in range(3) if phases[k])
    if not idx:
        raise ValueError("a fault involves at least one phase")
    if len(idx) == 3:
        return "ABC"
    if len(idx) == 1:
        return "ABC"[idx[0]] + "G"
    return _PAIR_NAMES[(idx[0], idx[1])] + ("G" if ground else "")


def classify_fault(
    v_pre: np.ndarray,
    i_pre: np.ndarray,
    v_fault: np.ndarray,
    i_fault: np.ndarray,
    settings: ClassifierSettings | None = None,
) -> FaultClassification:
    """Classify a disturbance from pre-fault and fault phasors.

    Parameters
    ----------
    v_pre, v_fault : numpy.ndarray of complex, shape (3,)
        Phase-to-ground voltage phasors before and during the fault (RMS V).
    i_pre, i_fault : numpy.ndarray of complex, shape (3,)
        Phase current phasors before and during the fault (RMS A), same angle reference as the
        voltages.
    settings : ClassifierSettings, optional
        Thresholds.

    Returns
    -------
    FaultClassification
    """
    s = settings or ClassifierSettings()
    v_pre, i_pre = np.asarray(v_pre, dtype=complex), np.asarray(i_pre, dtype=complex)
    v_fault, i_fault = np.asarray(v_fault, dtype=complex), np.asarray(i_fault, dtype=complex)
    for name, arr in (("v_pre", v_pre), ("i_pre", i_pre), ("v_fault", v_fault), ("i_fault", i_fault)):
        if arr.shape != (3,):
            raise ValueError(f"{name} must hold the 3 phase phasors, got shape {arr.shape}")
    d_i = i_fault - i_pre
    d_i_mag = np.abs(d_i)
    biggest = float(d_i_mag.max())
    v1_pre = abs(complex(sequence_components(v_pre)[1]))
    d_v0 = abs(complex(sequence_components(v_fault)[0] - sequence_components(v_pre)[0]))
    v0_ground = v1_pre > 0 and d_v0 >= s.v0_ratio * v1_pre
    pre_peak = float(np.abs(i_pre).max())
    if v1_pre <= 0 or float(np.abs(v_pre).min()) < s.collapse_ratio * v1_pre:
        return FaultClassification(None, (False, False, False), False, "voltage", "no pre-fault voltage")
    if float(np.abs(v_fault).max()) < s.collapse_ratio * v1_pre and float(np.abs(i_fault).max()) <= max(
        pre_peak, s.min_fault_current_a
    ):
        return FaultClassification(
            None,
            (False, False, False),
            False,
            "voltage",
            "loss of supply: voltages collapsed without fault current",
        )

    forward = _is_forward(v_fault - v_pre, d_i, s.direction_angle_rad)
    if biggest >= s.min_fault_current_a and forward:
        seq = sequence_components(d_i)
        i0, i1, i2 = (abs(complex(x)) for x in seq)
        ground = 3.0 * i0 >= s.ground_ratio * biggest or v0_ground
        phases_arr = d_i_mag >= s.phase_ratio * biggest
        unbalanced = ground or i2 >= s.unbalance_ratio * i1
        overcurrent = biggest >= s.overcurrent_ratio * pre_peak
        figures = (
            f"|dI|={np.round(d_i_mag, 1).tolist()} A, |3dI0|={3 * i0:.1f} A, "
            f"|dI2|/|dI1|={i2 / max(i1, 1e-12):.2f}"
        )
        if not unbalanced and not overcurrent:
            return FaultClassification(
                None, (False, False, False), False, "current", f"balanced change below pick-up ({figures})"
            )
        phases = (bool(phases_arr[0]), bool(phases_arr[1]), bool(phases_arr[2]))
        if sum(phases) == 3:
            ground = False
        if sum(phases) == 1:
            ground = True
        return FaultClassification(fault_type_name(phases, ground), phases, ground, "current", figures, True)

    mags_pre = np.abs(v_pre)
    sag = 1.0 - np.abs(v_fault) / mags_pre
    loops = ((0, 1), (1, 2), (2, 0))
    sag_pp = np.array([1.0 - abs(v_fault[p] - v_fault[q]) / abs(v_pre[p] - v_pre[q]) for p, q in loops])
    worst = float(max(sag.max(), sag_pp.max()))
    figures = (
        f"{'reverse ' if biggest >= s.min_fault_current_a else ''}sag={np.round(sag, 3).tolist()} pu, "
        f"loop sag={np.round(sag_pp, 3).tolist()} pu, |dV0|={d_v0:.1f} V"
    )
    if worst < s.min_sag:
        return FaultClassification(
            None,
            (False, False, False),
            False,
            "voltage",
            f"no forward fault current and no voltage sag ({figures})",
        )
    if v0_ground:
        # Ground involved: the phase-to-ground voltages of the faulted phases sag.
        picked = sag >= s.phase_ratio * float(sag.max())
        phases = (bool(picked[0]), bool(picked[1]), bool(picked[2]))
        ground = sum(phases) < 3
    elif bool(np.all(sag_pp >= 0.6 * float(sag_pp.max()))):
        phases, ground = (True, True, True), False
    else:
        # Phase-to-phase: the loop voltage between the faulted phases collapses the most.
        p, q = loops[int(np.argmax(sag_pp))]
        phases = (0 in (p, q), 1 in (p, q), 2 in (p, q))
        ground = False
    return FaultClassification(fault_type_name(phases, ground), phases, ground, "voltage", figures)


def _is_forward(d_v: np.ndarray, d_i: np.ndarray, angle_rad: float) -> bool:
    """Directional element on superimposed quantities.

    Behind a meter the network is the source: ``dV = -Z_s dI`` for a fault downstream (forward), while
    for a fault elsewhere the measured line behaves as its load, ``dV = +Z_load dI``. The sign of
    ``Re(dV conj(dI) exp(-j angle))`` summed over the positive and negative sequences tells them apart
    (the incremental-quantity directional element of line protection; Phadke and Thorp, *Computer
    Relaying for Power Systems*, section 4.6).
    """
    dv = sequence_components(d_v)
    di = sequence_components(d_i)
    rot = np.exp(-1j * angle_rad)
    torque = sum(float(np.real(dv[k] * np.conj(di[k]) * rot)) for k in (1, 2))
    return torque < 0.0
