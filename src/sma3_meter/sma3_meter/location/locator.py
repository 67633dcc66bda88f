"""Load-compensated, phase-domain impedance-based fault locator for radial branched feeders.

From one meter's pre-fault and fault-state phasors, the feeder model below the meter and the
forecast loads, :func:`locate` returns every physically feasible fault position (section, distance,
fault resistance) ranked by how well it explains the measurement and, optionally, evidence from
other meters.

Method
------
1. *Load model* (:meth:`FeederModel.estimate_loads`): the forecast loads are scaled (P and Q
   separately) so that the model reproduces the measured pre-fault power, losses and cable
   charging included, and turned into constant impedances (drawing their power at nominal
   voltage, or optionally at their pre-fault voltage), so that in the fault state their currents
   follow the depressed voltages.
2. *Walk* (:meth:`FeederModel.fault_pass`): depth-first from the meter, the fault-state voltages and
   currents are carried across each section (pi model with the cable capacitance) to its
   downstream bus; there the load current and the currents drawn by the other laterals (input
   admittance of each passive lateral times the bus voltage) are subtracted. Each section thus gets
   the voltage and current at its upstream end under the hypothesis that the fault lies below it.
3. *Fault point*: on each section, for a fault at distance ``d`` the voltage ``V_F(d)`` and the fault
   current ``I_F(d) = I_in(d) - Y_D(d) V_F(d)`` (``Y_D``: the rest of the section and everything below
   it, passive) are exact functions of ``d``; the fault network of the classified type
   (:mod:`.fault_types`) is fitted by non-negative least squares in the fault resistances, and
   ``d`` minimises the misfit (a grid then nested refinement, vectorised over sections). With exact
   data and loads the misfit is zero at the true point. This is the iterative load-compensated
   method of Girgis et al. and Das et al. and the extended formulation of Salim and Bretas, solved
   directly in ``d`` instead of by successive substitution.
4. *Candidates*: the misfit is minimised along every section (clamped onto it); a section is a
   candidate when its misfit exceeds the best section's by at most ``candidate_sigmas`` times its
   uncertainty. The uncertainty combines a floor, the load-model error and the measurement noise
   (standard errors of the averaged phasors, :class:`.record.RecordPhasors`): a resistive fault
   is located from the angle of a small fault current, so its candidate set widens to the
   sections the noise cannot exclude. Sections on different laterals at the same electrical
   distance all qualify (multiple estimation).
5. *Ranking*: scores are Gaussian likelihoods of the misfit excess, normalised to sum to 1. With
   evidence the position on each candidate section is re-estimated by maximising the joint
   likelihood with the voltage-sag magnitudes of other meters (:class:`SagEvidence`, predicted
   through the passive laterals; meters below the fault see the fault-point voltage, so sags
   also sharpen the distance) and outage reports (:class:`OutageEvidence`, checked against the
   protective device that would trip).

References
----------
A. A. Girgis, C. M. Fallon, D. L. Lubkeman, "A fault location technique for rural distribution
feeders", IEEE Trans. Industry Applications 29(6) (1993) 1170-1175.
R. Das, M. S. Sachdev, T. S. Sidhu, "A fault locator for radial subtransmission and distribution
lines", IEEE PES Summer Meeting 2000, vol. 1, pp. 443-448.
R. H. Salim, M. Resener, A. D. Filomena, K. R. C. de Oliveira, A. S. Bretas, "Extended
fault-location formulation for power distribution systems", IEEE Trans. Power Delivery 24(2)
(2009) 508-516.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .fault_types import FAULT_TYPES, fault_equations, solve_resistances
from .feeder import (
    PROTECTIVE_KINDS,
    FeederModel,
    FeederState,
    LocationError,
    PhasorsLike,
    PowerFlow,
    measured_sequences,
    to_phase,
)

__all__ = [
    "FAULT_TYPES",
    "Candidate",
    "LoadEvidence",
    "LocationError",
    "LocationResult",
    "LocatorSettings",
    "OutageEvidence",
    "SagEvidence",
    "evidence_meters",
    "feeder_model",
    "load_evidence_meters",
    "locate",
]


@dataclass(frozen=True)
class SagEvidence:
    """Fault-state voltage magnitudes measured by another meter on the feeder.

    Attributes
    ----------
    meter_id : str
        Meter of the network (typically at a secondary substation).
    v_mag : numpy.ndarray
        (3,) RMS phase-to-ground voltage magnitudes of phases A, B, C during the fault, in V.
    """

    meter_id: str
    v_mag: np.ndarray


@dataclass(frozen=True)
class OutageEvidence:
    """Whether another meter lost its voltage after the protection cleared the fault.

    Attributes
    ----------
    meter_id : str
        Meter of the network.
    outage : bool
        True for an outage alarm; False when the meter reports that it kept its voltage.
    """

    meter_id: str
    outage: bool = True


@dataclass(frozen=True)
class LoadEvidence:
    """Pre-fault power measured by another meter on the feeder, used to model the loads.

    The forecast loads below each such meter are scaled so that the model reproduces its power
    (zones, :meth:`.feeder.FeederModel.estimate_loads`) instead of sharing one factor fitted at the
    locating meter. Power needs no time synchronisation between meters.

    Attributes
    ----------
    meter_id : str
        Meter of the network whose measured line is on the feeder below the locating meter.
    s_va : complex
        Three-phase complex power ``P + jQ`` flowing from the meter's bus into its measured line
        before the fault, in VA (the sum over the phases of its ``PhasorFrame`` P and Q).
    """

    meter_id: str
    s_va: complex


@dataclass(frozen=True)
class Candidate:
    """One feasible fault position.

    Attributes
    ----------
    line_id, upstream_bus, downstream_bus : str
        Faulted section and its two end buses (oriented from the source).
    upstream_substation, downstream_substation : str
        Nearest substation buses (kind ``secondary`` or ``primary``) upstream and downstream of the
        fault along the feeder (the line ends when they are substations; downstream of a junction
        the nearest one by distance); empty when there is none downstream.
    distance_from_upstream_km : float
        Distance of the fault from ``upstream_bus`` along the section, in km.
    distance_from_meter_km : float
        Distance of the fault from the meter along the feeder, in km.
    fault_resistance_ohm : float
        ``Rf + Rg`` for single-phase-to-ground faults, else ``Rf`` (per phase), in ohm.
    ground_resistance_ohm : float | None
        ``Rg`` for two-phase-to-ground faults, in ohm; None otherwise.
    residual_ohm : float
        Misfit of the fault equations at the solution, in ohm (0 for exact data).
    evidence_misfit : float
        Root-mean-square misfit of the evidence: sag magnitudes in per unit of the nominal phase
        voltage, plus 1 per contradicted outage report; 0 without evidence.
    score : float
        Relative plausibility, the candidates' scores sum to 1.
    """

    line_id: str
    upstream_bus: str
    downstream_bus: str
    upstream_substation: str
    downstream_substation: str
    distance_from_upstream_km: float
    distance_from_meter_km: float
    fault_resistance_ohm: float
    ground_resistance_ohm: float | None
    residual_ohm: float
    evidence_misfit: float
    score: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (the locator command contract plus residual and ground resistance)."""
        return {
            "line_id": self.line_id,
            "upstream_bus": self.upstream_bus,
            "downstream_bus": self.downstream_bus,
            "upstream_substation": self.upstream_substation,
            "downstream_substation": self.downstream_substation,
            "distance_from_upstream_km": round(self.distance_from_upstream_km, 6),
            "distance_from_meter_km": round(self.distance_from_meter_km, 6),
            "fault_resistance_ohm": round(self.fault_resistance_ohm, 6),
            "ground_resistance_ohm": (
                None if self.ground_resistance_ohm is None else round(self.ground_resistance_ohm, 6)
            ),
            "score": round(self.score, 6),
            "residual_ohm": round(self.residual_ohm, 6),
        }


