"""Reading a vendor circular buffer filled by a continuous background scan.

Both MCC libraries (``uldaq`` on Linux, ``mcculw`` on Windows) fill a caller-allocated buffer of
``scans * channels`` samples in a loop and report how many samples have been transferred in total.
:class:`CircularReader` turns that running count into blocks of new complete scans, handling the
index wrap-around at the end of the buffer and detecting overrun: when more than the buffer's
capacity (minus one packet of margin) arrived since the last read, the oldest unread samples were
overwritten; they are skipped and reported as a gap.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from sma3_meter.daq.base import ChannelScaling, DaqBackend, DaqError, SampleBlock

__all__ = ["CircularReader", "PolledScanBackend", "ReadResult", "ScanStoppedError"]


@dataclass(frozen=True)
class ReadResult:
    """New scans read from the buffer (``scans`` of shape (M, channels)) and lost scans before them."""

    scans: np.ndarray
    first_scan: int
    lost_scans: int


class CircularReader:
    """Tracks what was consumed from a circular buffer of ``buffer_scans`` scans of ``channels`` samples.

    Parameters
    ----------
    buffer : numpy.ndarray, shape (buffer_scans * channels,)
        View of the vendor buffer (values in DAQ volts, or raw codes).
    channels : int
        Samples per scan.
    margin_scans : int
        Scans of the buffer that may be in the middle of being written; when fewer than this remain
        between the writer and the reader the data is treated as overrun.
    """

    def __init__(self, buffer: np.ndarray, channels: int, margin_scans: int = 0) -> None:
        if buffer.ndim != 1 or buffer.size % channels:
            raise ValueError(
                f"buffer of {buffer.size} samples is not a whole number of {channels}-sample scans"
            )
        self.buffer = buffer
        self.channels = channels
        self.buffer_scans = buffer.size // channels
        self.margin_scans = margin_scans
        self.consumed_scans = 0  # scans handed out or skipped since the start

    def read(self, total_samples: int) -> ReadResult:
        """New complete scans given the total number of samples transferred since the scan started.

        Raises
        ------
        ValueError
            ``total_samples`` went backwards.
        """
        total_scans = total_samples // self.channels
        if total_scans < self.consumed_scans:
            raise ValueError(f"transfer count went backwards ({total_scans} < {self.consumed_scans} scans)")
        lost = 0
        usable = self.buffer_scans - self.margin_scans
        if total_scans - self.consumed_scans > usable:
            keep_from = total_scans - usable
            lost = keep_from - self.consumed_scans
            self.consumed_scans = keep_from
        first = self.consumed_scans
        count = total_scans - first
        start = first % self.buffer_scans
        view = self.buffer.reshape(self.buffer_scans, self.channels)
        if start + count <= self.buffer_scans:
            scans = view[start : start + count].copy()
        else:
            head = self.buffer_scans - start
            scans = np.concatenate([view[start:], view[: count - head]], axis=0)
        self.consumed_scans = total_scans
        return ReadResult(scans, first, lost)


class ScanStoppedError(Exception):
    """The vendor scan stopped or failed (e.g. device FIFO overrun); ``reason`` says why."""


class PolledScanBackend(DaqBackend):
    """Common part of the MCC backends: continuous hardware-paced scan into a circular buffer, polled.

    Subclasses open the device, start the scan over a buffer of ``buffer_scans`` scans and report
    ``(running, total_samples_transferred)``. This class turns that into :class:`SampleBlock` objects
    with continuous absolute sample indices. When the scan stops or fails (device FIFO overrun, USB
    hiccup), it is restarted; the samples missed meanwhile (estimated from the wall clock, the scan
    being hardware paced) are skipped in the sample counter and reported as a gap, as are samples
    overwritten in the circular buffer when :meth:`read` is called too late.

    Parameters
    ----------
    sample_rate_hz : float
        Scan rate per channel, Hz.
    scaling : ChannelScaling
        Input mapping and VT/CT scaling.
    buffer_s : float
        Length of the circular buffer, s.
    poll_s : float
        Polling period while waiting for samples, s.
    max_restarts : int
        Consecutive failed restarts before giving up with :class:`DaqError`.
    clock, sleep : callable
        Monotonic clock (s) and sleep function; the defaults are :func:`time.monotonic` and
        :func:`time.sleep` (replaceable to drive a simulated device).
    """

    name = "mcc"

    def __init__(
        self,
        sample_rate_hz: float,
        scaling: ChannelScaling,
        buffer_s: float = 2.0,
        poll_s: float = 0.005,
        max_restarts: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if sample_rate_hz <= 0:
            raise DaqError(f"{self.name} backend: sample rate must be positive, got {sample_rate_hz}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.scaling = scaling
        self.buffer_scans = max(64, math.ceil(buffer_s * sample_rate_hz))
        self.poll_s = poll_s
        self.max_restarts = max_restarts
        self.clock = clock
        self.sleep = sleep
        self.start_time: datetime | None = None
        self.overruns = 0
        self._reader: CircularReader | None = None
        self._base_index = 0
        self._scan_wall = 0.0
        self._pending_gap = 0
        self._failures = 0

    # -- vendor-specific -------------------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None:
        """Import the library, find and connect the device (raise DaqError with a one-line reason)."""

    @abc.abstractmethod
    def _start_scan(self) -> np.ndarray:
        """Start the continuous scan; return a flat view of the circular buffer."""

    @abc.abstractmethod
    def _status(self) -> tuple[bool, int]:
        """(running, total samples transferred since the scan started); ScanStoppedError on failure."""

    @abc.abstractmethod
    def _to_volts(self, raw: np.ndarray) -> np.ndarray:
        """Buffer values to DAQ input volts."""

    @abc.abstractmethod
    def _stop_scan(self) -> None:
        """Stop the scan (idempotent)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device and buffers (idempotent)."""

    # -- common ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._open()
        self.start_time = datetime.now(timezone.utc)
        self._base_index = 0
        self._begin()

    def _begin(self) -> None:
        buffer = self._start_scan()
        self._reader = CircularReader(
            buffer, self.scaling.scan_width, margin_scans=min(32, self.buffer_scans // 8)
        )
        self._scan_wall = self.clock()

    def _restart(self, reason: str) -> None:
        assert self._reader is not None
        self.overruns += 1
        self._failures += 1
        if self._failures > self.max_restarts:
            raise DaqError(f"{self.name} backend: scan keeps failing ({reason})")
        elapsed_scans = round((self.clock() - self._scan_wall) * self.sample_rate_hz)
        consumed = self._reader.consumed_scans
        self._pending_gap += max(0, elapsed_scans - consumed)
        self._base_index += max(elapsed_scans, consumed)
        self._stop_scan()
        self._begin()

    def read(self, timeout_s: float = 0.1) -> SampleBlock | None:
        if self._reader is None or self.start_time is None:
            raise DaqError(f"{self.name} backend: read() before start()")
        deadline = self.clock() + timeout_s
        while True:
            try:
                running, total = self._status()
            except ScanStoppedError as exc:
                self._restart(str(exc))
                continue
            result = self._reader.read(total)
            if result.scans.shape[0]:
                self._failures = 0
                return self._block(result)
            if not running:
                self._restart("scan stopped")
                continue
            if self.clock() >= deadline:
                return None
            self.sleep(self.poll_s)

    def _block(self, result: ReadResult) -> SampleBlock:
        assert self.start_time is not None
        primary, saturated = self.scaling.apply(self._to_volts(result.scans))
        first = self._base_index + result.first_scan
        gap = self._pending_gap + result.lost_scans
        if result.lost_scans:
            self.overruns += 1
        self._pending_gap = 0
        return SampleBlock(
            first_index=first,
            samples=primary,
            first_time=self.start_time + timedelta(seconds=first / self.sample_rate_hz),
            gap_samples=gap,
            saturated=saturated,
        )

    def stop(self) -> None:
        try:
            self._stop_scan()
        finally:
            self._close()
            self._reader = None
