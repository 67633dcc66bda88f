"""Network descriptions served by the catalog, as JSON of the network description contract.

Networks are loaded with :func:`sma3_grid.io.load_network` (shipped name, folder or .xlsx) on first
use and kept in memory. Only networks configured in the catalog are served, by name.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sma3_catalog.models import NetworkDescription
from sma3_grid.io import load_network
from sma3_grid.model import Network


class UnknownNetworkError(KeyError):
    """The catalog serves no network of this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown network {self.name!r} (served: {', '.join(self.known) or 'none'})"


def describe(net: Network, feeder: str | None = None) -> NetworkDescription:
    """Serialize ``net`` (or one of its feeders) to the network description contract.

    Parameters
    ----------
    net
        The network.
    feeder
        When given, keep the source bus and that feeder's energized buses and lines, with their
        switches, loads and meters; the result is a valid radial description on its own. Open
        ties (NOP lines) to other feeders are left out.

    Raises
    ------
    ValueError
        When ``feeder`` is not one of ``net.feeders()``.
    """
    if feeder is None:
        buses = list(net.buses.values())
        lines = list(net.lines.values())
    else:
        if feeder not in net.feeders():
            raise ValueError(f"network {net.info.name!r} has no feeder {feeder!r} (feeders: {net.feeders()})")
        line_ids = [lid for lid in net.energized_lines() if net.feeder_of(lid) == feeder]
        bus_ids = {net.info.source_bus}
        for lid in line_ids:
            bus_ids.update((net.lines[lid].bus_a, net.lines[lid].bus_b))
        lines = [net.lines[lid] for lid in line_ids]
        buses = [b for b in net.buses.values() if b.bus_id in bus_ids]
    kept_buses = {b.bus_id for b in buses}
    kept_lines = {ln.line_id for ln in lines}

    def rows(items: Any) -> list[dict[str, Any]]:
        return [dataclasses.asdict(item) for item in items]

    return NetworkDescription.model_validate(
        {
            "network": dataclasses.asdict(net.info),
            "feeder": feeder,
            "buses": rows(buses),
            "lines": rows(lines),
            "loads": rows(ld for ld in net.loads.values() if ld.bus_id in kept_buses),
            "switches": rows(s for s in net.switches.values() if s.line_id in kept_lines),
            "meters": rows(m for m in net.meters.values() if m.line_id in kept_lines),
        }
    )


class NetworkCatalog:
    """The networks the catalog serves: name -> source (shipped name, folder or .xlsx path).

    Parameters
    ----------
    sources
        Mapping of served name to what :func:`sma3_grid.io.load_network` accepts.
    """

    def __init__(self, sources: Mapping[str, str | Path]) -> None:
        self.sources = dict(sources)
        self._loaded: dict[str, Network] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Served network names, sorted."""
        return sorted(self.sources)

    def get(self, name: str) -> Network:
        """Return the network called ``name``, loading it on first use.

        Raises
        ------
        UnknownNetworkError
            When ``name`` is not served.
        sma3_grid.model.NetworkError
            When its description is invalid (a configuration error of the catalog).
        """
        if name not in self.sources:
            raise UnknownNetworkError(name, self.names())
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_network(self.sources[name])
            return self._loaded[name]

    def find_meter(self, meter_id: str) -> tuple[str, Network] | None:
        """Return (network name, network) of the first served network listing ``meter_id``."""
        for name in self.names():
            net = self.get(name)
            if meter_id in net.meters:
                return name, net
        return None
