"""Signal chain: sampling, quantization, sample-and-hold, DC offset, breaker trip, noise, stream."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest

from sma3_grid.io import load_network
from sma3_grid.model import Network
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import FaultSolution, Simulator
from sma3_sim.stream import SimStream
from sma3_sim.waveforms import (
    CHANNELS,
    MeterSignals,
    SamplingConfig,
    held_times,
    synthesize,
    synthesize_detailed,
)

QUIET = SamplingConfig(noise_v_rms=0.0, inception_angle_rad=0.3)


@pytest.fixture(scope="module")
def mini() -> Network:
    return load_network("mini")


@pytest.fixture(scope="module")
def solution(mini: Network) -> FaultSolution:
    return Simulator(mini).solve(FaultScenario("L3", 0.5, "AG", load_spread=0.1, seed=3))


def _time(record: object) -> np.ndarray:
    return np.arange(record.n_samples) / record.sample_rate_hz  # type: ignore[attr-defined]


@pytest.mark.parametrize("rate", [3200.0, 6400.0])
def test_sample_rate_window_and_channels(mini: Network, solution: FaultSolution, rate: float) -> None:
    record = synthesize(mini, solution, "MH1", replace(QUIET, sample_rate_hz=rate))
    assert record.sample_rate_hz == rate
    assert record.n_samples == int(rate)  # 1 s window
    assert record.trigger_s == 0.5
    assert list(record.channels) == list(CHANNELS)
    assert record.station == "MH1"


def test_quantization_step(mini: Network, solution: FaultSolution) -> None:
    config = replace(QUIET, noise_v_rms=0.01)
    synthesis = synthesize_detailed(mini, solution, "MH1", config, seed=1)
    scaling = synthesis.scaling
    assert scaling.lsb_v == pytest.approx(20.0 / 4096)
    steps = scaling.step()
    for k, name in enumerate(CHANNELS):
        values = synthesis.record.channels[name]
        counts = (values / scaling.gains[k] + scaling.range_v) / scaling.lsb_v
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)  # on the 12-bit grid
        np.testing.assert_array_equal(np.round(counts).astype(np.int16), synthesis.codes[:, k])
        assert synthesis.codes[:, k].min() >= 0 and synthesis.codes[:, k].max() <= 4095
        distinct = np.unique(np.round(np.diff(values) / steps[k]))
        assert np.all(distinct == np.round(distinct))
    assert steps[0] == pytest.approx(3000.0 * 20.0 / 4096)
    assert steps[3] == pytest.approx(4000.0 * 20.0 / 4096)


def test_sample_and_hold_staircase(mini: Network, solution: FaultSolution) -> None:
    # 8 kHz sampling of a 4 kHz (250 us) simulator: every value is held for two samples
    record = synthesize(mini, solution, "MH1", replace(QUIET, sample_rate_hz=8000.0))
    va = record.channels["VA"]
    np.testing.assert_array_equal(va[0::2], va[1::2])
    assert np.count_nonzero(np.diff(va[0::2])) > 0.9 * (va.size // 2 - 1)
    # at 3.2 kHz the meter reads the last completed step: times are multiples of 250 us, <= t
    n = np.arange(3200)
    held = held_times(n, 3200.0, 250e-6)
    steps = held / 250e-6
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert np.all(held <= n / 3200.0 + 1e-12) and np.all(n / 3200.0 - held < 250e-6)
    # without the hold the samples are taken at the sampling instants themselves
    np.testing.assert_allclose(held_times(n, 3200.0, 0.0), n / 3200.0)


def test_dc_offset_decays_with_the_loop_time_constant(mini: Network, solution: FaultSolution) -> None:
    tau = solution.dc_time_constant_s["MH1"]
    assert 1e-3 < tau < 0.1
    omega = 2 * math.pi * solution.frequency_hz
    # EMF of phase A at pi/2 at inception: near the worst DC offset of the phase-A current
    config = replace(
        QUIET, inception_angle_rad=math.pi / 2, sim_step_s=0.0, adc_bits=15, sample_rate_hz=6400.0
    )
    record = synthesize(mini, solution, "MH1", config)
    t = _time(record)
    shift = math.pi / 2 - omega * 0.5
    steady = (math.sqrt(2) * solution.fault["MH1"].i[0] * np.exp(1j * (omega * t + shift))).real
    pre = (math.sqrt(2) * solution.pre["MH1"].i[0] * np.exp(1j * (omega * 0.5 + shift))).real
    offset0 = pre - (math.sqrt(2) * solution.fault["MH1"].i[0] * np.exp(1j * (omega * 0.5 + shift))).real
    assert abs(offset0) > 0.5 * math.sqrt(2) * abs(solution.fault["MH1"].i[0])
    after = t >= 0.5
    residual = record.channels["IA"][after] - steady[after]
    expected = offset0 * np.exp(-(t[after] - 0.5) / tau)
    step = 4000.0 * 20.0 / 32768
    np.testing.assert_allclose(residual, expected, atol=step)
    # the current is continuous at inception (inductive circuit): the first fault sample is close to
    # the last pre-fault sample, while the steady fault waveform alone would jump
    k = int(np.argmax(after))
    ia = record.channels["IA"]
    assert abs(ia[k] - ia[k - 1]) < 0.15 * math.sqrt(2) * abs(solution.fault["MH1"].i[0])


def test_breaker_trip_zeroes_currents_and_collapses_downstream_voltages(
    mini: Network, solution: FaultSolution
) -> None:
    config = replace(QUIET, trip_after_s=0.1)
    head = synthesize_detailed(mini, solution, "MH1", config)
    t = _time(head.record)
    for name in ("IA", "IB", "IC"):
        cut = head.interrupt_s[name]
        assert 0.6 <= cut < 0.6 + 0.02  # at the first current zero after the trip command
        quiet = head.record.channels[name][t >= cut + 250e-6]
        assert np.abs(quiet).max() <= head.scaling.step()[3]
    # busbar voltage (MH1 sits on the source bus) recovers; a meter downstream collapses
    late = t > 0.7
    assert np.abs(head.record.channels["VB"][late]).max() > 15e3
    downstream = synthesize(mini, solution, "MS2", config)
    assert np.abs(downstream.channels["VA"][late]).max() <= 3000.0 * 20.0 / 4096
    assert np.abs(downstream.channels["VA"][(t > 0.3) & (t < 0.45)]).max() > 15e3


def test_saturation_is_reported(mini: Network, solution: FaultSolution) -> None:
    fine = synthesize_detailed(mini, solution, "MH1", replace(QUIET, ct_scale=200.0))
    assert fine.saturated.get("IA", 0) > 0
    assert "IB" not in fine.saturated
    assert synthesize_detailed(mini, solution, "MH1", QUIET).saturated == {}


def test_noise_is_seeded(mini: Network, solution: FaultSolution) -> None:
    config = replace(QUIET, noise_v_rms=0.01)
    a = synthesize(mini, solution, "MH1", config, seed=5).channels["VA"]
    b = synthesize(mini, solution, "MH1", config, seed=5).channels["VA"]
    c = synthesize(mini, solution, "MH1", config, seed=6).channels["VA"]
    np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(a != c) > 100
    free = synthesize(mini, solution, "MH1", replace(config, inception_angle_rad=None), seed=5)
    assert free.n_samples == a.size


def test_stream_matches_the_record(mini: Network, solution: FaultSolution) -> None:
    config = replace(QUIET, noise_v_rms=0.01, trip_after_s=0.08)
    synthesis = synthesize_detailed(mini, solution, "MH1", config, seed=9)
    stream = SimStream(
        solution, "MH1", config, seed=9, block_size=320, speed=0.0, fault_at_s=0.5, duration_s=1.0
    )
    blocks = list(stream)
    assert len(blocks) == 10
    assert [b.first_sample for b in blocks] == list(range(0, 3200, 320))
    assert all(b.codes.dtype == np.int16 and b.codes.shape == (320, 6) for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.codes for b in blocks]), synthesis.codes)
    primary = stream.scaling.to_primary(blocks[5].codes)
    np.testing.assert_allclose(primary[:, 0], synthesis.record.channels["VA"][1600:1920])


def test_stream_trigger_and_pacing(solution: FaultSolution) -> None:
    stream = SimStream(solution, "MH1", QUIET, block_size=160, speed=0.0)
    first = [next(stream) for _ in range(3)]
    assert all(b.fault_time_s is None for b in first)
    at = stream.trigger()
    assert at == pytest.approx(480 / 3200.0)
    assert stream.trigger() == at
    block = next(stream)
    assert block.fault_time_s == at and block.first_sample == 480
    ia = stream.scaling.to_primary(block.codes)[:, 3]
    pre = stream.scaling.to_primary(first[2].codes)[:, 3]
    assert np.abs(ia).max() > 10 * np.abs(pre).max()
    # paced: 4 blocks of 0.05 s at 10x real time take at least 20 ms of wall clock
    paced = SimStream(solution, "MH1", QUIET, block_size=160, speed=10.0)
    start = time.monotonic()
    for _ in range(4):
        next(paced)
    assert time.monotonic() - start >= 0.018


def test_meter_signals_pre_fault_only(solution: FaultSolution) -> None:
    signals = MeterSignals(solution, "MH2", math.inf, 0.0)
    t = np.linspace(0.0, 0.02, 200, endpoint=False)
    values = signals.values(t)
    rms = np.sqrt(np.mean(values**2, axis=0))
    np.testing.assert_allclose(rms[:3], np.abs(solution.pre["MH2"].v), rtol=1e-6)
    np.testing.assert_allclose(rms[3:], np.abs(solution.pre["MH2"].i), rtol=1e-6)


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="sample_rate_hz"):
        SamplingConfig(sample_rate_hz=0.0)
    with pytest.raises(ValueError, match="adc_bits"):
        SamplingConfig(adc_bits=40)
    with pytest.raises(ValueError, match="trip_after_s"):
        SamplingConfig(trip_after_s=-1.0)


def test_record_phasors_match_the_exact_solution(mini: Network, solution: FaultSolution) -> None:
    """A DFT over whole cycles of the record gives back the solver's phasors (magnitude and angle)."""
    config = replace(QUIET, inception_angle_rad=0.0, noise_v_rms=0.002)
    record = synthesize(mini, solution, "MH1", config, seed=2)
    omega = 2 * math.pi * solution.frequency_hz
    t = _time(record)
    shift = -omega * 0.5  # EMF of phase A has phase 0 at inception

    def phasor(name: str, start: float) -> complex:
        window = (t >= start) & (t < start + 0.1)  # five cycles
        x = record.channels[name][window]
        return complex(math.sqrt(2) / x.size * np.sum(x * np.exp(-1j * (omega * t[window] + shift))))

    # the 250 us hold delays the samples by t - held(t): 0, 62.5, 125, 187.5 us at 3.2 kHz
    lag = float(np.mean(t - held_times(np.arange(t.size), 3200.0, 250e-6)))
    assert lag == pytest.approx(93.75e-6)
    hold = np.exp(-1j * omega * lag)
    steps = config.scaling().step()
    for state, start in (("pre", 0.3), ("fault", 0.7)):
        exact = getattr(solution, state)["MH1"]
        for k, name in enumerate(CHANNELS):
            value = exact.v[k] if k < 3 else exact.i[k - 3]
            if abs(value) < 50.0:
                continue  # currents of healthy phases: only a few codes
            measured = phasor(name, start)
            tolerance = 0.005 * abs(value) + steps[k]
            assert abs(measured - value * hold) < tolerance, (state, name, measured, value)
