"""Speed of the meter's signal chain (frame in -> phasors -> detection), and optionally its latency
through ROS.

Core: six channels at 6.4 kHz (128 samples per 50 Hz cycle), one-cycle frames, 20 s of a 22 kV
feeder signal with 0.1 % noise and an AG fault at 10 s cleared at 10.1 s, processed by
:class:`sma3_meter.detection.SignalChain` on one core. Prints the CPU time per frame and the
real-time factor (target >= 200x), plus the events found (a check that the work was done).

``--ros``: latency from the first faulted sample to the ``FaultEvent`` published by the detector
and received by a subscriber (target <= one cycle + 5 ms), with the replay backend at real-time
pace through the acquisition and detector nodes (``publish_on=detection``) in this process and the
subscriber in another process, for frames of 1/8, 1/4 and one cycle (a one-cycle frame adds up to
one cycle of waiting for the frame that completes the fault cycle). Needs the built workspace:
``source scripts/env.sh``.

Usage: ``.venv/bin/python bench/bench_signal_chain.py [--sample-rate 6400] [--seconds 20] [--ros]``
"""

from __future__ import annotations

import argparse
import math
import os
import time
import timeit
from pathlib import Path
from typing import Any

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
    # Machine-independent figure: the frame cost in units of one small numpy operation (np.abs of a
    # 6 x frame array), timed now on the same core; and the load of the machine during the run.
    probe = np.ascontiguousarray(frames[0])
    unit = min(timeit.repeat(lambda: np.abs(probe), number=2000, repeat=5)) / 2000
    load = os.getloadavg()[0]
    print(f"signal chain: 6 channels at {fs:g} Hz, {frame}-sample frames, {duration:g} s of signal")
    print(
        f"  CPU time per frame ({repeats} runs): best {1e6 * best / n_frames:.1f} us, "
        f"median {1e6 * median / n_frames:.1f} us"
    )
    print(
        f"  real-time factor on one core: best {duration / best:.0f}x, median {duration / median:.0f}x "
        "(target >= 200x)"
    )
    print(
        f"  = {best / n_frames / unit:.0f} small-array numpy operations per frame "
        f"(one takes {1e6 * unit:.2f} us here now); load average {load:.1f} on {os.cpu_count()} cores"
    )
    # Quarter-cycle frames (the lowest-latency setting of the acquisition node): more frames, each
    # scanned for changes, one phasor report per four frames.
    quarter = frame // 4
    n_small = x.shape[1] // quarter
    small = [np.ascontiguousarray(x[:, k * quarter : (k + 1) * quarter]) for k in range(n_small)]
    cpu_q = sorted(run_chain(small, fs, quarter)[0] for _ in range(3))
    print(
        f"  {quarter}-sample frames: best {1e6 * cpu_q[0] / len(small):.1f} us per frame, real-time factor "
        f"best {duration / cpu_q[0]:.0f}x, median {duration / cpu_q[1]:.0f}x"
    )
    for f in faults:
        print(
            f"  fault {f.fault_type} at sample {f.inception_index} (true {k0}, "
            f"error {1000 * (f.inception_index - k0) / fs:+.3f} ms)"
        )
    for c in cleared:
        print(f"  cleared at sample {c.clearing_index}, breaker open: {c.breaker_open}")


def _listen(topic: str, domain_id: int, ready: Any, results: Any) -> None:
    """Subscriber process: put (``time.monotonic()`` of reception, inception sample index) of the first
    FaultEvent on ``topic`` on ``results`` (CLOCK_MONOTONIC is system-wide on Linux, so the parent can
    compare it with its own times)."""
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    import rclpy
    from rclpy.node import Node

    from sma3_interfaces.msg import FaultEvent

    rclpy.init()
    node = Node("latency_listener")
    got: list[tuple[float, int]] = []
    node.create_subscription(
        FaultEvent, topic, lambda m: got.append((time.monotonic(), int(m.inception_sample_index))), 10
    )
    ready.set()
    deadline = time.monotonic() + 30.0
    while not got and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.01)
    results.put(got[0] if got else None)
    node.destroy_node()
    rclpy.try_shutdown()


