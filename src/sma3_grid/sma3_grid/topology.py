"""Topology queries for fault location and FDIR.

Plain functions taking a :class:`~sma3_grid.model.Network`; they build on the orientation the network
computes once at construction (``upstream_bus``, ``children``, ``downstream_lines``...), which stay
methods of :class:`~sma3_grid.model.Network`. Distances are in km along the cables.

- feeders and their parts: :func:`feeder_lines`, :func:`feeder_buses`, :func:`sections`;
- meters: :func:`feeder_head_meter`, :func:`secondary_meters`, :func:`meter_path`,
  :func:`meter_distance_km`, :func:`tree_path`;
- switching: :func:`nearest_switch_upstream`, :func:`nearest_switches_downstream`,
  :func:`isolation_plan`, :func:`deenergized_buses`, :func:`restoration_options`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sma3_grid.model import Meter, Network, Switch

__all__ = [
    "IsolationPlan",
    "RestorationOption",
    "Section",
    "deenergized_buses",
    "feeder_buses",
    "feeder_head_meter",
    "feeder_lines",
    "isolation_plan",
    "meter_distance_km",
    "meter_path",
    "nearest_switch_upstream",
    "nearest_switches_downstream",
    "restoration_options",
    "secondary_meters",
    "sections",
    "tree_path",
]


@dataclass(frozen=True, slots=True)
class Section:
    """An energized line seen from the source.

    Parameters
    ----------
    line_id : str
        The line.
    upstream_bus, downstream_bus : str
        Its ends, oriented from the source.
    length_km : float
        Length (km).
    start_km : float
        Distance (km) from the source bus (the feeder head) to ``upstream_bus``.
    feeder_id : str
        Feeder the line belongs to.
    """

    line_id: str
    upstream_bus: str
    downstream_bus: str
    length_km: float
    start_km: float
    feeder_id: str

    @property
    def end_km(self) -> float:
        """Distance (km) from the source bus to ``downstream_bus``."""
        return self.start_km + self.length_km


@dataclass(frozen=True, slots=True)
class IsolationPlan:
    """Switches to open around a faulted line and what they leave without supply.

    Parameters
    ----------
    line_id : str
        The faulted line.
    upstream : Switch or None
        Nearest suitable switch between the fault and the source (None if there is none).
    downstream : list of Switch
        Nearest suitable switch on every branch below the fault (branches without one stay in the
        faulted area).
    faulted_buses : set of str
        Buses between ``upstream`` and ``downstream``: they stay de-energized until repair.
    healthy_areas : dict of str to set of str
        For each downstream switch id, the buses it cuts off: healthy, restorable through a NOP.
    """

    line_id: str
    upstream: Switch | None
    downstream: list[Switch]
    faulted_buses: set[str]
    healthy_areas: dict[str, set[str]]

    @property
    def switches_to_open(self) -> list[str]:
        """Ids of the switches to open, upstream first."""
        ids = [self.upstream.switch_id] if self.upstream is not None else []
        return ids + [s.switch_id for s in self.downstream]


@dataclass(frozen=True, slots=True)
class RestorationOption:
    """An open switch whose closing re-supplies part of a de-energized area.

    Parameters
    ----------
    switch_id : str
        The (normally-open) switch to close.
    line_id : str
        The tie line it sits on.
    area_bus : str
        End of the tie line inside the de-energized area.
    supply_bus : str
        End of the tie line on an energized feeder.
    feeder_id : str
        Feeder that would take the area over.
    """

    switch_id: str
    line_id: str
    area_bus: str
    supply_bus: str
    feeder_id: str


# ----------------------------------------------------------------------------------- feeders
def feeder_lines(net: Network, feeder_id: str) -> list[str]:
    """Energized lines of a feeder, depth-first from its head (the feeder id is the first)."""
    if feeder_id not in net.feeders():
        raise ValueError(f"'{feeder_id}' is not a feeder (feeders: {', '.join(net.feeders())})")
    return [feeder_id, *net.subtree_lines(net.downstream_bus(feeder_id))]


def feeder_buses(net: Network, feeder_id: str) -> list[str]:
    """Energized buses of a feeder (the source excluded), depth-first from its head."""
    if feeder_id not in net.feeders():
        raise ValueError(f"'{feeder_id}' is not a feeder (feeders: {', '.join(net.feeders())})")
    return net.subtree_buses(net.downstream_bus(feeder_id))


def sections(net: Network, feeder_id: str | None = None) -> list[Section]:
    """Energized lines as oriented sections with their distance from the source.

    Parameters
    ----------
    net : Network
        The network.
    feeder_id : str, optional
        Restrict to one feeder; default all feeders, in feeder order.
    """
    feeders = net.feeders() if feeder_id is None else [feeder_id]
    out: list[Section] = []
    for fid in feeders:
        for line_id in feeder_lines(net, fid):
            up = net.upstream_bus(line_id)
            out.append(
                Section(
                    line_id,
                    up,
                    net.downstream_bus(line_id),
                    net.lines[line_id].length_km,
                    net.depth_km(up),
                    fid,
                )
            )
    return out


# ----------------------------------------------------------------------------------- meters
def feeder_head_meter(net: Network, feeder_id: str) -> Meter | None:
    """The ``feeder_head`` meter measuring the feeder's first line, if any."""
    for meter in net.meters.values():
        if meter.role == "feeder_head" and meter.line_id == feeder_id:
            return meter
    return None


