"""Load + orient ``turin22`` (issue 3 target: under 0.2 s), and the cost of the topology queries.

Prints the median wall time of several runs of ``load_network("turin22")`` (CSV parsing, validation
and radial orientation), of a re-orientation after switching (``with_switch_states``), of an
isolation plan for every energized line, and the machine-independent counts of the network.

Usage: ``.venv/bin/python bench/bench_grid.py [--runs 15] [--network turin22]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import sma3_grid  # noqa: F401
except ImportError:  # running from a source checkout without the workspace installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "sma3_grid"))

from sma3_grid.io import load_network
from sma3_grid.topology import isolation_plan


def median_s(fn: Callable[[], object], runs: int) -> float:
    """Median wall time (s) of ``runs`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per figure")
    parser.add_argument("--network", default="turin22", help="shipped name or description path")
    args = parser.parse_args()

    net = load_network(args.network)
    load_s = median_s(lambda: load_network(args.network), args.runs)
    # feeder 1's breaker open too: its feeder de-energized, the rest re-oriented
    switched = set(net.open_switches) | {net.line_switches(net.feeders()[0])[0].switch_id}
    reorient_s = median_s(lambda: net.with_switch_states(switched), args.runs)
    lines = net.energized_lines()
    plans_s = median_s(lambda: [isolation_plan(net, line_id) for line_id in lines], max(3, args.runs // 3))

    n_sec = sum(b.kind == "secondary" for b in net.buses.values())
    print(
        f"network {net.info.name}: {len(net.buses)} buses ({n_sec} secondary), {len(net.lines)} lines "
        f"({len(lines)} energized), {len(net.feeders())} feeders, {len(net.switches)} switches, "
        f"{len(net.meters)} meters, {len(net.loads)} loads"
    )
    print(
        f"load + orient:            {load_s * 1000:8.1f} ms (median of {args.runs}; target < 200 ms)"
        f" -> {'OK' if load_s < 0.2 else 'TOO SLOW'}"
    )
    print(f"re-orient (switch state): {reorient_s * 1000:8.1f} ms")
    print(
        f"isolation plan, all {len(lines)} lines: {plans_s * 1000:8.1f} ms "
        f"({plans_s / len(lines) * 1e6:.0f} us per line)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
