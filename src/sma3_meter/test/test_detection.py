"""Fault inception, classification, clearing and outage detection on synthetic circuit signals."""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass

import numpy as np
import pytest

from sma3_meter.detection import (
    FAULT_TYPES,
    LAST_GASP,
    LOSS_OF_VOLTAGE,
    RESTORED,
    ChainSettings,
    ClassifierSettings,
    Disturbance,
    FaultCleared,
    FaultDetected,
    OutageMonitor,
    OutageSettings,
    SignalChain,
    classify_fault,
    fault_type_name,
    install_last_gasp_handler,
)
from sma3_meter.detection.delta import DeltaDetector, cycle_delta
from sma3_meter.dsp import A_OPERATOR, SampleBuffer

FS = 3200.0
F0 = 50.0
V_LN = 22000.0 / math.sqrt(3.0)


def _seq_to_phase(z0: complex, z1: complex) -> np.ndarray:
    zs, zm = (z0 + 2 * z1) / 3, (z0 - z1) / 3
    return np.full((3, 3), zm) + np.eye(3) * (zs - zm)


@dataclass(frozen=True)
class Circuit:
    """22 kV source (500 MVA, X/R 10) -> meter -> cable of ``km`` -> load and fault point."""

    km: float = 5.0
    load_mw: float = 5.0
    load_pf: float = 0.9

    def solve(self, fault_type: str | None, rf: float, rg: float = 0.001) -> tuple[np.ndarray, np.ndarray]:
        """Meter (V phase-to-ground, I into the line) phasors, RMS."""
        z1s = (22.0**2 / 500.0) * complex(math.cos(math.atan(10)), math.sin(math.atan(10)))
        ys = np.linalg.inv(_seq_to_phase(z1s, z1s))
        yl = np.linalg.inv(_seq_to_phase(complex(0.8, 0.5) * self.km, complex(0.2, 0.12) * self.km))
        s_phase = self.load_mw * 1e6 / 3 * complex(1, math.tan(math.acos(self.load_pf)))
        y_load = np.conj(s_phase) / V_LN**2
        e = V_LN * np.array([1, A_OPERATOR**2, A_OPERATOR]) * 1.02
        y = np.zeros((8, 8), dtype=complex)  # nodes: M(0-2) F(3-5) load neutral 6, fault star 7
        y[0:3, 0:3] += ys + yl
        y[0:3, 3:6] -= yl
        y[3:6, 0:3] -= yl
        y[3:6, 3:6] += yl
        for p in range(3):
            for a, b, g in ((3 + p, 6, y_load),):
                y[a, a] += g
                y[b, b] += g
                y[a, b] -= g
                y[b, a] -= g
        y[6, 6] += 1e-9
        y[7, 7] += 1e-9
        if fault_type is not None:
            phases = [k for k, ph in enumerate("ABC") if ph in fault_type.rstrip("G")]
            for p in phases:
                g = 1.0 / rf
                y[3 + p, 3 + p] += g
                y[7, 7] += g
                y[3 + p, 7] -= g
                y[7, 3 + p] -= g
            if fault_type.endswith("G") or len(phases) == 1:
                y[7, 7] += 1.0 / rg
        inj = np.zeros(8, dtype=complex)
        inj[0:3] = ys @ e
        v = np.linalg.solve(y, inj)
        i = yl @ (v[0:3] - v[3:6])
        return v[0:3], i


def _wave(ph: np.ndarray, t: np.ndarray, f: float) -> np.ndarray:
    return math.sqrt(2) * np.real(ph[:, None] * np.exp(1j * 2 * np.pi * f * t[None, :]))


def fault_signals(
    fault_type: str | None,
    rf: float,
    inception_s: float,
    duration_s: float = 0.5,
    f: float = F0,
    circuit: Circuit | None = None,
    clear_s: float | None = None,
    cleared_to_open: bool = True,
    noise: float = 5e-4,
    seed: int = 0,
) -> np.ndarray:
    """Six channels (V, A): pre-fault, fault from ``inception_s`` (with DC offset), optional clearing."""
    c = circuit or Circuit()
    n = int(duration_s * FS)
    t = np.arange(n) / FS
    v_pre, i_pre = c.solve(None, rf)
    x = np.vstack([_wave(v_pre, t, f), _wave(i_pre, t, f)])
    if fault_type is not None:
        v_f, i_f = c.solve(fault_type, rf)
        on = t >= inception_s
        fault_wave = np.vstack([_wave(v_f, t, f), _wave(i_f, t, f)])
        k = int(np.argmax(on))
        jump = x[3:, k] - fault_wave[3:, k]
        x_loop = 22.0**2 / 500.0 * math.sin(math.atan(10)) + 0.12 * c.km
        r_loop = 22.0**2 / 500.0 * math.cos(math.atan(10)) + 0.2 * c.km + rf
        tau = x_loop / (2 * np.pi * f) / r_loop  # DC offset time constant of the fault loop
        decay = np.exp(-np.clip(t - t[k], 0.0, None) / tau)[None, :]
        fault_wave[3:] += jump[:, None] * decay
        x[:, on] = fault_wave[:, on]
        if clear_s is not None:
            off = t >= clear_s
            if cleared_to_open:
                x[3:, off] = 0.0
                x[:3, off] = _wave(c.solve(None, rf)[0], t, f)[:, off] * 1.0
            else:
                x[:, off] = np.vstack([_wave(v_pre, t, f), _wave(i_pre, t, f)])[:, off]
    rng = np.random.default_rng(seed)
    scale = np.abs(x).max(axis=1, keepdims=True)
    return x + rng.normal(0, 1, x.shape) * noise * scale


