"""Streaming phasor estimator: one-cycle DFT phasors every cycle and on demand, tracked frequency.

Also one-shot helpers on whole arrays (e.g. a COMTRADE record): :func:`phasors_at` and
:func:`estimate_frequency`.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field

import numpy as np

from sma3_meter.dsp.buffer import SampleBuffer
from sma3_meter.dsp.frequency import FrequencyTracker
from sma3_meter.dsp.phasor import dft_kernel, dft_phasors, samples_per_cycle, synchro_rotation
from sma3_meter.dsp.sequence import per_phase_power, positive_sequence, sequence_components

__all__ = [
    "CHANNELS",
    "PhasorEstimator",
    "PhasorSample",
    "estimate_frequency",
    "phasors_at",
]

CHANNELS: tuple[str, ...] = ("VA", "VB", "VC", "IA", "IB", "IC")
_N_CHANNELS = len(CHANNELS)
_MAX_KERNELS = 256  # distinct demodulation frequencies cached per estimator


@dataclass(frozen=True, slots=True)
class PhasorSample:
    """Phasors of the six channels at one sample index.

    Attributes
    ----------
    sample_index : int
        Absolute index of the last sample of the window; the phasors refer to its time.
    frequency_hz : float
        Tracked frequency in Hz used for the estimate.
    rocof_hz_s : float
        Rate of change of frequency in Hz/s.
    phasors : numpy.ndarray of complex, shape (6,)
        Synchrophasors (RMS) of VA VB VC (V, phase-to-ground) and IA IB IC (A).
    locked : bool
        The frequency tracker produced an estimate at this report (False: frequency held).
    transient : bool
        The window straddles a detected abrupt change (set by the detection chain).
    """

    sample_index: int
    frequency_hz: float
    rocof_hz_s: float
    phasors: np.ndarray
    locked: bool = True
    transient: bool = False
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def v(self) -> np.ndarray:
        """Phase-to-ground voltage phasors A, B, C (RMS V)."""
        return self.phasors[:3]

    @property
    def i(self) -> np.ndarray:
        """Current phasors A, B, C (RMS A)."""
        return self.phasors[3:6]

    @property
    def v_seq(self) -> np.ndarray:
        """Voltage sequence components [V0, V1, V2] (RMS V)."""
        if "v_seq" not in self._cache:
            self._cache["v_seq"] = sequence_components(self.v)
        return self._cache["v_seq"]

    @property
    def i_seq(self) -> np.ndarray:
        """Current sequence components [I0, I1, I2] (RMS A)."""
        if "i_seq" not in self._cache:
            self._cache["i_seq"] = sequence_components(self.i)
        return self._cache["i_seq"]

    @property
    def p_w(self) -> np.ndarray:
        """Active power per phase (W)."""
        if "p_w" not in self._cache:
            self._cache["p_w"], self._cache["q_var"] = per_phase_power(self.v, self.i)
        return self._cache["p_w"]

    @property
    def q_var(self) -> np.ndarray:
        """Reactive power per phase (var)."""
        if "q_var" not in self._cache:
            self._cache["p_w"], self._cache["q_var"] = per_phase_power(self.v, self.i)
        return self._cache["q_var"]


def phasors_at(
    samples: np.ndarray,
    end_index: int,
    sample_rate_hz: float,
    nominal_hz: float,
    frequency_hz: float | None = None,
    first_index: int = 0,
) -> np.ndarray:
    """Synchrophasors of every channel of ``samples`` for the one-cycle window ending at ``end_index``.

    Parameters
    ----------
    samples : numpy.ndarray, shape (C, M)
        Channel samples (V or A); ``samples[:, j]`` has absolute index ``first_index + j``.
    end_index : int
        Absolute index of the window's last sample (the phasors refer to its time).
    sample_rate_hz, nominal_hz : float
        Sampling rate and nominal frequency in Hz.
    frequency_hz : float, optional
        Signal frequency (Hz); nominal when omitted (see :func:`estimate_frequency`).
    first_index : int
        Absolute index of ``samples[:, 0]``.

    Returns
    -------
    numpy.ndarray of complex, shape (C,)
        RMS synchrophasors (radians), see :mod:`sma3_meter.dsp.phasor`.
    """
    f = nominal_hz if frequency_hz is None else frequency_hz
    n = samples_per_cycle(sample_rate_hz, f)
    stop = end_index - first_index + 1
    if stop - n < 0 or stop > samples.shape[-1]:
        raise IndexError(
            f"a {n}-sample window ending at sample {end_index} is outside the samples "
            f"{first_index}..{first_index + samples.shape[-1] - 1}"
        )
    window = samples[..., stop - n : stop]
    return dft_phasors(window, sample_rate_hz, f) * synchro_rotation(end_index, sample_rate_hz, nominal_hz)


def estimate_frequency(
    v_abc: np.ndarray,
    end_index: int,
    sample_rate_hz: float,
    nominal_hz: float,
    cycles: int = 5,
    first_index: int = 0,
) -> float:
    """Frequency (Hz) of three-phase voltages over the ``cycles`` cycles ending at ``end_index``.

    Two passes of positive-sequence rotation (:mod:`sma3_meter.dsp.frequency`): the second uses
    phasors computed at the first estimate. Needs ``cycles + 1`` cycles of samples.
    """
    n0 = samples_per_cycle(sample_rate_hz, nominal_hz)
    tracker_f = nominal_hz
    for _ in range(3):
        tracker = FrequencyTracker(sample_rate_hz, nominal_hz, baseline_cycles=cycles)
        half = (samples_per_cycle(sample_rate_hz, tracker_f) - 1) / 2.0
        to_centre = np.exp(-2j * np.pi * (tracker_f - nominal_hz) * half / sample_rate_hz)
        for k in range(cycles, -1, -1):
            index = end_index - k * n0
            abc = phasors_at(v_abc, index, sample_rate_hz, nominal_hz, tracker_f, first_index)
            tracker.update(index - half, complex(sequence_components(abc)[1]) * to_centre)
        tracker_f = tracker.frequency_hz
    return tracker_f


class PhasorEstimator:
    """Phasors of VA VB VC IA IB IC from a stream of sample blocks.

    Reports a :class:`PhasorSample` at the last sample of every nominal cycle of the absolute sample
    counter (indices ``k`` with ``(k + 1) % N0 == 0``, ``N0 = round(fs / f0)``) and on demand at any
    stored sample (:meth:`at`). The window is one cycle at the tracked frequency.

    Parameters
    ----------
    sample_rate_hz : float
        Sampling rate in Hz (at least 32 samples per nominal cycle).
    nominal_hz : float
        Nominal frequency (50 or 60 Hz).
    history_cycles : int
        Cycles of samples kept for on-demand estimates.
    tracker : FrequencyTracker, optional
        Frequency tracker (default: :class:`FrequencyTracker` with its defaults).
    """

    def __init__(
        self,
        sample_rate_hz: float,
        nominal_hz: float,
        history_cycles: int = 12,
        tracker: FrequencyTracker | None = None,
    ) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self.nominal_hz = float(nominal_hz)
        self.samples_per_cycle = samples_per_cycle(sample_rate_hz, nominal_hz)
        self.buffer = SampleBuffer(len(CHANNELS), history_cycles * self.samples_per_cycle)
        self.tracker = tracker or FrequencyTracker(sample_rate_hz, nominal_hz)
        self._retune_hz = 0.02
        # Corrected DFT kernels (N, 2) by demodulation frequency (Hz, on the 0.1 mHz grid), see
        # _phasors: the tracked frequency wanders over a few grid values in steady state.
        self._kernels: dict[float, np.ndarray] = {}

    @property
    def frequency_hz(self) -> float:
        """Current tracked frequency (Hz)."""
        return self.tracker.frequency_hz

    def reset(self, next_index: int) -> None:
        """Drop the samples and the frequency history (after a gap); next block starts at ``next_index``."""
        self.buffer.reset(next_index)
        self.tracker.reset()

    def push(self, block: np.ndarray, first_index: int) -> list[PhasorSample]:
        """Add a block (6, M) starting at absolute index ``first_index``; return the cycle reports.

        A block that does not continue the previous one restarts the estimator (gap).
        """
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[0] != _N_CHANNELS:
            raise ValueError(f"block must have shape ({_N_CHANNELS}, M), got {block.shape}")
        buffer = self.buffer
        if len(buffer) and first_index != buffer.end_index:
            self.reset(first_index)
        buffer.append(block, first_index)
        n0 = self.samples_per_cycle
        end = first_index + block.shape[1]
        k = first_index + (-(first_index + 1)) % n0
        if k >= end:  # no cycle boundary in this block (frames shorter than a cycle)
            return []
        reports: list[PhasorSample] = []
        while k < end:
            sample = self._report(k)
            if sample is not None:
                reports.append(sample)
            k += n0
        return reports

    def _report(self, index: int) -> PhasorSample | None:
        tracker = self.tracker
        f_used = tracker.frequency_hz
        phasors = self._phasors(index, f_used)
        if phasors is None:
            return None
        # Track with the positive sequence referred to the window centre (no phase error from a
        # demodulation-frequency error there), see FrequencyTracker.update. The window has
        # round(fs / f) samples at the frequency used (on the grid of _phasors).
        fs = self.sample_rate_hz
        half = (round(fs / round(f_used, 4)) - 1) / 2.0
        to_centre = cmath.exp(-2j * math.pi * (f_used - self.nominal_hz) * half / fs)
        va, vb, vc = phasors[:3].tolist()
        v1_centre = positive_sequence(va, vb, vc) * to_centre
        f_new = tracker.update(index - half, v1_centre)
        if abs(f_new - f_used) > self._retune_hz:
            retuned = self._phasors(index, f_new)
            if retuned is not None:
                phasors = retuned
        return PhasorSample(index, f_new, tracker.rocof_hz_s, phasors, tracker.locked)

    def _phasors(self, index: int, frequency_hz: float) -> np.ndarray | None:
        # The tracked frequency is used on a 0.1 mHz grid so that the DFT kernels are reused
        # (cached here, computed by the same function as dft_phasors) instead of recomputed every
        # cycle; the demodulation-frequency error (< 0.05 mHz) shifts the angle by less than
        # pi * 0.05e-3 / f0 rad (3e-6 rad). The DFT of the six channels is one (6, N) x (N, 2)
        # matrix product on the buffer's storage (no copy).
        frequency_hz = round(frequency_hz, 4)
        fs = self.sample_rate_hz
        n = round(fs / frequency_hz)
        buffer = self.buffer
        if index - n + 1 < buffer.start_index or index >= buffer.end_index:
            return None
        kernel = self._kernels.get(frequency_hz)
        if kernel is None or kernel.shape[0] != n:
            if len(self._kernels) >= _MAX_KERNELS:
                self._kernels.clear()
            kernel = dft_kernel(n, fs, frequency_hz)
            self._kernels[frequency_hz] = kernel
        re_im = buffer.window(index - n + 1, index + 1) @ kernel
        return re_im.view(np.complex128)[:, 0] * synchro_rotation(index, fs, self.nominal_hz)

    def at(self, index: int, frequency_hz: float | None = None) -> PhasorSample:
        """Phasors for the one-cycle window ending at stored sample ``index`` (on demand).

        Raises
        ------
        IndexError
            The window is not (or no longer) stored.
        """
        f = self.tracker.frequency_hz if frequency_hz is None else frequency_hz
        phasors = self._phasors(index, f)
        if phasors is None:
            raise IndexError(
                f"no full cycle ending at sample {index} in the buffer "
                f"({self.buffer.start_index}..{self.buffer.end_index - 1})"
            )
        return PhasorSample(index, f, self.tracker.rocof_hz_s, phasors, self.tracker.locked)
