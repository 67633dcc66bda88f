"""``sma3-sim`` command: fault and sweep outputs, and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sma3_grid.comtrade import read_comtrade
from sma3_sim.cli import main


def test_fault_writes_readable_comtrade_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "case"
    argv = ["fault", "--network", "mini", "--line", "L3", "--at", "0.4", "--type", "BCG", "--rf", "0.5"]
    status = main([*argv, "--meter", "MH1", "--meter", "MS2", "--seed", "4", "--plot", "--out", str(out)])
    assert status == 0
    assert "wrote 2 record(s)" in capsys.readouterr().out
    truth = json.loads((out / "truth.json").read_text())
    assert truth["network"] == "mini"
    assert truth["scenario"]["fault_type"] == "BCG" and truth["scenario"]["rf_ohm"] == 0.5
    assert truth["upstream_bus"] == "B2" and truth["downstream_bus"] == "B3"
    assert truth["distance_from_upstream_km"] == pytest.approx(0.1)
    assert truth["distance_km"]["MH1"] == pytest.approx(0.8)
    assert truth["records"] == {"MH1": "MH1.cfg", "MS2": "MS2.cfg"}
    record = read_comtrade(out / "MH1.cfg")
    assert set(record.channels) == {"VA", "VB", "VC", "IA", "IB", "IC"}
    assert record.sample_rate_hz == 3200.0 and record.n_samples == 3200
    assert record.trigger_s == pytest.approx(0.5, abs=1 / 3200)
    # the faulted phases carry kA after inception, phase A stays at load level
    after = slice(1700, 3200)
    pre_phasor = np.hypot(*truth["pre"]["MH1"]["i"][0])
    assert np.abs(record.channels["IB"][after]).max() > 1000.0
    assert np.abs(record.channels["IA"][after]).max() < 3 * np.sqrt(2) * pre_phasor + 100.0
    assert (out / "MH1.png").stat().st_size > 10_000


def test_sweep_writes_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--network", "mini", "--cases", "3", "--seed", "11", "--rf-max", "20", "--binary"]
    assert main([*argv, "--out", str(out)]) == 0
    streams = capsys.readouterr()
    assert "sweep 3/3" in streams.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["network"] == "mini" and manifest["seed"] == 11
    cases = manifest["cases"]
    assert [c["case"] for c in cases] == ["case_0001", "case_0002", "case_0003"]
    for case in cases:
        scenario = case["scenario"]
        assert 0.001 <= scenario["rf_ohm"] <= 20.0
        assert 0.5 <= scenario["load_factor"] <= 1.0
        assert case["records"], "each case records the feeder head that sees the fault"
        for meter, cfg in case["records"].items():
            assert case["carries_fault_current"][meter]
            assert case["distance_km"][meter] > 0.0
            record = read_comtrade(out / case["case"] / cfg)
            assert record.n_samples == 3200
    # same seed, same cases
    again = tmp_path / "again"
    assert main([*argv, "--out", str(again)]) == 0
    assert json.loads((again / "manifest.json").read_text())["cases"] == cases


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["fault", "--network", "nowhere", "--line", "L1"], "no network description"),
        (["fault", "--network", "mini", "--line", "L99"], "unknown line 'L99'"),
        (["fault", "--network", "mini", "--line", "L11"], "not energized"),
        (["fault", "--network", "mini", "--line", "L1", "--at", "2"], "position"),
        (["fault", "--network", "mini", "--line", "L1", "--meter", "MX"], "unknown meter 'MX'"),
        (["fault", "--network", "mini", "--line", "L1", "--type", "AX"], "invalid choice"),
        (["sweep", "--network", "mini", "--cases", "0"], "--cases"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main([*argv, "--out", str(tmp_path / "x")]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert reason in err
    assert err.count("\n") == 1


def test_module_entry_point(tmp_path: Path) -> None:
    env = dict(os.environ)
    src = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(src / "sma3_grid"), str(src / "sma3_sim")])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sma3_sim.cli",
            "fault",
            "--network",
            "mini",
            "--line",
            "NOPE",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "sma3-sim: error: unknown line 'NOPE' in network 'mini'"
