"""Sweep of the fault locator over simulated faults on every feeder of turin22 (issue 5 figures).

Each case: a random energized line and position, one of the ten fault types, a fault resistance
drawn evenly from the bins 0-5, 5-20 and 20-50 ohm (single-phase-to-ground: split evenly between
``rf`` and ``rg``, the loop resistance is the drawn value; two-phase-to-ground: ``rg`` uniform in
0..rf), actual loads = forecast x U(0.8, 1.2) common factor x (1 + 0.15 N(0, 1)) per load (so
most loads lie within +-30 % of the forecast), OpenDSS solution, 1 s records at 3.2 kHz with a
250 us simulator hold, 12-bit quantization and noise (sma3_sim.waveforms defaults, random
inception angle) for the feeder-head meter and every secondary meter of the feeder.

The head record goes through the locator command's path (signal-chain detection, phasors,
locator); the secondary meters' records give voltage-sag evidence over the same fault window and
their pre-fault powers, which scale the forecast loads zone by zone (``feeder_evidence``).

Printed figures:

- section accuracy: true section among the candidates, top-1, top-3 (head only; with sags and
  the secondary meters' pre-fault powers), top-1 with its 95 % Wilson score interval (300 cases
  measure a 98 % rate to about +-1.6 %, so compare seeds or run more cases);
- mean number of candidates;
- ties: cases whose top-1 is wrong because another section explains the data equally well
  (score within 5 % of the true section's) -- electrically indistinguishable from the head, and
  (with sags) indistinguishable with the secondary meters present;
- breakdown of the top-1-with-sags failures by where the best candidate lies relative to the true
  fault: ``junction`` (a section sharing a bus with the true one, and the estimated point within
  ``JUNCTION_M`` of the true point along the cables: the same place, named by the neighbouring
  section), ``wrong branch`` (a section on another branch: a sibling lateral or a lateral off the
  path), ``adjacent`` (the section just upstream or downstream across a bus, farther than
  ``JUNCTION_M``: a distance error that crosses a bus), ``same path`` (an ancestor or descendant
  section farther up or down); each with its ties;
- distance errors by fault-resistance bin: ``|X0 - Xs|`` of the best candidate (distance from the
  meter along the feeder) and the error along the true section of its candidate;
- time per event: ``locate()`` alone (head only and with sags) and the whole record path.

Usage::

    .venv/bin/python bench/bench_locator_sweep.py [--cases 300] [--seed 1] [--json out.json]
        [--network turin22|FOLDER] [--failures]

``--failures`` prints every top-1-with-sags failure (true and estimated section and point); the
JSON file also lists them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
for _pkg in ("sma3_grid", "sma3_sim", "sma3_meter"):  # a source checkout without the workspace installed
    if str(_ROOT / "src" / _pkg) not in sys.path:
        sys.path.insert(0, str(_ROOT / "src" / _pkg))

from sma3_grid.io import load_network  # noqa: E402
from sma3_meter.location import FAULT_TYPES, LocationResult, evidence_meters, locate  # noqa: E402
from sma3_meter.location.pipeline import feeder_evidence, locate_record, with_evidence  # noqa: E402
from sma3_sim.scenario import FaultScenario  # noqa: E402
from sma3_sim.solver import Simulator, SolverError  # noqa: E402
from sma3_sim.waveforms import SamplingConfig, synthesize, with_inception_angle  # noqa: E402

BINS = ((0.0, 5.0), (5.0, 20.0), (20.0, 50.0))
JUNCTION_M = 25.0  # a wrong top-1 this close (along the cables) to the true point, across a bus: junction
MAX_SKIPS_IN_A_ROW = 10  # more consecutive unsolvable scenarios: the simulator is stuck, stop
FAILURE_KINDS = ("junction", "wrong branch", "adjacent", "same path")
skipped: list[str] = []  # scenarios the simulator could not solve (reported with the figures)


@dataclass
class Case:
    rf_bin: int
    fault_resistance: float
    fault_type: str
    detected_type: str
    in_head: bool
    top1_head: bool
    top3_head: bool
    tie_head: bool
    in_sag: bool
    top1_sag: bool
    top3_sag: bool
    tie_sag: bool
    n_candidates: int
    err_meter_head_m: float
    err_meter_sag_m: float
    err_section_head_m: float
    err_section_sag_m: float
    t_locate_s: float
    t_locate_sag_s: float
    t_record_s: float
    line_id: str = ""
    position: float = 0.0
    best_line_sag: str = ""
    best_km_sag: float = math.nan  # fault distance from the upstream bus of best_line_sag
    gap_m_sag: float = math.nan  # distance along the cables between the true and the estimated point
    bus_m_sag: float = math.nan  # true point to the bus it shares with best_line_sag (failures), m
    failure: str = ""  # one of FAILURE_KINDS when top1_sag is False


class _Tree:
    """Tree distances between points on the energized lines of a network (km)."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.source = net.info.source_bus
        self._ancestors: dict[str, list[str]] = {}

    def ancestors(self, line_id: str) -> list[str]:
        """Lines from the source down to ``line_id`` (inclusive)."""
        hit = self._ancestors.get(line_id)
        if hit is None:
            parent = self.net.parent_line(self.net.upstream_bus(line_id))
            hit = ([] if parent is None else self.ancestors(parent)) + [line_id]
            self._ancestors[line_id] = hit
        return hit

    def depth_km(self, line_id: str, d_km: float) -> float:
        return self.net.distance_km(self.source, self.net.upstream_bus(line_id)) + d_km

    def gap_km(self, a: tuple[str, float], b: tuple[str, float]) -> float:
        """Distance along the cables between points (line, km from its upstream bus) ``a`` and ``b``."""
        path_a, path_b = self.ancestors(a[0]), self.ancestors(b[0])
        da, db = self.depth_km(*a), self.depth_km(*b)
        if a[0] == b[0] or a[0] in path_b or b[0] in path_a:
            return abs(da - db)
        common = 0
        while common < min(len(path_a), len(path_b)) and path_a[common] == path_b[common]:
            common += 1
        fork = self.source if common == 0 else self.net.downstream_bus(path_a[common - 1])
        return da + db - 2.0 * self.net.distance_km(self.source, fork)

    def shared_bus_m(self, true: tuple[str, float], best_line: str) -> float:
        """Distance (m) from the ``true`` point to the bus its line shares with ``best_line`` (nan: none)."""
        net = self.net
        up, down = net.upstream_bus(true[0]), net.downstream_bus(true[0])
        shared = {up, down} & {net.upstream_bus(best_line), net.downstream_bus(best_line)}
        if not shared:
            return math.nan
        return (true[1] if up in shared else net.lines[true[0]].length_km - true[1]) * 1e3

    def classify(self, true: tuple[str, float], best: tuple[str, float]) -> tuple[str, float]:
        """Failure kind (``FAILURE_KINDS``) of a wrong top-1 ``best`` and its gap to ``true`` (m)."""
        net = self.net
        gap_m = self.gap_km(true, best) * 1e3
        ends_t = {net.upstream_bus(true[0]), net.downstream_bus(true[0])}
        ends_b = {net.upstream_bus(best[0]), net.downstream_bus(best[0])}
        if ends_t & ends_b and gap_m <= JUNCTION_M:
            return "junction", gap_m
        if true[0] not in self.ancestors(best[0]) and best[0] not in self.ancestors(true[0]):
            return "wrong branch", gap_m
        return ("adjacent" if ends_t & ends_b else "same path"), gap_m


