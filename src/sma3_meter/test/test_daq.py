"""Framer, sim and replay backends (COMTRADE and rosbag2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from sma3_grid.comtrade import Record, write_comtrade
from sma3_meter.daq import DaqError, EndOfDataError, Framer, SampleBlock, create_backend
from sma3_meter.daq.replay import ReplayBackend, waveform_frame_typestore

FS = 3200.0
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=timezone.utc)


def _block(first: int, n: int, gap: int = 0, sat: int | None = None) -> SampleBlock:
    idx = np.arange(first, first + n, dtype=float)
    saturated = tuple(k == sat for k in range(6))
    return SampleBlock(
        first,
        np.vstack([idx + 1000 * k for k in range(6)]),
        T0 + timedelta(seconds=first / FS),
        gap,
        saturated,
    )


def test_framer_fixed_frames_and_gaps() -> None:
    framer = Framer(64, FS)
    frames = []
    for first, n in ((0, 50), (50, 100), (150, 10)):
        frames += framer.push(_block(first, n, sat=2 if first == 50 else None))
    assert [(f.first_index, f.samples.shape[1], f.gap_samples) for f in frames] == [(0, 64, 0), (64, 64, 0)]
    assert frames[0].saturated[2] and not frames[0].saturated[0]
    assert np.array_equal(frames[1].samples[0], np.arange(64, 128))
    assert frames[1].first_time == T0 + timedelta(seconds=64 / FS)
    frames = framer.push(_block(200, 70, gap=40))  # 32 samples pending are flushed before the gap
    assert [(f.first_index, f.samples.shape[1], f.gap_samples) for f in frames] == [
        (128, 32, 0),
        (200, 64, 40),
    ]
    assert framer.total_gap_samples == 40
    frames = framer.push(_block(300, 64))  # discontinuity without a declared gap is a gap too
    assert [(f.first_index, f.samples.shape[1], f.gap_samples) for f in frames] == [
        (264, 6, 0),
        (300, 64, 30),
    ]
    with pytest.raises(ValueError, match="frame_samples"):
        Framer(0, FS)


def _record(tmp_path: Path, name: str, n: int, start: datetime) -> Path:
    t = np.arange(n) / FS
    channels = {
        c: (k + 1) * 100 * np.sin(2 * np.pi * 50 * t + k)
        for k, c in enumerate(("VA", "VB", "VC", "IA", "IB", "IC"))
    }
    return write_comtrade(Record("M1", FS, start, 0.1, channels), tmp_path / f"{name}.cfg", binary=True)


def test_replay_comtrade_blocks_gaps_and_end(tmp_path: Path) -> None:
    first = _record(tmp_path, "one", 200, T0)
    second = _record(tmp_path, "two", 100, T0 + timedelta(seconds=10))
    backend = create_backend("replay", {"sources": f"{first},{second}", "block_samples": 64, "speed": 0})
    assert backend.sample_rate_hz == FS
    blocks = []
    with backend:
        while True:
            try:
                blocks.append(backend.read())
            except EndOfDataError:
                break
    assert [(b.first_index, b.n_samples, b.gap_samples) for b in blocks] == [
        (0, 64, 0),
        (64, 64, 0),
        (128, 64, 0),
        (192, 8, 0),
        (3400, 64, 3200),
        (3464, 36, 0),
    ]
    assert blocks[4].first_time == T0 + timedelta(seconds=10)
    assert blocks[1].samples[3, 0] == pytest.approx(400 * np.sin(2 * np.pi * 50 * 64 / FS + 3), abs=0.05)


def test_replay_paces_in_real_time_and_loops(tmp_path: Path) -> None:
    import time

    rec = _record(tmp_path, "r", 320, T0)
    backend = ReplayBackend([rec], block_samples=64, speed=2.0, loop=True)
    backend.start()
    t0 = time.monotonic()
    got = [backend.read() for _ in range(10)]  # 2 passes of 0.1 s at twice real time
    elapsed = time.monotonic() - t0
    assert 0.08 <= elapsed <= 0.5
    assert got[5].first_index == 320 + 3200 and got[5].gap_samples == 3200


def test_replay_errors(tmp_path: Path) -> None:
    with pytest.raises(DaqError, match="does not exist"):
        ReplayBackend([tmp_path / "none.cfg"])
    with pytest.raises(DaqError, match="no record or bag"):
        ReplayBackend([])
    rec = Record("M", FS, T0, 0.0, {"VA": np.zeros(10), "IA": np.zeros(10)})
    path = write_comtrade(rec, tmp_path / "partial.cfg")
    backend = ReplayBackend([path])
    backend.start()
    with pytest.raises(DaqError, match=r"lacks channels \['VB', 'VC', 'IB', 'IC'\]"):
        backend.read()
    bad = tmp_path / "bad.cfg"
    bad.write_text("garbage\n")
    with pytest.raises(DaqError, match=r"replay backend: .*bad\.cfg"):
        ReplayBackend([bad])


def test_replay_rosbag_of_waveform_frames(tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = waveform_frame_typestore()
    Frame = store.types["sma3_interfaces/msg/WaveformFrame"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    bag = tmp_path / "bag"
    with Writer(bag, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/waveform", Frame.__msgtype__, typestore=store)
        for k, (first, gap) in enumerate(((1000, 0), (1064, 0), (1200, 72))):
            data = [np.arange(first, first + 64, dtype=np.float64) * (c + 1) for c in range(6)]
            msg = Frame(
                header=Header(stamp=Time(sec=1_700_000_000 + k, nanosec=500_000_000), frame_id="M1"),
                meter_id="M1",
                sample_rate_hz=FS,
                first_sample_index=first,
                gap_samples=gap,
                va=data[0],
                vb=data[1],
                vc=data[2],
                ia=data[3],
                ib=data[4],
                ic=data[5],
                saturated=np.array([False, True, False, False, False, False]),
            )
            writer.write(conn, k * 20_000_000, store.serialize_cdr(msg, Frame.__msgtype__))
    backend = ReplayBackend([bag], speed=0)
    assert backend.sample_rate_hz == FS
    backend.start()
    blocks = [backend.read() for _ in range(3)]
    with pytest.raises(EndOfDataError):
        backend.read()
    assert [(b.first_index, b.gap_samples) for b in blocks] == [(0, 0), (64, 0), (200, 72)]
    assert np.array_equal(blocks[2].samples[4], np.arange(1200, 1264) * 5.0)
    assert blocks[0].saturated[1] and blocks[0].first_time == datetime.fromtimestamp(
        1_700_000_000.5, timezone.utc
    )


def test_sim_backend_streams_simulated_fault() -> None:
    backend = create_backend(
        "sim",
        {
            "network": "mini",
            "meter_id": "MH1",
            "line_id": "L4",
            "fault_type": "AG",
            "fault_at_s": 0.1,
            "duration_s": 0.2,
            "speed": 0,
            "block_samples": 64,
            "seed": 1,
        },
    )
    with backend:
        blocks = []
        while True:
            try:
                blocks.append(backend.read())
            except EndOfDataError:
                break
    assert [b.first_index for b in blocks] == list(range(0, 640, 64))
    data = np.concatenate([b.samples for b in blocks], axis=1)
    pre, post = np.abs(data[3, :300]).max(), np.abs(data[3, 340:]).max()
    assert post > 3 * pre  # fault current on phase A after 0.1 s
    assert 15_000 < np.abs(data[0, :300]).max() < 20_000  # 22 kV phase-to-ground peak
    healthy = create_backend(
        "sim", {"network": "mini", "meter_id": "MH1", "line_id": "", "duration_s": 0.1, "speed": 0}
    )
    with healthy:
        data = np.concatenate([healthy.read().samples for _ in range(5)], axis=1)
    assert np.abs(data[3]).max() < 1000  # load current only
    with pytest.raises(DaqError, match="sim backend: unknown meter"):
        create_backend("sim", {"network": "mini", "meter_id": "NOPE", "line_id": "L4", "fault_type": "AG"})
