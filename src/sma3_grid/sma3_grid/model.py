"""Network model of a radially operated MV distribution grid.

The description (buses, lines, loads, switches, meters) follows the network description contract of
DESIGN.md §4. :class:`Network` orients the radial tree from the source bus through the closed
switches when it is built, whatever order each line's ends were written in, and precomputes the
parent, children, depth and distance maps that the topology queries use.

Units: lengths in km, impedances in ohm/km, capacitances in nF/km, powers in kW/kvar, voltages in kV
line-to-line, frequency in Hz.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BUS_KINDS = ("primary", "secondary", "junction")
SWITCH_KINDS = ("breaker", "recloser", "load_break_switch", "disconnector")
METER_ROLES = ("feeder_head", "secondary")


class NetworkError(ValueError):
    """A network description is invalid.

    The message names the table (file or sheet), the row (spreadsheet numbering: the header is row 1,
    the first data row is row 2) and the problem, e.g. ``lines.csv, row 7: unknown bus 'B99' in
    column bus_b``.

    Parameters
    ----------
    problem : str
        What is wrong.
    file : str, optional
        Table where the problem is (``lines.csv``, ``network.yaml``, a sheet name...).
    row : int, optional
        Row of that table (header = row 1).
    element : str, optional
        Id of the element concerned; lets a reader that knows the rows fill ``row`` in later.
    """

    def __init__(
        self, problem: str, file: str | None = None, row: int | None = None, element: str | None = None
    ) -> None:
        self.problem = problem
        self.file = file
        self.row = row
        self.element = element
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.row is None else f"{self.file}, row {self.row}"
        return f"{where}: {self.problem}" if where else self.problem

    def located(self, file: str | None, row: int | None) -> NetworkError:
        """Return a copy of this error with its table and row set."""
        return NetworkError(self.problem, file=file, row=row, element=self.element)


@dataclass(frozen=True, slots=True)
class Bus:
    """A node of the MV network.

    Parameters
    ----------
    bus_id : str
        Unique id.
    kind : str
        ``primary`` (HV/MV substation busbar), ``secondary`` (MV/LV or MV customer substation) or
        ``junction`` (a cable joint).
    x, y : float
        Drawing coordinates (km-like units, only for pictures).
    """

    bus_id: str
    kind: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Line:
    """A three-phase MV line (cable section) between two buses; no orientation implied.

    Parameters
    ----------
    line_id : str
        Unique id.
    bus_a, bus_b : str
        End buses, in any order.
    length_km : float
        Length (km), > 0.
    r1, x1, r0, x0 : float
        Positive and zero sequence series resistance and reactance (ohm/km) at the network frequency.
    c1, c0 : float
        Positive and zero sequence shunt capacitance (nF/km).
    """

    line_id: str
    bus_a: str
    bus_b: str
    length_km: float
    r1: float
    x1: float
    r0: float
    x0: float
    c1: float
    c0: float

    def other_end(self, bus_id: str) -> str:
        """Return the end of the line that is not ``bus_id``."""
        if bus_id == self.bus_a:
            return self.bus_b
        if bus_id == self.bus_b:
            return self.bus_a
        raise ValueError(f"bus '{bus_id}' is not an end of line '{self.line_id}'")


@dataclass(frozen=True, slots=True)
class Load:
    """Forecast load at a bus (three-phase total).

    Parameters
    ----------
    bus_id : str
        Bus where the load is connected.
    p_kw : float
        Active power (kW).
    q_kvar : float
        Reactive power (kvar), positive for inductive loads.
    """

    bus_id: str
    p_kw: float
    q_kvar: float


@dataclass(frozen=True, slots=True)
class Switch:
    """A switching device at one end of a line.

    Parameters
    ----------
    switch_id : str
        Unique id.
    line_id : str
        Line the device sits on.
    bus_id : str
        The end of the line where it sits.
    kind : str
        ``breaker``, ``recloser``, ``load_break_switch`` or ``disconnector``.
    normally_open : bool
        True for a normally-open point (NOP).
    remote : bool
        True when it can be operated remotely.
    """

    switch_id: str
    line_id: str
    bus_id: str
    kind: str
    normally_open: bool
    remote: bool


@dataclass(frozen=True, slots=True)
class Meter:
    """A three-phase smart meter (3-SMA).

    Parameters
    ----------
    meter_id : str
        Unique id.
    bus_id : str
        Bus where the voltages are measured.
    line_id : str
        Measured line; positive current flows from ``bus_id`` into it.
    role : str
        ``feeder_head`` or ``secondary``.
    """

    meter_id: str
    bus_id: str
    line_id: str
    role: str


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """Network-wide data and the upstream equivalent at the primary substation.

    Parameters
    ----------
    name : str
        Network name.
    nominal_kv : float
        Nominal line-to-line voltage (kV).
    frequency_hz : float
        Nominal frequency (Hz).
    source_bus : str
        Bus of the upstream equivalent (the primary substation's MV busbar).
    sc_mva_3ph, sc_mva_1ph : float
        Three-phase and single-phase short-circuit power of the upstream equivalent (MVA).
    x_over_r : float
        X/R ratio of the upstream equivalent.
    """

    name: str
    nominal_kv: float
    frequency_hz: float
    source_bus: str
    sc_mva_3ph: float
    sc_mva_1ph: float
    x_over_r: float


@dataclass(frozen=True)
class _Tree:
    """Orientation of the closed network (internal)."""

    up: dict[str, str]  # line -> upstream bus
    down: dict[str, str]  # line -> downstream bus
    parent: dict[str, str]  # bus -> line feeding it
    children: dict[str, list[str]]  # bus -> lines leaving it downstream
    dist_km: dict[str, float]  # bus -> distance from the source (km)
    order: list[str]  # energized buses in depth-first preorder
    index: dict[str, int]  # bus -> position in ``order``
    end: dict[str, int]  # bus -> one past the last position of its subtree in ``order``
    feeder: dict[str, str]  # energized bus (not the source) -> feeder id
    lines: list[str] = field(default_factory=list)  # energized lines in preorder


class Network:
    """An immutable network description with its radial orientation.

    Parameters
    ----------
    info : NetworkInfo
        Network-wide data.
    buses, lines, loads, switches, meters : iterable or mapping
        The elements; loads are keyed by bus id, the others by their own id.
    open_switches : iterable of str, optional
        Ids of the switches that are open. Default: the normally-open ones.
    require_energized : bool, optional
        If True (default), a bus that the closed network does not reach from the source is an
        error (``islanded bus``). :meth:`with_switch_states` builds networks with this off, so an
        isolated area may be de-energized.

    Raises
    ------
    NetworkError
        Duplicate or unknown ids, a switch or meter not at an end of its line, a loop in the closed
        network, an islanded bus, a non-positive length. ``file`` names the table of the element and
        ``element`` its id; :func:`sma3_grid.io.load_network` adds the row.

    Notes
    -----
    A line is open when any of its switches is open; open lines are not part of the radial tree.
    The orientation is a breadth-first walk from the source over the closed lines; the subtree of a
    bus is a contiguous slice of the depth-first order, so downstream sets cost O(size).
    """

    def __init__(
        self,
        info: NetworkInfo,
        buses: Iterable[Bus] | Mapping[str, Bus],
        lines: Iterable[Line] | Mapping[str, Line],
        loads: Iterable[Load] | Mapping[str, Load] = (),
        switches: Iterable[Switch] | Mapping[str, Switch] = (),
        meters: Iterable[Meter] | Mapping[str, Meter] = (),
        open_switches: Iterable[str] | None = None,
        require_energized: bool = True,
    ) -> None:
        self.info = info
        self.buses: dict[str, Bus] = _index(buses, "bus_id", "buses.csv", "bus")
        self.lines: dict[str, Line] = _index(lines, "line_id", "lines.csv", "line")
        self.loads: dict[str, Load] = _index(loads, "bus_id", "loads.csv", "load at bus")
        self.switches: dict[str, Switch] = _index(switches, "switch_id", "switches.csv", "switch")
        self.meters: dict[str, Meter] = _index(meters, "meter_id", "meters.csv", "meter")
        self._check_references()
        if open_switches is None:
            opened = frozenset(s.switch_id for s in self.switches.values() if s.normally_open)
        else:
            opened = frozenset(open_switches)
            unknown = sorted(opened - self.switches.keys())
            if unknown:
                raise NetworkError(f"unknown switch ids {unknown} in the open set")
        self._open: frozenset[str] = opened
        self._line_switches: dict[str, list[str]] = {}
        for sw in self.switches.values():
            self._line_switches.setdefault(sw.line_id, []).append(sw.switch_id)
        self._tree = self._orient(require_energized)

    # ------------------------------------------------------------------ construction helpers
    def _check_references(self) -> None:
        info = self.info
        if info.source_bus not in self.buses:
            raise NetworkError(f"source_bus '{info.source_bus}' is not in buses", file="network.yaml")
        for field_name in ("nominal_kv", "frequency_hz", "sc_mva_3ph", "sc_mva_1ph", "x_over_r"):
            if not getattr(info, field_name) > 0:
                raise NetworkError(
                    f"{field_name} must be > 0, got {getattr(info, field_name)}", "network.yaml"
                )
        for bus in self.buses.values():
            if bus.kind not in BUS_KINDS:
                raise NetworkError(
                    f"bad value '{bus.kind}' in column kind (expected one of {', '.join(BUS_KINDS)})",
                    file="buses.csv",
                    element=bus.bus_id,
                )
        for line in self.lines.values():
            for col in ("bus_a", "bus_b"):
                bus_id = getattr(line, col)
                if bus_id not in self.buses:
                    raise NetworkError(
                        f"unknown bus '{bus_id}' in column {col}", file="lines.csv", element=line.line_id
                    )
            if line.bus_a == line.bus_b:
                raise NetworkError(
                    f"line '{line.line_id}' connects bus '{line.bus_a}' to itself",
                    file="lines.csv",
                    element=line.line_id,
                )
            if not line.length_km > 0:
                raise NetworkError(
                    f"non-positive length {line.length_km} km in column length_km",
                    file="lines.csv",
                    element=line.line_id,
                )
            for col in ("r1", "x1", "r0", "x0", "c1", "c0"):
                if getattr(line, col) < 0:
                    raise NetworkError(
                        f"negative value {getattr(line, col)} in column {col}",
                        file="lines.csv",
                        element=line.line_id,
                    )
        for load in self.loads.values():
            if load.bus_id not in self.buses:
                raise NetworkError(
                    f"unknown bus '{load.bus_id}' in column bus_id", file="loads.csv", element=load.bus_id
                )
        for sw in self.switches.values():
            _check_end(sw.switch_id, sw.line_id, sw.bus_id, self.lines, self.buses, "switches.csv")
            if sw.kind not in SWITCH_KINDS:
                raise NetworkError(
                    f"bad value '{sw.kind}' in column kind (expected one of {', '.join(SWITCH_KINDS)})",
                    file="switches.csv",
                    element=sw.switch_id,
                )
        for m in self.meters.values():
            _check_end(m.meter_id, m.line_id, m.bus_id, self.lines, self.buses, "meters.csv")
            if m.role not in METER_ROLES:
                raise NetworkError(
                    f"bad value '{m.role}' in column role (expected one of {', '.join(METER_ROLES)})",
                    file="meters.csv",
                    element=m.meter_id,
                )

    def _orient(self, require_energized: bool) -> _Tree:
        source = self.info.source_bus
        adjacency: dict[str, list[str]] = {b: [] for b in self.buses}
        for line_id, line in self.lines.items():
            if self.is_line_open(line_id):
                continue
            adjacency[line.bus_a].append(line_id)
            adjacency[line.bus_b].append(line_id)
        up: dict[str, str] = {}
        down: dict[str, str] = {}
        parent: dict[str, str] = {}
        children: dict[str, list[str]] = {}
        dist: dict[str, float] = {source: 0.0}
        # iterative depth-first walk: gives preorder and subtree slices in one pass
        order: list[str] = []
        lines_order: list[str] = []
        index: dict[str, int] = {}
        end: dict[str, int] = {}
        feeder: dict[str, str] = {}
        stack: list[tuple[str, int]] = [(source, 0)]
        index[source] = 0
        order.append(source)
        children[source] = []
        while stack:
            bus, pos = stack[-1]
            out = adjacency[bus]
            if pos == len(out):
                stack.pop()
                end[bus] = len(order)
                continue
            stack[-1] = (bus, pos + 1)
            line_id = out[pos]
            if parent.get(bus) == line_id:
                continue
            nxt = self.lines[line_id].other_end(bus)
            if nxt in index:
                raise NetworkError(
                    f"loop in the closed network: line '{line_id}' closes a loop through bus '{nxt}'",
                    file="lines.csv",
                    element=line_id,
                )
            up[line_id] = bus
            down[line_id] = nxt
            parent[nxt] = line_id
            children[bus].append(line_id)
            children[nxt] = []
            dist[nxt] = dist[bus] + self.lines[line_id].length_km
            feeder[nxt] = line_id if bus == source else feeder[bus]
            index[nxt] = len(order)
            order.append(nxt)
            lines_order.append(line_id)
            stack.append((nxt, 0))
        if require_energized and len(order) < len(self.buses):
            for bus_id in self.buses:
                if bus_id not in index:
                    raise NetworkError(
                        f"islanded bus '{bus_id}': not reached from source '{source}' through closed lines",
                        file="buses.csv",
                        element=bus_id,
                    )
        return _Tree(up, down, parent, children, dist, order, index, end, feeder, lines_order)

    # ------------------------------------------------------------------ switch states
    @property
    def open_switches(self) -> set[str]:
        """Ids of the switches currently open."""
        return set(self._open)

    def is_line_open(self, line_id: str) -> bool:
        """True when any switch on the line is open."""
        return any(s in self._open for s in self._line_switches.get(line_id, ()))

    def line_switches(self, line_id: str) -> list[Switch]:
        """Switches sitting on a line (at either end)."""
        self._line(line_id)
        return [self.switches[s] for s in self._line_switches.get(line_id, ())]

    def with_switch_states(self, open_switch_ids: Iterable[str]) -> Network:
        """Return the same network with exactly ``open_switch_ids`` open.

        Areas left without supply are allowed (their buses are de-energized); a loop is an error.
        """
        return Network(
            self.info,
            self.buses,
            self.lines,
            self.loads,
            self.switches,
            self.meters,
            open_switches=open_switch_ids,
            require_energized=False,
        )

    # ------------------------------------------------------------------ orientation queries
    def _line(self, line_id: str) -> Line:
        try:
            return self.lines[line_id]
        except KeyError:
            raise KeyError(f"unknown line '{line_id}'") from None

    def _energized_line(self, line_id: str) -> None:
        self._line(line_id)
        if line_id not in self._tree.up:
            raise ValueError(f"line '{line_id}' is not energized (open or in a de-energized area)")

    def _energized_bus(self, bus_id: str) -> None:
        if bus_id not in self.buses:
            raise KeyError(f"unknown bus '{bus_id}'")
        if bus_id not in self._tree.index:
            raise ValueError(f"bus '{bus_id}' is not energized")

    def is_energized(self, bus_or_line_id: str) -> bool:
        """True when the bus or line is part of the radial tree fed by the source."""
        return bus_or_line_id in self._tree.index or bus_or_line_id in self._tree.up

    def upstream_bus(self, line_id: str) -> str:
        """End of an energized line nearer the source."""
        self._energized_line(line_id)
        return self._tree.up[line_id]

    def downstream_bus(self, line_id: str) -> str:
        """End of an energized line farther from the source."""
        self._energized_line(line_id)
        return self._tree.down[line_id]

    def parent_line(self, bus_id: str) -> str | None:
        """Line feeding an energized bus; None for the source bus."""
        self._energized_bus(bus_id)
        return self._tree.parent.get(bus_id)

    def children(self, bus_id: str) -> list[str]:
        """Lines leaving an energized bus downstream (in description order)."""
        self._energized_bus(bus_id)
        return list(self._tree.children[bus_id])

    def energized_lines(self) -> list[str]:
        """Lines of the closed radial tree, in depth-first order from the source."""
        return list(self._tree.lines)

    def energized_buses(self) -> list[str]:
        """Buses reached from the source, in depth-first order (source first)."""
        return list(self._tree.order)

    def feeders(self) -> list[str]:
        """Feeder ids: the energized lines leaving the source, in description order."""
        return list(self._tree.children[self.info.source_bus])

    def feeder_of(self, bus_or_line_id: str) -> str:
        """Feeder id of an energized bus (other than the source) or line."""
        tree = self._tree
        if bus_or_line_id in self.lines:
            self._energized_line(bus_or_line_id)
            return tree.feeder[tree.down[bus_or_line_id]]
        self._energized_bus(bus_or_line_id)
        if bus_or_line_id == self.info.source_bus:
            raise ValueError(f"the source bus '{bus_or_line_id}' belongs to no feeder")
        return tree.feeder[bus_or_line_id]

    def depth_km(self, bus_id: str) -> float:
        """Distance (km) from the source to an energized bus along the tree."""
        self._energized_bus(bus_id)
        return self._tree.dist_km[bus_id]

    def is_upstream(self, upstream: str, bus_id: str) -> bool:
        """True when energized bus ``upstream`` is on the path from the source to ``bus_id`` (or equal)."""
        self._energized_bus(upstream)
        self._energized_bus(bus_id)
        tree = self._tree
        i = tree.index[bus_id]
        return tree.index[upstream] <= i < tree.end[upstream]

    def path_lines(self, from_bus: str, to_bus: str) -> list[str]:
        """Oriented lines from ``from_bus`` down to ``to_bus``.

        Raises
        ------
        ValueError
            If ``from_bus`` is not upstream of ``to_bus``.
        """
        if not self.is_upstream(from_bus, to_bus):
            raise ValueError(f"bus '{from_bus}' is not upstream of bus '{to_bus}'")
        tree = self._tree
        out: list[str] = []
        bus = to_bus
        while bus != from_bus:
            line_id = tree.parent[bus]
            out.append(line_id)
            bus = tree.up[line_id]
        out.reverse()
        return out

    def common_ancestor(self, bus_a: str, bus_b: str) -> str:
        """Nearest bus upstream of (or equal to) both energized buses."""
        self._energized_bus(bus_b)
        tree = self._tree
        bus = bus_a
        while not self.is_upstream(bus, bus_b):
            bus = tree.up[tree.parent[bus]]
        return bus

    def distance_km(self, from_bus: str, to_bus: str) -> float:
        """Length (km) of the tree path between two energized buses (any relative position)."""
        tree = self._tree
        top = self.common_ancestor(from_bus, to_bus)
        return tree.dist_km[from_bus] + tree.dist_km[to_bus] - 2.0 * tree.dist_km[top]

    def downstream_buses(self, line_id: str) -> set[str]:
        """Buses fed through an energized line (its downstream bus and everything below it)."""
        self._energized_line(line_id)
        tree = self._tree
        b = tree.down[line_id]
        return set(tree.order[tree.index[b] : tree.end[b]])

    def downstream_lines(self, line_id: str) -> set[str]:
        """Energized lines below an energized line, the line itself included."""
        self._energized_line(line_id)
        tree = self._tree
        b = tree.down[line_id]
        return {tree.parent[x] for x in tree.order[tree.index[b] : tree.end[b]]}

    def subtree_buses(self, bus_id: str) -> list[str]:
        """An energized bus and every bus below it, in depth-first order."""
        self._energized_bus(bus_id)
        tree = self._tree
        return tree.order[tree.index[bus_id] : tree.end[bus_id]]

    def subtree_lines(self, bus_id: str) -> list[str]:
        """Energized lines below an energized bus, in depth-first order."""
        self._energized_bus(bus_id)
        tree = self._tree
        return [tree.parent[x] for x in tree.order[tree.index[bus_id] + 1 : tree.end[bus_id]]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (
            self.info == other.info
            and self.buses == other.buses
            and self.lines == other.lines
            and self.loads == other.loads
            and self.switches == other.switches
            and self.meters == other.meters
            and self._open == other._open
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Network({self.info.name!r}, buses={len(self.buses)}, lines={len(self.lines)}, "
            f"switches={len(self.switches)}, meters={len(self.meters)}, open={sorted(self._open)})"
        )


def _index(items: Iterable | Mapping, key: str, file: str, what: str) -> dict:
    values = items.values() if isinstance(items, Mapping) else items
    out: dict = {}
    for item in values:
        k = getattr(item, key)
        if k in out:
            raise NetworkError(f"duplicate {what} id '{k}'", file=file, element=k)
        out[k] = item
    return out


def _check_end(
    element: str, line_id: str, bus_id: str, lines: dict[str, Line], buses: dict[str, Bus], file: str
) -> None:
    if line_id not in lines:
        raise NetworkError(f"unknown line '{line_id}' in column line_id", file=file, element=element)
    if bus_id not in buses:
        raise NetworkError(f"unknown bus '{bus_id}' in column bus_id", file=file, element=element)
    line = lines[line_id]
    if bus_id not in (line.bus_a, line.bus_b):
        raise NetworkError(
            f"bus '{bus_id}' is not an end of line '{line_id}' ({line.bus_a}, {line.bus_b})",
            file=file,
            element=element,
        )
