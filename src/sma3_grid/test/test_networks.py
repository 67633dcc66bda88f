"""Shipped benchmark networks: counts, determinism, the paper's geometry, cable data."""

from __future__ import annotations

import statistics

import pandapower as pp
import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_grid.networks import PAPER_FEEDER, PAPER_FEEDER_HEAD_METER, PAPER_SECTIONS
from sma3_grid.networks.cables import AL185, AL240, sequence_parameters
from sma3_grid.networks.mini import build_mini
from sma3_grid.networks.turin22 import DEFAULT_SEED, generate_turin22

# paper's Table II: case -> (section length km, distance of the fault point from the feeder head km)
TABLE_II = {
    "A": (0.115, 1.1133),
    "B": (0.1123, 1.48575),
    "C": (0.173, 2.6084),
    "D": (0.2095, 5.16665),
    "E": (0.152, 5.9977),
    "F": (0.1347, 6.15305),
}


@pytest.fixture(scope="module")
def turin22() -> Network:
    return load_network("turin22")


def test_turin22_counts(turin22: Network) -> None:
    net = turin22
    assert net.info.nominal_kv == 22.0 and net.info.frequency_hz == 50.0
    assert [b.bus_id for b in net.buses.values() if b.kind == "primary"] == ["PS"]
    assert len(net.feeders()) == 11
    assert sum(b.kind == "secondary" for b in net.buses.values()) == 415
    # a connected radial tree has one line per fed bus: 415 MV lines, plus open tie lines
    assert len(net.energized_lines()) == 415
    ties = [line_id for line_id in net.lines if not net.is_energized(line_id)]
    assert len(ties) == 21
    assert len(net.lines) == 415 + 21
    assert len(net.loads) == 42 + 220
    assert 25_000 < sum(load.p_kw for load in net.loads.values()) < 50_000  # tens of MW at peak
    assert 500 <= net.info.sc_mva_3ph <= 1000 and 10 <= net.info.x_over_r <= 15


def test_turin22_feeders_are_realistic(turin22: Network) -> None:
    net = turin22
    lengths = [net.lines[line_id].length_km for line_id in net.energized_lines()]
    in_range = sum(0.1 <= x <= 0.25 for x in lengths) / len(lengths)
    assert in_range > 0.75  # sections mostly 0.1-0.25 km
    far = {f: max(net.depth_km(b) for b in net.subtree_buses(net.downstream_bus(f))) for f in net.feeders()}
    assert 6.5 <= max(far.values()) <= 7.2  # the longest feeders about 7 km
    for feeder in net.feeders():
        buses = net.subtree_buses(net.downstream_bus(feeder))
        branching = [b for b in buses if len(net.children(b)) > 1]
        assert branching, f"feeder {feeder} has no lateral"
        kinds = [s.kind for line_id in net.downstream_lines(feeder) for s in net.line_switches(line_id)]
        assert kinds.count("breaker") == 1
        remote_lbs = [
            s
            for line_id in net.downstream_lines(feeder)
            for s in net.line_switches(line_id)
            if s.kind == "load_break_switch" and s.remote
        ]
        assert len(remote_lbs) >= 3
        roles = [m.role for m in net.meters.values() if m.bus_id in buses or m.line_id == feeder]
        assert roles.count("feeder_head") == 1 and roles.count("secondary") >= 2
    # every open tie has a remote normally-open switch and joins two different feeders
    for line_id, line in net.lines.items():
        if net.is_energized(line_id):
            continue
        (nop,) = net.line_switches(line_id)
        assert nop.normally_open and nop.remote
        assert net.feeder_of(line.bus_a) != net.feeder_of(line.bus_b)


