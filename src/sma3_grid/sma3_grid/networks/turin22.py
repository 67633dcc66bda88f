"""``turin22``: a Turin-like 22 kV urban cable network generated deterministically from a seed.

Modelled on the published description of the grid portion used in the paper: one primary
substation (HV/MV busbar ``PS``), 11 MV feeders, 415 secondary substations, 42 MV loads and 220
aggregated LV loads, underground XLPE aluminium cables, sections mostly 0.1–0.25 km, the longest
feeders about 7 km, branched laterals. Unlike the original it has remote-controlled load-break
switches along each feeder and tie lines with normally-open points (NOPs) to the neighbouring
feeders, so that restoration can be shown.

Layout (drawing coordinates, km-like): the feeders hang side by side below the primary, numbered 1 to
11 from the left; main lines run straight down; laterals leave a main-line substation diagonally
(left or right, 30 degrees off the vertical) and may branch again horizontally; tie lines are as long
as the drawing distance they span (0.2–2 km). Every node is a secondary substation (branching
happens at substation switchboards), so the closed radial tree has exactly one line per substation:
415 MV lines, plus the tie lines (open, 21 of them).

Ids: ``S{ff}_{nnn}`` is substation ``nnn`` of feeder ``ff`` (main line first, from the head, then the
laterals) and ``L{ff}_{nnn}`` the line feeding it; ``T{ff}_{gg}{a|b}`` are tie lines; switches are
``CB{ff}`` (feeder breaker), ``RS..`` (remote load-break switch on the main line), ``LS..`` / ``DS..``
(load-break switch / disconnector at a lateral head), ``NO..`` (NOP on a tie line); meters are
``M{ff}`` (feeder head) and ``M{ff}_{nnn}`` (secondary substation ``nnn``).

The second feeder from the left (feeder 02) carries the seven faulted sections of the paper's
Table II at their published lengths and distances from the feeder head; see
:data:`sma3_grid.networks.PAPER_SECTIONS`. They do not depend on the seed. Its structure is fixed
too: case F sits on a lateral leaving the main line where case E starts, and a 4-substation lateral
leaves the main line near 4.7 km, so sections on two branches share the distances of cases D–F
(the multiple-estimation problem of impedance-based locators); its other laterals are random.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from sma3_grid.model import Bus, Line, Load, Meter, Network, NetworkInfo, Switch
from sma3_grid.networks.cables import AL185, AL240, CableParameters, sequence_parameters

DEFAULT_SEED = 2018
N_FEEDERS = 11
N_SECONDARY = 415
N_MV_LOADS = 42
N_LV_LOADS = 220
PAPER_FEEDER_INDEX = 1  # second from the left
MAX_DISTANCE_KM = 7.0
COLUMN_SPACING = 2.0
SOURCE = "PS"

#: Paper's Table II: case -> (section length km, distance of its start from the feeder head km).
PAPER_GEOMETRY: dict[str, tuple[float, float]] = {
    "A": (0.115, 1.1133 - 0.115 / 2),
    "B": (0.1123, 1.48575 - 0.1123 / 2),
    "C": (0.173, 2.6084 - 0.173 / 2),
    "D": (0.2095, 5.16665 - 0.2095 / 2),
    "E": (0.152, 5.9977 - 0.152 / 2),
    "F": (0.1347, 6.15305 - 0.1347 / 2),
    "G": (0.2389, 5.50090),
}
# main line of the paper's feeder: cases in order along it; F is on a lateral leaving the start of E
_PAPER_MAIN = ("A", "B", "C", "D", "G", "E")
_PAPER_MAIN_END_KM = 6.95


def _r5(x: float) -> float:
    """Round a length to 10 mm (1e-5 km)."""
    return round(x, 5)


@dataclass
class _Node:
    number: int
    depth_km: float
    x: float
    y: float
    side: int  # -1 left, +1 right, 0 on the main line
    parent: int  # node number of the upstream node (0 = the primary)
    length_km: float
    lateral: int  # -1 on the main line, else lateral index
    children: list[int] = field(default_factory=list)


@dataclass
class _Feeder:
    index: int
    main: list[int] = field(default_factory=list)
    nodes: dict[int, _Node] = field(default_factory=dict)
    laterals: list[list[int]] = field(default_factory=list)
    used_sides: set[tuple[int, int]] = field(default_factory=set)

    @property
    def tag(self) -> str:
        return f"{self.index + 1:02d}"

    def bus(self, number: int) -> str:
        return SOURCE if number == 0 else f"S{self.tag}_{number:03d}"

    def line(self, number: int) -> str:
        return f"L{self.tag}_{number:03d}"

    def add(self, parent: int, length: float, side: int, lateral: int, horizontal: bool = False) -> int:
        number = len(self.nodes) + 1
        length = _r5(length)
        if parent == 0:
            x0, y0, d0 = self.index * COLUMN_SPACING, 0.0, 0.0
        else:
            p = self.nodes[parent]
            x0, y0, d0 = p.x, p.y, p.depth_km
        if side == 0:
            x, y = x0, y0 - length
        elif horizontal:
            x, y = x0 + side * length, y0
        else:
            x, y = x0 + side * 0.5 * length, y0 - length * math.sqrt(0.75)  # 30 degrees off vertical
        node = _Node(number, d0 + length, round(x, 4), round(y, 4), side, parent, length, lateral)
        self.nodes[number] = node
        if parent:
            self.nodes[parent].children.append(number)
        return number


def _uniform(rng: random.Random, a: float, b: float) -> float:
    return a + (b - a) * rng.random()


def _section_length(rng: random.Random) -> float:
    """A cable section between two substations: mostly 0.10–0.25 km, some up to 0.40 km."""
    if rng.random() < 0.85:
        return _uniform(rng, 0.10, 0.25)
    return _uniform(rng, 0.25, 0.40)


def _split(rng: random.Random, gap: float) -> list[float]:
    """Split a length into sections of about 0.17 km whose rounded lengths sum exactly to it."""
    n = max(1, round(gap / 0.17))
    weights = [_uniform(rng, 0.8, 1.2) for _ in range(n)]
    total = sum(weights)
    parts = [_r5(gap * w / total) for w in weights[:-1]]
    parts.append(_r5(gap - sum(parts)))
    return parts


def _build_paper_main(rng: random.Random, feeder: _Feeder) -> dict[str, int]:
    """Main line of the paper's feeder; returns case -> node number fed by that case's line."""
    cases: dict[str, int] = {}
    position = 0.0
    node = 0
    for case in _PAPER_MAIN:
        length, start = PAPER_GEOMETRY[case]
        for part in _split(rng, _r5(start - position)):
            node = feeder.add(node, part, 0, -1)
        node = feeder.add(node, length, 0, -1)
        cases[case] = node
        position = _r5(start + length)
    for part in _split(rng, _r5(_PAPER_MAIN_END_KM - position)):
        node = feeder.add(node, part, 0, -1)
    feeder.main = sorted(feeder.nodes)
    return cases


def _build_main(rng: random.Random, feeder: _Feeder, target_km: float) -> None:
    node = feeder.add(0, _uniform(rng, 0.35, 0.90), 0, -1)  # feeder exit cable
    while feeder.nodes[node].depth_km < target_km:
        node = feeder.add(node, _section_length(rng), 0, -1)
    feeder.main = sorted(feeder.nodes)


def _add_lateral(
    rng: random.Random, feeder: _Feeder, root: int, side: int, lengths: list[float], branch_at: int | None
) -> list[int]:
    """Add a lateral from main-line node ``root``, drawn diagonally on ``side``.

    With ``branch_at`` (>= 2), the sections from that position on form a sub-lateral, drawn
    horizontally, that leaves one of the first ``branch_at - 1`` substations of the lateral.
    """
    index = len(feeder.laterals)
    nodes: list[int] = []
    parent = root
    for i, length in enumerate(lengths):
        horizontal = branch_at is not None and i >= branch_at
        if branch_at is not None and i == branch_at:
            parent = nodes[rng.randrange(branch_at - 1)]
        number = feeder.add(parent, length, side, index, horizontal=horizontal)
        nodes.append(number)
        parent = number
    feeder.laterals.append(nodes)
    feeder.used_sides.add((root, side))
    return nodes


def _build_laterals(rng: random.Random, feeder: _Feeder, budget: int) -> None:
    """Spend ``budget`` substations on laterals hanging from the main line."""
    while budget > 0:
        size = min(budget, 2 + rng.randrange(6))  # 2..7 substations
        lengths = [_section_length(rng) for _ in range(size)]
        reach = sum(lengths)
        candidates = [
            (n, s)
            for n in feeder.main
            for s in (-1, 1)
            if (n, s) not in feeder.used_sides and feeder.nodes[n].depth_km + reach <= MAX_DISTANCE_KM
        ]
        if not candidates:
            size = 1
            lengths = lengths[:1]
            candidates = [(n, s) for n in feeder.main for s in (-1, 1) if (n, s) not in feeder.used_sides]
        root, side = candidates[rng.randrange(len(candidates))]
        branch_at = 2 + rng.randrange(size - 2) if size >= 4 and rng.random() < 0.4 else None
        _add_lateral(rng, feeder, root, side, lengths, branch_at)
        budget -= size


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    raw = [total * w / sum(weights) for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def generate_turin22(seed: int = DEFAULT_SEED) -> Network:
    """Generate the ``turin22`` benchmark network.

    Parameters
    ----------
    seed : int
        Seed of the generator; the same seed always gives the same network. The shipped description
        (``load_network("turin22")``) is the one of :data:`DEFAULT_SEED`.

    Returns
    -------
    Network
        22 kV, 50 Hz, 11 feeders, 415 secondary substations (415 MV lines in the radial tree) and 21
        open tie lines, 42 MV + 220 LV loads (about 35 MW at peak), 11 feeder-head meters and secondary
        meters at the middle of each main line and at every end substation (see :func:`_feeder_meters`;
        78 for the default seed, 19 % of the substations).
    """
    rng = random.Random(seed)
    big = sequence_parameters(AL240)
    small = sequence_parameters(AL185)

    feeders = [_Feeder(k) for k in range(N_FEEDERS)]
    paper_cases: dict[str, int] = {}
    for feeder in feeders:
        if feeder.index == PAPER_FEEDER_INDEX:
            paper_cases = _build_paper_main(rng, feeder)
        else:
            long_feeder = feeder.index in (5, 8)
            target = _uniform(rng, 6.0, 6.7) if long_feeder else _uniform(rng, 2.6, 5.4)
            _build_main(rng, feeder, target)
    # the paper's lateral with case F starts where case E starts
    paper = feeders[PAPER_FEEDER_INDEX]
    e_root = paper.nodes[paper_cases["E"]].parent
    f_length, f_start = PAPER_GEOMETRY["F"]
    first = _r5(f_start - paper.nodes[e_root].depth_km)
    f_nodes = _add_lateral(rng, paper, e_root, -1, [first, f_length, 0.15], None)
    paper_cases["F"] = f_nodes[1]
    # and a lateral leaving the main line near 4.7 km, running alongside the sections of case D
    root = min(paper.main, key=lambda n: abs(paper.nodes[n].depth_km - 4.7))
    _add_lateral(rng, paper, root, 1, [_section_length(rng) for _ in range(4)], None)

    used = sum(len(f.nodes) for f in feeders)
    budget = N_SECONDARY - used
    if budget < 3 * N_FEEDERS:
        raise RuntimeError(f"seed {seed} leaves only {budget} substations for laterals")
    # the paper's feeder is the longest and the most branched
    weights = [2.0 if f.index == PAPER_FEEDER_INDEX else _uniform(rng, 0.7, 1.3) for f in feeders]
    for feeder, share in zip(feeders, _apportion(budget, weights), strict=True):
        _build_laterals(rng, feeder, share)

    buses = [Bus(SOURCE, "primary", round((N_FEEDERS - 1) * COLUMN_SPACING / 2, 4), 1.5)]
    lines: list[Line] = []
    switches: list[Switch] = []
    meters: list[Meter] = []

    def make_line(line_id: str, a: str, b: str, length: float, cable: CableParameters) -> Line:
        if rng.random() < 0.3:  # network tables do not keep a consistent from–to order
            a, b = b, a
        return Line(line_id, a, b, _r5(length), cable.r1, cable.x1, cable.r0, cable.x0, cable.c1, cable.c0)

    for feeder in feeders:
        for number, node in feeder.nodes.items():
            buses.append(Bus(feeder.bus(number), "secondary", node.x, node.y))
            cable = big if node.lateral < 0 else small
            lines.append(
                make_line(
                    feeder.line(number), feeder.bus(node.parent), feeder.bus(number), node.length_km, cable
                )
            )
        _feeder_switches(rng, feeder, switches)
        _feeder_meters(feeder, meters)
    _tie_lines(rng, feeders, small, lines, switches)
    loads = _loads(rng, [b.bus_id for b in buses if b.kind == "secondary"])

    info = NetworkInfo(
        name="turin22",
        nominal_kv=22.0,
        frequency_hz=50.0,
        source_bus=SOURCE,
        sc_mva_3ph=600.0,
        sc_mva_1ph=500.0,
        x_over_r=12.0,
    )
    net = Network(info, buses, lines, loads, switches, meters)
    expected = {case: paper.line(number) for case, number in paper_cases.items()}
    from sma3_grid.networks import PAPER_SECTIONS

    if expected != PAPER_SECTIONS:
        raise RuntimeError(f"paper sections moved: {expected} != PAPER_SECTIONS {PAPER_SECTIONS}")
    return net


def _feeder_switches(rng: random.Random, feeder: _Feeder, out: list[Switch]) -> None:
    tag = feeder.tag
    out.append(Switch(f"CB{tag}", feeder.line(1), SOURCE, "breaker", False, True))
    n_main = len(feeder.main)
    for j in (1, 2, 3, 4):  # remote load-break switches splitting the main line in five zones
        number = feeder.main[max(1, round(n_main * j / 5))]
        up = feeder.nodes[number].parent
        out.append(
            Switch(
                f"RS{tag}_{number:03d}", feeder.line(number), feeder.bus(up), "load_break_switch", False, True
            )
        )
    for lateral in feeder.laterals:
        head = lateral[0]
        root = feeder.nodes[head].parent
        if len(lateral) >= 3:
            remote = rng.random() < 0.6
            sw_id = f"LS{tag}_{head:03d}"
            out.append(Switch(sw_id, feeder.line(head), feeder.bus(root), "load_break_switch", False, remote))
        else:
            sw_id = f"DS{tag}_{head:03d}"
            out.append(Switch(sw_id, feeder.line(head), feeder.bus(root), "disconnector", False, False))


def _feeder_meters(feeder: _Feeder, out: list[Meter]) -> None:
    """Meters of one feeder: the feeder head plus the secondary substations of the placement rule.

    Rule (deterministic from the topology, no random draw): a 3-SMA at

    - the feeder head (``M{ff}``, in the primary substation, on the feeder's exit cable);
    - the middle substation of the main line, measuring the outgoing main cable;
    - the last substation of the main line (where the feeder's tie lines end) and every end
      substation of the feeder, i.e. the last substation of every lateral and sub-lateral (the
      leaves of the radial tree), measuring the incoming cable.

    A fault on any branch then depresses the voltage at that branch's end meter more than at the
    ends of the branches beside it, so sections at the same distance from the head on different
    branches can be told apart; the end meters also report when their branch loses its supply.
    """
    tag = feeder.tag
    out.append(Meter(f"M{tag}", SOURCE, feeder.line(1), "feeder_head"))
    main = feeder.main
    mid = main[len(main) // 2]
    out.append(Meter(f"M{tag}_{mid:03d}", feeder.bus(mid), feeder.line(mid + 1), "secondary"))
    ends = {main[-1]} | {n for n, node in feeder.nodes.items() if not node.children}
    for number in sorted(ends):
        out.append(Meter(f"M{tag}_{number:03d}", feeder.bus(number), feeder.line(number), "secondary"))


def _tie_lines(
    rng: random.Random, feeders: list[_Feeder], cable: CableParameters, lines: list[Line], out: list[Switch]
) -> None:
    """Tie lines with a NOP: facing far nodes of neighbours (a), and each main-line end (b)."""

    def closest(cands_a: list[tuple[_Feeder, int]], cands_b: list[tuple[_Feeder, int]]) -> tuple:
        best = None
        for fa, na in cands_a:
            pa = fa.nodes[na]
            for fb, nb in cands_b:
                pb = fb.nodes[nb]
                d = math.hypot(pa.x - pb.x, pa.y - pb.y)
                if best is None or d < best[0]:
                    best = (d, fa, na, fb, nb)
        assert best is not None
        return best

    def add_tie(tie_id: str, best: tuple) -> None:
        d, fa, na, fb, nb = best
        length = min(max(d * 1.1, 0.2), 2.0)
        a, b = fa.bus(na), fb.bus(nb)
        line_id = f"T{tie_id}"
        if rng.random() < 0.5:
            a, b = b, a
        lines.append(
            Line(line_id, a, b, _r5(length), cable.r1, cable.x1, cable.r0, cable.x0, cable.c1, cable.c0)
        )
        out.append(Switch(f"NO{tie_id}", line_id, fa.bus(na), "load_break_switch", True, True))

    for left, right in itertools.pairwise(feeders):
        far_l = 0.4 * left.nodes[left.main[-1]].depth_km
        far_r = 0.4 * right.nodes[right.main[-1]].depth_km
        cand_l = [(left, n) for n, nd in left.nodes.items() if nd.side >= 0 and nd.depth_km >= far_l]
        cand_r = [(right, n) for n, nd in right.nodes.items() if nd.side <= 0 and nd.depth_km >= far_r]
        add_tie(f"{left.tag}_{right.tag}a", closest(cand_l, cand_r))
    for feeder in feeders:
        k = feeder.index
        other = feeders[k + 1] if k % 2 == 0 and k + 1 < N_FEEDERS else feeders[k - 1]
        side = 1 if other.index > k else -1
        cand_o = [(other, n) for n, nd in other.nodes.items() if nd.side in (0, -side)]
        best = closest([(feeder, feeder.main[-1])], cand_o)
        first, second = sorted((feeder, other), key=lambda f: f.index)
        add_tie(f"{first.tag}_{second.tag}b" if feeder is first else f"{first.tag}_{second.tag}c", best)


def _loads(rng: random.Random, secondary: list[str]) -> list[Load]:
    """42 MV customers (100–500 kW, pf 0.90–0.95) and 220 aggregated LV loads (50–150 kW, pf 0.95–0.98)."""
    pool = list(secondary)
    chosen: list[str] = []
    for _ in range(N_MV_LOADS + N_LV_LOADS):
        chosen.append(pool.pop(rng.randrange(len(pool))))
    loads = []
    for i, bus_id in enumerate(chosen):
        if i < N_MV_LOADS:
            p, pf = _uniform(rng, 100.0, 500.0), _uniform(rng, 0.90, 0.95)
        else:
            p, pf = _uniform(rng, 50.0, 150.0), _uniform(rng, 0.95, 0.98)
        q = p * math.tan(math.acos(pf))
        loads.append(Load(bus_id, round(p, 1), round(q, 1)))
    return loads
