"""Importer/exporter of the network description contract: round trips and validation errors."""

from __future__ import annotations

import csv
import dataclasses
import random
import shutil
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sma3_grid.io import NetworkError, load_network, save_network
from sma3_grid.model import Bus, Line, Network
from sma3_grid.networks import shipped_network_dir
from sma3_grid.networks.mini import build_mini


@pytest.fixture()
def mini_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped ``mini`` description folder."""
    out = tmp_path / "mini"
    shutil.copytree(shipped_network_dir("mini"), out)
    return out


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _edit(path: Path, line_id_col: int, key: str, col: str, value: str) -> int:
    """Set ``col`` of the row whose first column is ``key``; returns that row's number (header = 1)."""
    rows = _rows(path)
    ci = rows[0].index(col)
    for n, row in enumerate(rows[1:], start=2):
        if row[line_id_col] == key:
            row[ci] = value
            _write_rows(path, rows)
            return n
    raise AssertionError(f"no row {key} in {path}")


def test_csv_round_trip(tmp_path: Path) -> None:
    net = load_network("mini")
    save_network(net, tmp_path / "out")
    again = load_network(tmp_path / "out")
    assert again == net
    assert again.info == net.info
    assert again.open_switches == {"NOP1"}


def test_xlsx_round_trip(tmp_path: Path) -> None:
    net = load_network("mini")
    path = tmp_path / "mini.xlsx"
    save_network(net, path)
    wb = openpyxl.load_workbook(path)
    assert set(wb.sheetnames) == {"network", "buses", "lines", "loads", "switches", "meters"}
    again = load_network(path)
    assert again == net
    # and back to a folder: same again
    save_network(again, tmp_path / "folder")
    assert load_network(tmp_path / "folder") == net


def test_extra_columns_are_ignored(mini_dir: Path) -> None:
    rows = _rows(mini_dir / "buses.csv")
    rows[0].append("comment")
    for row in rows[1:]:
        row.append("anything")
    _write_rows(mini_dir / "buses.csv", rows)
    assert load_network(mini_dir) == build_mini()


def test_shipped_name_or_path() -> None:
    assert load_network("mini") == load_network(shipped_network_dir("mini"))
    assert load_network(str(shipped_network_dir("mini"))) == build_mini()
    with pytest.raises(NetworkError, match="no shipped network of that name"):
        load_network("atlantis")


def _reversed_copy(net: Network, flips: list[bool]) -> Network:
    lines = []
    for line, flip in zip(net.lines.values(), flips, strict=True):
        if flip:
            line = Line(line.line_id, line.bus_b, line.bus_a, *[getattr(line, f) for f in Line.__slots__[3:]])
        lines.append(line)
    return Network(net.info, net.buses, lines, net.loads, net.switches, net.meters)


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_orientation_ignores_written_order(rnd: random.Random) -> None:
    """Reversing any subset of links (and shuffling rows) changes no orientation."""
    ref = build_mini()
    flips = [rnd.random() < 0.5 for _ in ref.lines]
    net = _reversed_copy(ref, flips)
    for line_id in ref.energized_lines():
        assert net.upstream_bus(line_id) == ref.upstream_bus(line_id)
        assert net.downstream_bus(line_id) == ref.downstream_bus(line_id)
    assert net.feeders() == ref.feeders()
    assert net.distance_km("SRC", "B6") == pytest.approx(0.5 + 0.2 + 0.15 + 0.12)


def test_orientation_of_reversed_csv(mini_dir: Path) -> None:
    rows = _rows(mini_dir / "lines.csv")
    for row in rows[1:]:
        row[1], row[2] = row[2], row[1]
    _write_rows(mini_dir / "lines.csv", [rows[0], *reversed(rows[1:])])
    net = load_network(mini_dir)
    assert net.upstream_bus("L1") == "SRC"
    assert net.upstream_bus("L2") == "B1"
    assert net.upstream_bus("L6") == "J1"
    assert net.downstream_bus("L4") == "B4"
    assert net.path_lines("SRC", "B5") == ["L1", "L2", "L5", "L6"]


# ----------------------------------------------------------------------------- validation errors
def test_unknown_bus(mini_dir: Path) -> None:
    row = _edit(mini_dir / "lines.csv", 0, "L4", "bus_a", "B99")
    with pytest.raises(NetworkError) as err:
        load_network(mini_dir)
    msg = str(err.value)
    assert "lines.csv" in msg and f"row {row}" in msg and "unknown bus 'B99'" in msg
    assert err.value.row == row