def _main_line(net: Network, feeder: str) -> list[str]:
    """Main-line buses of a turin22 feeder, from the head: the path along the 240 mm² cable."""
    main_r1 = sequence_parameters(AL240).r1
    main = [net.downstream_bus(feeder)]
    while True:
        following = [line_id for line_id in net.children(main[-1]) if net.lines[line_id].r1 == main_r1]
        if not following:
            return main
        (line_id,) = following
        main.append(net.downstream_bus(line_id))


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 3])
def test_turin22_meter_placement(seed: int) -> None:
    """Head meter, main-line middle and end, and every end substation (leaf) of each feeder."""
    net = load_network("turin22") if seed == DEFAULT_SEED else generate_turin22(seed)
    n_secondary = 0
    for k, feeder in enumerate(net.feeders(), start=1):
        tag = f"{k:02d}"
        head = net.meters[f"M{tag}"]
        assert head.role == "feeder_head" and head.bus_id == "PS" and head.line_id == feeder
        buses = net.subtree_buses(net.downstream_bus(feeder))
        main = _main_line(net, feeder)
        mid, ends = main[len(main) // 2], {main[-1]} | {b for b in buses if not net.children(b)}
        metered = {m.bus_id: m for m in net.meters.values() if m.role == "secondary" and m.bus_id in buses}
        assert set(metered) == ends | {mid}
        for bus, meter in metered.items():
            assert meter.meter_id == f"M{tag}_{bus[-3:]}"
            if bus == mid:  # the outgoing main cable
                assert net.upstream_bus(meter.line_id) == mid and net.downstream_bus(meter.line_id) in main
            else:  # the incoming cable
                assert meter.line_id == net.parent_line(bus)
        n_secondary += len(metered)
    assert len(net.meters) == 11 + n_secondary
    assert 0.10 <= n_secondary / 415 <= 0.20  # a realistic share of metered substations
    if seed == DEFAULT_SEED:
        assert n_secondary == 78


def test_turin22_shipped_equals_generated(turin22: Network) -> None:
    assert generate_turin22(DEFAULT_SEED) == turin22


def test_turin22_deterministic_from_seed() -> None:
    a = generate_turin22(7)
    b = generate_turin22(7)
    c = generate_turin22(8)
    assert a == b
    assert a != c
    assert len(c.energized_lines()) == 415 and len(c.feeders()) == 11
    # the paper's sections do not depend on the seed
    for case, (length, _) in TABLE_II.items():
        assert c.lines[PAPER_SECTIONS[case]].length_km == pytest.approx(length, abs=1e-9)


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 3])
def test_paper_sections(seed: int) -> None:
    net = load_network("turin22") if seed == DEFAULT_SEED else generate_turin22(seed)
    meter = net.meters[PAPER_FEEDER_HEAD_METER]
    assert meter.role == "feeder_head" and meter.line_id == PAPER_FEEDER
    assert net.feeders().index(PAPER_FEEDER) == 1  # second from the left
    for case, (length, mid_km) in TABLE_II.items():
        line_id = PAPER_SECTIONS[case]
        assert net.feeder_of(line_id) == PAPER_FEEDER
        assert net.lines[line_id].length_km == pytest.approx(length, abs=1e-9)
        up = net.upstream_bus(line_id)
        assert net.distance_km(meter.bus_id, up) + length / 2 == pytest.approx(mid_km, abs=0.001)
    g = PAPER_SECTIONS["G"]
    start = net.distance_km(meter.bus_id, net.upstream_bus(g))
    length = net.lines[g].length_km
    assert length == pytest.approx(0.2389, abs=1e-9)
    assert start + 0.2 * length == pytest.approx(5.54868, abs=0.001)
    assert start + 0.8 * length == pytest.approx(5.69202, abs=0.001)


def test_paper_feeder_has_sections_at_similar_distance(turin22: Network) -> None:
    """Laterals put other sections at the same distance as the faulted ones (multiple estimation)."""
    net = turin22
    for case in ("C", "D", "E"):
        line_id = PAPER_SECTIONS[case]
        mid = net.depth_km(net.upstream_bus(line_id)) + net.lines[line_id].length_km / 2
        rivals = [
            other
            for other in net.downstream_lines(PAPER_FEEDER)
            if other != line_id
            and net.depth_km(net.upstream_bus(other)) <= mid <= net.depth_km(net.downstream_bus(other))
        ]
        assert rivals, f"no other section at {mid:.3f} km for case {case}"


def test_cable_parameters_agree_with_pandapower_types() -> None:
    types = pp.std_types.basic_line_std_types()
    for geometry, name in ((AL185, "NA2XS2Y 1x185 RM/25 12/20 kV"), (AL240, "NA2XS2Y 1x240 RM/25 12/20 kV")):
        ours = sequence_parameters(geometry)
        ref = types[name]
        assert ours.r1 == pytest.approx(ref["r_ohm_per_km"], rel=0.08)
        assert ours.x1 == pytest.approx(ref["x_ohm_per_km"], rel=0.08)
        assert ours.c1 == pytest.approx(ref["c_nf_per_km"], rel=0.05)
        assert ours.c0 == ours.c1  # individually screened cores
        assert 3.0 < ours.r0 / ours.r1 < 6.0
        assert 2.0 < ours.x0 / ours.x1 < 4.0


def test_mini_shape() -> None:
    net = load_network("mini")
    assert net == build_mini()
    assert 10 <= len(net.buses) <= 20
    assert net.feeders() == ["L1", "L7"]
    assert net.open_switches == {"NOP1"}
    roles = sorted(m.role for m in net.meters.values())
    assert roles == ["feeder_head", "feeder_head", "secondary", "secondary"]
    assert statistics.mean(line.length_km for line in net.lines.values()) < 0.5
