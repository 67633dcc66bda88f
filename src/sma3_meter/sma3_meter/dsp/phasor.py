"""Full-cycle DFT phasor estimation with off-nominal frequency correction.

Phasor convention (sma3 contract): RMS magnitude, angle in radians. A sinusoid
``x(t) = sqrt(2) |X| cos(w t + phi)`` has the *synchrophasor* ``|X| exp(j((w - w0) t + phi))``
where ``w0 = 2 pi f0`` is the nominal angular frequency and ``t`` the time of the sample the
phasor refers to, counted from sample index 0 of the meter (``t = k / fs``). At nominal frequency
the phasor of a steady signal is constant; off nominal it rotates at ``w - w0`` (IEEE C37.118.1-2011,
section 4.2).

Method
------
The window holds one cycle at the tracked frequency ``f`` (``N = round(fs / f)`` samples, at least
32; 64 at 3.2 kHz / 50 Hz). It is demodulated at ``f``:
``Y = sqrt(2)/N * sum_n x[n] exp(-j w n T)``, with ``n`` counted from the window's last sample.
For a sinusoid at ``f`` this gives ``Y = X + conj(X) Q`` with ``Q = 1/N sum_n exp(-2j w n T)``
(the image of the negative-frequency component, non-zero when the window is not an integer number
of cycles), so ``X = (Y - Q conj(Y)) / (1 - |Q|^2)`` exactly. This is the off-nominal correction of
the DFT phasor estimator (A. G. Phadke and J. S. Thorp, *Synchronized Phasor Measurements and Their
Applications*, Springer 2008, section 3.3, "Phasor estimation at off-nominal frequency inputs":
``X' = P X + Q X*``), here with the demodulation done at the tracked frequency so that ``P = 1``
and harmonics stay near the DFT's zeros. The frequency itself comes from the rotation of the
positive-sequence phasor (:mod:`sma3_meter.dsp.frequency`).
"""

from __future__ import annotations

import cmath
import math
from functools import lru_cache

import numpy as np

__all__ = [
    "MIN_SAMPLES_PER_CYCLE",
    "advance",
    "dft_kernel",
    "dft_phasors",
    "samples_per_cycle",
    "synchro_rotation",
    "waveform",
]

MIN_SAMPLES_PER_CYCLE = 32
SQRT2 = math.sqrt(2.0)


def samples_per_cycle(sample_rate_hz: float, frequency_hz: float) -> int:
    """Window length of one cycle at ``frequency_hz``: ``round(fs / f)`` samples.

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_SAMPLES_PER_CYCLE` samples per cycle, or non-positive rates.
    """
    if sample_rate_hz <= 0 or frequency_hz <= 0:
        raise ValueError(f"sample rate {sample_rate_hz} Hz and frequency {frequency_hz} Hz must be positive")
    n = round(sample_rate_hz / frequency_hz)
    if n < MIN_SAMPLES_PER_CYCLE:
        raise ValueError(
            f"{sample_rate_hz} Hz sampling gives {n} samples per cycle at {frequency_hz} Hz; "
            f"at least {MIN_SAMPLES_PER_CYCLE} are needed"
        )
    return n


@lru_cache(maxsize=64)
def _offsets(n: int) -> np.ndarray:
    """Sample offsets from the window's last sample: -(N-1) .. 0."""
    return np.arange(-(n - 1), 1, dtype=np.float64)


@lru_cache(maxsize=256)
def _kernel(n: int, omega_t: float) -> tuple[np.ndarray, np.ndarray]:
    """Real (N, 2) kernels mapping a real window to [Re, Im] of its phasor, for ``omega_t = w T``
    (rad/sample): the plain demodulation, and the one including the image correction.

    With ``y = a + jb`` the plain DFT, the correction ``X = (y - Q conj(y)) / (1 - |Q|^2)`` is the real
    linear map ``[Xr, Xi] = [a, b] M``, ``M = [[1 - Qr, -Qi], [-Qi, 1 + Qr]] / (1 - |Q|^2)``, folded
    into the kernel so that a phasor costs one real matrix product.
    """
    complex_weights = (SQRT2 / n) * np.exp(-1j * omega_t * _offsets(n))
    plain = np.ascontiguousarray(np.stack([complex_weights.real, complex_weights.imag], axis=1))
    # Q = 1/N sum_{m=-(N-1)}^{0} exp(-2j w m): a geometric series.
    z = cmath.exp(2j * omega_t)
    q = n + 0j if abs(z - 1.0) < 1e-15 else (1.0 - z**n) / (n * (1.0 - z))
    norm = 1.0 / (1.0 - abs(q) ** 2)
    m = norm * np.array([[1.0 - q.real, -q.imag], [-q.imag, 1.0 + q.real]])
    corrected = np.ascontiguousarray(plain @ m)
    plain.flags.writeable = False
    corrected.flags.writeable = False
    return plain, corrected