def test_unknown_bus_in_switches(mini_dir: Path) -> None:
    row = _edit(mini_dir / "switches.csv", 0, "SW2", "bus_id", "NOWHERE")
    with pytest.raises(NetworkError, match=rf"switches\.csv, row {row}: unknown bus 'NOWHERE'"):
        load_network(mini_dir)


def test_switch_not_at_line_end(mini_dir: Path) -> None:
    row = _edit(mini_dir / "switches.csv", 0, "SW2", "bus_id", "B1")
    with pytest.raises(NetworkError, match=rf"switches\.csv, row {row}: bus 'B1' is not an end of line 'L9'"):
        load_network(mini_dir)


def test_unknown_bus_in_meters_and_loads(mini_dir: Path) -> None:
    row = _edit(mini_dir / "loads.csv", 0, "B3", "bus_id", "B77")
    with pytest.raises(NetworkError, match=rf"loads\.csv, row {row}: unknown bus 'B77'"):
        load_network(mini_dir)


def test_unknown_line_and_bus_in_meters(mini_dir: Path) -> None:
    row = _edit(mini_dir / "meters.csv", 0, "MS1", "line_id", "L42")
    with pytest.raises(NetworkError, match=rf"meters\.csv, row {row}: unknown line 'L42'"):
        load_network(mini_dir)
    _edit(mini_dir / "meters.csv", 0, "MS1", "line_id", "L6")
    row = _edit(mini_dir / "meters.csv", 0, "MS1", "bus_id", "B0")
    with pytest.raises(NetworkError, match=rf"meters\.csv, row {row}: unknown bus 'B0'"):
        load_network(mini_dir)


def test_loop_in_closed_network(mini_dir: Path) -> None:
    row = _edit(mini_dir / "switches.csv", 0, "NOP1", "normally_open", "false")
    with pytest.raises(NetworkError) as err:
        load_network(mini_dir)
    msg = str(err.value)
    assert "lines.csv" in msg and "loop in the closed network" in msg
    # the row named is the row of the line that closes the loop
    rows = _rows(mini_dir / "lines.csv")
    assert rows[err.value.row - 1][0] in msg
    assert row > 1


def test_islanded_bus(mini_dir: Path) -> None:
    rows = _rows(mini_dir / "buses.csv")
    rows.append(["B50", "secondary", "3.0", "3.0"])
    _write_rows(mini_dir / "buses.csv", rows)
    with pytest.raises(NetworkError, match=rf"buses\.csv, row {len(rows)}: islanded bus 'B50'"):
        load_network(mini_dir)


def test_islanded_behind_open_switch(mini_dir: Path) -> None:
    row = _edit(mini_dir / "switches.csv", 0, "DS1", "normally_open", "true")
    assert row > 1
    with pytest.raises(NetworkError, match=r"buses\.csv, row \d+: islanded bus '(J1|B5|B6)'"):
        load_network(mini_dir)


@pytest.mark.parametrize("value", ["0", "-0.2"])
def test_non_positive_length(mini_dir: Path, value: str) -> None:
    row = _edit(mini_dir / "lines.csv", 0, "L8", "length_km", value)
    with pytest.raises(NetworkError, match=rf"lines\.csv, row {row}: non-positive length"):
        load_network(mini_dir)


def test_missing_column(mini_dir: Path) -> None:
    rows = _rows(mini_dir / "lines.csv")
    ci = rows[0].index("x0")
    _write_rows(mini_dir / "lines.csv", [[v for i, v in enumerate(r) if i != ci] for r in rows])
    with pytest.raises(NetworkError, match=r"lines\.csv, row 1: missing column 'x0'"):
        load_network(mini_dir)


@pytest.mark.parametrize(
    ("table", "key", "col", "value", "expect"),
    [
        ("lines.csv", "L3", "r1", "abc", "bad value 'abc' in column r1"),
        ("lines.csv", "L3", "c0", "", "bad value '(empty)' in column c0"),
        ("lines.csv", "L3", "x1", "nan", "expected a finite number"),
        ("switches.csv", "SW1", "remote", "maybe", "bad value 'maybe' in column remote"),
        ("switches.csv", "SW1", "kind", "fuse", "bad value 'fuse' in column kind"),
        ("buses.csv", "B3", "kind", "tower", "bad value 'tower' in column kind"),
        ("meters.csv", "MS1", "role", "boss", "bad value 'boss' in column role"),
        ("lines.csv", "L3", "r0", "-1", "negative value -1.0 in column r0"),
    ],
)
def test_bad_value(mini_dir: Path, table: str, key: str, col: str, value: str, expect: str) -> None:
    row = _edit(mini_dir / table, 0, key, col, value)
    with pytest.raises(NetworkError) as err:
        load_network(mini_dir)
    msg = str(err.value)
    assert table in msg and f"row {row}" in msg and expect in msg


