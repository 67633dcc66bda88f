"""Orientation and topology queries on ``mini`` (hand-checked) and ``turin22``."""

from __future__ import annotations

import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Network, NetworkError
from sma3_grid.networks import PAPER_SECTIONS
from sma3_grid.topology import (
    deenergized_buses,
    feeder_buses,
    feeder_head_meter,
    feeder_lines,
    isolation_plan,
    meter_distance_km,
    meter_path,
    nearest_switch_upstream,
    nearest_switches_downstream,
    restoration_options,
    secondary_meters,
    sections,
    tree_path,
)


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


def _ids(switches: list) -> list[str]:
    return [s.switch_id for s in switches]


def test_orientation_queries(mini: Network) -> None:
    net = mini
    assert net.feeders() == ["L1", "L7"]
    assert net.parent_line("SRC") is None
    assert net.parent_line("B5") == "L6"
    assert net.children("B2") == ["L3", "L5"]
    assert net.children("J1") == ["L6", "L12"]
    assert net.feeder_of("B6") == "L1" and net.feeder_of("L10") == "L7"
    assert net.path_lines("B1", "B6") == ["L2", "L5", "L12"]
    assert net.path_lines("B4", "B4") == []
    assert net.distance_km("SRC", "B4") == pytest.approx(1.15)
    assert net.distance_km("B4", "B6") == pytest.approx(0.2 + 0.25 + 0.15 + 0.12)
    assert net.distance_km("B4", "B10") == pytest.approx(1.15 + 1.2)
    assert net.downstream_buses("L5") == {"J1", "B5", "B6"}
    assert net.downstream_lines("L2") == {"L2", "L3", "L4", "L5", "L6", "L12"}
    assert net.is_upstream("B2", "B6") and not net.is_upstream("B3", "B6")
    assert not net.is_energized("L11")
    assert len(net.energized_lines()) == len(net.buses) - 1


def test_query_errors(mini: Network) -> None:
    with pytest.raises(ValueError, match="not upstream"):
        mini.path_lines("B3", "B5")
    with pytest.raises(ValueError, match="belongs to no feeder"):
        mini.feeder_of("SRC")
    with pytest.raises(ValueError, match="'L11' is not energized"):
        mini.upstream_bus("L11")
    with pytest.raises(KeyError, match="unknown bus 'X'"):
        mini.children("X")
    with pytest.raises(KeyError, match="unknown line 'X'"):
        mini.downstream_bus("X")
    with pytest.raises(NetworkError, match="unknown switch ids"):
        mini.with_switch_states({"NOPE"})


def test_switch_states_reorient(mini: Network) -> None:
    moved = mini.with_switch_states({"SW1"})  # NOP1 closed, SW1 open: B3, B4 move to feeder L7
    assert moved.feeder_of("B4") == "L7"
    assert moved.upstream_bus("L11") == "B10"
    assert moved.upstream_bus("L4") == "B4"  # reversed with respect to the normal state
    assert moved.distance_km("SRC", "B3") == pytest.approx(1.2 + 0.3 + 0.2)
    assert not moved.is_energized("L3")
    with pytest.raises(NetworkError, match="loop in the closed network"):
        mini.with_switch_states(set())
    dark = mini.with_switch_states({"NOP1", "CB2"})
    assert deenergized_buses(dark) == {"B7", "B8", "B9", "B10"}
    assert dark.feeders() == ["L1"]
    with pytest.raises(ValueError, match="not energized"):
        dark.feeder_of("B9")


def test_feeders_sections_and_meters(mini: Network) -> None:
    net = mini
    assert feeder_lines(net, "L1") == ["L1", "L2", "L3", "L4", "L5", "L6", "L12"]
    assert feeder_buses(net, "L7") == ["B7", "B8", "B9", "B10"]
    secs = {s.line_id: s for s in sections(net, "L1")}
    assert secs["L3"].upstream_bus == "B2" and secs["L3"].start_km == pytest.approx(0.7)
    assert secs["L3"].end_km == pytest.approx(0.95)
    assert len(sections(net)) == 11
    assert feeder_head_meter(net, "L7").meter_id == "MH2"
    assert [m.meter_id for m in secondary_meters(net, "L1")] == ["MS1", "MS2"]
    assert secondary_meters(net, "L7") == []
    assert meter_path(net, "MH1", "B5") == ["L1", "L2", "L5", "L6"]
    assert meter_distance_km(net, "MH1", "B5") == pytest.approx(1.05)
    assert meter_path(net, "MS2", "B5") == ["L4", "L3", "L5", "L6"]
    assert tree_path(net, "B6", "B5") == ["L12", "L6"]
    with pytest.raises(ValueError, match="not reached through line 'L1'"):
        meter_path(net, "MH1", "B9")
    with pytest.raises(ValueError, match="is not a feeder"):
        feeder_lines(net, "L2")


