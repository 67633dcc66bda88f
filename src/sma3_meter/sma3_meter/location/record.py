"""Pre-fault and fault phasors of a COMTRADE fault record, windowed for impedance-based location.

The locator needs steady-state phasors: one set before the fault and one set during the fault
once the DC offset of the fault currents has decayed. Both are averages of one-cycle DFT phasors
(:func:`sma3_meter.dsp.phasors_at`) over consecutive, non-overlapping cycles, which divides the
noise and quantization error by the square root of the number of cycles:

- *pre-fault*: up to ``max_pre_cycles`` cycles ending half a cycle before inception;
- *fault*: the cycles from a quarter cycle after inception to one cycle before the end of the
  fault state (breaker trip found by the signal chain, or the record end), from which the first
  cycles still disturbed by the decaying DC offset are dropped: the reference is the mean of the
  second half of the fault state, and the window starts at the first cycle after which every
  current phasor stays within ``settle_sigmas`` standard deviations (cycle-to-cycle scatter of the
  second half) of it. The window adapts to the X/R time constant of the fault loop: one or two
  cycles for a resistive fault, up to half the fault state for a bolted fault near the source.

Each cycle's phasors are rotated back by the off-nominal frequency drift
``exp(-j 2 pi (f - f0) t)`` before averaging, so the average is coherent at any frequency. The
standard errors of the averaged fault phasors (scatter / sqrt(cycles)) are returned: the locator
uses them to size the uncertainty of each candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sma3_meter.dsp import estimate_frequency, phasors_at, samples_per_cycle

from .feeder import LocationError

__all__ = ["CHANNELS", "PhasorPair", "RecordPhasors", "record_phasors", "record_samples"]

CHANNELS = ("VA", "VB", "VC", "IA", "IB", "IC")


@dataclass(frozen=True)
class PhasorPair:
    """Voltages (V) and currents (A) of phases A, B, C, complex (3,) RMS (``MeterPhasors``-like)."""

    v: np.ndarray
    i: np.ndarray


@dataclass(frozen=True)
class RecordPhasors:
    """Phasors extracted from a record.

    Attributes
    ----------
    pre, fault : PhasorPair
        Averaged pre-fault and fault-state phasors.
    fault_sigma : PhasorPair
        Standard errors (real, V and A) of the averaged fault phasors; NaN from a single cycle.
    frequency_hz : float
        Frequency estimated from the pre-fault voltages, Hz.
    pre_cycles, fault_cycles : int
        Number of one-cycle estimates averaged.
    fault_window_s : tuple[float, float]
        Start and end of the samples used for the fault phasors, s from the record start.
    """

    pre: PhasorPair
    fault: PhasorPair
    fault_sigma: PhasorPair
    frequency_hz: float
    pre_cycles: int
    fault_cycles: int
    fault_window_s: tuple[float, float]


def record_samples(channels: dict[str, np.ndarray]) -> np.ndarray:
    """The six channels ``VA VB VC IA IB IC`` as a (6, M) float array.

    Raises
    ------
    LocationError
        A channel is missing, the lengths differ, or a sample is missing (NaN) or infinite.
    """
    missing = [name for name in CHANNELS if name not in channels]
    if missing:
        raise LocationError(
            f"record lacks channel(s) {' '.join(missing)}; a fault record needs {' '.join(CHANNELS)}"
        )
    lengths = {name: len(channels[name]) for name in CHANNELS}
    if len(set(lengths.values())) != 1:
        raise LocationError(f"record channels have different lengths: {lengths}")
    samples = np.vstack([np.asarray(channels[name], dtype=float) for name in CHANNELS])
    bad = ~np.isfinite(samples)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise LocationError(
            f"record channel {CHANNELS[row]} has a missing or non-finite sample at index {col}"
        )
    return samples


def _cycle_phasors(samples: np.ndarray, ends: np.ndarray, fs: float, f0: float, f: float) -> np.ndarray:
    """(len(ends), C) one-cycle phasors ending at ``ends``, with the off-nominal drift removed."""
    out = np.empty((len(ends), samples.shape[0]), dtype=complex)
    for j, end in enumerate(ends):
        out[j] = phasors_at(samples, int(end), fs, f0, f) * np.exp(-2j * math.pi * (f - f0) * end / fs)
    return out


def _standard_error(cycles: np.ndarray) -> np.ndarray:
    if len(cycles) < 2:
        return np.full(cycles.shape[1], np.nan)
    return np.sqrt(np.mean(np.abs(cycles - cycles.mean(axis=0)) ** 2, axis=0) / (len(cycles) - 1))


def record_phasors(
    samples: np.ndarray,
    sample_rate_hz: float,
    nominal_hz: float,
    inception_index: int,
    fault_end_index: int | None = None,
    max_pre_cycles: int = 25,
    settle_sigmas: float = 4.0,
) -> RecordPhasors:
    """Averaged pre-fault and fault phasors of a record (see the module notes).

    Parameters
    ----------
    samples : numpy.ndarray
        (6, M) samples of ``VA VB VC`` (V) and ``IA IB IC`` (A), see :func:`record_samples`.
    sample_rate_hz, nominal_hz : float
        Sampling rate and nominal frequency, Hz.
    inception_index : int
        Index of the first faulted sample.
    fault_end_index : int, optional
        Index of the first sample after the fault state (breaker trip or clearing); default the end
        of the record.
    max_pre_cycles : int
        Most pre-fault cycles averaged.
    settle_sigmas : float
        Tolerance of the DC-offset settling test, in standard deviations of the cycle scatter.

    Raises
    ------
    LocationError
        Less than one pre-fault cycle or less than three fault cycles in the record.
    """
    m = samples.shape[1]
    n0 = samples_per_cycle(sample_rate_hz, nominal_hz)
    end = m if fault_end_index is None else min(int(fault_end_index), m)
    margin = max(1, n0 // 2)
    last_pre = inception_index - margin
    if last_pre - n0 + 1 < 0:
        raise LocationError(
            f"record has {inception_index} samples before the fault; at least {n0 + margin} "
            "(one cycle and a margin) are needed"
        )
    span = end - inception_index
    if span < 3 * n0:
        raise LocationError(
            f"record has {span / sample_rate_hz * 1e3:.1f} ms of fault state; at least 3 cycles are needed"
        )
    freq_cycles = min(5, (last_pre + 1) // n0 - 1)
    f = nominal_hz
    if freq_cycles >= 2:
        f = estimate_frequency(samples[:3], last_pre, sample_rate_hz, nominal_hz, cycles=freq_cycles)
        if not (abs(f - nominal_hz) < 0.1 * nominal_hz):
            f = nominal_hz
    n = samples_per_cycle(sample_rate_hz, f)
    pre_count = max(1, min(max_pre_cycles, (last_pre + 1) // n))
    pre_cycles = _cycle_phasors(samples, last_pre - n * np.arange(pre_count), sample_rate_hz, nominal_hz, f)
    pre = pre_cycles.mean(axis=0)

    first_end = inception_index + max(1, n0 // 4) + n - 1
    last_end = end - 1 - max(1, n0 // 4)
    fault_ends = np.arange(first_end, max(last_end, first_end) + 1, n)
    cycles = _cycle_phasors(samples, fault_ends, sample_rate_hz, nominal_hz, f)
    half = len(cycles) // 2
    tail = cycles[half:]
    reference = tail.mean(axis=0)
    spread = np.sqrt(np.mean(np.abs(tail - reference) ** 2, axis=0))
    scale = np.maximum(spread, 1e-9 * np.maximum(np.abs(reference), 1.0))
    deviation = np.max(np.abs(cycles[:, 3:] - reference[3:]) / scale[3:], axis=1)
    start = half
    while start > 0 and deviation[start - 1] <= settle_sigmas:
        start -= 1
    used = cycles[start:]
    flt = used.mean(axis=0)
    sigma = _standard_error(used)
    window = (
        (int(fault_ends[start]) - n + 1) / sample_rate_hz,
        (int(fault_ends[-1]) + 1) / sample_rate_hz,
    )
    return RecordPhasors(
        pre=PhasorPair(pre[:3], pre[3:6]),
        fault=PhasorPair(flt[:3], flt[3:6]),
        fault_sigma=PhasorPair(sigma[:3], sigma[3:6]),
        frequency_hz=float(f),
        pre_cycles=int(pre_count),
        fault_cycles=len(used),
        fault_window_s=window,
    )
