"""What a 3-SMA samples: fault solutions turned into sampled, quantized voltage and current waveforms.

Signal chain (one meter, channels ``VA VB VC IA IB IC``):

1. **Continuous signals** (:class:`MeterSignals`): ``x(t) = sqrt(2) Re(X e^{j w t})`` from the exact
   phasors of :class:`sma3_sim.solver.FaultSolution` -- pre-fault before the inception time ``t_f``,
   fault after it. Currents keep their instantaneous value at inception (inductive network): each
   phase gets a DC offset ``(i_pre(t_f) - i_fault(t_f)) exp(-(t - t_f) / tau)`` with ``tau`` the
   X/R time constant of the fault loop seen from the meter (``FaultSolution.dc_time_constant_s``).
   Its size depends on the inception angle, the phase of the source EMF of phase A at ``t_f``.
   Voltages switch to their fault phasors at ``t_f`` (no travelling-wave or capacitive transients).
   Optional feeder-breaker trip ``trip_after_s`` after inception: voltages switch to the
   ``post_trip`` phasors (collapse downstream of the breaker), each current switches to its
   ``post_trip`` value (zero on the tripped feeder) at its own first zero crossing after the trip
   command, as a breaker interrupts.
2. **Real-time simulator** sample-and-hold: the signals are computed at multiples of
   ``sim_step_s`` (250 us, the OPAL-RT step of the paper) and held in between (staircase).
3. **Meter sampling** at ``sample_rate_hz`` (3.2 kHz as in the lab test; 6.4 kHz the meter's native
   rate) of the held signal.
4. **Analog front end and ADC**: primary values are divided by the VT/CT scaling (primary volts or
   amperes per DAQ volt), Gaussian noise (V RMS at the DAQ input) is added, then an ideal
   ``adc_bits`` converter over ``+-adc_range_v`` returns offset-binary codes
   ``0 .. 2^bits - 1`` with ``v_daq = code * lsb - adc_range_v``, ``lsb = 2 adc_range_v / 2^bits``
   (the raw counts of an MCC USB-201 at BIP10VOLTS). Inputs beyond the range clip to the end codes
   and are reported as saturation.

The record holds the primary values the codes stand for (``code -> volts/amperes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial

import numpy as np

from sma3_grid.comtrade import ChannelInfo, Record
from sma3_grid.model import Network
from sma3_sim.solver import FaultSolution

__all__ = [
    "CHANNELS",
    "AdcScaling",
    "MeterSignals",
    "SamplingConfig",
    "Synthesis",
    "held_times",
    "synthesize",
    "synthesize_detailed",
    "with_inception_angle",
]

CHANNELS: tuple[str, ...] = ("VA", "VB", "VC", "IA", "IB", "IC")
"""Channel order of every array of this package (and of the stream blocks)."""

DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SamplingConfig:
    """Settings of the simulated signal chain (see the module notes).

    Parameters
    ----------
    sample_rate_hz : float
        Meter sampling rate, Hz (3200 default, 6400 the meter's native rate).
    sim_step_s : float
        Step of the real-time simulator's sample-and-hold, s (250e-6); 0 disables it.
    duration_s : float
        Record length, s (1.0: the lab's observation window).
    fault_time_s : float
        Fault inception, s from the first sample (0.5).
    inception_angle_rad : float or None
        Phase of the source EMF of phase A at inception, rad (0: at its positive peak); None draws it
        uniformly in [0, 2 pi) from the seed.
    vt_scale : float
        Primary volts per DAQ volt (3000: 1 pu of 22 kV, 17.96 kV peak, is 6.0 V; 1.67 pu fits).
    ct_scale : float
        Primary amperes per DAQ volt (4000: +-40 kA peak range, 19.5 A per code; the largest bolted
        fault of ``turin22``, three-phase at the busbar, is 15.7 kA RMS and 39.6 kA peak with full
        DC offset). Use a smaller scale for finer load currents when clipping of close faults is
        acceptable (clipping is reported).
    adc_bits : int
        ADC resolution, bits (12; at most 15 since codes are int16).
    adc_range_v : float
        ADC input range +-adc_range_v, V (10).
    noise_v_rms : float
        Gaussian noise at the DAQ input, V RMS (0.002, about 0.4 LSB).
    trip_after_s : float or None
        Feeder-breaker trip command this long after inception, s; None: no trip.
    start_time : datetime
        Time stamp of the first sample (UTC).
    """

    sample_rate_hz: float = 3200.0
    sim_step_s: float = 250e-6
    duration_s: float = 1.0
    fault_time_s: float = 0.5
    inception_angle_rad: float | None = None
    vt_scale: float = 3000.0
    ct_scale: float = 4000.0
    adc_bits: int = 12
    adc_range_v: float = 10.0
    noise_v_rms: float = 0.002
    trip_after_s: float | None = None
    start_time: datetime = DEFAULT_START

    def __post_init__(self) -> None:
        positive = ("sample_rate_hz", "duration_s", "vt_scale", "ct_scale", "adc_range_v")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a finite number > 0, got {value}")
        for name in ("sim_step_s", "noise_v_rms", "fault_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
        if not 2 <= self.adc_bits <= 15:
            raise ValueError(f"adc_bits: must be 2..15 (codes are int16), got {self.adc_bits}")
        if self.trip_after_s is not None and not (
            math.isfinite(self.trip_after_s) and self.trip_after_s >= 0
        ):
            raise ValueError(f"trip_after_s: must be a finite number >= 0 or None, got {self.trip_after_s}")
        if self.inception_angle_rad is not None and not math.isfinite(self.inception_angle_rad):
            raise ValueError(f"inception_angle_rad: must be finite or None, got {self.inception_angle_rad}")

    @property
    def n_samples(self) -> int:
        """Number of samples of a record."""
        return round(self.duration_s * self.sample_rate_hz)

    def scaling(self) -> AdcScaling:
        """ADC scaling of the six channels."""
        return AdcScaling(
            bits=self.adc_bits,
            range_v=self.adc_range_v,
            gains=(self.vt_scale,) * 3 + (self.ct_scale,) * 3,
        )


@dataclass(frozen=True)
class AdcScaling:
    """Offset-binary ADC over +-range_v and per-channel primary units per DAQ volt.

    ``primary = (code * lsb - range_v) * gain[channel]`` with ``lsb = 2 range_v / 2^bits``.

    Parameters
    ----------
    bits : int
        Resolution, bits.
    range_v : float
        Input range +-range_v, V.
    gains : tuple of float
        Primary units (V or A) per DAQ volt, one per channel of :data:`CHANNELS`.
    """

    bits: int
    range_v: float
    gains: tuple[float, ...]

    @property
    def lsb_v(self) -> float:
        """DAQ volts per code."""
        return 2.0 * self.range_v / (1 << self.bits)

    @property
    def max_code(self) -> int:
        """Largest code (``2^bits - 1``)."""
        return (1 << self.bits) - 1

    def step(self) -> np.ndarray:
        """Quantization step of each channel in primary units (V or A per code)."""
        return self.lsb_v * np.asarray(self.gains)

    def to_codes(self, daq_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantize DAQ-input volts (shape (n, channels)) to int16 codes; also return the clip mask."""
        raw = np.floor((daq_v + self.range_v) / self.lsb_v + 0.5)
        clipped = (raw < 0) | (raw > self.max_code)
        return np.clip(raw, 0, self.max_code).astype(np.int16), clipped

    def to_primary(self, codes: np.ndarray) -> np.ndarray:
        """Codes (n, channels) -> primary values (V, A) as float64 (n, channels)."""
        return (codes.astype(np.float64) * self.lsb_v - self.range_v) * np.asarray(self.gains)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "bits": self.bits,
            "range_v": self.range_v,
            "lsb_v": self.lsb_v,
            "gains": dict(zip(CHANNELS, self.gains, strict=True)),
        }


def held_times(sample_index: np.ndarray, sample_rate_hz: float, sim_step_s: float) -> np.ndarray:
    """Times (s) at which the held simulator output is evaluated for given meter sample indices.

    The meter takes sample ``n`` at ``n / sample_rate_hz``; the simulator output then shows the value
    computed at the last simulator step, ``floor(t / sim_step_s) * sim_step_s`` (``sim_step_s = 0``:
    no hold).
    """
    t = sample_index / sample_rate_hz
    if sim_step_s <= 0:
        return t
    return np.floor(sample_index / (sample_rate_hz * sim_step_s) + 1e-9) * sim_step_s


def _crossing_after(fun: Callable[[np.ndarray], np.ndarray], t0: float, period: float) -> float:
    """First time >= t0 where the function changes sign (searched over 20 periods; else the end)."""
    grid = t0 + np.arange(0, 20 * period, period / 400.0)
    values = fun(grid)
    if values[0] == 0.0:
        return t0
    sign = np.sign(values)
    change = np.nonzero(sign[1:] != sign[:-1])[0]
    if change.size == 0:
        return float(grid[-1])
    k = int(change[0])
    a, b = grid[k], grid[k + 1]
    fa, fb = values[k], values[k + 1]
    return float(a - fa * (b - a) / (fb - fa))


class MeterSignals:
    """Continuous instantaneous signals at one meter for a fault solution.

    Parameters
    ----------
    solution : FaultSolution
        Exact phasors.
    meter_id : str
        Meter to synthesize.
    fault_time_s : float
        Inception time on this signal's time axis, s (``math.inf``: no fault, pre-fault forever).
    phase_shift_rad : float
        Common rotation of every phasor: the source EMF of phase A is ``cos(w t + phase_shift)``.
    trip_after_s : float or None
        Breaker trip command after inception, s.
    """

    def __init__(
        self,
        solution: FaultSolution,
        meter_id: str,
        fault_time_s: float,
        phase_shift_rad: float,
        trip_after_s: float | None = None,
    ) -> None:
        if meter_id not in solution.pre:
            raise KeyError(f"unknown meter {meter_id!r}; known: {sorted(solution.pre)}")
        self.omega = 2.0 * math.pi * solution.frequency_hz
        rot = complex(math.cos(phase_shift_rad), math.sin(phase_shift_rad)) * math.sqrt(2.0)
        self.pre = np.concatenate([solution.pre[meter_id].v, solution.pre[meter_id].i]) * rot
        self.fault = np.concatenate([solution.fault[meter_id].v, solution.fault[meter_id].i]) * rot
        self.post = np.concatenate([solution.post_trip[meter_id].v, solution.post_trip[meter_id].i]) * rot
        self.fault_time_s = fault_time_s
        self.tau_s = solution.dc_time_constant_s[meter_id]
        self.offset = np.zeros(6)
        if math.isfinite(fault_time_s):
            e = np.exp(1j * self.omega * fault_time_s)
            self.offset[3:] = (self.pre[3:] * e).real - (self.fault[3:] * e).real
        self.trip_time_s: float | None = None
        self.interrupt_s = np.full(6, math.inf)
        if trip_after_s is not None and math.isfinite(fault_time_s):
            trip_time = fault_time_s + trip_after_s
            self.trip_time_s = trip_time
            self.interrupt_s[:3] = trip_time
            period = 2.0 * math.pi / self.omega
            for k in range(3, 6):
                self.interrupt_s[k] = _crossing_after(partial(self._fault_values, k=k), trip_time, period)

    def _fault_values(self, t: np.ndarray, k: int) -> np.ndarray:
        out = (self.fault[k] * np.exp(1j * self.omega * t)).real
        if self.tau_s > 0.0 and self.offset[k] != 0.0:
            out = out + self.offset[k] * np.exp(-(t - self.fault_time_s) / self.tau_s)
        return out

    def values(self, t: np.ndarray) -> np.ndarray:
        """Instantaneous primary values (V, A) at times ``t`` (s), shape (len(t), 6)."""
        t = np.asarray(t, dtype=np.float64)
        out = np.empty((t.size, 6))
        rot = np.exp(1j * self.omega * t)
        before = t < self.fault_time_s
        for k in range(6):
            pre = (self.pre[k] * rot).real
            col = np.where(before, pre, 0.0)
            if not before.all():
                after = ~before
                fault = (self.fault[k] * rot[after]).real
                if k >= 3 and self.tau_s > 0.0 and self.offset[k] != 0.0:
                    fault += self.offset[k] * np.exp(-(t[after] - self.fault_time_s) / self.tau_s)
                tripped = t[after] >= self.interrupt_s[k]
                if tripped.any():
                    fault[tripped] = (self.post[k] * rot[after][tripped]).real
                col[after] = fault
            out[:, k] = col
        return out


@dataclass(frozen=True)
class Synthesis:
    """A synthesized record and what happened on the way.

    Parameters
    ----------
    record : sma3_grid.comtrade.Record
        Primary values of the quantized samples.
    codes : numpy.ndarray
        Raw ADC codes, int16 (n, 6) in :data:`CHANNELS` order.
    scaling : AdcScaling
        Conversion of ``codes`` to primary values.
    saturated : dict[str, int]
        Number of clipped samples per channel (only channels that clipped).
    inception_angle_rad : float
        Phase of the source EMF of phase A at inception, rad.
    dc_time_constant_s : float
        Time constant of the currents' DC offset, s.
    interrupt_s : dict[str, float]
        When a trip was simulated: time (s from the first sample) at which each channel switched to
        its post-trip value.
    """

    record: Record
    codes: np.ndarray
    scaling: AdcScaling
    saturated: dict[str, int]
    inception_angle_rad: float
    dc_time_constant_s: float
    interrupt_s: dict[str, float] = field(default_factory=dict)


def synthesize_detailed(
    net: Network, solution: FaultSolution, meter_id: str, config: SamplingConfig, seed: int = 0
) -> Synthesis:
    """Sample one meter's record of a fault solution; see the module notes.

    Parameters
    ----------
    net : sma3_grid.model.Network
        The solved network (frequency and meter ids).
    solution : FaultSolution
        Output of :func:`sma3_sim.solver.solve`.
    meter_id : str
        Meter whose channels to synthesize; the record's station name.
    config : SamplingConfig
        Signal-chain settings.
    seed : int
        Seed of the inception angle draw (when not fixed) and of the noise.
    """
    if meter_id not in net.meters:
        raise KeyError(f"unknown meter {meter_id!r}; known: {sorted(net.meters)}")
    if config.fault_time_s >= config.duration_s:
        raise ValueError(
            f"fault_time_s = {config.fault_time_s} s must lie inside the record of {config.duration_s} s"
        )
    rng = np.random.default_rng(seed)
    angle = config.inception_angle_rad
    if angle is None:
        angle = float(rng.uniform(0.0, 2.0 * math.pi))
    omega = 2.0 * math.pi * solution.frequency_hz
    shift = angle - omega * config.fault_time_s
    signals = MeterSignals(solution, meter_id, config.fault_time_s, shift, config.trip_after_s)
    index = np.arange(config.n_samples)
    t = held_times(index, config.sample_rate_hz, config.sim_step_s)
    primary = signals.values(t)
    scaling = config.scaling()
    daq = primary / np.asarray(scaling.gains)
    if config.noise_v_rms > 0:
        daq = daq + rng.normal(0.0, config.noise_v_rms, size=daq.shape)
    codes, clipped = scaling.to_codes(daq)
    values = scaling.to_primary(codes)
    counts = clipped.sum(axis=0)
    saturated = {name: int(c) for name, c in zip(CHANNELS, counts, strict=True) if c}
    record = Record(
        station=meter_id,
        sample_rate_hz=config.sample_rate_hz,
        start_time=config.start_time,
        trigger_s=config.fault_time_s,
        channels={name: values[:, k] for k, name in enumerate(CHANNELS)},
        info={
            name: ChannelInfo(unit="V" if name[0] == "V" else "A", primary=gain, secondary=1.0)
            for name, gain in zip(CHANNELS, scaling.gains, strict=True)
        },
        frequency_hz=solution.frequency_hz,
    )
    interrupt = {}
    if signals.trip_time_s is not None:
        interrupt = {name: float(signals.interrupt_s[k]) for k, name in enumerate(CHANNELS)}
    return Synthesis(
        record=record,
        codes=codes,
        scaling=scaling,
        saturated=saturated,
        inception_angle_rad=angle % (2.0 * math.pi),
        dc_time_constant_s=signals.tau_s,
        interrupt_s=interrupt,
    )


def synthesize(
    net: Network, solution: FaultSolution, meter_id: str, config: SamplingConfig | None = None, seed: int = 0
) -> Record:
    """Sampled record (``VA VB VC`` V, ``IA IB IC`` A) of one meter; see :func:`synthesize_detailed`."""
    return synthesize_detailed(net, solution, meter_id, config or SamplingConfig(), seed).record


def with_inception_angle(config: SamplingConfig, seed: int) -> SamplingConfig:
    """The config with its inception angle fixed (drawn from ``seed`` when None, as synthesize does).

    Use it to give every meter of one scenario the same inception instant.
    """
    if config.inception_angle_rad is not None:
        return config
    angle = float(np.random.default_rng(seed).uniform(0.0, 2.0 * math.pi))
    return replace(config, inception_angle_rad=angle)
