"""Accuracy of the phasor estimator against analytic signals (issue 4 targets).

Prints the largest total vector error (TVE, IEEE C37.118.1) over six channels and every cycle
report after the tracker settles, and the largest frequency error:

- nominal frequency, no noise (target TVE <= 0.1 %),
- +-2 Hz off nominal with 12-bit quantization (+-10 V ADC range) and 0.1 % Gaussian noise
  (standard deviation 0.1 % of the peak; target TVE <= 1 %, frequency error <= 5 mHz).

Usage: ``.venv/bin/python bench/bench_phasors.py [--sample-rate 3200] [--nominal 50] [--seed 1]``
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sma3_meter.dsp import PhasorEstimator

V_RMS = 22000.0 / math.sqrt(3.0)
I_RMS = 180.0
SETTLE_S = 0.3


def three_phase(
    f_hz: float, fs: float, duration_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Six analytic channels (V, A) and their amplitude/phase at t=0 (RMS, rad)."""
    n = int(duration_s * fs)
    t = np.arange(n) / fs
    mags = np.array([V_RMS, V_RMS * 0.98, V_RMS * 1.01, I_RMS, I_RMS * 0.9, I_RMS * 1.1])
    phases = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3]) + rng.uniform(-np.pi, np.pi)
    phases = np.concatenate([phases, phases - 0.35])
    x = math.sqrt(2) * mags[:, None] * np.cos(2 * np.pi * f_hz * t[None, :] + phases[:, None])
    return x, mags * np.exp(1j * phases)


def adc(x: np.ndarray, noise: float, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise (std = noise * peak) and quantize each channel on a +-10 V converter whose
    full scale is 1.25 times the channel's peak (the VT/CT scaling), back in primary units."""
    peak = np.max(np.abs(x), axis=1, keepdims=True)
    noisy = x + rng.normal(0.0, 1.0, x.shape) * noise * peak
    if bits <= 0:
        return noisy
    volts_per_unit = 10.0 / (1.25 * peak)
    lsb = 20.0 / 2**bits
    counts = np.clip(np.round(noisy * volts_per_unit / lsb), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return counts * lsb / volts_per_unit


def run_case(f_hz: float, fs: float, f0: float, noise: float, bits: int, seed: int) -> tuple[float, float]:
    """Return (max TVE, max |frequency error| in Hz) after settling."""
    rng = np.random.default_rng(seed)
    x, truth0 = three_phase(f_hz, fs, 2.0, rng)
    x = adc(x, noise, bits, rng)
    est = PhasorEstimator(fs, f0)
    frame = round(fs / f0)
    tve = 0.0
    ferr = 0.0
    for start in range(0, x.shape[1] - frame + 1, frame):
        for rep in est.push(x[:, start : start + frame], start):
            t = rep.sample_index / fs
            if t < SETTLE_S:
                continue
            truth = truth0 * np.exp(1j * 2 * np.pi * (f_hz - f0) * t)
            tve = max(tve, float(np.max(np.abs(rep.phasors - truth) / np.abs(truth))))
            ferr = max(ferr, abs(rep.frequency_hz - f_hz))
    return tve, ferr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=3200.0, help="Hz")
    parser.add_argument("--nominal", type=float, default=50.0, help="Hz")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    fs, f0 = args.sample_rate, args.nominal
    print(f"sample rate {fs:g} Hz, nominal {f0:g} Hz, {round(fs / f0)} samples/cycle, seed {args.seed}")
    print(f"{'case':44s} {'max TVE %':>10s} {'max |df| mHz':>13s} {'target':>22s}")
    tve, ferr = run_case(f0, fs, f0, 0.0, 0, args.seed)
    print(f"{'nominal, no noise':44s} {100 * tve:10.5f} {1000 * ferr:13.4f} {'TVE<=0.1%':>22s}")
    worst_tve = 0.0
    worst_f = 0.0
    for df in (-2.0, -1.0, 1.0, 2.0):
        tve, ferr = run_case(f0 + df, fs, f0, 0.001, 12, args.seed)
        worst_tve, worst_f = max(worst_tve, tve), max(worst_f, ferr)
        label = f"{df:+.0f} Hz, 12-bit, 0.1% noise"
        print(f"{label:44s} {100 * tve:10.5f} {1000 * ferr:13.4f} {'TVE<=1%, df<=5mHz':>22s}")
    tve, ferr = run_case(f0, fs, f0, 0.001, 12, args.seed)
    print(f"{'nominal, 12-bit, 0.1% noise':44s} {100 * tve:10.5f} {1000 * ferr:13.4f} {'':>22s}")
    ok = worst_tve <= 0.01 and worst_f <= 0.005
    print(
        f"off-nominal worst: TVE {100 * worst_tve:.4f} %, frequency error {1000 * worst_f:.3f} mHz -> "
        f"{'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
