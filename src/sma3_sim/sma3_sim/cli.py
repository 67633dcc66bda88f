"""``sma3-sim``: fault records (COMTRADE) of simulated faults, one case or a seeded sweep.

Commands
--------
``sma3-sim fault --network NET --line ID --at 0.5 --type AG --rf 0.001 [--rg 0.001] [--meter ID ...]
[--rate 3200] [--seed S] [--trip-after S] [--plot] --out DIR``
    One scenario: ``DIR/<meter>.cfg/.dat`` per meter (all meters of the network unless ``--meter``),
    ``DIR/truth.json`` (scenario, exact phasors of the recorded meters, fault current, distances,
    sampling details) and with
    ``--plot`` ``DIR/<meter>.png``.

``sma3-sim sweep --network NET --cases N --seed S --out DIR [--rf-max 50] [--load-spread 0.3] ...``
    N random scenarios (line, position, type, rf, rg, load factor, inception angle drawn from the
    seed): ``DIR/case_0001/<meter>.cfg/.dat`` and ``DIR/manifest.json`` with the truth of every case.
    By default each case records the feeder-head meters carrying the fault current.

NETWORK is a shipped network name (``mini``, ``turin22``) or a description folder / ``.xlsx``.
Bad input: exit status 2 and a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import numpy as np

from sma3_grid.comtrade import ComtradeError, write_comtrade
from sma3_grid.io import load_network
from sma3_grid.model import Network, NetworkError
from sma3_sim.opendss import SolverError
from sma3_sim.scenario import FAULT_TYPES, FaultScenario, ScenarioError
from sma3_sim.solver import FaultSolution, Simulator
from sma3_sim.waveforms import SamplingConfig, synthesize_detailed, with_inception_angle

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sma3-sim", description="Simulated 3-SMA fault records (OpenDSS + signal chain).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--network", required=True, help="shipped network name or description folder/.xlsx")
        p.add_argument("--out", required=True, type=Path, help="output folder")
        p.add_argument("--meter", action="append", default=None, help="meter id to record (repeatable)")
        p.add_argument("--rate", type=float, default=3200.0, help="meter sampling rate, Hz (3200 or 6400)")
        p.add_argument("--sim-step", type=float, default=250e-6, help="simulator step, s (0: no hold)")
        p.add_argument("--duration", type=float, default=1.0, help="record length, s")
        p.add_argument("--fault-time", type=float, default=0.5, help="fault inception in the record, s")
        p.add_argument("--vt-scale", type=float, default=3000.0, help="primary volts per DAQ volt")
        p.add_argument("--ct-scale", type=float, default=4000.0, help="primary amperes per DAQ volt")
        p.add_argument("--noise", type=float, default=0.002, help="noise at the DAQ input, V RMS")
        p.add_argument("--trip-after", type=float, default=None, help="feeder breaker trips after, s")
        p.add_argument("--load-model", choices=("z", "pq"), default="z", help="load model (default z)")
        p.add_argument("--binary", action="store_true", help="write BINARY .dat files")
        p.add_argument("--plot", action="store_true", help="also draw a waveform figure per record")
        p.add_argument("--seed", type=int, default=0, help="seed (loads, inception angle, noise)")

    fault = sub.add_parser("fault", help="simulate one fault")
    common(fault)
    fault.add_argument("--line", required=True, help="faulted line id")
    fault.add_argument("--at", type=float, default=0.5, help="position, fraction from the upstream end")
    fault.add_argument("--type", default="AG", choices=FAULT_TYPES, help="fault type")
    fault.add_argument("--rf", type=float, default=0.001, help="fault resistance, ohm")
    fault.add_argument("--rg", type=float, default=0.001, help="ground resistance, ohm")
    fault.add_argument("--load-factor", type=float, default=1.0, help="loads = forecast x factor")
    fault.add_argument("--load-spread", type=float, default=0.0, help="relative spread of each load")
    fault.add_argument("--inception-deg", type=float, default=None, help="EMF phase A at inception, deg")

    sweep = sub.add_parser("sweep", help="simulate N random faults")
    common(sweep)
    sweep.add_argument("--cases", type=int, required=True, help="number of cases")
    sweep.add_argument("--rf-max", type=float, default=50.0, help="rf drawn uniformly in [0.001, rf-max] ohm")
    sweep.add_argument(
        "--rg-max", type=float, default=0.001, help="rg drawn uniformly in [0.001, rg-max] ohm"
    )
    sweep.add_argument("--load-spread", type=float, default=0.3, help="relative spread of each load")
    sweep.add_argument(
        "--load-factor",
        type=float,
        nargs=2,
        default=(0.5, 1.0),
        metavar=("MIN", "MAX"),
        help="load factor drawn uniformly in [MIN, MAX]",
    )
    sweep.add_argument(
        "--types", nargs="+", choices=FAULT_TYPES, default=list(FAULT_TYPES), help="fault types"
    )
    sweep.add_argument("--feeder", action="append", default=None, help="restrict faults to a feeder id")
    return parser


def _config(args: argparse.Namespace) -> SamplingConfig:
    return SamplingConfig(
        sample_rate_hz=args.rate,
        sim_step_s=args.sim_step,
        duration_s=args.duration,
        fault_time_s=args.fault_time,
        vt_scale=args.vt_scale,
        ct_scale=args.ct_scale,
        noise_v_rms=args.noise,
        trip_after_s=args.trip_after,
    )


def _check_meters(net: Network, meters: list[str] | None) -> None:
    for meter_id in meters or []:
        if meter_id not in net.meters:
            raise ValueError(f"unknown meter {meter_id!r} (network meters: {', '.join(sorted(net.meters))})")


def _write_case(
    net: Network,
    solution: FaultSolution,
    meters: list[str],
    config: SamplingConfig,
    seed: int,
    folder: Path,
    binary: bool,
    plot: bool,
) -> dict[str, object]:
    """Write the records of one solved case and return its truth (JSON-ready)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = with_inception_angle(config, seed)
    scenario = solution.scenario
    line = net.lines[scenario.line_id]
    truth = solution.truth()
    # exact phasors of the recorded meters only (distances etc. stay for every meter)
    truth["pre"] = {m: solution.pre[m].to_dict() for m in meters}
    truth["fault"] = {m: solution.fault[m].to_dict() for m in meters}
    truth.update(
        {
            "upstream_bus": net.upstream_bus(scenario.line_id),
            "downstream_bus": net.downstream_bus(scenario.line_id),
            "line_length_km": line.length_km,
            "distance_from_upstream_km": scenario.position * line.length_km,
            "inception_angle_rad": config.inception_angle_rad,
            "fault_time_s": config.fault_time_s,
            "sample_rate_hz": config.sample_rate_hz,
            "sim_step_s": config.sim_step_s,
            "trip_after_s": config.trip_after_s,
            "scaling": config.scaling().to_dict(),
        }
    )
    records: dict[str, str] = {}
    saturated: dict[str, dict[str, int]] = {}
    for k, meter_id in enumerate(meters):
        synthesis = synthesize_detailed(net, solution, meter_id, config, seed=seed * 1000 + k + 1)
        cfg = write_comtrade(synthesis.record, folder / f"{meter_id}.cfg", binary=binary)
        records[meter_id] = cfg.name
        if synthesis.saturated:
            saturated[meter_id] = synthesis.saturated
            sys.stderr.write(
                f"sma3-sim: warning: {folder / cfg.name}: ADC saturation {synthesis.saturated}\n"
            )
        if plot:
            from sma3_sim.plot import plot_record

            title = (
                f"{meter_id}: {scenario.fault_type} fault on {scenario.line_id} at {scenario.position:.3f}, "
                f"rf = {scenario.rf_ohm:g} ohm, {solution.distance_km[meter_id] or 0.0:.3f} km from the meter"
            )
            plot_record(synthesis.record, folder / f"{meter_id}.png", title)
    truth["records"] = records
    truth["saturated"] = saturated
    return truth