def _rank(result: LocationResult, line_id: str) -> int | None:
    for k, c in enumerate(result.candidates):
        if c.line_id == line_id:
            return k
    return None


def _tie(result: LocationResult, line_id: str) -> bool:
    """Top-1 wrong, but the true section scores within 5 % of the best (indistinguishable)."""
    k = _rank(result, line_id)
    if k is None or k == 0:
        return False
    return result.candidates[k].score >= 0.95 * result.candidates[0].score


def _errors(result: LocationResult, line_id: str, xs_km: float, true_km: float) -> tuple[float, float]:
    best = result.best
    err_meter = math.nan if best is None else abs(best.distance_from_meter_km - xs_km) * 1e3
    k = _rank(result, line_id)
    err_section = (
        math.nan if k is None else abs(result.candidates[k].distance_from_upstream_km - true_km) * 1e3
    )
    return err_meter, err_section


def run(n_cases: int, seed: int, network: str = "turin22") -> list[Case]:
    net = load_network(network)
    tree = _Tree(net)
    sim = Simulator(net)
    rng = np.random.default_rng(seed)
    lines = sorted(net.energized_lines())
    heads = {m.line_id: m.meter_id for m in net.meters.values() if m.role == "feeder_head"}
    base = SamplingConfig()
    out: list[Case] = []
    t_start = time.perf_counter()
    skipped.clear()
    k = -1
    in_a_row = 0
    while len(out) < n_cases:
        k += 1
        line_id = lines[int(rng.integers(len(lines)))]
        position = float(rng.uniform(0.0, 1.0))
        fault_type = FAULT_TYPES[int(rng.integers(len(FAULT_TYPES)))]
        b = int(rng.integers(len(BINS)))
        r = float(rng.uniform(*BINS[b]))
        if len(fault_type) == 2 and fault_type.endswith("G"):
            rf, rg = r / 2.0, r / 2.0
        elif fault_type in ("ABG", "BCG", "CAG"):
            rf, rg = r, float(rng.uniform(0.0, 1.0)) * r
        else:
            rf, rg = r, 0.0
        scenario = FaultScenario(
            line_id,
            position,
            fault_type,
            rf,
            rg,
            load_factor=float(rng.uniform(0.8, 1.2)),
            load_spread=0.15,
            seed=seed * 100_000 + k,
        )
        try:
            solution = sim.solve(scenario)
        except SolverError as exc:  # a simulator limitation, not a locator result: reported, not counted
            skipped.append(f"{scenario.to_dict()}: {exc}")
            print(f"skipped case {k}: {scenario.to_dict()}: {exc}", file=sys.stderr, flush=True)
            in_a_row += 1
            if in_a_row > MAX_SKIPS_IN_A_ROW:
                raise RuntimeError(
                    f"the simulator failed {in_a_row} scenarios in a row (from case {k - in_a_row + 1}, "
                    f"{len(out)} cases done): its solver state is stuck; last error: {exc}"
                ) from exc
            continue
        in_a_row = 0
        feeder = net.feeder_of(line_id)
        head = heads[feeder]
        config = with_inception_angle(base, seed * 100_000 + k)
        record = synthesize(net, solution, head, config, seed=seed * 100_000 + k)

        t0 = time.perf_counter()
        located = locate_record(net, record, head)
        t_record = time.perf_counter() - t0
        ph = located.phasors
        t0 = time.perf_counter()
        head_only = locate(net, head, ph.pre, ph.fault, located.fault_type, fault_sigma=ph.fault_sigma)
        t_locate = time.perf_counter() - t0

        secondaries = evidence_meters(net, head)
        records = {
            m: synthesize(net, solution, m, config, seed=seed * 100_000 + k + 7919 * (j + 1))
            for j, m in enumerate(secondaries)
        }
        sags = feeder_evidence(net, head, records, located.detection)
        t0 = time.perf_counter()
        with_sags = with_evidence(net, located, sags).result
        t_sag = time.perf_counter() - t0

        length = net.lines[line_id].length_km
        true_km = position * length
        xs_km = net.distance_km(net.meters[head].bus_id, net.upstream_bus(line_id)) + true_km
        rank_h = _rank(head_only, line_id)
        rank_s = _rank(with_sags, line_id)
        em_h, es_h = _errors(head_only, line_id, xs_km, true_km)
        em_s, es_s = _errors(with_sags, line_id, xs_km, true_km)
        best_s = with_sags.best
        best_line = "" if best_s is None else best_s.line_id
        best_km = math.nan if best_s is None else best_s.distance_from_upstream_km
        failure, gap_m, bus_m = "", math.nan, math.nan
        if best_s is not None:
            gap_m = tree.gap_km((line_id, true_km), (best_line, best_km)) * 1e3
            if rank_s != 0:
                failure, gap_m = tree.classify((line_id, true_km), (best_line, best_km))
                bus_m = tree.shared_bus_m((line_id, true_km), best_line)
        out.append(
            Case(
                rf_bin=b,
                fault_resistance=r,
                fault_type=fault_type,
                detected_type=located.fault_type,
                in_head=rank_h is not None,
                top1_head=rank_h == 0,
                top3_head=rank_h is not None and rank_h < 3,
                tie_head=_tie(head_only, line_id),
                in_sag=rank_s is not None,
                top1_sag=rank_s == 0,
                top3_sag=rank_s is not None and rank_s < 3,
                tie_sag=_tie(with_sags, line_id),
                n_candidates=len(head_only.candidates),
                err_meter_head_m=em_h,
                err_meter_sag_m=em_s,
                err_section_head_m=es_h,
                err_section_sag_m=es_s,
                t_locate_s=t_locate,
                t_locate_sag_s=t_sag,
                t_record_s=t_record,
                line_id=line_id,
                position=position,
                best_line_sag=best_line,
                best_km_sag=best_km,
                gap_m_sag=gap_m,
                bus_m_sag=bus_m,
                failure=failure if rank_s != 0 else "",
            )
        )
        if len(out) % 10 == 0 or len(out) == n_cases:
            done = len(out)
            elapsed = time.perf_counter() - t_start
            top1 = sum(c.top1_sag for c in out) / done
            inside = sum(c.in_head for c in out) / done
            print(
                f"[{done}/{n_cases}] {elapsed:.0f} s, in-candidates {inside:.3f}, top-1 with sags {top1:.3f}",
                file=sys.stderr,
                flush=True,
            )
    return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % for ``z = 1.96``)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _stats(values: list[float]) -> str:
    arr = np.array([v for v in values if math.isfinite(v)])
    if arr.size == 0:
        return "n=0"
    return (
        f"n={arr.size:3d}  median {np.median(arr):7.1f}  p95 {np.percentile(arr, 95):7.1f}  "
        f"max {arr.max():7.1f}"
    )


