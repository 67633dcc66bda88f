"""DAQ backend interface, channel scaling and fixed-size framing of sample blocks.

A backend delivers :class:`SampleBlock` objects: consecutive samples of the six channels
``VA VB VC IA IB IC`` already scaled to primary units (V, A), the absolute index of the first
sample (counted from the start of acquisition) and the number of samples lost just before the
block (DAQ overrun, transport gap). :class:`Framer` cuts them into frames of a fixed number of
samples (one nominal cycle by default) without ever joining samples across a gap.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType

import numpy as np

from sma3_meter.dsp.estimator import CHANNELS

__all__ = [
    "ChannelScaling",
    "DaqBackend",
    "DaqError",
    "EndOfDataError",
    "Framer",
    "SampleBlock",
]


class DaqError(RuntimeError):
    """The acquisition cannot run; the message is a one-line reason (library or device missing...)."""


class EndOfDataError(Exception):
    """A finite source (replay, finite simulation) has no more samples."""


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples of the six channels.

    Attributes
    ----------
    first_index : int
        Absolute index of the first sample (from the start of acquisition).
    samples : numpy.ndarray, shape (6, M)
        VA VB VC (V, phase-to-ground) and IA IB IC (A), primary values.
    first_time : datetime
        UTC time of the first sample.
    gap_samples : int
        Samples lost just before this block (0: continuous with the previous block).
    saturated : tuple of bool
        Per channel: a sample reached the end of the ADC range in this block.
    """

    first_index: int
    samples: np.ndarray
    first_time: datetime
    gap_samples: int = 0
    saturated: tuple[bool, ...] = (False,) * 6

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[1])


@dataclass(frozen=True)
class ChannelScaling:
    """Mapping of the six logical channels to DAQ inputs and their VT/CT scaling.

    ``primary = (daq_volts - offset_v) * gain`` per channel.

    Parameters
    ----------
    inputs : tuple of int
        DAQ analog input number of VA VB VC IA IB IC.
    gains : tuple of float
        Primary units per DAQ volt (V/V for voltages through the VT and its conditioning, A/V for
        currents through the CT and its burden/transducer).
    offsets_v : tuple of float
        DAQ-side offset to remove, V.
    range_v : float
        ADC input range +-range_v (V); samples within 0.1 % of it are flagged saturated.
    """

    inputs: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    gains: tuple[float, ...] = (3000.0, 3000.0, 3000.0, 4000.0, 4000.0, 4000.0)
    offsets_v: tuple[float, ...] = (0.0,) * 6
    range_v: float = 10.0

    def __post_init__(self) -> None:
        for name in ("inputs", "gains", "offsets_v"):
            if len(getattr(self, name)) != len(CHANNELS):
                raise DaqError(f"channel scaling: {name} needs {len(CHANNELS)} values (VA VB VC IA IB IC)")
        if len(set(self.inputs)) != len(self.inputs) or min(self.inputs) < 0:
            raise DaqError(
                f"channel scaling: inputs must be distinct non-negative numbers, got {self.inputs}"
            )
        if any(g == 0 for g in self.gains):
            raise DaqError("channel scaling: gains must be non-zero")

    @property
    def low_channel(self) -> int:
        """First DAQ input of the scan."""
        return min(self.inputs)

    @property
    def high_channel(self) -> int:
        """Last DAQ input of the scan (the scan covers low..high)."""
        return max(self.inputs)

    @property
    def scan_width(self) -> int:
        """Inputs sampled per scan (``high - low + 1``)."""
        return self.high_channel - self.low_channel + 1

    def apply(self, volts: np.ndarray) -> tuple[np.ndarray, tuple[bool, ...]]:
        """Scale scans of DAQ volts (M, scan_width) to primary channels (6, M) and saturation flags."""
        cols = [k - self.low_channel for k in self.inputs]
        picked = volts[:, cols].T
        limit = 0.999 * self.range_v
        saturated = tuple(bool(x) for x in (np.abs(picked) >= limit).any(axis=1))
        primary = (picked - np.asarray(self.offsets_v)[:, None]) * np.asarray(self.gains)[:, None]
        return primary, saturated


