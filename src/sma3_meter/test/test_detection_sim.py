"""The signal chain on waveforms simulated by sma3_sim (OpenDSS solutions of the `mini` network)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sma3_grid.io import load_network
from sma3_meter.detection import (
    FAULT_TYPES,
    LOSS_OF_VOLTAGE,
    ChainSettings,
    Disturbance,
    FaultCleared,
    FaultDetected,
    OutageChange,
    OutageSettings,
    SignalChain,
)
from sma3_sim.scenario import FaultScenario
from sma3_sim.solver import solve
from sma3_sim.waveforms import SamplingConfig, synthesize


@pytest.fixture(scope="module")
def mini():  # type: ignore[no-untyped-def]
    return load_network("mini")


def _events(net, scenario: FaultScenario, meter_id: str) -> list:  # type: ignore[no-untyped-def]
    solution = solve(net, scenario)
    record = synthesize(net, solution, meter_id, SamplingConfig(trip_after_s=0.1), seed=scenario.seed)
    x = np.vstack([record.channels[c] for c in ("VA", "VB", "VC", "IA", "IB", "IC")])
    v_nom = net.info.nominal_kv * 1000 / math.sqrt(3)
    chain = SignalChain(
        record.sample_rate_hz,
        net.info.frequency_hz,
        ChainSettings(outage=OutageSettings(nominal_voltage_v=v_nom)),
    )
    events = []
    for s in range(0, x.shape[1] - 63, 64):
        events += chain.process(x[:, s : s + 64], s).events
    return events


@pytest.mark.parametrize(
    ("line", "fault_type", "rf"),
    [("L4", "AG", 20.0), ("L3", "CAG", 50.0), ("L6", "BC", 0.001), ("L4", "ABG", 5.0)],
)
def test_feeder_head_detects_classifies_and_sees_trip(mini, line: str, fault_type: str, rf: float) -> None:  # type: ignore[no-untyped-def]
    scenario = FaultScenario(
        line, 0.5, fault_type, rf_ohm=rf, rg_ohm=rf if fault_type.endswith("G") else 0.001, seed=3
    )
    events = _events(mini, scenario, "MH1")
    faults = [e for e in events if isinstance(e, FaultDetected)]
    assert len(faults) == 1, events
    assert faults[0].fault_type == fault_type
    assert abs(faults[0].inception_index - 1600) <= 3  # 0.5 s at 3.2 kHz, within 1 ms
    cleared = [e for e in events if isinstance(e, FaultCleared)]
    assert len(cleared) == 1 and cleared[0].breaker_open
    assert 0.6 * 3200 - 3 <= cleared[0].clearing_index <= 0.62 * 3200  # poles open at current zeros


def test_other_feeder_and_downstream_secondary_report_no_fault(mini) -> None:  # type: ignore[no-untyped-def]
    scenario = FaultScenario("L6", 0.5, "BC", seed=4)
    healthy_head = _events(mini, scenario, "MH2")
    assert not any(isinstance(e, FaultDetected) for e in healthy_head)
    assert any(isinstance(e, Disturbance) and "BC sag" in e.reason for e in healthy_head)
    secondary = _events(mini, scenario, "MS1")
    assert not any(isinstance(e, FaultDetected) for e in secondary)
    outages = [e for e in secondary if isinstance(e, OutageChange)]
    assert [o.kind for o in outages] == [LOSS_OF_VOLTAGE] and outages[0].phases == (True, True, True)


@pytest.mark.parametrize("fault_type", FAULT_TYPES)
@pytest.mark.parametrize("sample_rate_hz", [3200.0, 6400.0])
def test_every_type_at_50_ohm_with_heavy_load(mini, fault_type: str, sample_rate_hz: float) -> None:  # type: ignore[no-untyped-def]
    scenario = FaultScenario(
        "L3",
        0.7,
        fault_type,
        rf_ohm=50.0,
        rg_ohm=50.0 if fault_type.endswith("G") else 0.001,
        load_factor=1.3,
        seed=1,
    )
    record = synthesize(
        mini,
        solve(mini, scenario),
        "MH1",
        SamplingConfig(sample_rate_hz=sample_rate_hz, duration_s=0.7, fault_time_s=0.4),
        seed=2,
    )
    x = np.vstack([record.channels[c] for c in ("VA", "VB", "VC", "IA", "IB", "IC")])
    chain = SignalChain(
        sample_rate_hz, 50.0, ChainSettings(outage=OutageSettings(nominal_voltage_v=22000 / math.sqrt(3)))
    )
    n = round(sample_rate_hz / 50)
    events = []
    for s in range(0, x.shape[1] - n + 1, n):
        events += chain.process(x[:, s : s + n], s).events
    faults = [e for e in events if isinstance(e, FaultDetected)]
    assert [f.fault_type for f in faults] == [fault_type]
    assert abs(faults[0].inception_index - 0.4 * sample_rate_hz) <= 0.001 * sample_rate_hz
