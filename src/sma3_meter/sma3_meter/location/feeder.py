"""Sequence-domain model of the radial feeder below a meter, for impedance-based fault location.

The feeder below a meter is a tree of line sections oriented away from the meter. Every passive
element of the model (cable sections built from R1 X1 R0 X0 C1 C0, balanced constant-impedance
loads) is symmetric between phases, so in symmetrical components the three sequence networks are
decoupled and every quantity of a section is three complex scalars (zero, positive, negative). The
unbalance of a fault then appears only at the fault point.

Each section is a pi model (series impedance ``z * l``, half of the shunt admittance ``y * l`` at each
end) for any length ``l``, including the two parts of a faulted section; this matches the lumped
line model of circuit simulators such as OpenDSS. For the cable lengths of urban MV feeders
(|gamma * l| < 1e-2) the difference from the exact long-line relations is below 1e-5 relative.

References
----------
C. L. Fortescue, "Method of symmetrical co-ordinates applied to the solution of polyphase
networks", AIEE Transactions 37 (1918) 1027-1140.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from sma3_meter.dsp.sequence import from_sequence, sequence_components

__all__ = [
    "ZONE_SCALE_LIMITS",
    "FeederModel",
    "FeederState",
    "LocationError",
    "PhasorsLike",
    "PowerFlow",
    "to_phase",
    "to_sequence",
]

PROTECTIVE_KINDS = frozenset({"breaker", "recloser"})

#: Range of the active-power factor a zone's forecast loads may take from another meter's measured
#: pre-fault power; outside it the measurement is not used (:meth:`FeederModel.estimate_loads`).
ZONE_SCALE_LIMITS = (-0.2, 5.0)


class LocationError(ValueError):
    """Bad input to the fault locator; the message names what is wrong."""


class PhasorsLike(Protocol):
    """Phase-to-ground voltage and line current phasors of one meter (``MeterPhasors``-like).

    Attributes
    ----------
    v : numpy.ndarray
        Complex (3,) RMS phase-to-ground voltages of phases A, B, C, in V.
    i : numpy.ndarray
        Complex (3,) RMS currents flowing from the meter bus into the measured line, in A.
    """

    @property
    def v(self) -> np.ndarray:
        """Voltages, V."""

    @property
    def i(self) -> np.ndarray:
        """Currents, A."""


# The transformation matrices of sma3_meter.dsp.sequence, as (3, 3) arrays for the last axis.
_TO_SEQUENCE_T = np.ascontiguousarray(sequence_components(np.eye(3, dtype=complex)).T)
_TO_PHASE_T = np.ascontiguousarray(from_sequence(np.eye(3, dtype=complex)).T)


def to_sequence(x_abc: np.ndarray) -> np.ndarray:
    """Symmetrical components ``(0, 1, 2)`` of phase quantities on the last axis."""
    return np.asarray(x_abc, dtype=complex) @ _TO_SEQUENCE_T


def to_phase(x_012: np.ndarray) -> np.ndarray:
    """Phase quantities ``(A, B, C)`` of symmetrical components on the last axis."""
    return np.asarray(x_012, dtype=complex) @ _TO_PHASE_T


def _phasor_array(values: object, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=complex)
    if arr.shape != (3,):
        raise LocationError(f"{what} must be 3 complex phasors (A, B, C), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LocationError(f"{what} contains non-finite values")
    return arr


def measured_sequences(phasors: PhasorsLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated sequence voltages (V) and currents (A) of a ``MeterPhasors``-like object."""
    try:
        v = phasors.v
        i = phasors.i
    except AttributeError as exc:
        raise LocationError(f"{what} phasors need attributes 'v' and 'i'") from exc
    return to_sequence(_phasor_array(v, f"{what} voltage")), to_sequence(_phasor_array(i, f"{what} current"))


@dataclass(frozen=True)
class PowerFlow:
    """Pre-fault power measured by a meter on one section of the feeder model.

    Attributes
    ----------
    section : int
        Index of the meter's measured line in the :class:`FeederModel`.
    at_downstream_end : bool
        True when the meter sits at the section's downstream bus, False at its upstream bus.
    s_va : complex
        Three-phase complex power ``P + jQ`` flowing from the meter's bus into the section, in VA
        (negative real part at a downstream-end meter of a load-carrying section).
    meter_id : str
        The measuring meter (for reports).
    """

    section: int
    at_downstream_end: bool
    s_va: complex
    meter_id: str = ""


