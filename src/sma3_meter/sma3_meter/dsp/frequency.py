"""Frequency and ROCOF tracking from the rotation of the positive-sequence voltage phasor.

A synchrophasor of a signal at frequency ``f`` rotates at ``2 pi (f - f0)`` rad/s, so two
positive-sequence phasors ``D`` seconds apart give ``f = f0 + angle(V1(t) / V1(t - D)) / (2 pi D)``
(A. G. Phadke, J. S. Thorp and M. G. Adamiak, "A new measurement technique for tracking voltage
phasors, local system frequency, and rate of change of frequency", IEEE Trans. PAS-102(5), 1983).
The positive sequence averages the three phases (noise down by sqrt(3)) and rejects the
double-frequency ripple of single-phase estimates. A one-cycle difference (unambiguous within
+-f0/2) resolves the turn count of the longer baseline, which sets the noise: with 0.1 % noise and a
5-cycle baseline the error is a fraction of a mHz.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["FrequencyTracker", "rotation_frequency"]


def rotation_frequency(
    earlier: complex, later: complex, samples_apart: float, sample_rate_hz: float, nominal_hz: float
) -> float:
    """Frequency (Hz) implied by the rotation of a synchrophasor between two sample indices.

    The angle difference is taken in ``(-pi, pi]``, so ``|f - f0|`` must stay below
    ``fs / (2 * samples_apart)``.
    """
    if samples_apart <= 0:
        raise ValueError(f"samples_apart must be positive, got {samples_apart}")
    if earlier == 0 or later == 0:
        raise ValueError("phasors must be non-zero to measure their rotation")
    dphi = math.atan2((later * earlier.conjugate()).imag, (later * earlier.conjugate()).real)
    return nominal_hz + dphi * sample_rate_hz / (2.0 * math.pi * samples_apart)


class FrequencyTracker:
    """Tracks frequency (Hz) and ROCOF (Hz/s) from positive-sequence voltage synchrophasors.

    Parameters
    ----------
    sample_rate_hz : float
        Sampling rate in Hz.
    nominal_hz : float
        Nominal frequency in Hz (the initial and fallback estimate).
    baseline_cycles : int
        Number of reporting steps between the two phasors of the estimate (longer = less noise,
        slower response).
    min_voltage_v : float
        Below this positive-sequence magnitude (RMS V) the estimate is held (no voltage).
    max_step_change : float
        Relative change of the positive-sequence magnitude between consecutive updates above which
        the history is restarted and the estimate held (phase jumps at faults and switching).
    max_deviation_hz : float
        Estimates farther than this from nominal are rejected (estimate held).
    """

    def __init__(
        self,
        sample_rate_hz: float,
        nominal_hz: float,
        baseline_cycles: int = 5,
        min_voltage_v: float = 1.0,
        max_step_change: float = 0.05,
        max_deviation_hz: float = 5.0,
    ) -> None:
        if baseline_cycles < 1:
            raise ValueError(f"baseline_cycles must be at least 1, got {baseline_cycles}")
        self.sample_rate_hz = sample_rate_hz
        self.nominal_hz = nominal_hz
        self.baseline_cycles = baseline_cycles
        self.min_voltage_v = min_voltage_v
        self.max_step_change = max_step_change
        self.max_deviation_hz = max_deviation_hz
        self.frequency_hz = nominal_hz
        self.rocof_hz_s = 0.0
        self.locked = False  # True while the last update produced an estimate
        self._history: deque[tuple[float, complex]] = deque(maxlen=baseline_cycles + 1)
        self._freq_history: deque[tuple[float, float]] = deque(maxlen=baseline_cycles + 1)

    def reset(self, frequency_hz: float | None = None) -> None:
        """Forget the phasor history (after a gap or an abrupt change); keep the last estimate or set
        it to ``frequency_hz``."""
        if frequency_hz is not None:
            self.frequency_hz = frequency_hz
        self.locked = False
        self._history.clear()
        self._freq_history.clear()
        self.rocof_hz_s = 0.0

    def update(self, sample_index: float, v1: complex) -> float:
        """Add the positive-sequence synchrophasor ``v1`` (V) referred to ``sample_index``.

        ``sample_index`` may be fractional: the estimator refers the phasors used for tracking to the
        centre of their window, where an error of the demodulation frequency causes no phase error.

        Returns
        -------
        float
            The frequency estimate in Hz (held at the previous value when the update is rejected).
        """
        magnitude = abs(v1)
        self.locked = False
        if magnitude < self.min_voltage_v:
            self.reset()
            return self.frequency_hz
        if self._history:
            last_index, last = self._history[-1]
            if abs(magnitude - abs(last)) > self.max_step_change * abs(last) or sample_index <= last_index:
                self.reset()
        self._history.append((sample_index, v1))
        if len(self._history) < 2:
            return self.frequency_hz
        prev_index, prev = self._history[-2]
        coarse = rotation_frequency(prev, v1, sample_index - prev_index, self.sample_rate_hz, self.nominal_hz)
        first_index, first = self._history[0]
        span = sample_index - first_index
        # Long-baseline rotation, unwrapped around the one-step estimate.
        predicted = 2.0 * math.pi * (coarse - self.nominal_hz) * span / self.sample_rate_hz
        measured = math.atan2((v1 * first.conjugate()).imag, (v1 * first.conjugate()).real)
        dphi = predicted + math.remainder(measured - predicted, 2.0 * math.pi)
        estimate = self.nominal_hz + dphi * self.sample_rate_hz / (2.0 * math.pi * span)
        if abs(estimate - self.nominal_hz) > self.max_deviation_hz:
            return self.frequency_hz
        self.frequency_hz = estimate
        self.locked = True
        if len(self._history) == self._history.maxlen:
            self._freq_history.append((sample_index, estimate))
            if len(self._freq_history) >= 2:
                i0, f0 = self._freq_history[0]
                self.rocof_hz_s = (estimate - f0) * self.sample_rate_hz / (sample_index - i0)
        return self.frequency_hz
