"""The ``sma3-locate`` command (DESIGN.md section 4) and the record path behind it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from sma3_grid.comtrade import Record, write_comtrade
from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_grid.networks import shipped_network_dir
from sma3_meter.location.cli import main
from sma3_meter.location.pipeline import locate_record
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import FaultSolution, solve
from sma3_sim.waveforms import SamplingConfig, synthesize

CONTRACT_KEYS = {
    "line_id",
    "upstream_bus",
    "downstream_bus",
    "distance_from_upstream_km",
    "distance_from_meter_km",
    "fault_resistance_ohm",
    "score",
}
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


@pytest.fixture(scope="module")
def solution(mini: Network) -> FaultSolution:
    return solve(mini, FaultScenario("L12", 0.6, "CAG", 0.5, 1.5, load_spread=0.2, seed=2))


@pytest.fixture(scope="module")
def record_cfg(mini: Network, solution: FaultSolution, tmp_path_factory: pytest.TempPathFactory) -> Path:
    record = synthesize(mini, solution, "MH1", SamplingConfig(inception_angle_rad=1.0), seed=5)
    return write_comtrade(record, tmp_path_factory.mktemp("rec") / "event.cfg", binary=True)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_locates_a_record(mini: Network, record_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["--network", "mini", "--record", str(record_cfg), "--meter", "MH1"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["fault_type"] == "CAG"
    assert abs(result["inception_s"] - 0.5) < 1e-3
    cands = result["candidates"]
    assert cands and all(set(c) >= CONTRACT_KEYS for c in cands)
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    true = next(c for c in cands if c["line_id"] == "L12")
    assert abs(true["distance_from_upstream_km"] - 0.6 * mini.lines["L12"].length_km) < 0.005
    assert true["upstream_bus"] == mini.upstream_bus("L12")
    assert (
        abs(true["distance_from_meter_km"] - (mini.distance_km("SRC", mini.upstream_bus("L12")) + 0.072))
        < 0.005
    )


def test_network_given_as_folder(mini: Network, record_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shipped_network_dir("mini")
    code, out, _ = _run(["--network", str(folder), "--record", str(record_cfg), "--meter", "MH1"], capsys)
    assert code == 0
    assert json.loads(out)["fault_type"] == "CAG"


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_missing_record_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(
        *_run(["--network", "mini", "--record", str(tmp_path / "none.cfg"), "--meter", "MH1"], capsys)
    )
    assert "no such file" in line


def test_unknown_meter(record_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(
        *_run(["--network", "mini", "--record", str(record_cfg), "--meter", "M99"], capsys)
    )
    assert "meter 'M99' is not in network 'mini'" in line


def test_unknown_network(record_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(
        *_run(["--network", "atlantis", "--record", str(record_cfg), "--meter", "MH1"], capsys)
    )
    assert "atlantis" in line


def test_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(*_run(["--network", "mini"], capsys))
    assert "--record" in line


def test_wrong_channels(
    mini: Network, solution: FaultSolution, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = synthesize(mini, solution, "MH1", SamplingConfig(), seed=1)
    renamed = {("UA" if name == "VA" else name): values for name, values in record.channels.items()}
    bad = Record("MH1", record.sample_rate_hz, record.start_time, record.trigger_s, renamed)
    cfg = write_comtrade(bad, tmp_path / "bad.cfg")
    line = _one_line_error(*_run(["--network", "mini", "--record", str(cfg), "--meter", "MH1"], capsys))
    assert "lacks channel(s) VA" in line


def test_malformed_cfg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "broken.cfg"
    cfg.write_text("this is not a COMTRADE configuration\n")
    line = _one_line_error(*_run(["--network", "mini", "--record", str(cfg), "--meter", "MH1"], capsys))
    assert "broken.cfg" in line


def test_record_without_fault(
    mini: Network, solution: FaultSolution, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fs, f = 3200.0, 50.0
    t = np.arange(3200) / fs
    pre = np.concatenate([solution.pre["MH1"].v, solution.pre["MH1"].i])
    names = ("VA", "VB", "VC", "IA", "IB", "IC")
    channels = {
        n: math.sqrt(2.0) * np.real(x * np.exp(2j * math.pi * f * t)) for n, x in zip(names, pre, strict=True)
    }
    record = Record("MH1", fs, datetime(2026, 1, 1, tzinfo=timezone.utc), 0.5, channels)
    cfg = write_comtrade(record, tmp_path / "quiet.cfg")
    line = _one_line_error(*_run(["--network", "mini", "--record", str(cfg), "--meter", "MH1"], capsys))
    assert "no fault found" in line


def test_fault_on_another_feeder(
    mini: Network, solution: FaultSolution, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MH2 heads the other feeder: it sees the sag of the fault on L12 but no fault current."""
    cfg = write_comtrade(synthesize(mini, solution, "MH2", SamplingConfig(), seed=3), tmp_path / "mh2.cfg")
    line = _one_line_error(*_run(["--network", "mini", "--record", str(cfg), "--meter", "MH2"], capsys))
    assert "no fault found" in line or "not downstream of the meter" in line


def test_record_path_accuracy_every_type(mini: Network) -> None:
    """Sampled, quantized, noisy records: the locator stays within a few metres for bolted faults."""
    for k, fault_type in enumerate(("AG", "BC", "ABG", "ABC")):
        sol = solve(mini, FaultScenario("L3", 0.45, fault_type, 0.3, 0.3, load_spread=0.2, seed=k))
        located = locate_record(mini, synthesize(mini, sol, "MH1", SamplingConfig(), seed=k), "MH1")
        assert located.fault_type == fault_type
        cand = next(c for c in located.result.candidates if c.line_id == "L3")
        assert abs(cand.distance_from_upstream_km - 0.45 * 0.25) < 0.01
        assert located.phasors.fault_cycles >= 5
        assert located.phasors.pre_cycles >= 10


def test_console_script_exit_status(record_cfg: Path, tmp_path: Path) -> None:
    """The module runs as a program with the documented exit status (0 and 2)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = (
        os.pathsep.join(str(REPO / "src" / p) for p in ("sma3_meter", "sma3_grid", "sma3_sim"))
        + os.pathsep
        + env.get("PYTHONPATH", "")
    )
    cmd = [sys.executable, "-m", "sma3_meter.location.cli", "--network", "mini", "--meter", "MH1", "--record"]
    ok = subprocess.run([*cmd, str(record_cfg)], capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["candidates"]
    bad = subprocess.run(
        [*cmd, str(tmp_path / "x.cfg")], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
