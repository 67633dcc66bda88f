"""``replay`` backend: COMTRADE records and rosbag2 recordings of ``WaveformFrame`` as a live source.

COMTRADE records (``.cfg``, channels ``VA VB VC IA IB IC``) are cut into blocks of ``block_samples``;
successive records (and loops) are separated by a gap of one second of sample indices so that the
signal chain restarts cleanly. rosbag2 recordings (a bag directory) are read with the ``rosbags``
library: every ``sma3_interfaces/msg/WaveformFrame`` message becomes one block with its own sample
index, gap count and saturation flags. ``speed`` paces the blocks against the wall clock (1.0 real
time, 0 as fast as possible).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sma3_grid.comtrade import ComtradeError, read_comtrade
from sma3_meter.daq.base import DaqBackend, DaqError, EndOfDataError, SampleBlock
from sma3_meter.dsp.estimator import CHANNELS

__all__ = ["ReplayBackend", "waveform_frame_typestore"]

WAVEFORM_TYPE = "sma3_interfaces/msg/WaveformFrame"


def _interfaces_msg_dir() -> Path:
    """Folder of the sma3_interfaces .msg files: installed share dir, else the source tree."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidate = Path(prefix) / "share" / "sma3_interfaces" / "msg"
            if (candidate / "WaveformFrame.msg").is_file():
                return candidate
    source = Path(__file__).resolve().parents[3] / "sma3_interfaces" / "msg"
    if (source / "WaveformFrame.msg").is_file():
        return source
    raise DaqError(
        "replay backend: sma3_interfaces/msg/WaveformFrame.msg not found (build or source the workspace)"
    )


def waveform_frame_typestore() -> Any:
    """A ``rosbags`` type store knowing ``sma3_interfaces/msg/WaveformFrame`` (and std_msgs)."""
    try:
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    except ImportError:
        raise DaqError("replay backend: the rosbags library is not installed (pip install rosbags)") from None
    store = get_typestore(Stores.LATEST)
    text = (_interfaces_msg_dir() / "WaveformFrame.msg").read_text(encoding="utf-8")
    store.register(get_types_from_msg(text, WAVEFORM_TYPE))
    return store


