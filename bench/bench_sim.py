"""Benchmark of the fault simulator on ``turin22``.

Prints:
* load + orient ``turin22`` (sma3_grid.io.load_network), s;
* OpenDSS circuit build (Simulator), s;
* one full scenario: solve (pre-fault, fault, post-trip) + 1 s of waveforms at the feeder-head meter,
  s -- the median of several scenarios (target < 0.5 s), with its two parts;
* machine-independent figures: fault current, samples per record, DC time constant.

Run from the workspace root: ``.venv/bin/python bench/bench_sim.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src" / "sma3_grid"), str(ROOT / "src" / "sma3_sim")]

import numpy as np  # noqa: E402

from sma3_grid.io import load_network  # noqa: E402
from sma3_sim.scenario import FaultScenario  # noqa: E402
from sma3_sim.solver import Simulator  # noqa: E402
from sma3_sim.waveforms import SamplingConfig, synthesize_detailed  # noqa: E402


def main() -> None:
    """Run the benchmark and print the figures."""
    start = time.perf_counter()
    net = load_network("turin22")
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    simulator = Simulator(net)
    build_s = time.perf_counter() - start

    feeder = net.feeders()[1]
    lines = sorted(net.downstream_lines(feeder), key=lambda x: net.depth_km(net.downstream_bus(x)))
    head = next(
        m for m, meter in net.meters.items() if meter.role == "feeder_head" and meter.line_id == feeder
    )
    config = SamplingConfig(inception_angle_rad=0.0)
    solve_times, wave_times, totals = [], [], []
    first = None
    for k, line_id in enumerate(lines[:: max(1, len(lines) // 9)][:9]):
        scenario = FaultScenario(line_id, 0.5, "AG", 0.001, 0.001, load_spread=0.2, seed=k)
        t0 = time.perf_counter()
        solution = simulator.solve(scenario)
        t1 = time.perf_counter()
        synthesis = synthesize_detailed(net, solution, head, config, seed=k)
        t2 = time.perf_counter()
        solve_times.append(t1 - t0)
        wave_times.append(t2 - t1)
        totals.append(t2 - t0)
        if first is None:
            first = (scenario, solution, synthesis)

    assert first is not None
    scenario, solution, synthesis = first
    print(f"turin22 load + orient: {load_s:.3f} s  ({len(net.buses)} buses, {len(net.lines)} lines)")
    print(f"OpenDSS circuit build: {build_s:.3f} s")
    print(
        f"one scenario (solve + 1 s of waveforms at {head}), median of {len(totals)}: "
        f"{statistics.median(totals):.3f} s  (solve {statistics.median(solve_times):.3f} s, "
        f"waveforms {statistics.median(wave_times):.3f} s; target < 0.5 s)"
    )
    i_fault = np.abs(solution.fault_current)
    i_meter = abs(solution.fault[head].i[0])
    i_pre = abs(solution.pre[head].i[0])
    print(
        f"machine-independent: {scenario.fault_type} fault on {scenario.line_id} at {scenario.position}, "
        f"{solution.distance_km[head]:.4f} km from {head}: fault current {i_fault[0]:.1f} A RMS, "
        f"meter current {i_meter:.1f} A RMS (pre-fault {i_pre:.2f} A), "
        f"DC time constant {solution.dc_time_constant_s[head] * 1e3:.2f} ms, "
        f"{synthesis.record.n_samples} samples x {len(synthesis.record.channels)} channels per record"
    )


if __name__ == "__main__":
    main()