@dataclass(frozen=True)
class LocationResult:
    """Outcome of :func:`locate`.

    Attributes
    ----------
    meter_id : str
        Locating meter.
    fault_type : str
        Fault type used (``AG`` ... ``ABC``).
    candidates : tuple[Candidate, ...]
        Feasible positions, best first; empty when no section explains the measurement.
    load_scale : complex
        ``kp + j kq``: modelled over forecast total load (1 when actual loads were given).
    rejected_evidence : tuple[str, ...]
        Meters whose :class:`LoadEvidence` was not used: it asked for an implausible load factor
        below them (see :data:`.feeder.ZONE_SCALE_LIMITS`).
    """

    meter_id: str
    fault_type: str
    candidates: tuple[Candidate, ...]
    load_scale: complex
    rejected_evidence: tuple[str, ...] = ()

    @property
    def best(self) -> Candidate | None:
        """The best candidate, or None."""
        return self.candidates[0] if self.candidates else None

    def rejected_note(self) -> str | None:
        """A log line on :attr:`rejected_evidence`; None when no evidence was left out."""
        if not self.rejected_evidence:
            return None
        return (
            f"pre-fault power of {', '.join(self.rejected_evidence)} not used: it asks for an implausible "
            "load factor below the meter (current transformer polarity?)"
        )