class ReplayBackend(DaqBackend):
    """Replays COMTRADE records and/or rosbag2 directories of ``WaveformFrame``.

    Parameters
    ----------
    sources : sequence of Path
        ``.cfg`` files and bag directories, played in order.
    block_samples : int
        Samples per block for COMTRADE sources.
    speed : float
        Wall-clock pacing (1.0 real time, 0 as fast as possible).
    loop : bool
        Start again from the first source after the last.
    topic : str
        Topic of the ``WaveformFrame`` messages in bags ('' = any connection of that type).

    Attributes
    ----------
    wall_start : float or None
        With pacing, the :func:`time.monotonic` time the replay started: the ``n``-th sample played
        (from 0) is released as if acquired at ``wall_start + (n + 1) / (fs * speed)``.
    """

    def __init__(
        self,
        sources: Sequence[Path | str],
        block_samples: int = 64,
        speed: float = 1.0,
        loop: bool = False,
        topic: str = "",
    ) -> None:
        if not sources:
            raise DaqError("replay backend: no record or bag given")
        if block_samples < 1:
            raise DaqError(f"replay backend: block_samples must be positive, got {block_samples}")
        if speed < 0:
            raise DaqError(f"replay backend: speed must be >= 0, got {speed}")
        self.sources = [Path(s) for s in sources]
        for src in self.sources:
            if not src.exists():
                raise DaqError(f"replay backend: {src} does not exist")
        self.block_samples = block_samples
        self.speed = speed
        self.loop = loop
        self.topic = topic
        self.sample_rate_hz = self._probe_rate()
        self._blocks: Iterator[SampleBlock] | None = None
        self.wall_start: float | None = None
        self._played = 0

    def _probe_rate(self) -> float:
        first = self.sources[0]
        if first.is_dir():
            for _block in self._bag_blocks(first, 0):
                return self._bag_rate
            raise DaqError(f"replay backend: {first} holds no {WAVEFORM_TYPE} message")
        try:
            return read_comtrade(first).sample_rate_hz
        except ComtradeError as exc:
            raise DaqError(f"replay backend: {exc}") from None

    def start(self) -> None:
        self._blocks = self._all_blocks()
        self.wall_start = None
        self._played = 0

    def stop(self) -> None:
        self._blocks = None

    def read(self, timeout_s: float = 0.1) -> SampleBlock | None:
        """Next block, paced by ``speed``; raises :class:`EndOfDataError` after the last source."""
        if self._blocks is None:
            raise DaqError("replay backend: read() before start()")
        try:
            block = next(self._blocks)
        except StopIteration:
            raise EndOfDataError("replay finished") from None
        if self.speed > 0:
            # Paced on the samples played (gaps between sources take no time).
            now = time.monotonic()
            if self.wall_start is None:
                self.wall_start = now
            self._played += block.n_samples
            due = self.wall_start + self._played / self.sample_rate_hz / self.speed
            if due > now:
                time.sleep(due - now)
        return block

    def _all_blocks(self) -> Iterator[SampleBlock]:
        next_index = 0
        gap = 0
        while True:
            for src in self.sources:
                blocks = (
                    self._bag_blocks(src, next_index)
                    if src.is_dir()
                    else self._record_blocks(src, next_index)
                )
                first = True
                for block in blocks:
                    if first and gap:
                        block = SampleBlock(
                            block.first_index,
                            block.samples,
                            block.first_time,
                            gap + block.gap_samples,
                            block.saturated,
                        )
                    first = False
                    next_index = block.first_index + block.n_samples
                    yield block
                gap = round(self.sample_rate_hz)
                next_index += gap
            if not self.loop:
                return

    def _record_blocks(self, path: Path, first_index: int) -> Iterator[SampleBlock]:
        try:
            record = read_comtrade(path)
        except ComtradeError as exc:
            raise DaqError(f"replay backend: {exc}") from None
        missing = [c for c in CHANNELS if c not in record.channels]
        if missing:
            raise DaqError(f"replay backend: {path} lacks channels {missing} (needs VA VB VC IA IB IC)")
        if abs(record.sample_rate_hz - self.sample_rate_hz) > 1e-9 * self.sample_rate_hz:
            raise DaqError(
                f"replay backend: {path} is sampled at {record.sample_rate_hz} Hz, "
                f"not {self.sample_rate_hz} Hz"
            )
        data = np.vstack([record.channels[c] for c in CHANNELS])
        data = np.nan_to_num(data, nan=0.0)
        start = (
            record.start_time if record.start_time.tzinfo else record.start_time.replace(tzinfo=timezone.utc)
        )
        for pos in range(0, record.n_samples, self.block_samples):
            chunk = data[:, pos : pos + self.block_samples]
            yield SampleBlock(
                first_index=first_index + pos,
                samples=np.ascontiguousarray(chunk),
                first_time=start + timedelta(seconds=pos / record.sample_rate_hz),
            )

    _bag_rate: float = 0.0

    def _bag_blocks(self, path: Path, first_index: int) -> Iterator[SampleBlock]:
        try:
            from rosbags.rosbag2 import Reader
        except ImportError:
            raise DaqError(
                "replay backend: the rosbags library is not installed (pip install rosbags)"
            ) from None
        store = waveform_frame_typestore()
        try:
            reader = Reader(path)
            reader.open()
        except Exception as exc:  # rosbags raises its own error types for unreadable bags
            raise DaqError(f"replay backend: {path} is not a readable rosbag2 directory ({exc})") from None
        try:
            conns = [
                c
                for c in reader.connections
                if c.msgtype == WAVEFORM_TYPE and (not self.topic or c.topic == self.topic)
            ]
            if not conns:
                raise DaqError(
                    f"replay backend: {path} has no {WAVEFORM_TYPE} topic {self.topic!r}".rstrip(" '")
                )
            base: int | None = None
            for conn, _, raw in reader.messages(connections=conns):
                msg = store.deserialize_cdr(raw, conn.msgtype)
                self._bag_rate = float(msg.sample_rate_hz)
                if base is None:
                    base = int(msg.first_sample_index)
                samples = np.vstack([np.asarray(getattr(msg, c.lower()), dtype=np.float64) for c in CHANNELS])
                stamp = msg.header.stamp
                yield SampleBlock(
                    first_index=first_index + int(msg.first_sample_index) - base,
                    samples=samples,
                    first_time=datetime.fromtimestamp(stamp.sec, timezone.utc)
                    + timedelta(microseconds=stamp.nanosec / 1000),
                    gap_samples=int(msg.gap_samples),
                    saturated=tuple(bool(x) for x in msg.saturated),
                )
        finally:
            reader.close()