def _run_fault(args: argparse.Namespace) -> int:
    net = load_network(args.network)
    _check_meters(net, args.meter)
    config = _config(args)
    if args.inception_deg is not None:
        config = replace(config, inception_angle_rad=math.radians(args.inception_deg))
    scenario = FaultScenario(
        line_id=args.line,
        position=args.at,
        fault_type=args.type,
        rf_ohm=args.rf,
        rg_ohm=args.rg,
        load_factor=args.load_factor,
        load_spread=args.load_spread,
        seed=args.seed,
    )
    if scenario.line_id not in net.lines:
        raise ValueError(f"unknown line {scenario.line_id!r} in network {net.info.name!r}")
    solution = Simulator(net, load_model=args.load_model).solve(scenario)
    meters = args.meter or sorted(net.meters)
    truth = _write_case(net, solution, meters, config, args.seed, args.out, args.binary, args.plot)
    truth["network"] = net.info.name
    (args.out / "truth.json").write_text(json.dumps(truth, indent=2))
    print(f"wrote {len(meters)} record(s) and truth.json to {args.out}")
    return 0


def _draw_scenarios(net: Network, args: argparse.Namespace) -> list[tuple[FaultScenario, int]]:
    """Random scenarios of a sweep (and a seed per case) from the sweep seed."""
    lines = net.energized_lines()
    if args.feeder:
        unknown = sorted(set(args.feeder) - set(net.feeders()))
        if unknown:
            raise ValueError(f"unknown feeder(s) {unknown} (feeders: {', '.join(net.feeders())})")
        lines = [x for x in lines if net.feeder_of(x) in args.feeder]
    if args.cases < 1:
        raise ValueError(f"--cases must be >= 1, got {args.cases}")
    if args.rf_max < 0.001 or args.rg_max < 0.001:
        raise ValueError("--rf-max and --rg-max must be >= 0.001 ohm")
    low, high = args.load_factor
    if not 0 <= low <= high:
        raise ValueError(f"--load-factor needs 0 <= MIN <= MAX, got {low} {high}")
    rng = np.random.default_rng(args.seed)
    out = []
    for _ in range(args.cases):
        case_seed = int(rng.integers(0, 2**31 - 1))
        scenario = FaultScenario(
            line_id=lines[int(rng.integers(len(lines)))],
            position=float(rng.uniform(0.0, 1.0)),
            fault_type=args.types[int(rng.integers(len(args.types)))],
            rf_ohm=float(rng.uniform(0.001, args.rf_max)),
            rg_ohm=float(rng.uniform(0.001, args.rg_max)),
            load_factor=float(rng.uniform(low, high)),
            load_spread=args.load_spread,
            seed=case_seed,
        )
        out.append((scenario, case_seed))
    return out


