"""Write the description folders of the shipped networks from their generators.

Run ``python -m sma3_grid.networks.build`` after changing a generator; the test suite checks that
the shipped folders equal what the generators produce.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sma3_grid.io import save_network
from sma3_grid.model import Network
from sma3_grid.networks import NETWORKS_DIR
from sma3_grid.networks.mini import build_mini


def shipped_builders() -> dict[str, Network]:
    """Generate every shipped network (name -> network)."""
    out = {"mini": build_mini()}
    try:
        from sma3_grid.networks.turin22 import generate_turin22
    except ImportError:
        return out
    out["turin22"] = generate_turin22()
    return out


def main(argv: list[str] | None = None) -> int:
    """Regenerate the shipped description folders (optionally into another directory)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=NETWORKS_DIR, help="parent folder (default: the package)")
    args = parser.parse_args(argv)
    for name, net in shipped_builders().items():
        save_network(net, args.out / name)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
