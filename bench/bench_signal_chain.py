"""Speed of the meter's signal chain (frame in -> phasors -> detection), and optionally its latency
through ROS.

Core: six channels at 6.4 kHz (128 samples per 50 Hz cycle), one-cycle frames, 20 s of a 22 kV
feeder signal with 0.1 % noise and an AG fault at 10 s cleared at 10.1 s, processed by
:class:`sma3_meter.detection.SignalChain` on one core. Prints the CPU time per frame and the
real-time factor (target >= 200x), plus the events found (a check that the work was done).

``--ros``: latency from the first faulted sample to the ``FaultEvent`` received through ROS
(target <= one cycle + 5 ms), with the replay backend at real-time pace through the acquisition and
detector nodes in this process (needs the built workspace: ``source scripts/env.sh``).

Usage: ``.venv/bin/python bench/bench_signal_chain.py [--sample-rate 6400] [--seconds 20] [--ros]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from sma3_meter.detection import FaultCleared, FaultDetected, SignalChain

A = np.exp(2j * np.pi / 3)


def feeder_signal(fs: float, seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """Six channels (V, A) with an AG fault at the middle (cleared 0.1 s later); the fault index."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    v = 12700 * np.array([1, A**2, A])
    i_load = 150 * np.exp(-0.3j) * np.array([1, A**2, A])
    v_f = v * np.array([0.6, 1.02, 1.02])
    i_f = i_load + np.array([2500 * np.exp(-1.2j), 0, 0])
    k0 = int(n / 2 + 17)
    k1 = k0 + int(0.1 * fs)

    def wave(ph: np.ndarray, sl: slice) -> np.ndarray:
        return math.sqrt(2) * np.real(ph[:, None] * np.exp(2j * np.pi * 50 * t[None, sl]))

    x = np.empty((6, n))
    x[:3] = wave(v, slice(None))
    x[3:] = wave(i_load, slice(None))
    x[:3, k0:k1] = wave(v_f, slice(k0, k1))
    x[3:, k0:k1] = wave(i_f, slice(k0, k1))
    x[3:, k1:] = 0.0
    x += rng.normal(0, 1, x.shape) * 0.001 * np.abs(x).max(axis=1, keepdims=True)
    return x, k0


def run_chain(frames: list[np.ndarray], fs: float, frame: int) -> tuple[float, list]:
    """Process every frame with a fresh chain; return the CPU time (s) and the events."""
    chain = SignalChain(fs, 50.0)
    events = []
    t0 = time.process_time()
    for k, block in enumerate(frames):
        events += chain.process(block, k * frame).events
    return time.process_time() - t0, events


def bench_core(fs: float, seconds: float, seed: int, repeats: int = 5) -> None:
    x, k0 = feeder_signal(fs, seconds, seed)
    frame = round(fs / 50)
    n_frames = x.shape[1] // frame
    frames = [np.ascontiguousarray(x[:, k * frame : (k + 1) * frame]) for k in range(n_frames)]
    runs = [run_chain(frames, fs, frame) for _ in range(repeats)]
    cpu = sorted(r[0] for r in runs)
    events = runs[0][1]
    duration = n_frames * frame / fs
    faults = [e for e in events if isinstance(e, FaultDetected)]
    cleared = [e for e in events if isinstance(e, FaultCleared)]
    best, median = cpu[0], cpu[len(cpu) // 2]
    print(f"signal chain: 6 channels at {fs:g} Hz, {frame}-sample frames, {duration:g} s of signal")
    print(
        f"  CPU time per frame ({repeats} runs): best {1e6 * best / n_frames:.1f} us, "
        f"median {1e6 * median / n_frames:.1f} us"
    )
    print(
        f"  real-time factor on one core: best {duration / best:.0f}x, median {duration / median:.0f}x "
        "(target >= 200x)"
    )
    for f in faults:
        print(
            f"  fault {f.fault_type} at sample {f.inception_index} (true {k0}, "
            f"error {1000 * (f.inception_index - k0) / fs:+.3f} ms)"
        )
    for c in cleared:
        print(f"  cleared at sample {c.clearing_index}, breaker open: {c.breaker_open}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=6400.0, help="Hz")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ros", action="store_true", help="also measure the latency through ROS")
    args = parser.parse_args()
    bench_core(args.sample_rate, args.seconds, args.seed)
    if args.ros:
        from sma3_meter.nodes.latency import measure_latency

        measure_latency(args.sample_rate)


if __name__ == "__main__":
    main()