def _run_sweep(args: argparse.Namespace) -> int:
    net = load_network(args.network)
    _check_meters(net, args.meter)
    config = _config(args)
    cases = _draw_scenarios(net, args)
    simulator = Simulator(net, load_model=args.load_model)
    args.out.mkdir(parents=True, exist_ok=True)
    truths: list[dict[str, object]] = []
    started = time.monotonic()
    for k, (scenario, case_seed) in enumerate(cases, start=1):
        solution = simulator.solve(scenario)
        if args.meter:
            meters = list(args.meter)
        else:
            meters = sorted(
                m
                for m, meter in net.meters.items()
                if meter.role == "feeder_head" and solution.carries_fault_current[m]
            )
        name = f"case_{k:04d}"
        truth = _write_case(net, solution, meters, config, case_seed, args.out / name, args.binary, args.plot)
        truth["case"] = name
        truths.append(truth)
        if k == len(cases) or k % max(1, len(cases) // 20) == 0:
            elapsed = time.monotonic() - started
            sys.stderr.write(f"sma3-sim: sweep {k}/{len(cases)} cases, {elapsed:.1f} s\n")
    manifest = {"network": net.info.name, "seed": args.seed, "cases": truths}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"wrote {len(cases)} case(s) and manifest.json to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-sim``; returns the exit status (2 on bad input)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "fault":
            return _run_fault(args)
        return _run_sweep(args)
    except (NetworkError, ScenarioError, ComtradeError, SolverError, ValueError, KeyError, OSError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"sma3-sim: error: {' '.join(str(reason).split())}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
