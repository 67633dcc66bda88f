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