def secondary_meters(net: Network, feeder_id: str) -> list[Meter]:
    """``secondary`` meters at energized buses of a feeder, nearest to the head first."""
    buses = set(feeder_buses(net, feeder_id))
    found = [m for m in net.meters.values() if m.role == "secondary" and m.bus_id in buses]
    return sorted(found, key=lambda m: (net.depth_km(m.bus_id), m.meter_id))


def tree_path(net: Network, from_bus: str, to_bus: str) -> list[str]:
    """Lines along the radial tree from one energized bus to another, in walking order."""
    top = net.common_ancestor(from_bus, to_bus)
    up = net.path_lines(top, from_bus)
    up.reverse()
    return up + net.path_lines(top, to_bus)


def meter_path(net: Network, meter_id: str, bus_id: str) -> list[str]:
    """Lines from a meter to a bus it looks at (the first is the meter's measured line).

    Raises
    ------
    ValueError
        If the path from the meter's bus to ``bus_id`` does not go through the measured line (the
        bus is not on the meter's side), or ``bus_id`` is the meter's own bus.
    """
    meter = _meter(net, meter_id)
    path = tree_path(net, meter.bus_id, bus_id)
    if not path or path[0] != meter.line_id:
        raise ValueError(
            f"bus '{bus_id}' is not reached through line '{meter.line_id}' of meter '{meter_id}'"
        )
    return path


def meter_distance_km(net: Network, meter_id: str, bus_id: str) -> float:
    """Cable length (km) from a meter to a bus it looks at (see :func:`meter_path`)."""
    return sum(net.lines[line_id].length_km for line_id in meter_path(net, meter_id, bus_id))


def _meter(net: Network, meter_id: str) -> Meter:
    try:
        return net.meters[meter_id]
    except KeyError:
        raise KeyError(f"unknown meter '{meter_id}'") from None


# ----------------------------------------------------------------------------------- switching
def _accepts(switch: Switch, kinds: Collection[str] | None, remote_only: bool) -> bool:
    return (kinds is None or switch.kind in kinds) and (switch.remote or not remote_only)


def nearest_switch_upstream(
    net: Network, line_id: str, kinds: Collection[str] | None = None, remote_only: bool = False
) -> Switch | None:
    """Nearest switch that separates a line from the source.

    A switch on the line itself counts when it sits at the line's upstream end; then the lines
    towards the source are searched (a switch at either end of them separates the fault).

    Parameters
    ----------
    net : Network
        The network.
    line_id : str
        The (faulted) energized line.
    kinds : collection of str, optional
        Accepted switch kinds (``breaker``, ``recloser``, ``load_break_switch``, ``disconnector``);
        default any.
    remote_only : bool
        Accept only remote-controlled switches.
    """
    up = net.upstream_bus(line_id)
    for sw in net.line_switches(line_id):
        if sw.bus_id == up and _accepts(sw, kinds, remote_only):
            return sw
    bus = up
    while (parent := net.parent_line(bus)) is not None:
        candidates = [s for s in net.line_switches(parent) if _accepts(s, kinds, remote_only)]
        if candidates:
            # the one nearer the fault: at the parent's downstream end first
            candidates.sort(key=lambda s: s.bus_id != bus)
            return candidates[0]
        bus = net.upstream_bus(parent)
    return None


