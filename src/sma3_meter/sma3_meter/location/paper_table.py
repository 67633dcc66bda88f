"""``sma3-paper-table``: the lab protocol of the seed paper (Table II) on the simulated ``turin22`` grid.

Protocol (section III.B of Estebsari et al., SEST 2018): the feeder-head meter of the second
feeder; single-phase-to-ground faults (phase A) with fault and ground resistance 0.001 ohm in the
middle of sections A-F and at 20 % and 80 % of section G; 1 s records (0.5 s before inception),
3.2 kHz sampling of a 250 us sample-and-hold simulator, 12-bit quantization and noise
(:mod:`sma3_sim.waveforms` defaults). Each record is located exactly as ``sma3-locate`` does
(:func:`sma3_meter.location.pipeline.locate_record`): detection, phasors, locator.

The lab had one meter; our infrastructure also has 3-SMAs at secondary substations. Their records
of the same event (same sampling chain) give voltage-sag evidence that re-ranks sections the head
meter alone cannot tell apart (laterals at the same electrical distance), and pre-fault powers that
refine the load model (:func:`sma3_meter.location.pipeline.feeder_evidence`). The table shows whether
the head meter alone already ranked the faulted section first (``head`` column); ``--head-only``
reports the strict one-meter protocol.

Columns: section length, ``Xs`` (true distance of the fault from the feeder head), ``X0`` (located
distance of the best candidate), ``|de| = |X0 - Xs|``, ``de % = |de| / Xs * 100``, the two
substations bounding the located section (nearest substation buses upstream and downstream of the
fault) and whether it is the faulted section, and the paper's ``X0``.

Usage::

    sma3-paper-table [--json] [--seed S] [--load-spread F] [--head-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_grid.networks import PAPER_FEEDER_HEAD_METER, PAPER_SECTIONS
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import Simulator
from sma3_sim.waveforms import SamplingConfig, synthesize, with_inception_angle

from .locator import evidence_meters
from .pipeline import feeder_evidence, locate_record, with_evidence

__all__ = ["PAPER_TABLE_II", "PaperRow", "main", "paper_cases", "run_table"]

#: The paper's Table II: case -> (section length km, Xs km, X0 km) as published.
PAPER_TABLE_II: dict[str, tuple[float, float, float]] = {
    "A": (0.115, 1.1133, 1.0851),
    "B": (0.1123, 1.48575, 1.4584),
    "C": (0.173, 2.6084, 2.5662),
    "D": (0.2095, 5.16665, 5.1154),
    "E": (0.152, 5.9977, 5.9608),
    "F": (0.1347, 6.15305, 6.1204),
    "G20": (0.2389, 5.54868, 5.5116),
    "G80": (0.2389, 5.69202, 5.6549),
}


@dataclass(frozen=True)
class PaperRow:
    """One row of the reproduced table (distances in km)."""

    case: str
    line_id: str
    position: float
    section_length_km: float
    xs_km: float
    x0_km: float | None
    upstream_bus: str | None
    downstream_bus: str | None
    section_correct: bool
    section_correct_head_only: bool
    n_candidates: int
    paper_x0_km: float

    @property
    def abs_error_km(self) -> float | None:
        """``|X0 - Xs|`` in km (None when nothing was located)."""
        return None if self.x0_km is None else abs(self.x0_km - self.xs_km)

    @property
    def error_percent(self) -> float | None:
        """``|X0 - Xs| / Xs * 100``."""
        err = self.abs_error_km
        return None if err is None else err / self.xs_km * 100.0

    def as_dict(self) -> dict[str, object]:
        """The JSON row of ``--json``."""
        err = self.abs_error_km
        pct = self.error_percent
        return {
            "case": self.case,
            "section_length_km": round(self.section_length_km, 6),
            "xs_km": round(self.xs_km, 6),
            "x0_km": None if self.x0_km is None else round(self.x0_km, 6),
            "abs_error_km": None if err is None else round(err, 6),
            "error_percent": None if pct is None else round(pct, 4),
            "section_correct": self.section_correct,
            "section_correct_head_only": self.section_correct_head_only,
            "line_id": self.line_id,
            "upstream_bus": self.upstream_bus,
            "downstream_bus": self.downstream_bus,
            "candidates": self.n_candidates,
            "paper_x0_km": self.paper_x0_km,
        }


def paper_cases() -> list[tuple[str, str, float]]:
    """``(case, line_id, position)`` of the protocol: middle of A-F, 20 % and 80 % of G."""
    cases = [(case, PAPER_SECTIONS[case], 0.5) for case in "ABCDEF"]
    cases += [("G20", PAPER_SECTIONS["G"], 0.2), ("G80", PAPER_SECTIONS["G"], 0.8)]
    return cases


def run_table(
    net: Network, seed: int = 0, load_spread: float = 0.0, head_only: bool = False
) -> list[PaperRow]:
    """Simulate, record and locate every case of the protocol.

    Parameters
    ----------
    net : Network
        ``turin22`` (or a network with the same ``PAPER_SECTIONS`` lines and head meter).
    seed : int
        Seed of the loads, inception angles and noise.
    load_spread : float
        Relative standard deviation of each actual load around the forecast (0: the forecast).
    head_only : bool
        Rank with the feeder-head record only (no evidence from the secondary meters).
    """
    meter_id = PAPER_FEEDER_HEAD_METER
    sim = Simulator(net)
    head_bus = net.meters[meter_id].bus_id
    secondaries = evidence_meters(net, meter_id)
    rows = []
    for k, (case, line_id, position) in enumerate(paper_cases()):
        scenario = FaultScenario(
            line_id, position, "AG", 0.001, 0.001, load_factor=1.0, load_spread=load_spread, seed=seed + k
        )
        solution = sim.solve(scenario)
        config = with_inception_angle(SamplingConfig(), seed + k)
        record = synthesize(net, solution, meter_id, config, seed=seed + k)
        located = locate_record(net, record, meter_id)
        result = located.result
        if not head_only and secondaries:
            records = {
                m: synthesize(net, solution, m, config, seed=seed + k + 1000 * (j + 1))
                for j, m in enumerate(secondaries)
            }
            evidence = feeder_evidence(net, meter_id, records, located.detection)
            result = with_evidence(net, located, evidence).result
        length = net.lines[line_id].length_km
        xs = net.distance_km(head_bus, net.upstream_bus(line_id)) + position * length
        best = result.best
        head_best = located.result.best
        rows.append(
            PaperRow(
                case=case,
                line_id=line_id,
                position=position,
                section_length_km=length,
                xs_km=xs,
                x0_km=None if best is None else best.distance_from_meter_km,
                upstream_bus=None if best is None else best.upstream_substation,
                downstream_bus=None if best is None else best.downstream_substation,
                section_correct=best is not None and best.line_id == line_id,
                section_correct_head_only=head_best is not None and head_best.line_id == line_id,
                n_candidates=len(result.candidates),
                paper_x0_km=PAPER_TABLE_II[case][2],
            )
        )
    return rows


def _format(rows: Sequence[PaperRow]) -> str:
    head = (
        f"{'case':<5}{'length km':>10}{'Xs km':>10}{'X0 km':>10}{'|de| m':>9}{'de %':>8}"
        f"  {'located section (substations)':<34}{'ok':>4}{'head':>5}{'cand':>5}{'paper X0':>10}"
        f"{'paper |de| m':>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        _paper_len, paper_xs, paper_x0 = PAPER_TABLE_II[r.case]
        if r.x0_km is None:
            located = "not located"
            x0 = err = pct = "-"
        else:
            located = f"{r.upstream_bus} - {r.downstream_bus}"
            x0 = f"{r.x0_km:.4f}"
            err = f"{(r.abs_error_km or 0.0) * 1e3:.1f}"
            pct = f"{r.error_percent or 0.0:.3f}"
        lines.append(
            f"{r.case:<5}{r.section_length_km:>10.4f}{r.xs_km:>10.4f}{x0:>10}{err:>9}{pct:>8}"
            f"  {located:<34}{'yes' if r.section_correct else 'NO':>4}"
            f"{'yes' if r.section_correct_head_only else 'no':>5}{r.n_candidates:>5}"
            f"{paper_x0:>10.4f}{abs(paper_x0 - paper_xs) * 1e3:>14.2f}"
        )
    errors = [r.abs_error_km for r in rows if r.abs_error_km is not None]
    correct = sum(r.section_correct for r in rows)
    head_ok = sum(r.section_correct_head_only for r in rows)
    lines.append("-" * len(head))
    if errors:
        lines.append(
            f"sections correct: {correct}/{len(rows)} (head meter alone: {head_ok}/{len(rows)}); "
            f"max |de| = {max(errors) * 1e3:.1f} m, "
            f"mean |de| = {sum(errors) / len(errors) * 1e3:.1f} m (paper: max 51.25 m, mean 36.6 m)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-paper-table``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="sma3-paper-table",
        description="Reproduce Table II of the seed paper (fault location on the second feeder of turin22).",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--seed", type=int, default=0, help="seed of loads, inception angles and noise")
    parser.add_argument(
        "--load-spread", type=float, default=0.0, help="relative std of actual loads around the forecast"
    )
    parser.add_argument("--network", default="turin22", help="network (default: the shipped turin22)")
    parser.add_argument(
        "--head-only", action="store_true", help="strict lab protocol: no evidence from secondary meters"
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    net = load_network(args.network)
    rows = run_table(net, seed=args.seed, load_spread=args.load_spread, head_only=args.head_only)
    if args.json:
        keys = (
            "case",
            "section_length_km",
            "xs_km",
            "x0_km",
            "abs_error_km",
            "error_percent",
            "section_correct",
        )
        print(json.dumps([{k: row.as_dict()[k] for k in keys} for row in rows], indent=2))
    else:
        print(_format(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