class DaqBackend(abc.ABC):
    """A source of :class:`SampleBlock` (hardware, simulation or replay).

    Use as a context manager or call :meth:`start` / :meth:`stop`. :meth:`read` returns the samples
    available (possibly waiting up to ``timeout_s``), None when nothing arrived in time, and raises
    :class:`EndOfDataError` when a finite source is exhausted and :class:`DaqError` on failures.
    """

    sample_rate_hz: float

    @abc.abstractmethod
    def start(self) -> None:
        """Open the device/source and start acquiring."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 0.1) -> SampleBlock | None:
        """Next block of samples, or None after ``timeout_s`` without samples."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop acquiring and release the device (idempotent)."""

    def __enter__(self) -> DaqBackend:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class Frame:
    """A fixed-size (or gap-shortened) frame, as published in ``WaveformFrame``."""

    first_index: int
    samples: np.ndarray
    first_time: datetime
    gap_samples: int
    saturated: tuple[bool, ...]


@dataclass
class Framer:
    """Cuts :class:`SampleBlock` objects into frames of ``frame_samples`` consecutive samples.

    A gap (``gap_samples`` > 0 or a first index that does not continue the previous block) ends the
    current frame early; the next frame carries the number of lost samples.
    """

    frame_samples: int
    sample_rate_hz: float
    _parts: list[np.ndarray] = field(default_factory=list)
    _first_index: int | None = None
    _first_time: datetime | None = None
    _count: int = 0
    _gap: int = 0
    _saturated: list[bool] = field(default_factory=lambda: [False] * 6)
    _expected: int | None = None
    total_gap_samples: int = 0

    def __post_init__(self) -> None:
        if self.frame_samples < 1:
            raise ValueError(f"frame_samples must be at least 1, got {self.frame_samples}")

    def push(self, block: SampleBlock) -> list[Frame]:
        """Add a block; return the frames completed."""
        frames: list[Frame] = []
        gap = block.gap_samples
        if self._expected is not None and block.first_index != self._expected:
            gap = max(gap, block.first_index - self._expected)
        if gap and self._count:
            frames.append(self._emit())
        if gap:
            self._gap += gap
            self.total_gap_samples += gap
        pos = 0
        n = block.n_samples
        while pos < n:
            if not self._count:
                self._first_index = block.first_index + pos
                self._first_time = block.first_time + timedelta(seconds=pos / self.sample_rate_hz)
            take = min(n - pos, self.frame_samples - self._count)
            self._parts.append(block.samples[:, pos : pos + take])
            self._saturated = [a or b for a, b in zip(self._saturated, block.saturated, strict=True)]
            self._count += take
            pos += take
            if self._count == self.frame_samples:
                frames.append(self._emit())
        self._expected = block.first_index + n
        return frames

    def _emit(self) -> Frame:
        assert self._first_index is not None and self._first_time is not None
        samples = self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts, axis=1)
        frame = Frame(self._first_index, samples, self._first_time, self._gap, tuple(self._saturated))
        self._parts = []
        self._count = 0
        self._gap = 0
        self._saturated = [False] * 6
        return frame


def utc_now() -> datetime:
    """Current UTC time (aware)."""
    return datetime.now(timezone.utc)


def parse_int_list(text: str | Sequence[int], count: int, what: str) -> tuple[int, ...]:
    """Parse ``"0,1,2,3,4,5"`` (or a sequence) into ``count`` integers, naming ``what`` on error."""
    items = [x for x in text.split(",")] if isinstance(text, str) else list(text)
    try:
        values = tuple(int(x) for x in items)
    except ValueError:
        raise DaqError(f"{what}: expected {count} comma-separated integers, got {text!r}") from None
    if len(values) != count:
        raise DaqError(f"{what}: expected {count} values, got {len(values)}")
    return values


def parse_float_list(text: str | Sequence[float], count: int, what: str) -> tuple[float, ...]:
    """Parse ``"3000,3000,..."`` (or a sequence) into ``count`` floats, naming ``what`` on error."""
    items = [x for x in text.split(",")] if isinstance(text, str) else list(text)
    try:
        values = tuple(float(x) for x in items)
    except ValueError:
        raise DaqError(f"{what}: expected {count} comma-separated numbers, got {text!r}") from None
    if len(values) != count:
        raise DaqError(f"{what}: expected {count} values, got {len(values)}")
    return values
