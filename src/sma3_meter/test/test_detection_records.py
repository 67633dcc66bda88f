"""Event record capture: windows around the trigger, COMTRADE content, gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import comtrade as pypi_comtrade
import numpy as np
import pytest

from sma3_grid.comtrade import read_comtrade
from sma3_meter.records import RecordCapture, event_id

FS = 3200.0
T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=timezone.utc)


def _blocks(n_blocks: int, size: int = 64, first: int = 1000) -> list[tuple[np.ndarray, int, datetime]]:
    out = []
    for b in range(n_blocks):
        start = first + b * size
        idx = np.arange(start, start + size)
        block = np.vstack([idx * (k + 1) * 0.5 for k in range(6)])
        out.append((block, start, T0 + timedelta(seconds=(start - first) / FS)))
    return out


def test_record_window_and_content(tmp_path: Path) -> None:
    cap = RecordCapture("MH1", FS, 50.0, tmp_path, pre_s=0.1, post_s=0.2)
    written: list[Path] = []
    trigger = 1000 + 64 * 10 + 7
    for n, (block, start, when) in enumerate(_blocks(30)):
        written += cap.push(block, start, when)
        if n == 11:
            pending = cap.trigger(trigger)
            assert pending.name == event_id("MH1", T0 + timedelta(seconds=(trigger - 1000) / FS))
    assert len(written) == 1
    rec = read_comtrade(written[0])
    assert rec.station == "MH1"
    assert rec.n_samples == 320 + 640
    assert rec.trigger_s == pytest.approx(0.1, abs=1e-6)
    assert rec.start_time == T0 + timedelta(seconds=(trigger - 320 - 1000) / FS)
    expected = np.arange(trigger - 320, trigger + 640) * 2 * 0.5
    assert np.max(np.abs(rec.channels["VB"] - expected)) <= rec.channel_info("VB").a / 2 * 1.0001
    assert list(rec.channels) == ["VA", "VB", "VC", "IA", "IB", "IC"]
    other = pypi_comtrade.load(str(written[0]))
    assert other.total_samples == 960


def test_short_pre_window_gap_flush_and_bad_settings(tmp_path: Path) -> None:
    cap = RecordCapture("M 2/x", FS, 50.0, tmp_path, binary=False, revision=2013)
    blocks = _blocks(20)
    for block, start, when in blocks[:3]:
        cap.push(block, start, when)
    cap.trigger(1100, name="early event")
    block, start, when = blocks[5]
    written = cap.push(block, start, when)  # gap: pending record written with what was there
    assert [p.name for p in written] == ["early_event.cfg"]
    rec = read_comtrade(written[0])
    assert rec.n_samples == 192 and rec.trigger_s == pytest.approx(100 / FS)
    assert cap.flush() == []
    cap.trigger(start + 10)
    (path,) = cap.flush()
    assert path.name.startswith("M_2_x-2026") and read_comtrade(path).n_samples == 64
    with pytest.raises(ValueError, match="post_s > 0"):
        RecordCapture("M", FS, 50.0, tmp_path, post_s=0.0)
