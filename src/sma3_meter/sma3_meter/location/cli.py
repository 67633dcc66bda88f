"""``sma3-locate``: the locator command of DESIGN.md section 4.

Usage::

    sma3-locate --network DIR --record FILE.cfg --meter METER_ID

Prints one JSON object: ``fault_type``, ``inception_s`` (seconds from the record start),
``meter_id`` and ``candidates`` best first, each with ``line_id``, ``upstream_bus``,
``downstream_bus``, ``distance_from_upstream_km``, ``distance_from_meter_km``,
``fault_resistance_ohm``, ``score`` (plus ``ground_resistance_ohm`` and ``residual_ohm``).
Exit status 0 on success; 2 on bad input (missing or malformed file, wrong channels, meter not in
the network, no fault in the record) with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from sma3_grid.comtrade import ComtradeError, read_comtrade
from sma3_grid.io import load_network
from sma3_grid.model import NetworkError

from .feeder import LocationError
from .pipeline import locate_record

__all__ = ["main"]


class _InputError(Exception):
    """Bad input: the message is the one-line reason."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _InputError(message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _run(argv: Sequence[str] | None) -> dict[str, object]:
    parser = _Parser(prog="sma3-locate", description="Locate a fault from a COMTRADE record of a meter.")
    parser.add_argument("--network", required=True, help="network description folder, .xlsx or shipped name")
    parser.add_argument("--record", required=True, help="COMTRADE .cfg file of the fault record")
    parser.add_argument("--meter", required=True, help="id of the meter that took the record")
    args = parser.parse_args(argv)
    try:
        net = load_network(args.network)
    except (NetworkError, OSError, ValueError, KeyError) as exc:
        raise _InputError(f"network {args.network!r}: {exc}") from exc
    if args.meter not in net.meters:
        raise _InputError(f"meter {args.meter!r} is not in network {net.info.name!r}")
    cfg = Path(args.record)
    if not cfg.is_file():
        raise _InputError(f"record {str(cfg)!r}: no such file")
    try:
        record = read_comtrade(cfg)
    except (ComtradeError, OSError, ValueError) as exc:
        raise _InputError(f"record {str(cfg)!r}: {exc}") from exc
    try:
        located = locate_record(net, record, args.meter)
    except LocationError as exc:
        raise _InputError(f"record {str(cfg)!r}: {exc}") from exc
    return located.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-locate``; returns the exit status (0 success, 2 bad input)."""
    try:
        out = _run(argv)
    except _InputError as exc:
        print(f"sma3-locate: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
