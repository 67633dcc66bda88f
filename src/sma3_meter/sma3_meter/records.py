"""Event records: a ring buffer of the six channels that cuts a COMTRADE record around each event.

The capture keeps ``pre_s`` seconds of samples; :meth:`RecordCapture.trigger` marks an event at a
sample index; once ``post_s`` seconds after it have arrived (or at a gap in the samples, or on
:meth:`RecordCapture.flush`), the window ``[index - pre_s, index + post_s)`` is written as a
COMTRADE record (:mod:`sma3_grid.comtrade`) with the trigger time at the event. The default window
is 0.5 s + 0.5 s, the 1 s observation window of the lab tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from sma3_grid.comtrade import Record, write_comtrade
from sma3_meter.dsp.buffer import SampleBuffer
from sma3_meter.dsp.estimator import CHANNELS

__all__ = ["PendingRecord", "RecordCapture", "event_id"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def event_id(meter_id: str, when: datetime) -> str:
    """Event id ``<meter>-<UTC yyyymmddThhmmss.ffffffZ>`` (safe as a file name)."""
    utc = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return f"{_SAFE.sub('_', meter_id)}-{utc.strftime('%Y%m%dT%H%M%S.%fZ')}"


@dataclass
class PendingRecord:
    """An event waiting for its post-trigger samples."""

    trigger_index: int
    name: str
    written: Path | None = None


class RecordCapture:
    """Ring buffer of samples that writes a COMTRADE record around each triggered event.

    Parameters
    ----------
    meter_id : str
        Station name written in the records.
    sample_rate_hz : float
        Sampling rate in Hz.
    nominal_hz : float
        Line frequency written in the records.
    directory : Path
        Folder of the records (created when needed).
    pre_s, post_s : float
        Window before and after the trigger (s).
    binary : bool
        BINARY ``.dat`` (else ASCII).
    revision : int
        COMTRADE revision (1999 or 2013).
    """

    def __init__(
        self,
        meter_id: str,
        sample_rate_hz: float,
        nominal_hz: float,
        directory: Path | str,
        pre_s: float = 0.5,
        post_s: float = 0.5,
        binary: bool = True,
        revision: int = 1999,
    ) -> None:
        if pre_s < 0 or post_s <= 0:
            raise ValueError(f"record window must have pre_s >= 0 and post_s > 0, got {pre_s}, {post_s}")
        self.meter_id = meter_id
        self.sample_rate_hz = float(sample_rate_hz)
        self.nominal_hz = float(nominal_hz)
        self.directory = Path(directory)
        self.pre = round(pre_s * sample_rate_hz)
        self.post = round(post_s * sample_rate_hz)
        self.binary = binary
        self.revision = revision
        self.buffer = SampleBuffer(len(CHANNELS), self.pre + self.post + 1)
        self._anchor_index = 0
        self._anchor_time = datetime(1970, 1, 1, tzinfo=timezone.utc)
        self.pending: list[PendingRecord] = []

    def time_of(self, sample_index: int) -> datetime:
        """UTC time of a sample, from the time of the latest block's first sample."""
        offset_s = (sample_index - self._anchor_index) / self.sample_rate_hz
        return self._anchor_time + timedelta(seconds=offset_s)

    def push(self, block: np.ndarray, first_index: int, first_time: datetime) -> list[Path]:
        """Add a block (6, M) whose first sample has index ``first_index`` and UTC time ``first_time``.

        Returns
        -------
        list of Path
            ``.cfg`` paths of the records completed by this block (a gap completes the pending
            records with the samples received so far).
        """
        written: list[Path] = []
        if len(self.buffer) and first_index != self.buffer.end_index:
            written += self.flush()
            self.buffer.reset(first_index)
        self.buffer.append(block, first_index)
        self._anchor_index = first_index
        self._anchor_time = first_time if first_time.tzinfo else first_time.replace(tzinfo=timezone.utc)
        for pending in list(self.pending):
            if self.buffer.end_index >= pending.trigger_index + self.post:
                written.append(self._write(pending))
        return written

    def trigger(self, sample_index: int, name: str | None = None) -> PendingRecord:
        """Mark an event at ``sample_index``; the record is written once the post window is complete.

        Parameters
        ----------
        sample_index : int
            Absolute index of the event's first sample (e.g. fault inception).
        name : str, optional
            File stem; default :func:`event_id` of the meter and the event time.
        """
        stem = _SAFE.sub("_", name) if name else event_id(self.meter_id, self.time_of(sample_index))
        pending = PendingRecord(sample_index, stem)
        self.pending.append(pending)
        return pending

    def flush(self) -> list[Path]:
        """Write every pending record with the samples available now."""
        return [self._write(p) for p in list(self.pending) if len(self.buffer)]

    def _write(self, pending: PendingRecord) -> Path:
        self.pending.remove(pending)
        start = max(self.buffer.start_index, pending.trigger_index - self.pre)
        end = min(self.buffer.end_index, pending.trigger_index + self.post)
        if end <= start:
            raise ValueError(
                f"no samples left for the record at sample {pending.trigger_index} "
                f"(buffer holds {self.buffer.start_index}..{self.buffer.end_index - 1})"
            )
        data = self.buffer.window(start, end)
        record = Record(
            station=self.meter_id,
            sample_rate_hz=self.sample_rate_hz,
            start_time=self.time_of(start),
            trigger_s=max(0.0, (pending.trigger_index - start) / self.sample_rate_hz),
            channels={name: data[k].copy() for k, name in enumerate(CHANNELS)},
            frequency_hz=self.nominal_hz,
            device_id=f"sma3 samples {start}..{end - 1}",
        )
        path = write_comtrade(record, self.directory / f"{pending.name}.cfg", self.binary, self.revision)
        pending.written = path
        return path
