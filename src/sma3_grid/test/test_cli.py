"""``sma3-grid`` command line, run as a separate process (``python -m sma3_grid.cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sma3_grid.cli import main
from sma3_grid.io import load_network

PKG_ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG_ROOT), env.get("PYTHONPATH", "")])
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, "-m", "sma3_grid.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_plot_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "fig" / "feeder.png"
    proc = _run("plot", "turin22", "--out", str(out), "--highlight", "L02_043", "--fault", "L02_043:0.5")
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 1500 and height > 500


def test_plot_from_xlsx_path_with_switch_states(tmp_path: Path) -> None:
    xlsx = tmp_path / "mini.xlsx"
    assert main(["export", "mini", str(xlsx)]) == 0
    assert load_network(xlsx) == load_network("mini")
    out = tmp_path / "mini.png"
    assert main(["plot", str(xlsx), "--out", str(out), "--open", "SW1"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_info_counts() -> None:
    proc = _run("info", "turin22", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["buses"] == {"primary": 1, "secondary": 415}
    assert info["energized_lines"] == 415 and len(info["feeders"]) == 11
    assert info["meters"]["feeder_head"] == 11


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "mini"]) == 0
    text = capsys.readouterr().out
    assert "network mini: 22 kV, 50 Hz" in text and "feeders: 2" in text and "1 normally open" in text


def test_export_folder(tmp_path: Path) -> None:
    assert main(["export", "turin22", str(tmp_path / "t22")]) == 0
    assert load_network(tmp_path / "t22") == load_network("turin22")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("info", "nowhere"), "no shipped network of that name"),
        (("plot", "mini", "--out", "x.png", "--fault", "L6"), "--fault expects LINE:POS"),
        (("plot", "mini", "--out", "x.png", "--fault", "L6:2"), "outside 0..1"),
        (("plot", "mini", "--out", "x.png", "--fault", "L11:0.5"), "not energized"),
        (("plot", "mini", "--out", "x.png", "--highlight", "L99"), "unknown line 'L99'"),
    ],
)
def test_bad_input_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], reason: str
) -> None:
    assert main([str(tmp_path / a) if a == "x.png" else a for a in args]) == 2
    err = capsys.readouterr().err
    assert reason in err
    assert len(err.strip().splitlines()) == 1
