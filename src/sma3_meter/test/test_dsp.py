"""DFT phasors, frequency tracking, sequence components, power and the sample buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sma3_meter.dsp import (
    A_OPERATOR,
    FrequencyTracker,
    PhasorEstimator,
    SampleBuffer,
    SampleGapError,
    dft_phasors,
    estimate_frequency,
    from_sequence,
    per_phase_power,
    phasors_at,
    rotation_frequency,
    samples_per_cycle,
    sequence_components,
    synchro_rotation,
    waveform,
)

FS = 3200.0
F0 = 50.0


def _signals(f_hz: float, n: int, mags: np.ndarray, phases: np.ndarray, fs: float = FS) -> np.ndarray:
    t = np.arange(n) / fs
    return math.sqrt(2) * mags[:, None] * np.cos(2 * np.pi * f_hz * t[None, :] + phases[:, None])


def _truth(f_hz: float, index: int, mags: np.ndarray, phases: np.ndarray, fs: float = FS) -> np.ndarray:
    return mags * np.exp(1j * (phases + 2 * np.pi * (f_hz - F0) * index / fs))


MAGS = np.array([12700.0, 12500.0, 12800.0, 200.0, 150.0, 180.0])
PHASES = np.array([0.3, 0.3 - 2.0944, 0.3 + 2.0944, -0.1, -2.2, 1.9])


def test_samples_per_cycle() -> None:
    assert samples_per_cycle(3200, 50) == 64
    assert samples_per_cycle(6400, 50) == 128
    assert samples_per_cycle(3200, 60) == 53
    with pytest.raises(ValueError, match="at least 32"):
        samples_per_cycle(1000, 50)
    with pytest.raises(ValueError, match="positive"):
        samples_per_cycle(0, 50)


def test_dft_exact_at_nominal_and_plain_dft_matches() -> None:
    x = _signals(F0, 64, MAGS, PHASES)
    got = dft_phasors(x, FS, F0) * synchro_rotation(63, FS, F0)
    assert np.allclose(got, _truth(F0, 63, MAGS, PHASES), rtol=1e-12)
    plain = dft_phasors(x, FS, F0, corrected=False)
    assert np.allclose(plain, dft_phasors(x, FS, F0), rtol=1e-12)  # integer cycles: no image


@pytest.mark.parametrize("f_hz", [47.0, 48.7, 51.3, 53.0])
def test_off_nominal_correction_is_exact(f_hz: float) -> None:
    n = samples_per_cycle(FS, f_hz)
    x = _signals(f_hz, 400, MAGS, PHASES)
    end = 399
    got = dft_phasors(x[:, end - n + 1 : end + 1], FS, f_hz) * synchro_rotation(end, FS, F0)
    truth = _truth(f_hz, end, MAGS, PHASES)
    assert np.max(np.abs(got - truth) / MAGS) < 1e-10
    plain = dft_phasors(x[:, end - n + 1 : end + 1], FS, f_hz, corrected=False) * synchro_rotation(
        end, FS, F0
    )
    assert np.max(np.abs(plain - truth) / MAGS) > 1e-4


def test_60hz_with_fractional_samples_per_cycle() -> None:
    x = _signals(60.0, 500, MAGS, PHASES)
    got = phasors_at(x, 450, FS, 60.0)
    truth = MAGS * np.exp(1j * PHASES)  # nominal: synchrophasor constant
    assert np.max(np.abs(got - truth) / MAGS) < 1e-10


def test_synchro_rotation_large_indices() -> None:
    k = 10**12 + 17
    expected = np.exp(-2j * np.pi * ((17 * 50) % 3200) / 3200)
    assert synchro_rotation(k, FS, F0) == pytest.approx(expected, abs=1e-12)


def test_waveform_inverts_estimate() -> None:
    x = _signals(50.8, 300, MAGS, PHASES)
    ph = phasors_at(x, 250, FS, F0, frequency_hz=50.8)
    rebuilt = waveform(ph, np.arange(300), FS, 50.8, F0, 250)
    assert np.max(np.abs(rebuilt - x)) < 1e-6 * MAGS.max()


def test_sequence_components_and_power() -> None:
    v = 100 * np.array([1, A_OPERATOR**2, A_OPERATOR])
    seq = sequence_components(v)
    assert np.allclose(seq, [0, 100, 0], atol=1e-12)
    unbalanced = np.array([1 + 2j, -3 + 0.5j, 0.2 - 1j])
    assert np.allclose(from_sequence(sequence_components(unbalanced)), unbalanced)
    both = np.stack([unbalanced, 2 * unbalanced], axis=1)
    assert np.allclose(sequence_components(both)[:, 1], 2 * sequence_components(unbalanced))
    with pytest.raises(ValueError, match="3 phases"):
        sequence_components(np.ones(4))
    p, q = per_phase_power(np.array([100.0 + 0j]), np.array([10 * np.exp(-0.5j)]))
    assert p[0] == pytest.approx(1000 * math.cos(0.5))
    assert q[0] == pytest.approx(1000 * math.sin(0.5))


def test_sample_buffer_windows_and_gaps() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(2, 1000))
    buf = SampleBuffer(2, 100)
    pos = 500
    for size in rng.integers(1, 40, 200):
        if pos + size > data.shape[1]:
            break
        buf.append(data[:, pos : pos + size], pos)
        pos += int(size)
        start = max(buf.start_index, pos - 100)
        assert np.array_equal(buf.window(start, pos), data[:, start:pos])
    assert len(buf) >= 100
    assert buf.end_index == pos
    with pytest.raises(SampleGapError, match="expected"):
        buf.append(data[:, :5], pos + 3)
    with pytest.raises(IndexError, match="not in buffer"):
        buf.window(pos - 500, pos)
    big = SampleBuffer(2, 10)
    big.append(data[:, :25], 7)
    assert np.array_equal(big.window(22, 32), data[:, 15:25])
    with pytest.raises(ValueError, match="shape"):
        big.append(data[:1, :3], 32)


def test_rotation_frequency() -> None:
    a = 1 + 0j
    b = np.exp(1j * 2 * np.pi * 0.7 * 64 / FS)
    assert rotation_frequency(a, complex(b), 64, FS, F0) == pytest.approx(50.7)
    with pytest.raises(ValueError, match="non-zero"):
        rotation_frequency(0j, 1 + 0j, 64, FS, F0)


def _stream(est: PhasorEstimator, x: np.ndarray, frame: int = 64, first: int = 0) -> list:
    reports = []
    for s in range(0, x.shape[1] - frame + 1, frame):
        reports += est.push(x[:, s : s + frame], first + s)
    return reports


@pytest.mark.parametrize("f_hz", [48.0, 50.0, 51.37, 52.0])
def test_estimator_tracks_frequency(f_hz: float) -> None:
    rng = np.random.default_rng(5)
    x = _signals(f_hz, 3200, MAGS, PHASES) + rng.normal(0, 1e-3, (6, 3200)) * MAGS[:, None]
    est = PhasorEstimator(FS, F0)
    reports = _stream(est, x, frame=40)
    assert [r.sample_index for r in reports[:3]] == [63, 127, 191]
    settled = [r for r in reports if r.sample_index > 0.3 * FS]
    for r in settled:
        assert abs(r.frequency_hz - f_hz) < 0.003
        tve = np.abs(r.phasors - _truth(f_hz, r.sample_index, MAGS, PHASES)) / MAGS
        assert tve.max() < 0.003
        assert abs(r.rocof_hz_s) < 0.5
    last = settled[-1]
    assert last.v_seq[1] == pytest.approx(sequence_components(last.v)[1])
    assert np.allclose(last.p_w + 1j * last.q_var, last.v * np.conj(last.i))
    on_demand = est.at(3000)
    direct = phasors_at(x, 3000, FS, F0, frequency_hz=est.frequency_hz)
    assert np.allclose(on_demand.phasors, direct)
    with pytest.raises(IndexError, match="no full cycle"):
        est.at(100)


def test_estimator_rocof_on_frequency_ramp() -> None:
    rate = 1.0  # Hz/s
    t = np.arange(int(2.0 * FS)) / FS
    phase = 2 * np.pi * (49.0 * t + 0.5 * rate * t**2)
    x = math.sqrt(2) * MAGS[:, None] * np.cos(phase[None, :] + PHASES[:, None])
    reports = _stream(PhasorEstimator(FS, F0), x)
    late = [r for r in reports if r.sample_index > 1.0 * FS]
    for r in late:
        assert r.rocof_hz_s == pytest.approx(rate, abs=0.05)
        true_f = 49.0 + rate * r.sample_index / FS
        assert abs(r.frequency_hz - true_f) < 0.1


def test_estimator_restarts_after_gap_and_rejects_bad_blocks() -> None:
    x = _signals(51.0, 3200, MAGS, PHASES)
    est = PhasorEstimator(FS, F0)
    _stream(est, x[:, :1600])
    assert est.frequency_hz == pytest.approx(51.0, abs=1e-3)
    reports = est.push(x[:, 2000:2064], 2000)  # gap: no full cycle yet after the restart
    assert reports == [] or reports[0].sample_index >= 2063
    with pytest.raises(ValueError, match="shape"):
        est.push(np.zeros((3, 64)), 2064)


def test_tracker_holds_without_voltage_and_at_jumps() -> None:
    tr = FrequencyTracker(FS, F0, baseline_cycles=3)
    for k in range(6):
        tr.update(64 * k, 1000 * np.exp(1j * 2 * np.pi * 0.5 * 64 * k / FS))
    assert tr.frequency_hz == pytest.approx(50.5)
    assert tr.update(64 * 6, 0.1 + 0j) == pytest.approx(50.5)  # no voltage: held
    tr.update(64 * 7, 500 + 0j)
    assert tr.update(64 * 8, 900 + 0j) == pytest.approx(50.5)  # magnitude jump: history restarted
    with pytest.raises(ValueError, match="baseline_cycles"):
        FrequencyTracker(FS, F0, baseline_cycles=0)


def test_estimate_frequency_on_array() -> None:
    x = _signals(49.2, 2000, MAGS[:3], PHASES[:3])
    assert estimate_frequency(x, 1999, FS, F0) == pytest.approx(49.2, abs=1e-6)
