"""Benchmark networks shipped with sma3_grid.

Each shipped network is a description folder next to this module (``mini/``, ``turin22/``), written
by :mod:`sma3_grid.networks.build` from the deterministic generators :func:`build_mini` and
:func:`generate_turin22`. Load them with ``sma3_grid.io.load_network("turin22")``.

``PAPER_SECTIONS`` maps the fault cases A–G of the paper's Table II to the ids of the corresponding
lines of ``turin22`` (on the second feeder from the left, metered by ``PAPER_FEEDER_HEAD_METER``).
"""

from __future__ import annotations

from pathlib import Path

NETWORKS_DIR = Path(__file__).resolve().parent
SHIPPED = ("mini", "turin22")

#: Fault case of the paper's Table II -> line id in ``turin22`` (the same for every seed).
PAPER_SECTIONS: dict[str, str] = {
    "A": "L02_007",
    "B": "L02_010",
    "C": "L02_017",
    "D": "L02_032",
    "E": "L02_036",
    "F": "L02_043",
    "G": "L02_034",
}
#: Feeder-head meter of the paper's feeder (second from the left) in ``turin22``.
PAPER_FEEDER_HEAD_METER = "M02"
#: Feeder id (first line out of the primary) of the paper's feeder in ``turin22``.
PAPER_FEEDER = "L02_001"


def shipped_networks() -> tuple[str, ...]:
    """Names of the networks shipped with the package."""
    return SHIPPED


def shipped_network_dir(name: str) -> Path:
    """Folder of a shipped network's description.

    Raises
    ------
    KeyError
        If ``name`` is not a shipped network.
    """
    if name not in SHIPPED:
        raise KeyError(f"no shipped network '{name}' (shipped: {', '.join(SHIPPED)})")
    return NETWORKS_DIR / name