def nearest_switches_downstream(
    net: Network, line_id: str, kinds: Collection[str] | None = None, remote_only: bool = False
) -> list[Switch]:
    """Nearest switch on every branch below a line (one per branch that has one).

    A switch on the line itself at its downstream end cuts everything below; otherwise each line
    leaving the downstream bus is followed until a suitable switch is met. Parameters as in
    :func:`nearest_switch_upstream`.
    """
    down = net.downstream_bus(line_id)
    for sw in net.line_switches(line_id):
        if sw.bus_id == down and _accepts(sw, kinds, remote_only):
            return [sw]
    found: list[Switch] = []
    stack = list(reversed(net.children(down)))
    while stack:
        child = stack.pop()
        candidates = [s for s in net.line_switches(child) if _accepts(s, kinds, remote_only)]
        if candidates:
            up = net.upstream_bus(child)
            candidates.sort(key=lambda s: s.bus_id != up)  # nearer the fault first
            found.append(candidates[0])
        else:
            stack.extend(reversed(net.children(net.downstream_bus(child))))
    return found


def isolation_plan(
    net: Network, line_id: str, kinds: Collection[str] | None = None, remote_only: bool = True
) -> IsolationPlan:
    """Switches isolating a faulted line and the areas they leave without supply.

    Parameters as in :func:`nearest_switch_upstream`; ``remote_only`` defaults to True (automatic
    isolation). The feeder breaker is a valid upstream switch when nothing nearer qualifies; with no
    upstream switch at all, the faulted area reaches up to the feeder head.
    """
    upstream = nearest_switch_upstream(net, line_id, kinds, remote_only)
    downstream = nearest_switches_downstream(net, line_id, kinds, remote_only)
    # opening a switch takes its whole line out of service (a line is open when any switch is)
    top_line = upstream.line_id if upstream is not None else net.feeder_of(line_id)
    healthy = {sw.switch_id: net.downstream_buses(sw.line_id) for sw in downstream}
    behind: set[str] = set().union(*healthy.values())
    faulted = net.downstream_buses(top_line) - behind
    return IsolationPlan(line_id, upstream, downstream, faulted, healthy)


def deenergized_buses(net: Network) -> set[str]:
    """Buses the closed network does not reach from the source."""
    return {b for b in net.buses if not net.is_energized(b)}


def restoration_options(
    net: Network, area: Iterable[str] | None = None, only_normally_open: bool = True
) -> list[RestorationOption]:
    """Open switches whose closing would re-supply buses of a de-energized area, and the feeder behind.

    Parameters
    ----------
    net : Network
        The network in its current switch state (e.g. after isolating a fault and reclosing the
        feeder breaker: ``net.with_switch_states(...)``).
    area : iterable of str, optional
        De-energized buses to re-supply (e.g. one of :attr:`IsolationPlan.healthy_areas`); default
        every de-energized bus.
    only_normally_open : bool
        Consider only normally-open points (NOPs); otherwise any open switch.

    Returns
    -------
    list of RestorationOption
        One per switch whose line joins a bus of ``area`` to an energized bus, every other switch of
        that line being closed; sorted by switch id.
    """
    wanted = deenergized_buses(net) if area is None else set(area)
    energized_in_area = sorted(b for b in wanted if net.is_energized(b))
    if energized_in_area:
        raise ValueError(f"buses {energized_in_area[:5]} of the area are energized")
    open_ids = net.open_switches
    out: list[RestorationOption] = []
    for switch_id in sorted(open_ids):
        sw = net.switches[switch_id]
        if only_normally_open and not sw.normally_open:
            continue
        others_open = [s.switch_id for s in net.line_switches(sw.line_id) if s.switch_id != switch_id]
        if any(s in open_ids for s in others_open):
            continue
        line = net.lines[sw.line_id]
        for area_bus, supply_bus in ((line.bus_a, line.bus_b), (line.bus_b, line.bus_a)):
            if area_bus in wanted and net.is_energized(supply_bus):
                # a tie straight from the source would become a feeder of its own
                feeder = sw.line_id if supply_bus == net.info.source_bus else net.feeder_of(supply_bus)
                out.append(RestorationOption(switch_id, sw.line_id, area_bus, supply_bus, feeder))
    return out
