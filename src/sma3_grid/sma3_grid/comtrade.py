"""IEEE C37.111 (COMTRADE) fault records: writer and reader.

The fault-record contract of sma3: analog channels ``VA VB VC`` (volts, phase-to-ground) and
``IA IB IC`` (amperes), trigger time at or near fault inception, 1999 or 2013 revision, ASCII or
BINARY ``.dat``.

The writer stores every analog channel as 16-bit integers with a per-channel linear conversion
``value = a * raw + b`` chosen so the channel's range fills ``-32767 .. 32767``; the round-trip error
of a sample is therefore at most ``a / 2`` (:meth:`Record.resolution` before writing,
``ChannelInfo.a`` after reading). Missing samples (NaN) are written as the standard's missing-data
code and read back as NaN.

Time stamps carry no time zone in the 1999 revision; sma3 writes them in UTC. A naive
``start_time`` is taken as UTC, an aware one is converted to UTC. The reader returns aware UTC
datetimes (for 2013 files, the ``time_code`` offset is removed).

References
----------
IEEE Std C37.111-1999, IEEE Standard Common Format for Transient Data Exchange (COMTRADE) for
Power Systems. IEEE Std C37.111-2013 (IEC 60255-24:2013), Measuring relays and protection
equipment - Part 24: Common format for transient data exchange (COMTRADE) for power systems.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

__all__ = [
    "ChannelInfo",
    "ComtradeError",
    "Record",
    "read_comtrade",
    "write_comtrade",
]

REVISIONS = (1999, 2013)
_RAW_MAX = 32767
_BINARY_MISSING = -32768
_ASCII_MISSING = 99999


class ComtradeError(ValueError):
    """A COMTRADE file or record is malformed; the message names the file, line and problem."""


@dataclass(frozen=True)
class ChannelInfo:
    """Per-channel metadata of an analog channel.

    Parameters
    ----------
    unit : str
        Engineering unit of the channel values (``V``, ``A``, ...).
    primary : float
        Primary-side ratio factor of the instrument transformer (e.g. 22000 for a 22000/100 VT).
    secondary : float
        Secondary-side ratio factor (e.g. 100).
    a : float
        Conversion multiplier of the file (value = a * raw + b), in ``unit`` per count; ``nan`` when
        the record was not read from a file.
    b : float
        Conversion offset of the file, in ``unit``.
    """

    unit: str
    primary: float = 1.0
    secondary: float = 1.0
    a: float = math.nan
    b: float = 0.0


def _default_unit(name: str) -> str:
    if name.upper().startswith("V"):
        return "V"
    if name.upper().startswith("I"):
        return "A"
    return ""


@dataclass
class Record:
    """A sampled fault record: equally spaced samples of analog (and optional status) channels.

    Parameters
    ----------
    station : str
        Station name (sma3 uses the meter id).
    sample_rate_hz : float
        Sampling rate in Hz.
    start_time : datetime
        Time of the first sample (UTC; naive datetimes are taken as UTC).
    trigger_s : float
        Trigger time (fault inception) in seconds from the first sample.
    channels : dict[str, numpy.ndarray]
        Analog channels by name, primary values: ``VA VB VC`` in V (phase-to-ground), ``IA IB IC`` in A.
    digital : dict[str, numpy.ndarray]
        Status channels by name, 0/1 per sample (e.g. breaker closed = 1).
    info : dict[str, ChannelInfo]
        Optional per-channel unit and instrument-transformer ratio; missing entries default to
        ``V`` for names starting with V, ``A`` for I, ratio 1:1.
    frequency_hz : float
        Nominal line frequency in Hz.
    device_id : str
        Recording device id.
    """

    station: str
    sample_rate_hz: float
    start_time: datetime
    trigger_s: float
    channels: dict[str, np.ndarray]
    digital: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, ChannelInfo] = field(default_factory=dict)
    frequency_hz: float = 50.0
    device_id: str = "sma3"

    def __post_init__(self) -> None:
        if not math.isfinite(self.sample_rate_hz) or self.sample_rate_hz <= 0:
            raise ComtradeError(f"record: sample_rate_hz must be positive, got {self.sample_rate_hz}")
        if not self.channels:
            raise ComtradeError("record: at least one analog channel is required")
        lengths = set()
        converted: dict[str, np.ndarray] = {}
        for name, values in self.channels.items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.ndim != 1:
                raise ComtradeError(
                    f"record: channel {name!r} must be one-dimensional, got shape {arr.shape}"
                )
            lengths.add(arr.size)
            converted[name] = arr
        status: dict[str, np.ndarray] = {}
        for name, values in self.digital.items():
            arr = np.asarray(values)
            if arr.ndim != 1:
                raise ComtradeError(f"record: status channel {name!r} must be one-dimensional")
            if arr.size and not np.isin(arr, (0, 1)).all():
                raise ComtradeError(f"record: status channel {name!r} must hold only 0 and 1")
            lengths.add(arr.size)
            status[name] = arr.astype(np.uint8)
        if len(lengths) != 1:
            raise ComtradeError(f"record: channels have different lengths {sorted(lengths)}")
        for name in set(converted) & set(status):
            raise ComtradeError(f"record: name {name!r} used by an analog and a status channel")
        for name in self.info:
            if name not in converted:
                raise ComtradeError(f"record: info given for unknown channel {name!r}")
        self.channels = converted
        self.digital = status

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return next(iter(self.channels.values())).size

    @property
    def time_s(self) -> np.ndarray:
        """Sample times in s from the first sample."""
        return np.arange(self.n_samples) / self.sample_rate_hz

    @property
    def trigger_time(self) -> datetime:
        """Absolute trigger time (UTC)."""
        return _as_utc(self.start_time) + timedelta(seconds=self.trigger_s)

    @property
    def trigger_index(self) -> int:
        """Index of the first sample at or after the trigger time."""
        return math.ceil(self.trigger_s * self.sample_rate_hz - 1e-9)

    def channel_info(self, name: str) -> ChannelInfo:
        """Metadata of analog channel ``name`` (defaults when not given)."""
        if name not in self.channels:
            raise KeyError(f"record has no analog channel {name!r}; channels: {list(self.channels)}")
        return self.info.get(name, ChannelInfo(unit=_default_unit(name)))

    def resolution(self, name: str) -> float:
        """Largest round-trip error of channel ``name`` through a file written by :func:`write_comtrade`
        (half the conversion multiplier), in the channel's unit."""
        a, _ = _scaling(self.channels[name])
        return a / 2.0


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _scaling(values: np.ndarray) -> tuple[float, float]:
    """Conversion factors ``a, b`` mapping ``values`` onto ``-32767 .. 32767``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0, 0.0
    lo, hi = float(finite.min()), float(finite.max())
    b = (hi + lo) / 2.0
    a = (hi - lo) / (2.0 * _RAW_MAX)
    if a == 0.0:
        a = 1.0
    # a is written with 10 significant digits: use the written value so the raw counts fit.
    a = float(f"{a * (1 + 1e-9):.10g}")
    b = float(f"{b:.10g}")
    return a, b


def _format_timestamp(when: datetime) -> str:
    return when.strftime("%d/%m/%Y,%H:%M:%S.%f")


def _dat_path_for(cfg_path: Path) -> Path:
    suffix = ".DAT" if cfg_path.suffix.isupper() else ".dat"
    return cfg_path.with_suffix(suffix)


def _clean_field(text: str) -> str:
    return text.replace(",", "_").replace("\n", " ").replace("\r", " ")


def write_comtrade(
    record: Record,
    cfg_path: Path | str,
    binary: bool = False,
    revision: int = 1999,
) -> Path:
    """Write ``record`` as a COMTRADE ``.cfg`` + ``.dat`` pair.

    Parameters
    ----------
    record : Record
        The record to write (primary values).
    cfg_path : Path or str
        Path of the ``.cfg`` file; the ``.dat`` file is written next to it with the same stem.
    binary : bool
        Write a BINARY (16-bit) ``.dat`` instead of ASCII.
    revision : int
        Standard revision, 1999 or 2013.

    Returns
    -------
    Path
        The path of the ``.cfg`` file written.
    """
    cfg_path = Path(cfg_path)
    if cfg_path.suffix.lower() != ".cfg":
        raise ComtradeError(f"{cfg_path}: the configuration file must have the .cfg suffix")
    if revision not in REVISIONS:
        raise ComtradeError(f"{cfg_path}: revision must be one of {REVISIONS}, got {revision}")
    n = record.n_samples
    duration_us = n / record.sample_rate_hz * 1e6
    timemult = 1.0 if duration_us < 4.0e9 else float(math.ceil(duration_us / 4.0e9))

    names = list(record.channels)
    status_names = list(record.digital)
    scalings = [_scaling(record.channels[name]) for name in names]
    start = _as_utc(record.start_time)
    lines = [
        f"{_clean_field(record.station)},{_clean_field(record.device_id)},{revision}",
        f"{len(names) + len(status_names)},{len(names)}A,{len(status_names)}D",
    ]
    for k, (name, (a, b)) in enumerate(zip(names, scalings, strict=True), start=1):
        info = record.channel_info(name)
        phase = name[1:] if len(name) > 1 and name[0].upper() in "VI" else ""
        lines.append(
            f"{k},{_clean_field(name)},{_clean_field(phase)},,{_clean_field(info.unit)},{a:.10g},{b:.10g},0,"
            f"{-_RAW_MAX},{_RAW_MAX},{info.primary:.10g},{info.secondary:.10g},P"
        )
    for k, name in enumerate(status_names, start=1):
        lines.append(f"{k},{_clean_field(name)},,,0")
    lines += [
        f"{record.frequency_hz:g}",
        "1",
        f"{record.sample_rate_hz:.10g},{n}",
        _format_timestamp(start),
        _format_timestamp(record.trigger_time),
        "BINARY" if binary else "ASCII",
        f"{timemult:g}",
    ]
    if revision == 2013:
        lines += ["0,0", "0,0"]

    raw = np.empty((n, len(names)), dtype=np.int32)
    for j, (name, (a, b)) in enumerate(zip(names, scalings, strict=True)):
        values = record.channels[name]
        counts = np.rint((np.nan_to_num(values, nan=b) - b) / a)
        counts = np.clip(counts, -_RAW_MAX, _RAW_MAX).astype(np.int32)
        counts[~np.isfinite(values)] = _BINARY_MISSING if binary else _ASCII_MISSING
        raw[:, j] = counts
    sample_no = np.arange(1, n + 1, dtype=np.uint32)
    stamps = np.rint(np.arange(n) / record.sample_rate_hz * 1e6 / timemult).astype(np.uint32)

    dat_path = _dat_path_for(cfg_path)
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    if binary:
        words = max(1, math.ceil(len(status_names) / 16)) if status_names else 0
        dtype = np.dtype(
            [("n", "<u4"), ("t", "<u4"), ("analog", "<i2", (len(names),)), ("status", "<u2", (words,))]
        )
        rows = np.zeros(n, dtype=dtype)
        rows["n"] = sample_no
        rows["t"] = stamps
        rows["analog"] = raw.astype(np.int16)
        for k, name in enumerate(status_names):
            rows["status"][:, k // 16] |= (record.digital[name].astype(np.uint16) << (k % 16)).astype(
                np.uint16
            )
        dat_bytes = rows.tobytes()
    else:
        columns: list[np.ndarray] = [sample_no.astype(np.int64), stamps.astype(np.int64), raw]
        columns += [record.digital[name].astype(np.int64) for name in status_names]
        table = np.column_stack(columns)
        text = io.StringIO()
        np.savetxt(text, table, fmt="%d", delimiter=",", newline="\r\n")
        dat_bytes = text.getvalue().encode("ascii")
    # The .dat first, the .cfg last, each renamed into place whole: a reader that sees the .cfg
    # (e.g. a locator told about the record before it was written) always finds a complete record.
    _write_atomically(dat_path, dat_bytes)
    _write_atomically(cfg_path, ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return cfg_path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


_TIMESTAMP_RE = re.compile(
    r"^\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s*,\s*(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,9}))?\s*$"
)
_TIME_CODE_RE = re.compile(r"^\s*([+-]?)(\d{1,2})(?:h(\d{1,2}))?\s*$")


class _CfgLines:
    """Line cursor over a .cfg file that names file and line in its errors."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = [line.rstrip("\x1a").strip() for line in text.splitlines()]
        self.pos = 0

    def error(self, problem: str, line_no: int | None = None) -> ComtradeError:
        where = self.pos if line_no is None else line_no
        return ComtradeError(f"{self.path}: line {where}: {problem}")

    def next(self, what: str) -> str:
        if self.pos >= len(self.lines):
            raise ComtradeError(f"{self.path}: file ends before the {what} line (line {self.pos + 1})")
        self.pos += 1
        return self.lines[self.pos - 1]

    def fields(self, what: str, minimum: int) -> list[str]:
        values = [value.strip() for value in self.next(what).split(",")]
        if len(values) < minimum:
            raise self.error(f"{what}: expected at least {minimum} comma-separated fields, got {len(values)}")
        return values

    def number(self, text: str, what: str, kind: type = float) -> float:
        try:
            return kind(text)
        except ValueError:
            raise self.error(f"{what}: {text!r} is not a valid number") from None