@dataclass(frozen=True)
class LocatorSettings:
    """Tuning of the locator.

    Attributes
    ----------
    load_zero_sequence : bool
        Loads draw zero-sequence current (star, grounded); False for delta/Dyn transformers.
    loads_at_nominal_voltage : bool
        Load powers (forecast or actual) are set-points at nominal voltage of constant-impedance
        loads (True, as OpenDSS ``model=2``); False: powers drawn at the pre-fault voltage.
    search_margin : float
        The distance search extends this fraction of the section length beyond both ends before
        the minimiser is clamped onto the section.
    misfit_floor_ohm : float
        Floor of the misfit uncertainty (model and numerical error of bolted faults), ohm.
    load_model_error : float
        Relative error of the fault current caused by the load model (forecast vs actual loads).
    noise_gain : float
        Fraction of the phasor standard errors that reaches the misfit.
    candidate_sigmas : float
        A section is a candidate when its misfit exceeds the best one by at most this many of its
        standard uncertainties.
    max_residual_ohm : float
        Absolute misfit above which a section is never a candidate, ohm.
    max_candidates : int
        Most candidates reported.
    sag_sigma_pu : float
        Standard uncertainty of a predicted sag magnitude, per unit of nominal phase voltage. The
        default is set from the sweep bench (12-bit records, 0.1 % noise, loads +-30 % off the
        forecast): at the true fault point the predicted and measured magnitudes of the secondary
        meters differ by 0.2e-4 to 0.5e-4 pu rms (1.7e-4 pu at worst), the meters' common gain error
        cancelling because the prediction starts from the head's own measurement.
    evidence_points, evidence_rounds : int
        With evidence, each candidate's position is re-optimised on a grid of ``evidence_points``
        over the section followed by ``evidence_rounds`` refinements.
    outage_penalty : float
        Likelihood factor for each contradicted outage report.
    grid_points, refine_points, refine_rounds : int
        Search resolution: initial grid and nested refinement (each round narrows the bracket by
        ``(refine_points - 1) / 2``).
    """

    load_zero_sequence: bool = True
    loads_at_nominal_voltage: bool = True
    search_margin: float = 0.5
    misfit_floor_ohm: float = 3e-4
    load_model_error: float = 2e-4
    noise_gain: float = 0.5
    candidate_sigmas: float = 3.0
    max_residual_ohm: float = 5.0
    max_candidates: int = 30
    sag_sigma_pu: float = 0.0001
    evidence_points: int = 21
    evidence_rounds: int = 3
    outage_penalty: float = 1e-3
    grid_points: int = 33
    refine_points: int = 9
    refine_rounds: int = 7


_MODEL_CACHE: dict[tuple[int, str, bool], tuple[object, FeederModel]] = {}


def feeder_model(net: object, meter_id: str, settings: LocatorSettings | None = None) -> FeederModel:
    """The (cached) :class:`FeederModel` of a meter; the network object is kept alive by the cache."""
    cfg = settings or LocatorSettings()
    key = (id(net), meter_id, cfg.load_zero_sequence)
    hit = _MODEL_CACHE.get(key)
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_MODEL_CACHE) > 64:
        _MODEL_CACHE.clear()
    model = FeederModel(net, meter_id, cfg.load_zero_sequence)
    _MODEL_CACHE[key] = (net, model)
    return model


@dataclass
class _Walk:
    """Fault-state quantities of one event (sequence domain, per section)."""

    model: FeederModel
    state: FeederState
    v_up: np.ndarray
    i_up: np.ndarray
    v_down: np.ndarray


