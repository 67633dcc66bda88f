"""Sliding buffer of multichannel samples addressed by the meter's absolute sample index."""

from __future__ import annotations

import numpy as np

__all__ = ["SampleBuffer", "SampleGapError"]


class SampleGapError(ValueError):
    """A block does not continue the buffer (a gap or overlap in sample indices)."""


class SampleBuffer:
    """Keeps the most recent ``capacity`` samples of ``n_channels`` channels.

    Samples are addressed by absolute index (the meter's sample counter). Windows are returned as
    views of one contiguous array (no copy): the storage is twice the capacity and is compacted
    when full, so appending costs O(1) amortized per sample. The storage is time-major (one row of
    ``n_channels`` values per sample), so a window ``(n_channels, M)`` is the transpose of a
    contiguous block: numpy operations and matrix products on it run at contiguous-array speed.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    capacity : int
        Number of most recent samples guaranteed available.
    """

    def __init__(self, n_channels: int, capacity: int) -> None:
        if n_channels <= 0 or capacity <= 0:
            raise ValueError(f"n_channels ({n_channels}) and capacity ({capacity}) must be positive")
        self.n_channels = n_channels
        self.capacity = capacity
        self._data = np.zeros((2 * capacity, n_channels), dtype=np.float64)
        self._fill = 0  # valid samples stored in _data[:, :_fill]
        self._end_index = 0  # absolute index one past the last stored sample

    @property
    def start_index(self) -> int:
        """Absolute index of the oldest stored sample."""
        return self._end_index - self._fill

    @property
    def end_index(self) -> int:
        """Absolute index one past the newest sample (the next expected index)."""
        return self._end_index

    def __len__(self) -> int:
        return self._fill

    def reset(self, next_index: int = 0) -> None:
        """Drop all samples; the next block must start at ``next_index``."""
        self._fill = 0
        self._end_index = next_index

    def append(self, block: np.ndarray, first_index: int) -> None:
        """Append ``block`` (n_channels, M) whose first sample has absolute index ``first_index``.

        Raises
        ------
        SampleGapError
            ``first_index`` is not the next expected index while the buffer holds samples.
        ValueError
            Wrong number of channels.
        """
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[0] != self.n_channels:
            raise ValueError(f"block must have shape ({self.n_channels}, M), got {block.shape}")
        if self._fill and first_index != self._end_index:
            raise SampleGapError(f"block starts at sample {first_index}, expected {self._end_index}")
        m = block.shape[1]
        fill = self._fill
        if m >= self.capacity:
            self._data[: self.capacity] = block[:, -self.capacity :].T
            self._fill = self.capacity
        else:
            if fill + m > self._data.shape[0]:
                keep = self.capacity - m
                self._data[:keep] = self._data[fill - keep : fill]
                fill = keep
            self._data[fill : fill + m] = block.T
            self._fill = fill + m
        self._end_index = first_index + m

    def has(self, start_index: int, end_index: int) -> bool:
        """True when samples ``start_index .. end_index - 1`` are stored."""
        return self.start_index <= start_index and end_index <= self._end_index and start_index < end_index

    def window(self, start_index: int, end_index: int) -> np.ndarray:
        """View (n_channels, end - start) of samples ``start_index .. end_index - 1`` (Fortran-ordered:
        the transpose of a contiguous block of the time-major storage).

        Raises
        ------
        IndexError
            Some of the requested samples are not stored.
        """
        if not self.has(start_index, end_index):
            raise IndexError(
                f"samples {start_index}..{end_index - 1} not in buffer "
                f"(holds {self.start_index}..{self._end_index - 1})"
            )
        offset = self._fill - (self._end_index - start_index)
        return self._data[offset : offset + (end_index - start_index)].T