def _parse_timestamp(cursor: _CfgLines, text: str, what: str) -> datetime:
    match = _TIMESTAMP_RE.match(text)
    if match is None:
        raise cursor.error(f"{what}: {text!r} is not dd/mm/yyyy,hh:mm:ss.ssssss")
    day, month, year, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or "0"
    micro = round(int(fraction.ljust(9, "0")) / 1000)
    try:
        base = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise cursor.error(f"{what}: {text!r}: {exc}") from None
    return base + timedelta(microseconds=micro)


def _parse_time_code(cursor: _CfgLines, text: str) -> timedelta:
    match = _TIME_CODE_RE.match(text)
    if match is None:
        raise cursor.error(f"time_code {text!r} is not like 0, -5 or +5h30")
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


@dataclass(frozen=True)
class _AnalogSpec:
    name: str
    unit: str
    a: float
    b: float
    primary: float
    secondary: float
    ps: str


def read_comtrade(cfg_path: Path | str) -> Record:
    """Read a COMTRADE record (``.cfg`` + ``.dat`` with the same stem).

    Supports the 1999 and 2013 revisions (and 1991 files without a revision field) with ASCII,
    BINARY, BINARY32 and FLOAT32 ``.dat`` files and one sampling rate. Values of channels marked
    ``S`` (secondary) are converted to primary values with the channel's primary/secondary factors.

    Parameters
    ----------
    cfg_path : Path or str
        Path of the ``.cfg`` file.

    Returns
    -------
    Record
        Analog channels in primary units, status channels as 0/1.

    Raises
    ------
    ComtradeError
        The files are missing or malformed; the message names the file, line and problem.
    """
    cfg_path = Path(cfg_path)
    if not cfg_path.is_file():
        raise ComtradeError(f"{cfg_path}: no such COMTRADE configuration file")
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = cfg_path.read_text(encoding="latin-1")
    cursor = _CfgLines(cfg_path, text)

    head = cursor.fields("station", 2)
    station, device_id = head[0], head[1]
    revision = 1991
    if len(head) >= 3 and head[2]:
        revision = int(cursor.number(head[2], "revision year", int))
        if revision not in (1991, 1999, 2001, 2013):
            raise cursor.error(f"unsupported revision year {revision}")

    counts = cursor.fields("channel count", 3)
    total = int(cursor.number(counts[0], "total channel count", int))
    if not counts[1].upper().endswith("A") or not counts[2].upper().endswith("D"):
        raise cursor.error(f"channel counts must be like '6,6A,0D', got {','.join(counts)!r}")
    n_analog = int(cursor.number(counts[1][:-1], "analog channel count", int))
    n_status = int(cursor.number(counts[2][:-1], "status channel count", int))
    if n_analog + n_status != total:
        raise cursor.error(f"total channel count {total} differs from {n_analog}A + {n_status}D")

    analogs: list[_AnalogSpec] = []
    for k in range(n_analog):
        values = cursor.fields(f"analog channel {k + 1}", 10)
        values += [""] * (13 - len(values))
        a = cursor.number(values[5], "analog multiplier a")
        b = cursor.number(values[6] or "0", "analog offset b")
        primary = cursor.number(values[10] or "1", "primary factor")
        secondary = cursor.number(values[11] or "1", "secondary factor")
        ps = (values[12] or "P").upper()
        if ps not in ("P", "S"):
            raise cursor.error(f"primary/secondary flag must be P or S, got {values[12]!r}")
        if ps == "S" and secondary == 0:
            raise cursor.error("secondary factor is zero for a channel scaled in secondary values")
        analogs.append(_AnalogSpec(values[1], values[4], a, b, primary, secondary, ps))
    names = [spec.name for spec in analogs]
    if len(set(names)) != len(names):
        raise ComtradeError(f"{cfg_path}: duplicate analog channel names {names}")

    status_names: list[str] = []
    for k in range(n_status):
        values = cursor.fields(f"status channel {k + 1}", 2)
        status_names.append(values[1])

    freq_text = cursor.next("line frequency")
    frequency_hz = cursor.number(freq_text, "line frequency") if freq_text else 50.0
    nrates = int(cursor.number(cursor.next("number of sampling rates"), "number of sampling rates", int))
    if nrates != 1:
        raise cursor.error(f"records with {nrates} sampling rates are not supported (exactly 1 needed)")
    rate_fields = cursor.fields("sampling rate", 2)
    sample_rate_hz = cursor.number(rate_fields[0], "sampling rate")
    n_samples = int(cursor.number(rate_fields[1], "last sample number", int))
    if sample_rate_hz <= 0:
        raise cursor.error(f"sampling rate must be positive, got {sample_rate_hz}")
    start = _parse_timestamp(cursor, cursor.next("first sample time"), "first sample time")
    trigger = _parse_timestamp(cursor, cursor.next("trigger time"), "trigger time")
    file_type = cursor.next("data file type").upper()
    if file_type not in ("ASCII", "BINARY", "BINARY32", "FLOAT32"):
        raise cursor.error(f"unknown data file type {file_type!r}")
    if revision >= 1999 and cursor.pos < len(cursor.lines):
        mult_text = cursor.next("time multiplier")
        if mult_text:
            cursor.number(mult_text, "time multiplier")
    if revision == 2013 and cursor.pos < len(cursor.lines) and cursor.lines[cursor.pos]:
        code_fields = cursor.fields("time code", 2)
        offset = _parse_time_code(cursor, code_fields[0])
        start -= offset
        trigger -= offset

    dat_path = _find_dat(cfg_path)
    if file_type == "ASCII":
        raw, status = _read_ascii(dat_path, n_samples, n_analog, n_status, revision)
    else:
        raw, status = _read_binary(dat_path, file_type, n_samples, n_analog, n_status, revision)

    channels: dict[str, np.ndarray] = {}
    info: dict[str, ChannelInfo] = {}
    for j, spec in enumerate(analogs):
        scaled = spec.a * raw[:, j] + spec.b
        if spec.ps == "S":
            scaled = scaled * (spec.primary / spec.secondary)
        channels[spec.name] = scaled
        info[spec.name] = ChannelInfo(spec.unit, spec.primary, spec.secondary, spec.a, spec.b)
    digital = {name: status[:, k] for k, name in enumerate(status_names)}
    return Record(
        station=station,
        sample_rate_hz=sample_rate_hz,
        start_time=start,
        trigger_s=(trigger - start).total_seconds(),
        channels=channels,
        digital=digital,
        info=info,
        frequency_hz=frequency_hz,
        device_id=device_id,
    )