def summarize(cases: list[Case]) -> dict[str, Any]:
    n = len(cases)

    def frac(attr: str) -> float:
        return sum(bool(getattr(c, attr)) for c in cases) / n

    summary: dict[str, Any] = {
        "cases": n,
        "type_correct": sum(c.detected_type == c.fault_type for c in cases) / n,
        "head_in_candidates": frac("in_head"),
        "head_top1": frac("top1_head"),
        "head_top3": frac("top3_head"),
        "head_ties": sum(c.tie_head for c in cases),
        "sag_in_candidates": frac("in_sag"),
        "sag_top1": frac("top1_sag"),
        "sag_top1_interval95": wilson_interval(sum(c.top1_sag for c in cases), n),
        "sag_misses_within_2m_of_bus": sum(
            (not c.top1_sag) and math.isfinite(c.bus_m_sag) and c.bus_m_sag <= 2.0 for c in cases
        ),
        "sag_top3": frac("top3_sag"),
        "sag_ties": sum(c.tie_sag for c in cases),
        "sag_top1_excluding_ties": sum(c.top1_sag for c in cases) / max(1, n - sum(c.tie_sag for c in cases)),
        "mean_candidates": float(np.mean([c.n_candidates for c in cases])),
        "locate_ms_mean": float(np.mean([c.t_locate_s for c in cases]) * 1e3),
        "locate_ms_p95": float(np.percentile([c.t_locate_s for c in cases], 95) * 1e3),
        "locate_with_sags_ms_mean": float(np.mean([c.t_locate_sag_s for c in cases]) * 1e3),
        "record_path_ms_mean": float(np.mean([c.t_record_s for c in cases]) * 1e3),
        "bins": {},
        "failures_sag": {
            kind: {
                "cases": sum(c.failure == kind for c in cases),
                "ties": sum(c.failure == kind and c.tie_sag for c in cases),
            }
            for kind in FAILURE_KINDS
        },
        "failure_cases_sag": [
            {
                "line_id": c.line_id,
                "position": round(c.position, 4),
                "fault_type": c.fault_type,
                "fault_resistance_ohm": round(c.fault_resistance, 3),
                "best_line_id": c.best_line_sag,
                "best_km": round(c.best_km_sag, 5),
                "gap_m": round(c.gap_m_sag, 2),
                "true_to_shared_bus_m": None if math.isnan(c.bus_m_sag) else round(c.bus_m_sag, 2),
                "kind": c.failure,
                "tie": c.tie_sag,
            }
            for c in cases
            if not c.top1_sag
        ],
        "top1_sag_within_junction_m": sum(c.top1_sag or c.failure == "junction" for c in cases) / n,
    }
    for b, (lo, hi) in enumerate(BINS):
        sub = [c for c in cases if c.rf_bin == b]
        summary["bins"][f"{lo:g}-{hi:g} ohm"] = {
            "cases": len(sub),
            "head_in_candidates": sum(c.in_head for c in sub) / max(1, len(sub)),
            "sag_top1": sum(c.top1_sag for c in sub) / max(1, len(sub)),
            "mean_candidates": float(np.mean([c.n_candidates for c in sub])) if sub else math.nan,
            "error_best_head_m": _stats([c.err_meter_head_m for c in sub]),
            "error_best_sag_m": _stats([c.err_meter_sag_m for c in sub]),
            "error_true_section_head_m": _stats([c.err_section_head_m for c in sub]),
            "error_true_section_sag_m": _stats([c.err_section_sag_m for c in sub]),
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the summary to this JSON file")
    parser.add_argument("--network", default="turin22", help="shipped name or description folder")
    parser.add_argument("--failures", action="store_true", help="print every top-1-with-sags failure")
    args = parser.parse_args()
    cases = run(args.cases, args.seed, args.network)
    s = summarize(cases)
    print(f"{args.network} locator sweep: {s['cases']} cases, seed {args.seed}")
    if skipped:
        print(f"skipped {len(skipped)} scenario(s) the simulator could not solve (not counted):")
        for line in skipped:
            print(f"    {line}")
    print(f"fault type classified correctly: {s['type_correct']:.3f}")
    print(
        f"head meter only : true section among candidates {s['head_in_candidates']:.3f}, "
        f"top-1 {s['head_top1']:.3f}, top-3 {s['head_top3']:.3f}, "
        f"mean candidates {s['mean_candidates']:.2f}, ties (indistinguishable from the head) {s['head_ties']}"
    )
    lo, hi = s["sag_top1_interval95"]
    print(
        f"with sag evidence: true section among candidates {s['sag_in_candidates']:.3f}, "
        f"top-1 {s['sag_top1']:.3f} (95 % interval {lo:.3f}-{hi:.3f}), top-3 {s['sag_top3']:.3f}, "
        f"ties {s['sag_ties']}, top-1 excluding ties {s['sag_top1_excluding_ties']:.3f}; "
        f"misses with the true point within 2 m of the bus shared with the named section: "
        f"{s['sag_misses_within_2m_of_bus']}"
    )
    kinds = ", ".join(f"{k} {v['cases']} ({v['ties']} ties)" for k, v in s["failures_sag"].items())
    print(
        f"top-1 failures with sags by kind: {kinds}; top-1 counting junction cases "
        f"(estimate within {JUNCTION_M:g} m across a bus) as right {s['top1_sag_within_junction_m']:.3f}"
    )
    if args.failures:
        for f in s["failure_cases_sag"]:
            print(
                f"    {f['kind']:>12}{' (tie)' if f['tie'] else '      '}: "
                f"{f['line_id']} at {f['position']:.3f} "
                f"{f['fault_type']} {f['fault_resistance_ohm']:.1f} ohm -> {f['best_line_id']} at "
                f"{f['best_km'] * 1e3:.0f} m, {f['gap_m']:.0f} m away"
                + (
                    ""
                    if f["true_to_shared_bus_m"] is None
                    else f"; true point {f['true_to_shared_bus_m']:.0f} m from the shared bus"
                )
            )
    for name, b in s["bins"].items():
        print(
            f"rf {name:>9}: {b['cases']} cases, in-candidates {b['head_in_candidates']:.3f}, "
            f"top-1 with sags {b['sag_top1']:.3f}, mean candidates {b['mean_candidates']:.2f}"
        )
        print(f"    |X0-Xs| best candidate, head only [m]: {b['error_best_head_m']}")
        print(f"    |X0-Xs| best candidate, with sags [m]: {b['error_best_sag_m']}")
        print(f"    error on the true section, head   [m]: {b['error_true_section_head_m']}")
        print(f"    error on the true section, sags   [m]: {b['error_true_section_sag_m']}")
    print(
        f"time per event: locate() {s['locate_ms_mean']:.1f} ms mean / {s['locate_ms_p95']:.1f} ms p95 "
        f"(head only), {s['locate_with_sags_ms_mean']:.1f} ms with sags; whole record path "
        f"(detection + phasors + locate) {s['record_path_ms_mean']:.1f} ms"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(s, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