def _quantize(omega_t: float) -> float:
    # Kernels are cached on a grid of 1e-13 rad/sample: far below any error budget.
    return round(omega_t, 13)


def dft_kernel(n: int, sample_rate_hz: float, frequency_hz: float, corrected: bool = True) -> np.ndarray:
    """Real kernel (N, 2) of :func:`dft_phasors`: ``window @ kernel`` is ``[Re, Im]`` of the phasors.

    Parameters
    ----------
    n : int
        Window length in samples.
    sample_rate_hz, frequency_hz : float
        Sampling rate and demodulation frequency in Hz.
    corrected : bool
        Include the off-nominal image correction (see the module notes).

    Returns
    -------
    numpy.ndarray, shape (N, 2)
        Read-only cached array; ``(window @ kernel).view(complex)`` gives the phasors of a
        C-contiguous (C, 2) product.
    """
    plain, corrected_kernel = _kernel(n, _quantize(2.0 * math.pi * frequency_hz / sample_rate_hz))
    return corrected_kernel if corrected else plain


def dft_phasors(
    window: np.ndarray, sample_rate_hz: float, frequency_hz: float, corrected: bool = True
) -> np.ndarray:
    """Phasors of the sinusoids at ``frequency_hz`` in ``window``, referred to its last sample.

    Parameters
    ----------
    window : numpy.ndarray, shape (..., N)
        Samples of one or more channels (V or A); the last axis is time, ``N`` should be one cycle
        (:func:`samples_per_cycle`).
    sample_rate_hz : float
        Sampling rate in Hz.
    frequency_hz : float
        Frequency of the signal in Hz (the tracked frequency).
    corrected : bool
        Remove the negative-frequency image (exact for a pure sinusoid at ``frequency_hz``; see the
        module notes). ``False`` gives the plain DFT.

    Returns
    -------
    numpy.ndarray of complex, shape (...)
        RMS phasors ``X`` such that ``x(t) ~ sqrt(2) Re(X exp(j w (t - t_last)))``, in the unit of the
        samples. Multiply by :func:`synchro_rotation` to get synchrophasors.
    """
    window = np.asarray(window, dtype=np.float64)
    kernel = dft_kernel(window.shape[-1], sample_rate_hz, frequency_hz, corrected)
    re_im = np.ascontiguousarray(window @ kernel)
    return re_im.view(np.complex128)[..., 0]


def synchro_rotation(sample_index: int, sample_rate_hz: float, nominal_hz: float) -> complex:
    """Factor ``exp(-j w0 t)`` turning a phasor referred to sample ``sample_index`` into a synchrophasor.

    Computed without loss of precision for large sample indices when ``fs`` and ``f0`` are integers.
    """
    turns = math.fmod(float(sample_index) * nominal_hz, sample_rate_hz) / sample_rate_hz
    return cmath.exp(-2j * math.pi * turns)


def advance(
    phasors: np.ndarray,
    from_index: int,
    to_index: int,
    sample_rate_hz: float,
    frequency_hz: float,
    nominal_hz: float,
) -> np.ndarray:
    """Synchrophasors of a steady signal at ``frequency_hz`` moved from one sample time to another.

    Synchrophasors rotate at ``2 pi (f - f0)`` rad/s off nominal; comparing phasors taken at different
    times (pre-fault and fault) needs them at the same time.
    """
    turn = 2.0 * math.pi * (frequency_hz - nominal_hz) * (to_index - from_index) / sample_rate_hz
    return np.asarray(phasors) * complex(math.cos(turn), math.sin(turn))


def waveform(
    phasors: np.ndarray,
    sample_index: np.ndarray,
    sample_rate_hz: float,
    frequency_hz: float,
    nominal_hz: float,
    reference_index: int,
) -> np.ndarray:
    """Samples of the sinusoids described by synchrophasors (the inverse of the estimator).

    Parameters
    ----------
    phasors : numpy.ndarray of complex, shape (C,)
        Synchrophasors (RMS) referred to sample ``reference_index``.
    sample_index : numpy.ndarray of int, shape (M,)
        Sample indices at which to evaluate.
    sample_rate_hz, frequency_hz, nominal_hz : float
        Sampling rate, signal frequency and nominal frequency in Hz.
    reference_index : int
        Sample index the phasors refer to.

    Returns
    -------
    numpy.ndarray, shape (C, M)
        ``sqrt(2) Re(X exp(j (w0 t_ref + w (t - t_ref))))``.
    """
    phasors = np.asarray(phasors, dtype=np.complex128)
    base = phasors / synchro_rotation(reference_index, sample_rate_hz, nominal_hz)
    dt = (np.asarray(sample_index, dtype=np.float64) - reference_index) / sample_rate_hz
    rot = np.exp(1j * 2.0 * math.pi * frequency_hz * dt)
    return SQRT2 * np.real(base[:, None] * rot[None, :])