def _fault_point(
    walk: _Walk, sections: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase voltage and fault current at fraction ``x`` (K, P) of ``sections`` (K,), plus rest ratio.

    Returns ``(v_abc, i_abc, v_downstream_seq)`` shaped (K, P, 3): the fault-point phase voltages (V),
    the phase currents into the fault (A), and the sequence voltage at the section's downstream bus.
    """
    m = walk.model
    length = m.length[sections][:, None]
    d = (x * length)[..., None]
    rest = length[..., None] - d
    z = m.z[sections][:, None, :]
    y = m.y[sections][:, None, :]
    vu = walk.v_up[sections][:, None, :]
    iu = walk.i_up[sections][:, None, :]
    yv = walk.state.bus_y[sections][:, None, :]
    half = y * d / 2.0
    series = iu - half * vu
    vf = vu - z * d * series
    i_in = series - half * vf
    half_rest = y * rest / 2.0
    yt = yv + half_rest
    den = 1.0 + z * rest * yt
    y_down = half_rest + yt / den
    i_f = i_in - y_down * vf
    return to_phase(vf), to_phase(i_f), vf / den


def _misfit(
    walk: _Walk, fault_type: str, sections: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Misfit (ohm), resistances (ohm), apparent fault impedance (ohm) and fault current (A) at ``x``."""
    v_abc, i_abc, _ = _fault_point(walk, sections, x)
    eq = fault_equations(fault_type)
    theta, misfit = solve_resistances(eq.build(v_abc, i_abc))
    faulted = list(eq.faulted)
    i_mag = np.sqrt(np.mean(np.abs(i_abc[..., faulted]) ** 2, axis=-1))
    v_mag = np.sqrt(np.mean(np.abs(v_abc[..., faulted]) ** 2, axis=-1))
    return misfit, theta, v_mag / np.maximum(i_mag, 1e-12), i_mag


@dataclass(frozen=True)
class _Solutions:
    """Best point of every section (arrays over the sections of the feeder)."""

    x: np.ndarray  # best fraction, clamped to [0, 1]
    misfit: np.ndarray  # ohm, at x
    theta: np.ndarray  # (S, n_params) resistances, ohm
    z_fault: np.ndarray  # apparent fault impedance |V_F| / |I_F|, ohm
    i_fault: np.ndarray  # RMS fault current of the faulted phases, A


def _search(walk: _Walk, fault_type: str, cfg: LocatorSettings) -> _Solutions:
    """Minimise the misfit along every section.

    A grid over the section extended by ``search_margin`` on both sides, then nested refinement
    (vectorised over sections); the minimiser is finally clamped onto the section.
    """
    m = walk.model
    n = m.n_sections
    grid = np.linspace(-cfg.search_margin, 1.0 + cfg.search_margin, cfg.grid_points)
    step = grid[1] - grid[0]
    sections = np.arange(n)
    mis = np.nan_to_num(
        _misfit(walk, fault_type, sections, np.broadcast_to(grid, (n, grid.size)))[0], nan=np.inf
    )
    centre = grid[np.argmin(mis, axis=1)]
    half_width = np.full(n, step)
    offsets = np.linspace(-1.0, 1.0, cfg.refine_points)
    for _ in range(cfg.refine_rounds):
        xs = centre[:, None] + half_width[:, None] * offsets[None, :]
        mis = np.nan_to_num(_misfit(walk, fault_type, sections, xs)[0], nan=np.inf)
        centre = xs[np.arange(n), np.argmin(mis, axis=1)]
        half_width = half_width * 2.0 / (cfg.refine_points - 1)
    x = np.clip(centre, 0.0, 1.0)
    misfit, theta, z_fault, i_fault = _misfit(walk, fault_type, sections, x[:, None])
    misfit = np.nan_to_num(misfit, nan=np.inf)
    return _Solutions(x, misfit[:, 0], theta[:, 0, :], z_fault[:, 0], i_fault[:, 0])


def _at(
    walk: _Walk, fault_type: str, x: np.ndarray, sol: _Solutions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Misfit, resistances, apparent impedance and fault current of every section at ``x``."""
    misfit, theta, z_fault, i_fault = _misfit(walk, fault_type, np.arange(len(x)), x[:, None])
    return misfit[:, 0], theta[:, 0, :], z_fault[:, 0], i_fault[:, 0]


def _misfit_sigma(sol: _Solutions, cfg: LocatorSettings, v_sigma: float, i_sigma: float) -> np.ndarray:
    """Standard uncertainty (ohm) of each section's misfit from measurement noise and load model.

    A relative error ``e`` of the fault current moves the fault-point equations by about
    ``|Z_F| e`` and a voltage error ``dV`` by ``dV / |I_F|``; only the component in quadrature
    with the fault-loop voltage changes the misfit, hence ``noise_gain`` (about 1/2).
    """
    i_f = np.maximum(sol.i_fault, 1e-9)
    noise = cfg.noise_gain * (sol.z_fault * i_sigma + v_sigma) / i_f
    return cfg.misfit_floor_ohm + sol.z_fault * cfg.load_model_error + noise


def _noise_levels(fault_sigma: PhasorsLike | None) -> tuple[float, float]:
    """Largest standard error of the fault voltages (V) and currents (A); zeros when unknown."""
    if fault_sigma is None:
        return 0.0, 0.0
    v = np.asarray(fault_sigma.v, dtype=float)
    i = np.asarray(fault_sigma.i, dtype=float)
    if v.shape != (3,) or i.shape != (3,):
        raise LocationError("fault_sigma needs 3 voltage and 3 current standard errors")
    v_max = float(np.max(v)) if np.all(np.isfinite(v)) else 0.0
    i_max = float(np.max(i)) if np.all(np.isfinite(i)) else 0.0
    if v_max < 0 or i_max < 0:
        raise LocationError("fault_sigma standard errors must be >= 0")
    return v_max, i_max


class _SagModel:
    """Predicted fault-state voltages at the sag meters for faults on one section.

    Buses on the path to the fault take the walk's voltages; a bus on a lateral hanging off the
    path is reached through the voltage ratios of its passive sections; a bus below the faulted
    section is fed by the fault-point voltage through the rest of the section and passive sections.
    Only the latter depend on the position of the fault along the section.
    """

    def __init__(self, walk: _Walk, section: int, buses: Sequence[str]) -> None:
        m = walk.model
        self.walk = walk
        self.section = section
        on_path = set(m.ancestors[section])
        fixed: list[np.ndarray] = []
        self.fixed_index: list[int] = []
        self.below_index: list[int] = []
        below_ratio: list[np.ndarray] = []
        for j, bus in enumerate(buses):
            if bus == m.root_bus:
                fixed.append(walk.v_up[0])
                self.fixed_index.append(j)
                continue
            chain = m.ancestors[m.section_of_bus[bus]]
            split = 0
            while split < len(chain) and chain[split] in on_path:
                split += 1
            last = chain[split - 1]  # chain[:split] lies on the path to the candidate section
            ratio = np.ones(3, dtype=complex)
            for k in chain[split:]:
                ratio = ratio * walk.state.transfer[k]
            if last == section:
                self.below_index.append(j)
                below_ratio.append(ratio)
            else:
                fixed.append(walk.v_down[last] * ratio)
                self.fixed_index.append(j)
        self.n = len(buses)
        self.fixed_mag = np.abs(to_phase(np.array(fixed).reshape(-1, 3)))
        self.below_ratio = np.array(below_ratio).reshape(-1, 3)

    def magnitudes(self, v_end: np.ndarray) -> np.ndarray:
        """(P, n_buses, 3) phase voltage magnitudes (V) given the downstream-bus voltages (P, 3)."""
        p = v_end.shape[0]
        out = np.empty((p, self.n, 3))
        if self.fixed_index:
            out[:, self.fixed_index, :] = self.fixed_mag[None, :, :]
        if self.below_index:
            v = v_end[:, None, :] * self.below_ratio[None, :, :]
            out[:, self.below_index, :] = np.abs(to_phase(v))
        return out


def _tripping_device(model: FeederModel, section: int, switches: Iterable[object]) -> int | None:
    """Section whose protective device (breaker/recloser) is the nearest upstream of the fault."""
    by_line: dict[int, list[object]] = {}
    for sw in switches:
        k = model.index.get(sw.line_id)  # type: ignore[attr-defined]
        if k is not None and sw.kind in PROTECTIVE_KINDS:  # type: ignore[attr-defined]
            by_line.setdefault(k, []).append(sw)
    for k in reversed(model.ancestors[section]):
        for sw in by_line.get(k, []):
            at_far_end = sw.bus_id == model.down_bus[k]  # type: ignore[attr-defined]
            if k == section and at_far_end:
                continue
            return k
    return None


def _evidence_misfit(
    walk: _Walk,
    net: object,
    section: int,
    v_end: np.ndarray,
    sag_model: _SagModel | None,
    sags: Sequence[SagEvidence],
    outages: Sequence[OutageEvidence],
    cfg: LocatorSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood and RMS misfit of the evidence for faults on a section.

    ``v_end`` (P, 3) are the sequence voltages at the section's downstream bus for the P fault
    positions. Sag magnitudes: Gaussian with ``sag_sigma_pu`` per phase and meter. Outage reports:
    factor ``outage_penalty`` for each report contradicting the tripping of the nearest protective
    device upstream of the fault (the feeder breaker when there is none on the path).
    """
    m = walk.model
    meters = net.meters  # type: ignore[attr-defined]
    p = v_end.shape[0]
    loglik = np.zeros(p)
    squares = np.zeros(p)
    count = 0
    if sags and sag_model is not None:
        measured = np.array([s.v_mag for s in sags])
        err = (sag_model.magnitudes(v_end) - measured[None, :, :]) / m.v_phase_nominal
        squares += np.sum(err**2, axis=(1, 2))
        loglik -= 0.5 * np.sum((err / cfg.sag_sigma_pu) ** 2, axis=(1, 2))
        count += 3 * len(sags)
    if outages:
        device = _tripping_device(m, section, net.switches.values())  # type: ignore[attr-defined]
        below = None if device is None else {m.down_bus[k] for k in m.subtree(device)}
        for o in outages:
            bus = meters[o.meter_id].bus_id
            predicted_out = bus != m.root_bus if below is None else bus in below
            if predicted_out != o.outage:
                loglik += math.log(cfg.outage_penalty)
                squares += 1.0
            count += 1
    misfit = np.sqrt(squares / count) if count else np.zeros(p)
    return loglik, misfit


def _refine_with_evidence(
    walk: _Walk,
    net: object,
    fault_type: str,
    section: int,
    x0: float,
    best_misfit: float,
    sigma: float,
    sags: Sequence[SagEvidence],
    outages: Sequence[OutageEvidence],
    cfg: LocatorSettings,
) -> tuple[float, float, float]:
    """Position on a section maximising the joint likelihood of the head misfit and the evidence.

    Meters below the fault see the fault-point voltage through passive sections, so sag
    magnitudes also inform the position along the section. Returns ``(x, loglik, evidence_misfit)``.
    """

    eq = fault_equations(fault_type)
    meters = net.meters  # type: ignore[attr-defined]
    sag_model = _SagModel(walk, section, [meters[s.meter_id].bus_id for s in sags]) if sags else None

    def total(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v_abc, i_abc, v_end = _fault_point(walk, np.array([section]), xs[None, :])
        mis = solve_resistances(eq.build(v_abc, i_abc))[1][0]
        ev_ll, ev_mis = _evidence_misfit(walk, net, section, v_end[0], sag_model, sags, outages, cfg)
        return -0.5 * ((mis - best_misfit) / sigma) ** 2 + ev_ll, ev_mis

    xs = np.append(np.linspace(0.0, 1.0, cfg.evidence_points), x0)
    ll, ev = total(xs)
    j = int(np.argmax(ll))
    centre, half = float(xs[j]), 1.0 / (cfg.evidence_points - 1)
    best = (float(xs[j]), float(ll[j]), float(ev[j]))
    for _ in range(cfg.evidence_rounds):
        xs = np.clip(centre + half * np.linspace(-1.0, 1.0, cfg.refine_points), 0.0, 1.0)
        ll, ev = total(xs)
        j = int(np.argmax(ll))
        if ll[j] > best[1]:
            best = (float(xs[j]), float(ll[j]), float(ev[j]))
        centre = best[0]
        half = half * 2.0 / (cfg.refine_points - 1)
    return best


_SUBSTATION_KINDS = frozenset({"secondary", "primary"})


def _is_substation(net: object, bus: str) -> bool:
    buses = net.buses  # type: ignore[attr-defined]
    return bus in buses and buses[bus].kind in _SUBSTATION_KINDS


def _substation_up(net: object, model: FeederModel, k: int) -> str:
    """Nearest substation bus at or above the upstream end of section ``k`` (the root bus at worst)."""
    while not _is_substation(net, model.up_bus[k]) and model.parent[k] >= 0:
        k = int(model.parent[k])
    return model.up_bus[k]


def _substation_down(net: object, model: FeederModel, k: int) -> str:
    """Nearest substation bus at or below the downstream end of section ``k`` (by distance), or ''."""
    frontier = [(0.0, k)]
    best: tuple[float, str] | None = None
    while frontier:
        dist, j = frontier.pop()
        if best is not None and dist >= best[0]:
            continue
        if _is_substation(net, model.down_bus[j]):
            best = (dist, model.down_bus[j])
            continue
        frontier.extend((dist + float(model.length[c]), c) for c in model.children[j])
    return "" if best is None else best[1]


def evidence_meters(net: object, meter_id: str) -> list[str]:
    """Meters whose sag or outage reports can re-rank the locations of ``meter_id``.

    Those at buses of the feeder below the locating meter, the locating meter excluded.

    Raises
    ------
    LocationError
        If the locating meter is unknown or not at the upstream end of its line.
    """
    model = feeder_model(net, meter_id)
    return sorted(
        m.meter_id
        for m in net.meters.values()  # type: ignore[attr-defined]
        if m.meter_id != meter_id and m.bus_id in model.section_of_bus
    )


def load_evidence_meters(net: object, meter_id: str) -> list[str]:
    """Meters whose pre-fault power (:class:`LoadEvidence`) can model the loads below ``meter_id``.

    Those of :func:`evidence_meters` whose measured line is a section of the feeder below the
    locating meter, with the meter at one of its ends (not, e.g., a meter on an open tie line).
    """
    model = feeder_model(net, meter_id)
    meters = net.meters  # type: ignore[attr-defined]
    out = []
    for m in evidence_meters(net, meter_id):
        k = model.index.get(meters[m].line_id)
        if k is not None and meters[m].bus_id in (model.up_bus[k], model.down_bus[k]):
            out.append(m)
    return out


def _check_evidence(
    net: object, model: FeederModel, evidence: Iterable[object]
) -> tuple[list[SagEvidence], list[OutageEvidence], list[PowerFlow]]:
    sags: list[SagEvidence] = []
    outages: list[OutageEvidence] = []
    flows: list[PowerFlow] = []
    meters = net.meters  # type: ignore[attr-defined]
    for ev in evidence:
        if not isinstance(ev, SagEvidence | OutageEvidence | LoadEvidence):
            raise LocationError(
                f"evidence must be SagEvidence, OutageEvidence or LoadEvidence, got {type(ev).__name__}"
            )
        if ev.meter_id not in meters:
            raise LocationError(f"evidence names meter {ev.meter_id!r}, which is not in the network")
        if isinstance(ev, LoadEvidence):
            flows.append(model.power_flow(ev.meter_id, ev.s_va))
            continue
        bus = meters[ev.meter_id].bus_id
        if bus != model.root_bus and bus not in model.section_of_bus:
            raise LocationError(
                f"evidence meter {ev.meter_id!r} at bus {bus!r} is not on the feeder below meter "
                f"{model.meter_id!r}"
            )
        if isinstance(ev, SagEvidence):
            mag = np.asarray(ev.v_mag, dtype=float)
            if mag.shape != (3,) or not np.all(np.isfinite(mag)) or np.any(mag < 0):
                raise LocationError(f"sag evidence of meter {ev.meter_id!r} needs 3 magnitudes >= 0 (V)")
            sags.append(SagEvidence(ev.meter_id, mag))
        else:
            outages.append(ev)
    return sags, outages, flows


def locate(
    net: object,
    meter_id: str,
    pre: PhasorsLike,
    fault: PhasorsLike,
    fault_type: str,
    evidence: Iterable[SagEvidence | OutageEvidence | LoadEvidence] = (),
    actual_loads: Mapping[str, complex] | None = None,
    settings: LocatorSettings | None = None,
    fault_sigma: PhasorsLike | None = None,
) -> LocationResult:
    """Locate a fault on the feeder below ``meter_id`` from its pre-fault and fault phasors.

    Parameters
    ----------
    net : sma3_grid.model.Network
        Network description (lines in ohm/km and nF/km, forecast loads in kW/kvar).
    meter_id : str
        Meter at the upstream end of its measured line (usually the feeder head).
    pre, fault : PhasorsLike
        Pre-fault and fault-state phasors of the meter (``.v`` V, ``.i`` A, complex (3,) RMS).
    fault_type : str
        Classified type: ``AG BG CG AB BC CA ABG BCG CAG ABC``.
    evidence : iterable of SagEvidence, OutageEvidence or LoadEvidence
        Measurements of other meters on the feeder: sags and outages re-rank the candidates,
        pre-fault powers refine the load model (zones scaled separately).
    actual_loads : mapping bus_id -> complex kVA, optional
        Known actual loads (e.g. a simulation's ``actual_loads``); replaces the scaled forecast
        (``LoadEvidence`` is then not used).
    settings : LocatorSettings, optional
        Tuning; defaults to :class:`LocatorSettings()`.
    fault_sigma : PhasorsLike, optional
        Standard errors of the fault phasors (``.v`` V, ``.i`` A, real (3,)), e.g.
        ``RecordPhasors.fault_sigma``; they widen the candidate set and the score of resistive
        faults, whose location is sensitive to the current's angle. None: exact phasors.

    Returns
    -------
    LocationResult
        Candidates best first (may be empty when no section explains the measurement).

    Raises
    ------
    LocationError
        Unknown meter or evidence meter, malformed phasors, no pre-fault voltage, unknown type.
    """
    cfg = settings or LocatorSettings()
    try:
        ft = fault_equations(fault_type).fault_type
    except ValueError as exc:
        raise LocationError(str(exc)) from exc
    model = feeder_model(net, meter_id, cfg)
    v_pre, i_pre = measured_sequences(pre, "pre-fault")
    v_flt, i_flt = measured_sequences(fault, "fault")
    actual = None
    if actual_loads is not None:
        actual = np.array([complex(actual_loads.get(b, 0j)) * 1e3 for b in model.down_bus])
    sags, outages, flows = _check_evidence(net, model, evidence)
    state = model.estimate_loads(v_pre, i_pre, actual, cfg.loads_at_nominal_voltage, flows)
    v_up, i_up, v_down = model.fault_pass(state, v_flt, i_flt)
    walk = _Walk(model, state, v_up, i_up, v_down)
    sol = _search(walk, ft, cfg)
    v_sigma, i_sigma = _noise_levels(fault_sigma)
    sigma = _misfit_sigma(sol, cfg, v_sigma, i_sigma)
    best = float(np.min(sol.misfit))
    excess = sol.misfit - best
    chosen = np.flatnonzero((excess <= cfg.candidate_sigmas * sigma) & (sol.misfit <= cfg.max_residual_ohm))
    chosen = chosen[np.argsort(excess[chosen] / sigma[chosen])][: cfg.max_candidates]

    names = fault_equations(ft).parameters
    raw: list[tuple[float, int, float]] = []
    x_best = sol.x.copy()
    for k in chosen:
        ev_misfit = 0.0
        if sags or outages:
            x_best[k], loglik, ev_misfit = _refine_with_evidence(
                walk, net, ft, int(k), float(sol.x[k]), best, float(sigma[k]), sags, outages, cfg
            )
        else:
            loglik = -0.5 * float(excess[k] / sigma[k]) ** 2
        raw.append((loglik, int(k), ev_misfit))
    if sags or outages:
        sol = _Solutions(x_best, *(_at(walk, ft, x_best, sol)))
    top = max((item[0] for item in raw), default=0.0)
    weights = [math.exp(item[0] - top) for item in raw]
    total = sum(weights)
    candidates = []
    for (_, j, ev_misfit), w in zip(raw, weights, strict=True):
        d = float(sol.x[j]) * float(model.length[j])
        th = sol.theta[j]
        rg = float(th[1]) if names == ("rf", "rg") else None
        candidates.append(
            Candidate(
                line_id=model.line_ids[j],
                upstream_bus=model.up_bus[j],
                downstream_bus=model.down_bus[j],
                upstream_substation=_substation_up(net, model, j),
                downstream_substation=_substation_down(net, model, j),
                distance_from_upstream_km=d,
                distance_from_meter_km=float(model.dist_up[j]) + d,
                fault_resistance_ohm=float(th[0]),
                ground_resistance_ohm=rg,
                residual_ohm=float(sol.misfit[j]),
                evidence_misfit=ev_misfit,
                score=w / total,
            )
        )
    candidates.sort(key=lambda c: (-c.score, c.residual_ohm, c.distance_from_meter_km))
    rejected = tuple(sorted(f.meter_id for f in state.rejected))
    return LocationResult(meter_id, ft, tuple(candidates), state.load_scale, rejected)
