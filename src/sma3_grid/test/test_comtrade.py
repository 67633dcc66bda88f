"""COMTRADE writer/reader: round trip through our reader and the independent `comtrade` package."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import comtrade as pypi_comtrade
import numpy as np
import pytest

from sma3_grid.comtrade import ChannelInfo, ComtradeError, Record, read_comtrade, write_comtrade

FS = 3200.0


def _fault_record(n: int = 3200, with_status: bool = True, with_nan: bool = False) -> Record:
    rng = np.random.default_rng(7)
    t = np.arange(n) / FS
    inception = 0.5
    faulted = t >= inception
    channels: dict[str, np.ndarray] = {}
    for k, phase in enumerate("ABC"):
        angle = 2 * np.pi * 50 * t - k * 2 * np.pi / 3
        v = 12700 * np.sqrt(2) * np.cos(angle)
        i = 150 * np.sqrt(2) * np.cos(angle - 0.3)
        if phase == "A":
            v = np.where(faulted, 0.3 * v, v)
            i = np.where(faulted, 12 * i, i)
        channels[f"V{phase}"] = v + rng.normal(0, 5, n)
        channels[f"I{phase}"] = i + rng.normal(0, 0.5, n)
    if with_nan:
        channels["IC"][10] = np.nan
    digital = {"BRK52": (t < 0.58).astype(np.uint8)} if with_status else {}
    return Record(
        station="M1",
        sample_rate_hz=FS,
        start_time=datetime(2026, 3, 4, 10, 20, 30, 123456, tzinfo=timezone.utc),
        trigger_s=inception,
        channels={name: channels[name] for name in ("VA", "VB", "VC", "IA", "IB", "IC")},
        digital=digital,
        info={"VA": ChannelInfo("V", 22000.0, 100.0)},
    )


@pytest.mark.parametrize("revision", [1999, 2013])
@pytest.mark.parametrize("binary", [False, True])
def test_pypi_comtrade_reads_our_files(tmp_path: Path, binary: bool, revision: int) -> None:
    record = _fault_record()
    cfg = write_comtrade(record, tmp_path / "event.cfg", binary=binary, revision=revision)
    assert cfg.is_file() and (tmp_path / "event.dat").is_file()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = pypi_comtrade.load(str(cfg), use_numpy_arrays=True, use_double_precision=True)
    assert other.rev_year == str(revision)
    assert other.cfg.ft == ("BINARY" if binary else "ASCII")
    assert other.analog_channel_ids == ["VA", "VB", "VC", "IA", "IB", "IC"]
    assert other.total_samples == record.n_samples
    assert other.frequency == 50.0
    assert other.cfg.sample_rates == [[FS, record.n_samples]]
    assert other.trigger_time == pytest.approx(0.5, abs=1e-6)
    assert other.start_timestamp == datetime(2026, 3, 4, 10, 20, 30, 123456)
    assert np.allclose(np.asarray(other.time), record.time_s, atol=1e-9)
    for k, name in enumerate(other.analog_channel_ids):
        ours = record.channels[name]
        theirs = np.asarray(other.analog[k])
        assert np.max(np.abs(ours - theirs)) <= record.resolution(name) * (1 + 1e-6)
    assert other.cfg.analog_channels[0].uu == "V"
    assert other.cfg.analog_channels[3].uu == "A"
    assert other.cfg.analog_channels[0].primary == 22000.0
    assert other.status_channel_ids == ["BRK52"]
    assert np.array_equal(np.asarray(other.status[0]), record.digital["BRK52"])


@pytest.mark.parametrize("revision", [1999, 2013])
@pytest.mark.parametrize("binary", [False, True])
def test_our_reader_round_trip(tmp_path: Path, binary: bool, revision: int) -> None:
    record = _fault_record(with_nan=True)
    cfg = write_comtrade(record, tmp_path / "sub" / "EVENT.CFG", binary=binary, revision=revision)
    assert (tmp_path / "sub" / "EVENT.DAT").is_file()
    back = read_comtrade(cfg)
    assert back.station == "M1"
    assert back.sample_rate_hz == FS
    assert back.start_time == record.start_time
    assert back.trigger_s == pytest.approx(0.5, abs=1e-6)
    assert back.trigger_index == 1600
    assert list(back.channels) == list(record.channels)
    for name, values in record.channels.items():
        got = back.channels[name]
        assert np.array_equal(np.isnan(got), np.isnan(values))
        ok = np.isfinite(values)
        assert np.max(np.abs(got[ok] - values[ok])) <= back.channel_info(name).a / 2 * (1 + 1e-6)
    assert np.isnan(back.channels["IC"][10])
    assert back.channel_info("VA") == ChannelInfo("V", 22000.0, 100.0, back.info["VA"].a, back.info["VA"].b)
    assert back.channel_info("IB").unit == "A"
    assert np.array_equal(back.digital["BRK52"], record.digital["BRK52"])


def test_secondary_values_scaled_to_primary(tmp_path: Path) -> None:
    cfg = tmp_path / "sec.cfg"
    cfg.write_text(
        "S,D,1999\n1,1A,0D\n1,VA,A,,V,0.01,0,0,-32767,32767,22000,100,S\n50\n1\n1000,3\n"
        "01/01/2026,00:00:00.000000\n01/01/2026,00:00:00.001000\nASCII\n1\n"
    )
    (tmp_path / "sec.dat").write_text("1,0,100\n2,1000,-200\n3,2000,0\n")
    back = read_comtrade(cfg)
    assert np.allclose(back.channels["VA"], [220.0, -440.0, 0.0])
    assert back.trigger_s == pytest.approx(0.001)


def test_2013_time_code_gives_utc(tmp_path: Path) -> None:
    cfg = tmp_path / "tc.cfg"
    cfg.write_text(
        "S,D,2013\n1,1A,0D\n1,IA,A,,A,1,0,0,-32767,32767,1,1,P\n50\n1\n1000,1\n"
        "01/01/2026,05:30:00.000000001\n01/01/2026,05:30:00.000500\nASCII\n1\n+5h30,+5h30\n0,0\n"
    )
    (tmp_path / "tc.dat").write_text("1,0,7\n")
    back = read_comtrade(cfg)
    assert back.start_time == datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert back.channels["IA"][0] == 7.0


def test_naive_start_time_is_utc_and_constant_channel(tmp_path: Path) -> None:
    record = Record("M", 6400.0, datetime(2026, 1, 1, 12), 0.0, {"VA": np.full(10, 3.0), "IA": np.zeros(10)})
    back = read_comtrade(write_comtrade(record, tmp_path / "c.cfg", binary=True))
    assert back.start_time == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    assert np.array_equal(back.channels["VA"], np.full(10, 3.0))
    assert np.array_equal(back.channels["IA"], np.zeros(10))


def test_bad_record_arguments() -> None:
    start = datetime(2026, 1, 1)
    with pytest.raises(ComtradeError, match="different lengths"):
        Record("M", FS, start, 0.0, {"VA": np.zeros(3), "IA": np.zeros(4)})
    with pytest.raises(ComtradeError, match="sample_rate_hz"):
        Record("M", 0.0, start, 0.0, {"VA": np.zeros(3)})
    with pytest.raises(ComtradeError, match="only 0 and 1"):
        Record("M", FS, start, 0.0, {"VA": np.zeros(3)}, digital={"B": np.array([0, 2, 1])})
    with pytest.raises(ComtradeError, match="at least one analog"):
        Record("M", FS, start, 0.0, {})


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    record = _fault_record(n=64, with_status=False)
    with pytest.raises(ComtradeError, match="revision"):
        write_comtrade(record, tmp_path / "x.cfg", revision=2005)
    with pytest.raises(ComtradeError, match=r"\.cfg suffix"):
        write_comtrade(record, tmp_path / "x.txt")
    with pytest.raises(ComtradeError, match="no such"):
        read_comtrade(tmp_path / "missing.cfg")

    cfg = write_comtrade(record, tmp_path / "a.cfg", binary=True)
    dat = tmp_path / "a.dat"
    dat.write_bytes(dat.read_bytes()[:-3])
    with pytest.raises(ComtradeError, match=r"a\.dat: size"):
        read_comtrade(cfg)
    dat.unlink()
    with pytest.raises(ComtradeError, match=r"data file a\.dat not found"):
        read_comtrade(cfg)

    cfg = write_comtrade(record, tmp_path / "b.cfg")
    lines = (tmp_path / "b.dat").read_text().splitlines()
    (tmp_path / "b.dat").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ComtradeError, match="holds 63 samples"):
        read_comtrade(cfg)
    lines[5] = "6,1562,1,2,x,4,5,6"
    (tmp_path / "b.dat").write_text("\n".join(lines) + "\n")
    with pytest.raises(ComtradeError, match=r"line 6: analog value 'x'"):
        read_comtrade(cfg)

    text = cfg.read_text().splitlines()
    broken = [*text[:1], "7,6A,0D", *text[2:]]
    cfg.write_text("\n".join(broken))
    with pytest.raises(ComtradeError, match=r"b\.cfg: line 2: total channel count 7"):
        read_comtrade(cfg)
    broken = [*text[:3], "2,VB,B,,V,abc,0,0,-32767,32767,1,1,P", *text[4:]]
    cfg.write_text("\n".join(broken))
    with pytest.raises(ComtradeError, match="line 4: analog multiplier a: 'abc'"):
        read_comtrade(cfg)
    broken = [*text[:11], "32/01/2026,00:00:00.0", *text[12:]]
    cfg.write_text("\n".join(broken))
    with pytest.raises(ComtradeError, match="first sample time"):
        read_comtrade(cfg)
    cfg.write_text("\n".join(text[:9]))
    with pytest.raises(ComtradeError, match="file ends before"):
        read_comtrade(cfg)
    broken = [*text[:9], "2", "3200,30", "3200,64", *text[11:]]
    cfg.write_text("\n".join(broken))
    with pytest.raises(ComtradeError, match="2 sampling rates"):
        read_comtrade(cfg)