@dataclass(frozen=True)
class FeederState:
    """Load model and passive admittances of the feeder for one event.

    Attributes
    ----------
    load_y : numpy.ndarray
        (S, 3) sequence admittances (S) of the constant-impedance load at each section's downstream bus.
    bus_y : numpy.ndarray
        (S, 3) admittance (S) of everything at and below each section's downstream bus.
    input_y : numpy.ndarray
        (S, 3) input admittance (S) of each section with everything below it, seen from its upstream bus.
    transfer : numpy.ndarray
        (S, 3) voltage ratio downstream/upstream bus of each section when no fault is below it.
    load_scale : complex
        ``kp + j kq``: total active and reactive load of the model over the forecast totals (the
        single factor applied to every load when only the locating meter's power is known).
    rejected : tuple[PowerFlow, ...]
        Measured powers left out because the forecast loads below them would need an implausible
        factor (:data:`ZONE_SCALE_LIMITS`; e.g. a current transformer connected the wrong way round).
    """

    load_y: np.ndarray
    bus_y: np.ndarray
    input_y: np.ndarray
    transfer: np.ndarray
    load_scale: complex
    rejected: tuple[PowerFlow, ...] = ()


class FeederModel:
    """The oriented tree of line sections fed through a meter's measured line.

    Parameters
    ----------
    net : sma3_grid.model.Network
        Network description with orientation (see the shared grid API).
    meter_id : str
        Meter whose measured line is the root of the tree; the meter must sit at the line's
        upstream end (current measured positive into the line, away from the source).
    load_zero_sequence : bool
        True if the loads are star-connected with grounded neutral (they draw zero-sequence
        current); False for delta or ungrounded connection (MV/LV transformers Dyn).

    Raises
    ------
    LocationError
        If the meter is unknown, its line is not energized, or it does not look downstream.
    """

    def __init__(self, net: object, meter_id: str, load_zero_sequence: bool) -> None:
        meters = net.meters  # type: ignore[attr-defined]
        if meter_id not in meters:
            raise LocationError(f"meter {meter_id!r} is not in network {net.info.name!r}")  # type: ignore[attr-defined]
        meter = meters[meter_id]
        if meter.line_id not in set(net.energized_lines()):  # type: ignore[attr-defined]
            raise LocationError(f"meter {meter_id!r}: measured line {meter.line_id!r} is not energized")
        if net.upstream_bus(meter.line_id) != meter.bus_id:  # type: ignore[attr-defined]
            raise LocationError(
                f"meter {meter_id!r} at bus {meter.bus_id!r} is not at the upstream end of line "
                f"{meter.line_id!r}; a locator meter must look away from the source"
            )
        self.net = net
        self.meter_id = meter_id
        self.root_bus: str = meter.bus_id
        self.load_zero_sequence = load_zero_sequence
        info = net.info  # type: ignore[attr-defined]
        self.omega = 2.0 * math.pi * float(info.frequency_hz)
        self.v_phase_nominal = float(info.nominal_kv) * 1e3 / math.sqrt(3.0)

        order: list[str] = []
        parent: list[int] = []
        stack: list[tuple[str, int]] = [(meter.line_id, -1)]
        while stack:
            line_id, par = stack.pop()
            order.append(line_id)
            parent.append(par)
            me = len(order) - 1
            for child in reversed(net.children(net.downstream_bus(line_id))):  # type: ignore[attr-defined]
                stack.append((child, me))
        n = len(order)
        self.line_ids: list[str] = order
        self.index: dict[str, int] = {line_id: k for k, line_id in enumerate(order)}
        self.parent = np.array(parent, dtype=int)
        self.children: list[list[int]] = [[] for _ in range(n)]
        for k, par in enumerate(parent):
            if par >= 0:
                self.children[par].append(k)
        self.up_bus = [net.upstream_bus(lid) for lid in order]  # type: ignore[attr-defined]
        self.down_bus = [net.downstream_bus(lid) for lid in order]  # type: ignore[attr-defined]
        self.section_of_bus: dict[str, int] = {bus: k for k, bus in enumerate(self.down_bus)}

        lines = net.lines  # type: ignore[attr-defined]
        self.length = np.array([float(lines[lid].length_km) for lid in order])
        self.z = np.empty((n, 3), dtype=complex)
        self.y = np.empty((n, 3), dtype=complex)
        for k, lid in enumerate(order):
            ln = lines[lid]
            z1 = complex(ln.r1, ln.x1)
            self.z[k] = (complex(ln.r0, ln.x0), z1, z1)
            y1 = 1j * self.omega * float(ln.c1) * 1e-9
            self.y[k] = (1j * self.omega * float(ln.c0) * 1e-9, y1, y1)

        self.dist_up = np.zeros(n)
        self.depth = np.zeros(n, dtype=int)
        for k in range(n):
            par = parent[k]
            if par >= 0:
                self.dist_up[k] = self.dist_up[par] + self.length[par]
                self.depth[k] = self.depth[par] + 1

        loads = net.loads  # type: ignore[attr-defined]
        self.forecast_va = np.array(
            [complex(loads[b].p_kw, loads[b].q_kvar) * 1e3 if b in loads else 0j for b in self.down_bus]
        )
        # ancestors (root first, the section itself last) of every section
        self.ancestors: list[list[int]] = []
        for k in range(n):
            chain = [k]
            while parent[chain[-1]] >= 0:
                chain.append(parent[chain[-1]])
            self.ancestors.append(chain[::-1])
        self.zero_factor = np.array([1.0 if load_zero_sequence else 0.0, 1.0, 1.0])

    @property
    def n_sections(self) -> int:
        """Number of line sections below the meter."""
        return len(self.line_ids)

    def subtree(self, k: int) -> list[int]:
        """Section ``k`` and every section below it."""
        out = [k]
        stack = list(self.children[k])
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(self.children[c])
        return out

    def power_flow(self, meter_id: str, s_va: complex) -> PowerFlow:
        """:class:`PowerFlow` of another meter whose measured line is a section of this model.

        Raises
        ------
        LocationError
            If the meter is unknown, is the locating meter, or its measured line is not below it.
        """
        meters = self.net.meters  # type: ignore[attr-defined]
        if meter_id not in meters:
            raise LocationError(f"meter {meter_id!r} is not in the network")
        if meter_id == self.meter_id:
            raise LocationError(f"meter {meter_id!r} is the locating meter; its power is measured already")
        meter = meters[meter_id]
        k = self.index.get(meter.line_id)
        if k is None or meter.bus_id not in (self.up_bus[k], self.down_bus[k]):
            raise LocationError(
                f"meter {meter_id!r} measures line {meter.line_id!r} at bus {meter.bus_id!r}, which is not "
                f"a section of the feeder below meter {self.meter_id!r}"
            )
        s = complex(s_va)
        if not (math.isfinite(s.real) and math.isfinite(s.imag)):
            raise LocationError(f"pre-fault power of meter {meter_id!r} is not finite")
        return PowerFlow(k, meter.bus_id == self.down_bus[k], s, meter_id)

    def _zones(self, flows: list[PowerFlow]) -> np.ndarray:
        """(S,) index into ``flows`` of the innermost measurement above each section's load."""
        owner = np.zeros(self.n_sections, dtype=int)

        def key(m: int) -> tuple[int, bool]:
            return int(self.depth[flows[m].section]), flows[m].at_downstream_end

        for m in sorted(range(len(flows)), key=key):
            owner[self.subtree(flows[m].section)] = m
        return owner

    def load_admittance(self, load_va: np.ndarray, v_mag: np.ndarray) -> np.ndarray:
        """Per-phase constant-impedance load admittances (S) drawing ``load_va`` at ``v_mag``.

        Parameters
        ----------
        load_va : numpy.ndarray
            (S,) complex three-phase load power at each section's downstream bus, in VA.
        v_mag : numpy.ndarray
            (S,) RMS phase-to-ground (positive-sequence) voltage magnitudes there, in V.
        """
        return np.conj(load_va / 3.0) / v_mag**2

    def ladder(self, load_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bottom-up admittances of the passive tree.

        Parameters
        ----------
        load_y : numpy.ndarray
            (S, 3) sequence admittances of the loads at the downstream buses, in S.

        Returns
        -------
        bus_y, input_y, transfer : numpy.ndarray
            (S, 3) each: admittance at and below each downstream bus (S); input admittance of each
            section seen from its upstream bus (S); downstream/upstream voltage ratio.
        """
        load_y = np.asarray(load_y, dtype=complex)
        bus_y = np.empty_like(load_y)
        input_y = np.empty_like(load_y)
        transfer = np.empty_like(load_y)
        for q in range(3):
            bus_y[:, q], input_y[:, q], transfer[:, q] = self._ladder_one(q, load_y[:, q])
        return bus_y, input_y, transfer

    def _ladder_one(self, q: int, load_y: np.ndarray) -> tuple[list[complex], list[complex], list[complex]]:
        """:meth:`ladder` of one sequence network, in plain complex arithmetic (no per-op numpy cost)."""
        n = self.n_sections
        zl = (self.z[:, q] * self.length).tolist()
        half = (self.y[:, q] * (self.length / 2.0)).tolist()
        bus_y = load_y.tolist()
        input_y = [0j] * n
        transfer = [0j] * n
        children = self.children
        for k in range(n - 1, -1, -1):
            total = bus_y[k]
            for c in children[k]:
                total += input_y[c]
            bus_y[k] = total
            yt = total + half[k]
            den = 1.0 + zl[k] * yt
            input_y[k] = half[k] + yt / den
            transfer[k] = 1.0 / den
        return bus_y, input_y, transfer

    def estimate_loads(
        self,
        v_pre_seq: np.ndarray,
        i_pre_seq: np.ndarray,
        actual_va: np.ndarray | None = None,
        at_nominal_voltage: bool = True,
        flows: Sequence[PowerFlow] = (),
        iterations: int = 16,
    ) -> FeederState:
        """Constant-impedance load model of the event from the pre-fault measurements.

        The forecast loads are scaled (active and reactive separately) so that the model's
        positive-sequence input power equals the measured pre-fault power at the meter, losses
        and cable charging included. Pre-fault powers measured by other meters on the feeder
        (``flows``) split the feeder into zones: the loads whose innermost measurement is a given
        meter get their own factors, so that the model reproduces every measured power (the
        locating meter's zone keeps the loads not below any other meter). Each load is then turned
        into a constant admittance: the one drawing its power at nominal voltage (set-point
        semantics of a constant-impedance load, ``at_nominal_voltage``), or at its own pre-fault
        voltage found by a forward sweep from the measured voltage (constant-power semantics
        before the fault). The factors are found by fixed-point iteration (Jacobi over the zones).

        Parameters
        ----------
        v_pre_seq, i_pre_seq : numpy.ndarray
            (3,) pre-fault sequence voltage (V) and current (A) at the meter.
        actual_va : numpy.ndarray, optional
            (S,) known three-phase loads (VA) at the downstream buses; used as given (no scaling).
        at_nominal_voltage : bool
            Load powers are set-points at nominal voltage (True) or consumptions at the pre-fault
            voltage (False).
        flows : sequence of PowerFlow
            Pre-fault powers measured by other meters below the locating one (:meth:`power_flow`).
            A measurement asking for an active-power factor outside :data:`ZONE_SCALE_LIMITS` for
            its zone is left out (listed in :attr:`FeederState.rejected`) and the model refitted.
        iterations : int
            Most fixed-point iterations (one zone converges in 3-4, nested zones in a few more).
        """
        v1 = v_pre_seq[1]
        if abs(v1) < 0.1 * self.v_phase_nominal:
            raise LocationError(
                f"pre-fault positive-sequence voltage {abs(v1):.0f} V is below 10 % of nominal "
                f"{self.v_phase_nominal:.0f} V; not a pre-fault measurement"
            )
        n = self.n_sections
        measured = [PowerFlow(0, False, complex(3.0 * v1 * np.conj(i_pre_seq[1]))), *flows]
        base = self.forecast_va if actual_va is None else np.asarray(actual_va, dtype=complex)
        owner = self._zones(measured)
        p_zone = np.bincount(owner, weights=base.real, minlength=len(measured))
        q_zone = np.bincount(owner, weights=base.imag, minlength=len(measured))
        kp = np.ones(len(measured))
        kq = np.ones(len(measured))
        wanted = np.ones(len(measured))  # unclamped active-power factor asked by each measurement
        scaled = actual_va is None and float(np.sum(np.abs(base))) > 0.0
        v_mag = np.full(n, self.v_phase_nominal if at_nominal_voltage else abs(v1))
        parent = self.parent.tolist()
        for _ in range(iterations):
            load_va = base.real * kp[owner] + 1j * base.imag * kq[owner]
            y1 = self.load_admittance(load_va, v_mag)
            bus_1, input_1, transfer_1 = self._ladder_one(1, y1)
            v_up = [0j] * n
            v_down = [0j] * n
            for k in range(n):
                v_up[k] = v1 if parent[k] < 0 else v_down[parent[k]]
                v_down[k] = transfer_1[k] * v_up[k]
            previous = (kp.copy(), kq.copy())
            if scaled:
                zones = len(measured)
                p_set = np.bincount(owner, load_va.real, zones)
                setpoint = p_set + 1j * np.bincount(owner, load_va.imag, zones)
                for m, flow in enumerate(measured):
                    s_zone = complex(abs(p_zone[m]), abs(q_zone[m]))
                    if abs(s_zone) == 0.0:
                        continue  # no load of its own: nothing to scale
                    k = flow.section
                    if flow.at_downstream_end:
                        s_model = 3.0 * abs(v_down[k]) ** 2 * bus_1[k].conjugate()
                        s_meas = -flow.s_va
                    else:
                        s_model = 3.0 * abs(v_up[k]) ** 2 * input_1[k].conjugate()
                        s_meas = flow.s_va
                    target = s_meas - (s_model - setpoint[m])
                    wanted[m] = target.real / p_zone[m] if p_zone[m] > 0.0 else 1.0
                    kp[m] = max(wanted[m], 0.0)
                    kq[m] = target.imag / q_zone[m] if abs(q_zone[m]) > 0.05 * abs(s_zone) else kp[m]
            if not at_nominal_voltage:
                v_mag = np.abs(np.array(v_down))
            elif float(np.sum(np.abs(kp - previous[0]) + np.abs(kq - previous[1]))) < 1e-12:
                break
        lo, hi = ZONE_SCALE_LIMITS
        bad = [m for m in range(1, len(measured)) if not lo <= wanted[m] <= hi]
        if bad:
            kept = [f for m, f in enumerate(measured[1:], start=1) if m not in bad]
            state = self.estimate_loads(v_pre_seq, i_pre_seq, actual_va, at_nominal_voltage, kept, iterations)
            return replace(state, rejected=state.rejected + tuple(measured[m] for m in bad))
        load_va = base.real * kp[owner] + 1j * base.imag * kq[owner]
        load_y = self.load_admittance(load_va, v_mag)[:, None] * self.zero_factor[None, :]
        bus_y, input_y, transfer = self.ladder(load_y)
        p_total, q_total = float(np.sum(base.real)), float(np.sum(base.imag))
        scale = complex(
            float(np.sum(load_va.real)) / p_total if p_total else 1.0,
            float(np.sum(load_va.imag)) / q_total if q_total else 1.0,
        )
        return FeederState(load_y, bus_y, input_y, transfer, scale)

    def fault_pass(
        self, state: FeederState, v_seq: np.ndarray, i_seq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fault-state voltages and currents at every section's upstream end.

        Each section gets the values under the hypothesis that the fault is in its own subtree:
        from its parent's downstream bus voltage, the current left after the parent's load and
        the input currents of the sibling sections (passive, constant impedance, so they follow
        the depressed voltage) are subtracted. This is the load-compensation step of [1]_ and
        [2]_ generalised to sequence quantities.

        Parameters
        ----------
        state : FeederState
            Load model of the event.
        v_seq, i_seq : numpy.ndarray
            (3,) fault-state sequence voltage (V) and current (A) measured at the meter.

        Returns
        -------
        v_up, i_up, v_down : numpy.ndarray
            (S, 3) sequence voltage (V) and current into the section (A) at each upstream end, and
            the voltage at each downstream end (V).

        References
        ----------
        .. [1] R. Das, M. S. Sachdev, T. S. Sidhu, "A fault locator for radial subtransmission and
           distribution lines", IEEE PES Summer Meeting 2000, vol. 1, pp. 443-448.
        .. [2] R. H. Salim, M. Resener, A. D. Filomena, K. R. C. de Oliveira, A. S. Bretas,
           "Extended fault-location formulation for power distribution systems", IEEE Trans. Power
           Delivery 24(2) (2009) 508-516.
        """
        n = self.n_sections
        v_up = np.empty((n, 3), dtype=complex)
        i_up = np.empty((n, 3), dtype=complex)
        v_down = np.empty((n, 3), dtype=complex)
        v_up[0] = v_seq
        i_up[0] = i_seq
        zl = self.z * self.length[:, None]
        half = self.y * (self.length[:, None] / 2.0)
        for k in range(n):
            vu = v_up[k]
            series = i_up[k] - half[k] * vu
            vd = vu - zl[k] * series
            v_down[k] = vd
            kids = self.children[k]
            if kids:
                remaining = series - half[k] * vd - state.load_y[k] * vd
                total = state.bus_y[k] - state.load_y[k]
                for c in kids:
                    v_up[c] = vd
                    i_up[c] = remaining - (total - state.input_y[c]) * vd
        return v_up, i_up, v_down