def _latency_once(
    record: Path, k0: int, fs: float, frame_samples: int, tmp: Path
) -> tuple[float, float, int]:
    """One replay through the acquisition and detector nodes: seconds from the release of sample ``k0``
    (the first faulted one) to the FaultEvent's publication by the detector, and to its reception by
    a subscriber in another process (as the locator or a bridge would be; a subscriber on the
    detector's own executor would wait for the rest of the detector's callback); and the detected
    inception sample minus ``k0``."""
    import multiprocessing
    import uuid

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from sma3_meter.daq.replay import ReplayBackend
    from sma3_meter.nodes.acquisition import AcquisitionNode
    from sma3_meter.nodes.detector import DetectorNode

    ns = f"/bench{uuid.uuid4().hex[:8]}"
    mp = multiprocessing.get_context("spawn")
    ready, results = mp.Event(), mp.Queue()
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    listener = mp.Process(target=_listen, args=(f"{ns}/fault_event", domain, ready, results), daemon=True)
    listener.start()
    rclpy.init()
    executor = SingleThreadedExecutor()
    try:
        if not ready.wait(timeout=60):
            raise RuntimeError("the listener process did not start within 60 s")
        detector = DetectorNode(
            namespace=ns,
            parameter_overrides=[
                Parameter("meter_id", value="MH1"),
                Parameter("record_dir", value=str(tmp)),
                Parameter("publish_on", value="detection"),
            ],
        )
        executor.add_node(detector)
        deadline = time.monotonic() + 10.0
        while detector.fault_pub.get_subscription_count() < 1:  # discovery of the listener
            if time.monotonic() > deadline:
                raise RuntimeError("the listener's subscription was not discovered within 10 s")
            executor.spin_once(timeout_sec=0.02)
        acquisition = AcquisitionNode(
            namespace=ns,
            parameter_overrides=[
                Parameter("meter_id", value="MH1"),
                Parameter("backend", value="replay"),
                Parameter("sources", value=[str(record)]),
                Parameter("speed", value=1.0),
                Parameter("frame_samples", value=frame_samples),
                Parameter("wait_for_subscribers", value=1),
            ],
        )
        executor.add_node(acquisition)
        deadline = time.monotonic() + 10.0
        while not detector.fault_publish_times and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.001)
        if not detector.fault_publish_times:
            raise RuntimeError("no FaultEvent within 10 s")
        heard = results.get(timeout=30)
        if heard is None:
            raise RuntimeError("the listener received no FaultEvent")
        t_recv, inception = heard
        backend = acquisition.backend
        assert isinstance(backend, ReplayBackend)
        wall_start = backend.wall_start
        assert wall_start is not None
        acquired = wall_start + (k0 + 1) / fs  # when the first faulted sample was released
        t_pub = detector.fault_publish_times[0]
        for node in list(executor.get_nodes()):
            executor.remove_node(node)
            node.destroy_node()
        return t_pub - acquired, t_recv - acquired, inception - k0
    finally:
        executor.shutdown()
        rclpy.try_shutdown()
        listener.join(timeout=10)


def measure_latency(fs: float, seed: int, runs: int = 6) -> None:
    """Latency from the first faulted sample to the FaultEvent through ROS (replay at real time)."""
    import tempfile

    from sma3_grid.comtrade import write_comtrade
    from sma3_grid.io import load_network
    from sma3_sim.scenario import FaultScenario
    from sma3_sim.solver import solve
    from sma3_sim.waveforms import SamplingConfig, held_times, synthesize

    net = load_network("mini")
    solution = solve(net, FaultScenario("L4", 0.5, "AG", rf_ohm=5.0, rg_ohm=5.0, seed=seed))
    cycle = round(fs / 50)
    print(
        f"latency through ROS (replay at real time, {fs:g} Hz, FaultEvent on detection), target <= "
        f"{1000 / 50 + 5:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for frame_samples in (cycle // 8, cycle // 4, cycle):
            values = []
            for k in range(runs):
                fault_s = 0.3 + k * 0.0033  # inception at various points of the frames
                config = SamplingConfig(sample_rate_hz=fs, duration_s=0.6, fault_time_s=fault_s)
                record = synthesize(net, solution, "MH1", config, seed=seed + k)
                path = write_comtrade(record, tmp / f"r{k}.cfg", binary=True)
                # first sample carrying the fault: the simulator's sample-and-hold shows it at the first
                # 250 us step at or after fault_s
                index = np.arange(int(config.duration_s * fs))
                k0 = int(np.argmax(held_times(index, fs, config.sim_step_s) >= fault_s - 1e-12))
                values.append(_latency_once(path, k0, fs, frame_samples, tmp / f"out{frame_samples}_{k}"))
            pub = np.array([v[0] for v in values]) * 1000
            recv = np.array([v[1] for v in values]) * 1000
            print(
                f"  frames of {frame_samples} samples ({1000 * frame_samples / fs:.1f} ms), {runs} faults: "
                f"published after {pub.mean():.1f} ms mean / {pub.max():.1f} ms max, "
                f"received after {recv.mean():.1f} ms mean / {recv.max():.1f} ms max; "
                f"inception found {min(v[2] for v in values)}..{max(v[2] for v in values)} samples "
                "from the first faulted one"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=float, default=6400.0, help="Hz")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ros", action="store_true", help="also measure the latency through ROS")
    args = parser.parse_args()
    bench_core(args.sample_rate, args.seconds, args.seed)
    if args.ros:
        measure_latency(args.sample_rate, args.seed)


if __name__ == "__main__":
    main()
