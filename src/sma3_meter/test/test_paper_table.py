"""``sma3-paper-table``: the seed paper's Table II protocol on turin22 meets its target."""

from __future__ import annotations

import json

import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_grid.networks import PAPER_SECTIONS
from sma3_meter.location.paper_table import PAPER_TABLE_II, main, paper_cases, run_table

JSON_KEYS = {
    "case",
    "section_length_km",
    "xs_km",
    "x0_km",
    "abs_error_km",
    "error_percent",
    "section_correct",
}


@pytest.fixture(scope="module")
def turin22() -> Network:
    return load_network("turin22")


def test_protocol_cases() -> None:
    cases = paper_cases()
    assert [c[0] for c in cases] == ["A", "B", "C", "D", "E", "F", "G20", "G80"]
    assert all(line == PAPER_SECTIONS[case[0]] for case, line, _ in cases)
    assert [pos for _, _, pos in cases] == [0.5] * 6 + [0.2, 0.8]


@pytest.mark.parametrize("seed", [0, 2])
def test_every_section_correct_and_error_within_25_m(turin22: Network, seed: int) -> None:
    rows = run_table(turin22, seed=seed)
    assert len(rows) == 8
    for row in rows:
        assert row.section_correct, f"case {row.case}: located {row.upstream_bus}-{row.downstream_bus}"
        assert row.abs_error_km is not None and row.abs_error_km <= 0.025, row
        # the faulted sections are the paper's (lengths and distances of Table II)
        length, xs, _ = PAPER_TABLE_II[row.case]
        assert abs(row.section_length_km - length) < 1e-3
        assert abs(row.xs_km - xs) < 1e-3


def test_strict_lab_protocol_head_meter_only(turin22: Network) -> None:
    """One meter, as in the lab: the distance target holds; twins may swap the section."""
    rows = run_table(turin22, seed=1, head_only=True)
    assert max(r.abs_error_km if r.abs_error_km is not None else 1.0 for r in rows) <= 0.025


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--seed", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["case"] for r in rows] == ["A", "B", "C", "D", "E", "F", "G20", "G80"]
    for r in rows:
        assert set(r) >= JSON_KEYS
        assert r["section_correct"] is True
        assert r["abs_error_km"] <= 0.025
        assert r["error_percent"] == pytest.approx(r["abs_error_km"] / r["xs_km"] * 100.0, abs=1e-3)


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "sections correct: 8/8" in out
    for case in ("A", "B", "C", "D", "E", "F", "G20", "G80"):
        assert any(line.startswith(case) for line in out.splitlines())
