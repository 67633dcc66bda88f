"""``sma3-grid``: summary, export and drawing of network descriptions.

Every command takes NETWORK: the name of a shipped network (``mini``, ``turin22``) or the path of a
description folder or ``.xlsx`` workbook. Exit status 0 on success, 2 on bad input with a one-line
reason on stderr.

Examples
--------
::

    sma3-grid info turin22
    sma3-grid export turin22 /tmp/turin22.xlsx
    sma3-grid plot turin22 --out feeder.png --highlight L02_043 --fault L02_043:0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sma3_grid.io import load_network, save_network
from sma3_grid.model import Network, NetworkError
from sma3_grid.topology import feeder_buses, feeder_head_meter, feeder_lines, secondary_meters


def summary(net: Network) -> dict[str, Any]:
    """Counts and totals of a network (lengths in km, powers in kW/kvar)."""
    energized = net.energized_lines()
    feeders = []
    for f in net.feeders():
        buses = feeder_buses(net, f)
        lines = feeder_lines(net, f)
        head = feeder_head_meter(net, f)
        feeders.append(
            {
                "feeder_id": f,
                "buses": len(buses),
                "lines": len(lines),
                "cable_km": round(sum(net.lines[x].length_km for x in lines), 3),
                "farthest_km": round(max(net.depth_km(b) for b in buses), 3),
                "load_kw": round(sum(net.loads[b].p_kw for b in buses if b in net.loads), 1),
                "feeder_head_meter": head.meter_id if head else None,
                "secondary_meters": len(secondary_meters(net, f)),
            }
        )
    switches = Counter(s.kind for s in net.switches.values())
    return {
        "name": net.info.name,
        "nominal_kv": net.info.nominal_kv,
        "frequency_hz": net.info.frequency_hz,
        "source_bus": net.info.source_bus,
        "sc_mva_3ph": net.info.sc_mva_3ph,
        "sc_mva_1ph": net.info.sc_mva_1ph,
        "x_over_r": net.info.x_over_r,
        "buses": dict(Counter(b.kind for b in net.buses.values())),
        "lines": len(net.lines),
        "energized_lines": len(energized),
        "open_lines": len(net.lines) - len(energized),
        "cable_km": round(sum(line.length_km for line in net.lines.values()), 3),
        "loads": len(net.loads),
        "load_kw": round(sum(x.p_kw for x in net.loads.values()), 1),
        "load_kvar": round(sum(x.q_kvar for x in net.loads.values()), 1),
        "switches": dict(switches),
        "remote_switches": sum(s.remote for s in net.switches.values()),
        "normally_open": sorted(s.switch_id for s in net.switches.values() if s.normally_open),
        "meters": dict(Counter(m.role for m in net.meters.values())),
        "feeders": feeders,
    }


def _print_summary(info: dict[str, Any]) -> None:
    print(f"network {info['name']}: {info['nominal_kv']:g} kV, {info['frequency_hz']:g} Hz, ", end="")
    print(f"source {info['source_bus']}")
    up = f"{info['sc_mva_3ph']:g} MVA 3ph, {info['sc_mva_1ph']:g} MVA 1ph, X/R {info['x_over_r']:g}"
    print(f"  upstream: {up}")
    print("  buses: " + ", ".join(f"{n} {k}" for k, n in info["buses"].items()))
    print(
        f"  lines: {info['lines']} ({info['energized_lines']} energized, {info['open_lines']} open), "
        f"{info['cable_km']:.2f} km of cable"
    )
    print(f"  loads: {info['loads']}, {info['load_kw'] / 1000:.2f} MW, {info['load_kvar'] / 1000:.2f} Mvar")
    print(
        "  switches: "
        + ", ".join(f"{n} {k}" for k, n in info["switches"].items())
        + f"; {info['remote_switches']} remote, {len(info['normally_open'])} normally open"
    )
    print("  meters: " + ", ".join(f"{n} {k}" for k, n in info["meters"].items()))
    print(f"  feeders: {len(info['feeders'])}")
    print("    feeder      buses  lines  cable km  farthest km  load MW  head meter  secondary meters")
    for f in info["feeders"]:
        print(
            f"    {f['feeder_id']:<10} {f['buses']:>6} {f['lines']:>6} {f['cable_km']:>9.2f} "
            f"{f['farthest_km']:>12.2f} {f['load_kw'] / 1000:>8.2f}  {f['feeder_head_meter'] or '-':<10}  "
            f"{f['secondary_meters']:>16}"
        )


def _parse_fault(text: str) -> tuple[str, float]:
    line_id, sep, pos = text.rpartition(":")
    if not sep or not line_id:
        raise ValueError(f"--fault expects LINE:POS (e.g. L02_043:0.5), got '{text}'")
    try:
        position = float(pos)
    except ValueError:
        raise ValueError(f"--fault position '{pos}' is not a number (fraction 0..1)") from None
    return line_id, position


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sma3-grid``."""
    parser = argparse.ArgumentParser(
        prog="sma3-grid", description="MV network descriptions: info, export, plot."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print a summary of a network")
    p.add_argument("network", help="shipped network name or description folder/.xlsx")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p = sub.add_parser("export", help="write a network as a description folder or .xlsx workbook")
    p.add_argument("network", help="shipped network name or description folder/.xlsx")
    p.add_argument("out", type=Path, help="output folder, or a path ending in .xlsx")
    p = sub.add_parser("plot", help="draw a network (feeders, switches, NOPs, meters)")
    p.add_argument("network", help="shipped network name or description folder/.xlsx")
    p.add_argument("--out", type=Path, required=True, help="image file (.png, .svg, .pdf)")
    p.add_argument("--highlight", metavar="LINE", help="line to emphasise")
    p.add_argument(
        "--fault", metavar="LINE:POS", help="fault point: line id and fraction from its upstream end"
    )
    p.add_argument("--title", help="figure title")
    p.add_argument(
        "--open", metavar="SWITCH", nargs="*", default=None, help="draw with exactly these switches open"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sma3-grid``."""
    args = build_parser().parse_args(argv)
    try:
        net = load_network(args.network)
        if args.command == "info":
            info = summary(net)
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                _print_summary(info)
        elif args.command == "export":
            save_network(net, args.out)
            print(f"wrote {args.out}")
        elif args.command == "plot":
            from sma3_grid.drawing import plot_network

            if args.open is not None:
                net = net.with_switch_states(set(args.open))
            fault = _parse_fault(args.fault) if args.fault else None
            out = plot_network(net, args.out, highlight=args.highlight, fault=fault, title=args.title)
            print(f"wrote {out}")
    except BrokenPipeError:  # output piped into a pager or `head` that stopped reading
        sys.stderr.close()
        return 0
    except (NetworkError, KeyError, ValueError, OSError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"sma3-grid: error: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