def test_nearest_switches(mini: Network) -> None:
    net = mini
    assert nearest_switch_upstream(net, "L4").switch_id == "SW1"
    assert nearest_switch_upstream(net, "L3").switch_id == "SW1"  # on the line, at its upstream end
    assert nearest_switch_upstream(net, "L4", kinds={"breaker"}).switch_id == "CB1"
    assert nearest_switch_upstream(net, "L6").switch_id == "DS1"
    assert nearest_switch_upstream(net, "L6", remote_only=True).switch_id == "CB1"
    assert nearest_switch_upstream(net, "L6", kinds={"recloser"}) is None
    assert _ids(nearest_switches_downstream(net, "L2")) == ["SW1", "DS1"]
    assert _ids(nearest_switches_downstream(net, "L2", remote_only=True)) == ["SW1"]
    assert _ids(nearest_switches_downstream(net, "L1", kinds={"disconnector"})) == ["DS1"]
    assert nearest_switches_downstream(net, "L4") == []


def test_isolation_and_restoration(mini: Network) -> None:
    net = mini
    plan = isolation_plan(net, "L2")
    assert plan.upstream.switch_id == "CB1"
    assert plan.switches_to_open == ["CB1", "SW1"]
    assert plan.healthy_areas == {"SW1": {"B3", "B4"}}
    assert plan.faulted_buses == {"B1", "B2", "J1", "B5", "B6"}
    after = net.with_switch_states(net.open_switches | set(plan.switches_to_open))
    (option,) = restoration_options(after, plan.healthy_areas["SW1"])
    assert (option.switch_id, option.area_bus, option.supply_bus, option.feeder_id) == (
        "NOP1",
        "B4",
        "B10",
        "L7",
    )
    restored = after.with_switch_states(after.open_switches - {"NOP1"})
    assert restored.feeder_of("B3") == "L7"
    assert deenergized_buses(restored) == plan.faulted_buses
    # nothing can re-supply the faulted area itself
    assert restoration_options(after, plan.faulted_buses) == []
    with pytest.raises(ValueError, match="energized"):
        restoration_options(after, {"B8"})


def test_isolation_on_second_feeder(mini: Network) -> None:
    plan = isolation_plan(mini, "L10")
    assert plan.switches_to_open == ["SW2"]
    assert plan.faulted_buses == {"B9", "B10"} and plan.healthy_areas == {}
    plan = isolation_plan(mini, "L8")
    assert plan.switches_to_open == ["CB2", "SW2"]
    after = mini.with_switch_states(mini.open_switches | {"CB2", "SW2"})
    (option,) = restoration_options(after)
    assert option.feeder_id == "L1" and option.area_bus == "B10"


def test_turin22_paper_sections_can_be_isolated_and_restored() -> None:
    net = load_network("turin22")
    for case, line_id in PAPER_SECTIONS.items():
        plan = isolation_plan(net, line_id)
        assert plan.upstream is not None, case
        assert net.downstream_bus(line_id) in plan.faulted_buses or any(
            net.downstream_bus(line_id) in area for area in plan.healthy_areas.values()
        )
        on_the_line = plan.upstream.line_id == line_id  # the line's own switch at its upstream end
        assert (net.upstream_bus(line_id) in plan.faulted_buses) != on_the_line
        assert net.upstream_bus(plan.upstream.line_id) not in plan.faulted_buses
        after = net.with_switch_states(net.open_switches | set(plan.switches_to_open))
        for area in plan.healthy_areas.values():
            options = restoration_options(after, area)
            for option in options:
                assert option.feeder_id != net.feeder_of(line_id)
                assert option.area_bus in area
    # the feeder head meter sees every paper section
    for line_id in PAPER_SECTIONS.values():
        assert meter_path(net, "M02", net.downstream_bus(line_id))[0] == "L02_001"