def _find_dat(cfg_path: Path) -> Path:
    for suffix in (".dat", ".DAT", ".Dat"):
        candidate = cfg_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise ComtradeError(f"{cfg_path}: data file {cfg_path.with_suffix('.dat').name} not found next to it")


def _read_ascii(
    dat_path: Path, n_samples: int, n_analog: int, n_status: int, revision: int
) -> tuple[np.ndarray, np.ndarray]:
    width = 2 + n_analog + n_status
    raw = np.full((n_samples, n_analog), np.nan)
    status = np.zeros((n_samples, n_status), dtype=np.uint8)
    row = 0
    with dat_path.open("r", encoding="ascii", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.strip().rstrip("\x1a")
            if not line:
                continue
            if row >= n_samples:
                raise ComtradeError(f"{dat_path}: line {line_no}: more samples than the {n_samples} declared")
            fields = line.split(",")
            if len(fields) != width:
                raise ComtradeError(
                    f"{dat_path}: line {line_no}: expected {width} comma-separated values, got {len(fields)}"
                )
            for j in range(n_analog):
                text = fields[2 + j].strip()
                if text == "" or (revision >= 1999 and text == str(_ASCII_MISSING)):
                    continue
                try:
                    raw[row, j] = float(text)
                except ValueError:
                    raise ComtradeError(
                        f"{dat_path}: line {line_no}: analog value {text!r} is not a number"
                    ) from None
            for k in range(n_status):
                text = fields[2 + n_analog + k].strip()
                if text not in ("0", "1"):
                    raise ComtradeError(f"{dat_path}: line {line_no}: status value {text!r} is not 0 or 1")
                status[row, k] = int(text)
            row += 1
    if row != n_samples:
        raise ComtradeError(f"{dat_path}: holds {row} samples, the .cfg declares {n_samples}")
    return raw, status


def _read_binary(
    dat_path: Path, file_type: str, n_samples: int, n_analog: int, n_status: int, revision: int
) -> tuple[np.ndarray, np.ndarray]:
    analog_type, missing = {
        "BINARY": ("<i2", -1 if revision == 1991 else _BINARY_MISSING),
        "BINARY32": ("<i4", -(2**31)),
        "FLOAT32": ("<f4", None),
    }[file_type]
    words = math.ceil(n_status / 16)
    dtype = np.dtype(
        [("n", "<u4"), ("t", "<u4"), ("analog", analog_type, (n_analog,)), ("status", "<u2", (words,))]
    )
    data = dat_path.read_bytes()
    if len(data) != n_samples * dtype.itemsize:
        raise ComtradeError(
            f"{dat_path}: size {len(data)} bytes does not match {n_samples} samples of "
            f"{dtype.itemsize} bytes ({file_type}, {n_analog} analog, {n_status} status channels)"
        )
    rows = np.frombuffer(data, dtype=dtype, count=n_samples)
    counts = rows["analog"].reshape(n_samples, n_analog)
    raw = counts.astype(np.float64)
    if missing is not None:
        raw[counts == missing] = np.nan
    status = np.zeros((n_samples, n_status), dtype=np.uint8)
    for k in range(n_status):
        status[:, k] = (rows["status"][:, k // 16] >> (k % 16)) & 1
    return raw, status