def test_duplicate_id(mini_dir: Path) -> None:
    rows = _rows(mini_dir / "meters.csv")
    rows.append(list(rows[1]))
    _write_rows(mini_dir / "meters.csv", rows)
    with pytest.raises(NetworkError, match=rf"meters\.csv, row {len(rows)}: duplicate id 'MH1'"):
        load_network(mini_dir)


def test_bad_network_yaml(mini_dir: Path) -> None:
    text = (mini_dir / "network.yaml").read_text()
    (mini_dir / "network.yaml").write_text(text.replace("source_bus: SRC", "source_bus: NOPE"))
    with pytest.raises(NetworkError, match=r"network\.yaml: source_bus 'NOPE' is not in buses"):
        load_network(mini_dir)
    (mini_dir / "network.yaml").write_text(text.replace("x_over_r: 12.0\n", ""))
    with pytest.raises(NetworkError, match=r"network\.yaml: missing key 'x_over_r'"):
        load_network(mini_dir)
    (mini_dir / "network.yaml").write_text(text.replace("nominal_kv: 22.0", "nominal_kv: high"))
    with pytest.raises(NetworkError, match=r"network\.yaml: bad value 'high' in column nominal_kv"):
        load_network(mini_dir)


def test_missing_file(mini_dir: Path) -> None:
    (mini_dir / "lines.csv").unlink()
    with pytest.raises(NetworkError, match=r"missing file lines\.csv"):
        load_network(mini_dir)


def test_xlsx_errors_name_sheet_and_row(tmp_path: Path) -> None:
    path = tmp_path / "mini.xlsx"
    save_network(build_mini(), path)
    wb = openpyxl.load_workbook(path)
    ws = wb["lines"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "L10":
            row[header.index("length_km")].value = -1.0
            bad_row = row[0].row
    wb.save(path)
    with pytest.raises(NetworkError, match=rf"mini\.xlsx \[lines\], row {bad_row}: non-positive length"):
        load_network(path)
    wb["meters"]["A1"].value = "meter"
    wb.save(path)
    with pytest.raises(NetworkError, match=r"\[meters\], row 1: missing column 'meter_id'"):
        load_network(path)


@st.composite
def _random_trees(draw: st.DrawFn) -> tuple[list[int], list[bool], list[float]]:
    n = draw(st.integers(min_value=1, max_value=60))
    parents = [draw(st.integers(min_value=0, max_value=i)) for i in range(n)]  # bus i+1 hangs from parents[i]
    flips = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    lengths = draw(st.lists(st.floats(0.01, 2.0), min_size=n, max_size=n))
    return parents, flips, lengths


@settings(max_examples=40, deadline=None)
@given(_random_trees())
def test_orientation_of_random_trees(tree: tuple[list[int], list[bool], list[float]]) -> None:
    """Any radial tree written with random end order is oriented from the source, with exact depths."""
    parents, flips, lengths = tree
    info = dataclasses.replace(build_mini().info, source_bus="N0")
    buses = [
        Bus(f"N{i}", "primary" if i == 0 else "secondary", float(i), 0.0) for i in range(len(parents) + 1)
    ]
    lines = []
    for i, (p, flip, km) in enumerate(zip(parents, flips, lengths, strict=True)):
        a, b = f"N{p}", f"N{i + 1}"
        if flip:
            a, b = b, a
        lines.append(Line(f"E{i + 1}", a, b, km, 0.1, 0.1, 0.4, 0.3, 250.0, 250.0))
    rnd = random.Random(len(parents))
    rnd.shuffle(lines)
    net = Network(info, buses, lines)
    depth = {"N0": 0.0}
    for i, p in enumerate(parents):
        depth[f"N{i + 1}"] = depth[f"N{p}"] + lengths[i]
    for i, p in enumerate(parents):
        line_id = f"E{i + 1}"
        assert net.upstream_bus(line_id) == f"N{p}"
        assert net.downstream_bus(line_id) == f"N{i + 1}"
        assert net.parent_line(f"N{i + 1}") == line_id
        assert net.depth_km(f"N{i + 1}") == pytest.approx(depth[f"N{i + 1}"])
    assert sorted(net.feeders()) == sorted(f"E{i + 1}" for i, p in enumerate(parents) if p == 0)
    for line_id in net.energized_lines():
        below = net.downstream_lines(line_id)
        assert all(net.is_upstream(net.downstream_bus(line_id), net.downstream_bus(x)) for x in below)
