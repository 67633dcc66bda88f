"""Sample-accurate detection of abrupt changes from the cycle-to-cycle delta of the waveforms.

The *superimposed* (delta) quantity ``d[k] = x[k] - x(k - T)`` compares each sample with the
sample one period ``T`` earlier; in steady state it is only noise (harmonics cancel too), and at a
fault inception it jumps to the superimposed fault quantity. This is the incremental-quantity
principle of ultra-high-speed protection (E. O. Schweitzer III and D. Hou, "Filtering for
protective relays", 47th Georgia Tech Protective Relaying Conference, 1993; A. G. Phadke and
J. S. Thorp, *Computer Relaying for Power Systems*, 2nd ed., Wiley 2009, section 4.6). The period
follows the tracked frequency and the delayed sample is interpolated (fractional delay), so that an
off-nominal frequency leaves no residual.

A change is confirmed when the largest normalized delta over the channels exceeds 1 for
``confirm_samples`` consecutive samples. The first changed sample is then searched among the
preceding ``max_backtrack_s``: by least squares against the shape of a switched-on sinusoid
(:meth:`DeltaDetector._fit_onset`), which dates weak changes that cross the threshold late.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sma3_meter.dsp.buffer import SampleBuffer

__all__ = ["DeltaDetector", "DeltaSettings", "cycle_delta"]

_QUIET = 1.0 - 1e-12  # largest |delta| / threshold of a block that is quiet without the exact test


def history_needed(period_samples: float) -> int:
    """Samples before the first delta sample that :func:`cycle_delta` reads."""
    return math.floor(period_samples) + 1


def cycle_delta(buffer: SampleBuffer, start: int, end: int, period_samples: float) -> np.ndarray:
    """Delta ``x[k] - x(k - period)`` for absolute indices ``start .. end - 1``.

    The delayed sample is interpolated linearly between its two neighbours: for a sinusoid with
    ``n`` samples per cycle the interpolation error is at most ``(2 pi / n)^2 / 8`` of its amplitude
    (0.12 % at 64 samples per cycle, 0.03 % at 128), far below the detection thresholds.

    Parameters
    ----------
    buffer : SampleBuffer
        Holds samples from ``start - history_needed(period_samples)`` to ``end - 1``.
    start, end : int
        Range of absolute sample indices.
    period_samples : float
        One period of the signal in samples (``fs / f``, may be fractional).

    Returns
    -------
    numpy.ndarray, shape (channels, end - start)
        Delta in the unit of the channels.
    """
    whole = math.floor(period_samples)
    frac = period_samples - whole  # x(k - period) = (1 - frac) x[k - whole] + frac x[k - whole - 1]
    lead = whole + 1
    data = buffer.window(start - lead, end)
    m = end - start
    # (np.multiply with a Python float is cheaper than the operator on small arrays)
    delta = data[:, lead:] - np.multiply(data[:, 1 : 1 + m], 1.0 - frac)
    if frac:
        delta -= np.multiply(data[:, :m], frac)
    return delta


@dataclass(frozen=True)
class DeltaSettings:
    """Thresholds of the delta detector.

    Parameters
    ----------
    relative : tuple of float
        Per channel (VA VB VC IA IB IC), threshold as a fraction of the channel's reference peak.
    minimum : tuple of float
        Per channel absolute threshold floor (V, A).
    noise_factor : float
        Threshold floor as a multiple of the channel's measured steady-state delta RMS.
    confirm_samples : int
        Consecutive samples above threshold needed to confirm.
    backtrack_fraction : float
        Fraction of the threshold above which samples before the confirmation count as changed.
    max_backtrack_s : float
        Longest backtrack (s).
    noise_time_constant_s : float
        Time constant of the steady-state delta RMS average (s).
    arming_s : float
        Delta samples used to learn the steady-state noise before detection starts (s); learning
        restarts after a gap.
    """

    relative: tuple[float, ...] = (0.05, 0.05, 0.05, 0.25, 0.25, 0.25)
    minimum: tuple[float, ...] = (100.0, 100.0, 100.0, 5.0, 5.0, 5.0)
    noise_factor: float = 6.0
    confirm_samples: int = 2
    backtrack_fraction: float = 0.4
    max_backtrack_s: float = 0.002
    noise_time_constant_s: float = 1.0
    arming_s: float = 0.04


class DeltaDetector:
    """Streaming abrupt-change detector on a :class:`SampleBuffer` (see module notes)."""

    def __init__(self, sample_rate_hz: float, n_channels: int, settings: DeltaSettings | None = None) -> None:
        self.settings = settings or DeltaSettings()
        if len(self.settings.relative) != n_channels or len(self.settings.minimum) != n_channels:
            raise ValueError(f"delta settings need {n_channels} relative and minimum thresholds")
        if self.settings.confirm_samples < 1:
            raise ValueError("confirm_samples must be at least 1")
        self.sample_rate_hz = sample_rate_hz
        self._relative = np.asarray(self.settings.relative, dtype=np.float64)
        self._minimum = np.asarray(self.settings.minimum, dtype=np.float64)
        self._noise_ms = np.zeros(n_channels)
        self._noise_ready = False
        self._next: int | None = None  # first index not yet examined
        self._arming = max(1, round(self.settings.arming_s * sample_rate_hz))
        self._noise_every = max(1, round(0.05 * sample_rate_hz))  # noise re-estimated every ~50 ms
        self._since_noise = 0
        self._thresholds: np.ndarray | None = None
        self._reference_peak = np.zeros(n_channels)
        self._floor: np.ndarray | None = None  # max(minimum, relative * reference peak), V and A
        self._learned = 0  # delta samples seen since the last reset
        # 1 / threshold repeated over the samples of a block, (n_channels, M) Fortran-ordered like the
        # deltas of the buffer's windows: the quiet test is then three whole-block operations.
        self._inverse_tile: np.ndarray | None = None
        self._tile_valid = False

    @property
    def reference_peak(self) -> np.ndarray:
        """Per-channel reference peak (V, A) the relative thresholds apply to."""
        return self._reference_peak

    @reference_peak.setter
    def reference_peak(self, value: np.ndarray) -> None:
        self._reference_peak = np.asarray(value, dtype=np.float64)
        self._thresholds = None
        self._floor = None

    @property
    def armed(self) -> bool:
        """True once the steady-state noise has been learned."""
        return self._learned >= self._arming

    def reset(self) -> None:
        """Forget the scan position and re-learn the noise (after a gap)."""
        self._next = None
        self._learned = 0
        self._noise_ready = False
        self._thresholds = None

    def thresholds(self) -> np.ndarray:
        """Current per-channel thresholds (V, A)."""
        return self._column_thresholds()[:, 0]

    def _column_thresholds(self) -> np.ndarray:
        """Thresholds as a (n_channels, 1) column (recomputed after a noise or reference change)."""
        if self._thresholds is None:
            if self._floor is None:
                self._floor = np.maximum(self._minimum, self._relative * self._reference_peak)
            noise = np.multiply(np.sqrt(self._noise_ms), self.settings.noise_factor)
            self._thresholds = np.maximum(self._floor, noise)[:, None]
            self._tile_valid = False
        return self._thresholds

    def _quiet(self, delta: np.ndarray) -> bool:
        """True when no delta sample exceeds its channel's threshold, by a margin far above rounding.

        ``max |delta| / threshold < 1 - 1e-12`` over the block (one pass over contiguous memory with a
        repeated inverse threshold); a block that is not clearly quiet gets the exact test.
        """
        m = delta.shape[1]
        tile = self._inverse_tile
        if self._thresholds is None or not self._tile_valid or tile is None or tile.shape[1] < m:
            column = self._column_thresholds()
            if tile is None or tile.shape[1] < m:
                tile = self._inverse_tile = np.empty((column.shape[0], m), dtype=np.float64, order="F")
            np.divide(1.0, column, out=tile)
            self._tile_valid = True
        scaled = np.abs(delta)
        scaled *= tile[:, :m]
        return bool(scaled.max() < _QUIET)

    def skip_to(self, index: int) -> None:
        """Do not examine samples before ``index`` (blanking after an event)."""
        if self._next is None or self._next < index:
            self._next = index

    def scan(self, buffer: SampleBuffer, period_samples: float) -> int | None:
        """Examine the new samples of ``buffer``; return the first changed sample of a confirmed change.

        After a detection the scan resumes after the confirmation; callers blank with :meth:`skip_to`.
        """
        end = buffer.end_index
        earliest = buffer.start_index + math.floor(period_samples) + 1  # + history_needed(period)
        nxt = self._next
        start = earliest if nxt is None or nxt < earliest else nxt
        if start >= end:
            return None
        delta = cycle_delta(buffer, start, end, period_samples)
        if self._learned < self._arming:  # not armed yet: learn the noise
            self._update_noise(delta, force=True)
            self._learned += delta.shape[1]
            self._next = end
            return None
        if self._quiet(delta):  # the common case: nothing happening
            self._update_noise(delta)
            self._next = end
            return None
        th = self.thresholds()
        exceed = np.abs(delta) > self._column_thresholds()
        if not exceed.any():
            self._update_noise(delta)
            self._next = end
            return None
        above = exceed.any(axis=0)
        c = self.settings.confirm_samples
        hit: int | None = None
        for i in np.flatnonzero(above):
            if i + c > above.size:
                break
            if above[i : i + c].all():
                hit = int(i)
                break
        if hit is None:
            # An unconfirmed run at the end of the block is examined again with the next samples.
            tail = max(0, above.size - c + 1)
            pending = np.flatnonzero(above[tail:])
            resume = above.size if pending.size == 0 else tail + int(pending[0])
            self._update_noise(delta[:, :resume])
            self._next = start + resume
            return None
        self._update_noise(delta[:, :hit])
        first = start + hit
        self._next = first + c
        return self._backtrack(buffer, first, period_samples, th)

    def _backtrack(self, buffer: SampleBuffer, first: int, period_samples: float, th: np.ndarray) -> int:
        max_back = max(1, round(self.settings.max_backtrack_s * self.sample_rate_hz))
        lo = max(first - max_back, buffer.start_index + history_needed(period_samples))
        if lo >= first:
            return first
        ratio = np.max(np.abs(cycle_delta(buffer, lo, first, period_samples)) / th[:, None], axis=0)
        k = first
        level = self.settings.backtrack_fraction
        previous = math.inf
        # Walk back while the change is still above the backtrack level and growing towards the
        # confirmation (a fault's superimposed quantity grows from its first sample on).
        while k - 1 >= lo and level < ratio[k - 1 - lo] < previous:
            previous = ratio[k - 1 - lo]
            k -= 1
        return self._fit_onset(buffer, k, first, lo, period_samples, th)

    def _fit_onset(
        self,
        buffer: SampleBuffer,
        backtracked: int,
        first: int,
        lo: int,
        period_samples: float,
        th: np.ndarray,
    ) -> int:
        """Onset by least squares: the superimposed quantity of a fault starting at ``k0`` is zero
        before ``k0`` and, over a short window after it, ``a sin(w (k - k0)) + b (cos(w (k - k0)) - 1)
        + c`` (a sinusoid switched on at ``k0``, continuous as currents in inductive circuits, or with
        a step as voltages). Every
        candidate ``k0`` between the earliest backtrack position and the confirmation is tried on the
        changed channels (normalized by their thresholds); the one with the smallest residual wins.
        Weak changes that cross the threshold late (a resistive fault starting near a current zero)
        are dated from their shape rather than from the first large sample."""
        after = max(4, round(period_samples / 8))
        end = min(buffer.end_index, first + after)
        pre = 4
        start = max(lo - pre, buffer.start_index + history_needed(period_samples))
        if end - start < 2 * pre:
            return backtracked
        delta = cycle_delta(buffer, start, end, period_samples) / th[:, None]
        changed = np.abs(delta[:, first - start :]).max(axis=1) > 1.0
        if not changed.any():
            return backtracked
        y = delta[changed]
        energy = np.einsum("ij,ij->i", y, y)
        w = 2.0 * math.pi / period_samples
        k = np.arange(start, end)
        best, best_sse = backtracked, math.inf
        for k0 in range(max(lo, start + pre), first + 1):
            t = k - k0
            on = t >= 0
            basis = np.vstack(
                [np.where(on, np.sin(w * t), 0.0), np.where(on, np.cos(w * t) - 1.0, 0.0), on.astype(float)]
            )
            gram = basis @ basis.T + 1e-9 * np.eye(3)
            rhs = y @ basis.T  # (channels, 3)
            coef = np.linalg.solve(gram, rhs.T)  # (3, channels)
            sse = float(np.sum(energy - np.einsum("ci,ic->c", rhs, coef)))
            if sse < best_sse - 1e-12:
                best, best_sse = k0, sse
        return best

    def _update_noise(self, delta: np.ndarray, force: bool = False) -> None:
        """Exponential average of the delta mean square, from one block every ~50 ms."""
        m = delta.shape[1]
        if m == 0:
            return
        self._since_noise += m
        if self._noise_ready and not force and self._since_noise < self._noise_every:
            return
        ms = np.divide(np.einsum("ij,ij->i", delta, delta), m)
        self._thresholds = None
        if not self._noise_ready:
            self._noise_ms = ms
            self._noise_ready = True
            self._since_noise = 0
            return
        alpha = min(1.0, self._since_noise / (self.settings.noise_time_constant_s * self.sample_rate_hz))
        self._since_noise = 0
        # (np.multiply with Python floats: cheaper than the operators on 6-element arrays)
        self._noise_ms = np.multiply(self._noise_ms, 1.0 - alpha) + np.multiply(ms, alpha)