def run_chain(x: np.ndarray, frame: int = 64, settings: ChainSettings | None = None) -> tuple[list, list]:
    chain = SignalChain(FS, F0, settings)
    reports, events = [], []
    for s in range(0, x.shape[1] - frame + 1, frame):
        out = chain.process(x[:, s : s + frame], s)
        reports += out.reports
        events += out.events
    return reports, events


@pytest.mark.parametrize("fault_type", FAULT_TYPES)
@pytest.mark.parametrize("rf", [0.01, 50.0])
def test_every_fault_type_detected_and_classified(fault_type: str, rf: float) -> None:
    inception = 0.2 + 0.0031 * FAULT_TYPES.index(fault_type)  # various inception angles
    x = fault_signals(fault_type, rf, inception, duration_s=0.35, seed=FAULT_TYPES.index(fault_type))
    _, events = run_chain(x)
    faults = [e for e in events if isinstance(e, FaultDetected)]
    assert len(faults) == 1, events
    got = faults[0]
    assert got.fault_type == fault_type, got.classification.reason
    assert got.classification.basis == "current"
    true_index = math.ceil(inception * FS)
    assert abs(got.inception_index - true_index) / FS <= 0.001
    assert got.prefault.sample_index < true_index
    assert got.fault.sample_index - 63 == got.inception_index  # the fault window starts at inception


def test_inception_sample_accurate_for_bolted_faults() -> None:
    errors = []
    for k, angle_s in enumerate(np.linspace(0.0, 0.02, 9)):
        inception = 0.2 + angle_s
        x = fault_signals("AG", 0.01, inception, duration_s=0.3, seed=k)
        _, events = run_chain(x, frame=37)
        (fault,) = [e for e in events if isinstance(e, FaultDetected)]
        errors.append(fault.inception_index - math.ceil(inception * FS))
    assert max(abs(e) for e in errors) <= 1, errors


def test_off_nominal_frequency_and_heavy_load() -> None:
    x = fault_signals("CAG", 40.0, 0.4, duration_s=0.55, f=51.5, circuit=Circuit(load_mw=12.0))
    reports, events = run_chain(x)
    (fault,) = [e for e in events if isinstance(e, FaultDetected)]
    assert fault.fault_type == "CAG"
    settled = [r for r in reports if 0.25 * FS < r.sample_index < 0.39 * FS]
    assert all(abs(r.frequency_hz - 51.5) < 0.005 for r in settled)


def test_clearing_by_breaker_trip_and_by_other_device() -> None:
    x = fault_signals("BC", 1.0, 0.2, duration_s=0.45, clear_s=0.3, cleared_to_open=True)
    _, events = run_chain(x)
    kinds = [type(e).__name__ for e in events if not isinstance(e, Disturbance)]
    assert kinds == ["FaultDetected", "FaultCleared"], events
    cleared = events[-1]
    assert isinstance(cleared, FaultCleared) and cleared.breaker_open
    assert abs(cleared.clearing_index - 0.3 * FS) <= 3

    x = fault_signals("AG", 5.0, 0.2, duration_s=0.45, clear_s=0.32, cleared_to_open=False)
    _, events = run_chain(x)
    cleared_events = [e for e in events if isinstance(e, FaultCleared)]
    assert len(cleared_events) == 1 and not cleared_events[0].breaker_open
    assert abs(cleared_events[0].clearing_index - 0.32 * FS) <= 3


def test_no_event_in_steady_state_and_balanced_load_step_is_not_a_fault() -> None:
    x = fault_signals(None, 1.0, 0.0, duration_s=1.0, f=49.0)
    _, events = run_chain(x)
    assert events == []
    low = fault_signals(None, 1.0, 0.0, duration_s=0.5, circuit=Circuit(load_mw=4.0), seed=1)
    high = fault_signals(None, 1.0, 0.0, duration_s=0.5, circuit=Circuit(load_mw=5.5), seed=1)
    x = np.concatenate([low[:, :800], high[:, 800:]], axis=1)
    _, events = run_chain(x)
    assert [type(e) for e in events] == [Disturbance]
    assert "balanced" in events[0].reason


def test_transient_flag_on_reports_straddling_inception() -> None:
    x = fault_signals("AB", 0.5, 0.21, duration_s=0.3)
    reports, _ = run_chain(x)
    flagged = [r.sample_index for r in reports if r.transient]
    k0 = math.ceil(0.21 * FS)
    assert flagged and all(r - 64 < k0 <= r for r in flagged)


