"""Exact pre-fault and fault phasors of a network for a fault scenario (OpenDSS steady state).

:class:`Simulator` builds the OpenDSS circuit of a network once (:class:`sma3_sim.opendss.DssCircuit`)
and solves any number of :class:`sma3_sim.scenario.FaultScenario` on it; :func:`solve` does the same
with a small cache of simulators. Per scenario it solves three steady states of the same loads:

1. ``pre``: the load flow before the fault (plus, with the faulted line split at the fault point,
   the pre-fault voltage there);
2. ``fault``: the network with the fault (the faulted line split at the fault point);
3. ``post_trip``: the fault still present, the faulted feeder's breaker open (the first line of the
   feeder opened at the source bus), used by :mod:`sma3_sim.waveforms` when a trip is simulated.

The phasors are the OpenDSS solution itself -- no waveform, sampling or DFT is involved -- so they are
the exact reference for fault-location algorithms: phase-to-ground RMS voltages at the meter bus and
RMS currents flowing from the meter bus into the measured line, angles relative to the source EMF of
phase A (0 rad).

Actual loads: ``forecast * load_factor * max(0, 1 + load_spread * N(0, 1))`` per load (the same draw
for P and Q), from ``numpy.random.default_rng(scenario.seed)`` in the sorted order of load bus ids.
They are set-points at nominal voltage; with the default constant-impedance model a load draws
``set-point * (|V| / V_nominal)^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sma3_grid.model import Network
from sma3_sim.opendss import DssCircuit, SolverError
from sma3_sim.scenario import FaultScenario, ScenarioError
from sma3_sim.sequence import fault_loop_impedance, path_impedances, time_constant_s

__all__ = ["FaultSolution", "MeterPhasors", "Simulator", "SolverError", "actual_loads", "solve"]


@dataclass(frozen=True)
class MeterPhasors:
    """Steady-state phasors seen by one meter.

    Parameters
    ----------
    v : numpy.ndarray
        Complex (3,), phase-to-ground RMS voltages of phases A B C at the meter bus, V.
    i : numpy.ndarray
        Complex (3,), RMS currents of phases A B C flowing from the meter bus into the measured line, A.
    """

    v: np.ndarray
    i: np.ndarray

    def to_dict(self) -> dict[str, list[list[float]]]:
        """JSON-ready form: ``{"v": [[re, im] x3], "i": [[re, im] x3]}``."""
        return {
            "v": [[float(x.real), float(x.imag)] for x in self.v],
            "i": [[float(x.real), float(x.imag)] for x in self.i],
        }


@dataclass(frozen=True)
class FaultSolution:
    """Result of :meth:`Simulator.solve`.

    Parameters
    ----------
    scenario : FaultScenario
        The solved scenario.
    pre, fault, post_trip : dict[str, MeterPhasors]
        Phasors at every meter of the network (by meter id): before the fault, during the fault, and
        during the fault after the faulted feeder's breaker opened. Meters on de-energized parts
        read zeros.
    fault_current : numpy.ndarray
        Complex (3,), RMS current of each phase from the network into the fault, A.
    fault_voltage : numpy.ndarray
        Complex (3,), phase-to-ground RMS voltage at the fault point during the fault, V.
    fault_point_pre_voltage : numpy.ndarray
        Complex (3,), phase-to-ground RMS voltage at the fault point just before the fault, V (from a
        load flow with the faulted line already split, which changes nothing but adds the point).
    actual_loads : dict[str, complex]
        Load set-points used (kW + j kvar at nominal voltage) by bus id.
    distance_km : dict[str, float | None]
        Length of network path from each meter's bus to the fault point, km (None when the meter
        bus is not energized).
    carries_fault_current : dict[str, bool]
        Whether the meter measures a line stretch between the source and the fault (the faulted
        line itself only from its upstream end).
    dc_time_constant_s : dict[str, float]
        Time constant of the decaying DC offset of the meter's currents at fault inception, s: the
        X/R of the fault loop (:func:`sma3_sim.sequence.fault_loop_impedance`) for meters carrying
        fault current, else the X/R of the pre-fault impedance seen into the measured line (0 when
        not inductive), at most the fault-loop value.
    feeder_line : str
        First line of the faulted feeder (its breaker opens in ``post_trip``).
    frequency_hz : float
        Network frequency, Hz.
    loop_impedance_ohm : complex
        Fault-loop impedance from the sequence networks (source + lines, loads neglected), ohm.
    """

    scenario: FaultScenario
    pre: dict[str, MeterPhasors]
    fault: dict[str, MeterPhasors]
    post_trip: dict[str, MeterPhasors]
    fault_current: np.ndarray
    fault_voltage: np.ndarray
    fault_point_pre_voltage: np.ndarray
    actual_loads: dict[str, complex]
    distance_km: dict[str, float | None]
    carries_fault_current: dict[str, bool]
    dc_time_constant_s: dict[str, float]
    feeder_line: str
    frequency_hz: float
    loop_impedance_ohm: complex

    def truth(self) -> dict[str, object]:
        """JSON-ready summary: scenario, fault current, distances and exact phasors per meter."""
        return {
            "scenario": self.scenario.to_dict(),
            "feeder_line": self.feeder_line,
            "frequency_hz": self.frequency_hz,
            "fault_current_a": [[float(x.real), float(x.imag)] for x in self.fault_current],
            "fault_current_rms_a": [float(abs(x)) for x in self.fault_current],
            "fault_point_pre_voltage_v": [
                [float(x.real), float(x.imag)] for x in self.fault_point_pre_voltage
            ],
            "fault_voltage_v": [[float(x.real), float(x.imag)] for x in self.fault_voltage],
            "loop_impedance_ohm": [float(self.loop_impedance_ohm.real), float(self.loop_impedance_ohm.imag)],
            "distance_km": dict(self.distance_km),
            "carries_fault_current": dict(self.carries_fault_current),
            "dc_time_constant_s": dict(self.dc_time_constant_s),
            "pre": {m: p.to_dict() for m, p in self.pre.items()},
            "fault": {m: p.to_dict() for m, p in self.fault.items()},
            "total_load_kw": float(sum(v.real for v in self.actual_loads.values())),
            "total_load_kvar": float(sum(v.imag for v in self.actual_loads.values())),
        }


def actual_loads(net: Network, load_factor: float, load_spread: float, seed: int) -> dict[str, complex]:
    """Actual load set-points (kW + j kvar) drawn around the forecast; see the module notes."""
    rng = np.random.default_rng(seed)
    bus_ids = sorted(net.loads)
    draw = rng.standard_normal(len(bus_ids))
    out: dict[str, complex] = {}
    for bus_id, z in zip(bus_ids, draw, strict=True):
        load = net.loads[bus_id]
        k = load_factor * max(0.0, 1.0 + load_spread * float(z))
        out[bus_id] = complex(load.p_kw * k, load.q_kvar * k)
    return out


class Simulator:
    """Fault simulator of one network: OpenDSS circuit built once, reused for every scenario.

    Parameters
    ----------
    net : sma3_grid.model.Network
        The network (with its switch states).
    load_model : str
        ``"z"`` constant impedance (default) or ``"pq"`` constant power, see :mod:`sma3_sim.opendss`.
    """

    def __init__(self, net: Network, load_model: str = "z") -> None:
        self.net = net
        self.circuit = DssCircuit(net, load_model=load_model)

    def _distance(self, bus_id: str, scenario: FaultScenario) -> float | None:
        net = self.net
        if not net.is_energized(bus_id):
            return None
        line = net.lines[scenario.line_id]
        up = net.upstream_bus(scenario.line_id)
        fault_depth = net.depth_km(up) + scenario.position * line.length_km
        if bus_id in net.downstream_buses(scenario.line_id):
            return net.depth_km(bus_id) - fault_depth  # meter below the fault
        top = net.common_ancestor(bus_id, up)
        return net.depth_km(bus_id) + fault_depth - 2.0 * net.depth_km(top)

    def _read_meters(self) -> dict[str, MeterPhasors]:
        out = {}
        for meter_id, meter in self.net.meters.items():
            out[meter_id] = MeterPhasors(
                v=self.circuit.bus_voltages(meter.bus_id),
                i=self.circuit.line_currents(meter.line_id, meter.bus_id),
            )
        return out

    def solve(self, scenario: FaultScenario) -> FaultSolution:
        """Solve the pre-fault, fault and post-trip states of a scenario.

        Raises
        ------
        ScenarioError
            The faulted line is unknown or not energized.
        SolverError
            OpenDSS failed.
        """
        net = self.net
        if scenario.line_id not in net.lines:
            raise ScenarioError(f"line_id: unknown line {scenario.line_id!r}")
        if scenario.line_id not in self.circuit.line_name:
            raise ScenarioError(f"line_id: line {scenario.line_id!r} is not energized (open switch)")
        loads = actual_loads(net, scenario.load_factor, scenario.load_spread, scenario.seed)
        circuit = self.circuit
        circuit.clear_fault()
        circuit.set_loads({b: v for b, v in loads.items() if b in circuit.load_name})
        circuit.solve()
        pre = self._read_meters()
        feeder_line = net.feeder_of(scenario.line_id)
        try:
            circuit.apply_fault(
                scenario.line_id,
                scenario.position,
                scenario.fault_type,
                scenario.rf_ohm,
                scenario.rg_ohm,
                enabled=False,
            )
            circuit.solve()
            fault_point_pre = circuit.fault_bus_voltages()
            circuit.enable_fault()
            circuit.solve()
            fault = self._read_meters()
            fault_current = circuit.fault_currents()
            fault_voltage = circuit.fault_bus_voltages()
            # Breaker open: the feeder is dead. Its loads draw nothing at zero voltage; setting them to
            # zero keeps constant-PQ loads from stalling the iteration (set_loads restores them).
            dead = net.downstream_buses(feeder_line)
            circuit.set_loads({b: 0j for b in loads if b in dead and b in circuit.load_name})
            circuit.open_line_terminal(feeder_line, 1)
            try:
                circuit.solve()
                post_trip = self._read_meters()
            finally:
                circuit.close_line_terminal(feeder_line, 1)
        finally:
            circuit.clear_fault()

        frequency = net.info.frequency_hz
        z1, z0 = path_impedances(net, scenario)
        loop = fault_loop_impedance(z1, z0, scenario.fault_type, scenario.rf_ohm, scenario.rg_ohm)
        tau_loop = time_constant_s(loop, frequency)
        on_path = set(net.path_lines(net.info.source_bus, net.upstream_bus(scenario.line_id)))
        distance: dict[str, float | None] = {}
        carries: dict[str, bool] = {}
        tau: dict[str, float] = {}
        for meter_id, meter in net.meters.items():
            distance[meter_id] = self._distance(meter.bus_id, scenario)
            carries[meter_id] = meter.line_id in on_path or (
                meter.line_id == scenario.line_id and meter.bus_id == net.upstream_bus(scenario.line_id)
            )
            if carries[meter_id]:
                tau[meter_id] = tau_loop
            else:
                p = pre[meter_id]
                power = complex(np.sum(p.v * np.conj(p.i)))
                current_sq = float(np.sum(np.abs(p.i) ** 2))
                if current_sq > 0.0 and math.isfinite(power.real):
                    tau[meter_id] = min(time_constant_s(power / current_sq, frequency), tau_loop)
                else:
                    tau[meter_id] = 0.0
        return FaultSolution(
            scenario=scenario,
            pre=pre,
            fault=fault,
            post_trip=post_trip,
            fault_current=fault_current,
            fault_voltage=fault_voltage,
            fault_point_pre_voltage=fault_point_pre,
            actual_loads=loads,
            distance_km=distance,
            carries_fault_current=carries,
            dc_time_constant_s=tau,
            feeder_line=feeder_line,
            frequency_hz=frequency,
            loop_impedance_ohm=loop,
        )


_CACHE: dict[int, tuple[Network, Simulator]] = {}
_CACHE_SIZE = 4


def solve(net: Network, scenario: FaultScenario, load_model: str = "z") -> FaultSolution:
    """Solve a scenario on a network, reusing a cached :class:`Simulator` of the same network object.

    See :meth:`Simulator.solve`. The cache holds the last few networks (by identity).
    """
    key = id(net)
    cached = _CACHE.get(key)
    if cached is None or cached[0] is not net or cached[1].circuit.load_model != load_model:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        cached = (net, Simulator(net, load_model=load_model))
        _CACHE[key] = cached
    return cached[1].solve(scenario)