def test_classifier_voltage_fallback_and_errors() -> None:
    c = Circuit()
    v_pre, i_pre = c.solve(None, 1.0)
    v_f, _ = c.solve("BC", 0.5)
    got = classify_fault(v_pre, i_pre, v_f, i_pre)  # no current change: meter off the fault path
    assert got.fault_type == "BC" and got.basis == "voltage"
    none = classify_fault(v_pre, i_pre, v_pre, i_pre)
    assert none.fault_type is None and "no voltage sag" in none.reason
    with pytest.raises(ValueError, match="3 phase phasors"):
        classify_fault(v_pre[:2], i_pre, v_f, i_pre)
    strict = ClassifierSettings(min_fault_current_a=1e9)
    assert classify_fault(v_pre, i_pre, *c.solve("AG", 0.01), strict).basis == "voltage"


def test_fault_type_names() -> None:
    assert fault_type_name((True, False, False), True) == "AG"
    assert fault_type_name((True, False, True), False) == "CA"
    assert fault_type_name((False, True, True), True) == "BCG"
    assert fault_type_name((True, True, True), True) == "ABC"
    with pytest.raises(ValueError, match="at least one phase"):
        fault_type_name((False, False, False), False)


def test_cycle_delta_cancels_off_nominal_sinusoid_and_harmonics() -> None:
    t = np.arange(2000) / FS
    f = 48.3
    x = np.vstack([np.cos(2 * np.pi * f * t + 0.4) + 0.05 * np.cos(2 * np.pi * 5 * f * t)])
    buf = SampleBuffer(1, 2000)
    buf.append(x, 0)
    d = cycle_delta(buf, 200, 2000, FS / f)
    assert np.abs(d).max() < 2e-3
    with pytest.raises(ValueError, match="relative and minimum"):
        DeltaDetector(FS, 3)


def test_outage_monitor_loss_restoration_and_last_gasp() -> None:
    mon = OutageMonitor(OutageSettings(nominal_voltage_v=V_LN, outage_cycles=2, restore_cycles=2))
    normal = [V_LN] * 3
    assert mon.update(0, normal) is None
    assert mon.last_gasp().phases == (True, True, True)  # own supply lost, voltages still present
    assert mon.update(1, [100.0, V_LN, V_LN]) is None
    loss = mon.update(2, [100.0, V_LN, V_LN])
    assert loss is not None and loss.kind == LOSS_OF_VOLTAGE and loss.phases == (True, False, False)
    assert mon.last_gasp().kind == LAST_GASP and mon.last_gasp().phases == (True, False, False)
    mon.update(3, [0.0, 0.0, 0.0])
    loss2 = mon.update(4, [0.0, 0.0, 0.0])
    assert loss2 is not None and loss2.phases == (True, True, True)
    assert mon.update(5, normal) is None
    restored = mon.update(6, normal)
    assert restored is not None and restored.kind == RESTORED and restored.phases == (True, True, True)
    assert not mon.in_outage
    with pytest.raises(ValueError, match="3 phase voltages"):
        mon.update(7, [1.0, 2.0])


def test_chain_reports_outage_from_samples() -> None:
    x = fault_signals(None, 1.0, 0.0, duration_s=0.5)
    x[:, 640:] = np.random.default_rng(2).normal(0, 1.0, (6, x.shape[1] - 640))
    _, events = run_chain(x)
    losses = [e for e in events if getattr(e, "kind", None) == LOSS_OF_VOLTAGE]
    assert len(losses) == 1 and losses[0].phases == (True, True, True)


def test_last_gasp_handler_runs_callback_then_previous_handler() -> None:
    calls: list[str] = []
    previous_calls: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: previous_calls.append(signum))
    try:
        saved = install_last_gasp_handler(calls.append, ("SIGUSR1", "SIGNOTAREALSIGNAL"))
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == ["SIGUSR1"]
        assert previous_calls == [signal.SIGUSR1]
        assert list(saved) == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_last_gasp_handler_without_chaining_exits_through_systemexit() -> None:
    calls: list[str] = []
    old = signal.getsignal(signal.SIGUSR2)
    try:
        install_last_gasp_handler(calls.append, ("SIGUSR2",), chain=False)
        with pytest.raises(SystemExit) as info:
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(100):  # the handler runs between bytecodes of the main thread
                pass
        assert info.value.code == 128 + signal.SIGUSR2
        assert calls == ["SIGUSR2"]
    finally:
        signal.signal(signal.SIGUSR2, old)


def test_60hz_system_with_fractional_samples_per_cycle() -> None:
    x = fault_signals("BCG", 2.0, 0.3, duration_s=0.5, f=60.0)
    chain = SignalChain(FS, 60.0)
    events = []
    for s in range(0, x.shape[1] - 53, 53):
        events += chain.process(x[:, s : s + 53], s).events
    faults = [e for e in events if isinstance(e, FaultDetected)]
    assert [f.fault_type for f in faults] == ["BCG"]
    assert abs(faults[0].inception_index - math.ceil(0.3 * FS)) <= 2
    assert faults[0].prefault.frequency_hz == pytest.approx(60.0, abs=0.01)
