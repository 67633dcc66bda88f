"""Live stream of raw ADC codes of one meter, for the meter's ``sim`` DAQ backend.

Block format
------------
Iterating a :class:`SimStream` yields :class:`StreamBlock` objects, one per ``block_size`` samples:

* ``codes``: ``numpy.ndarray`` of dtype ``int16``, shape ``(block_size, 6)``, columns in the order
  ``VA VB VC IA IB IC`` (:data:`sma3_sim.waveforms.CHANNELS`); offset-binary ADC counts
  ``0 .. 2^bits - 1`` (12 bits by default), the raw counts an MCC USB-201 returns.
* ``first_sample``: index of the block's first sample since the stream started (sample ``n`` is
  taken at ``n / sample_rate_hz`` seconds of stream time), ``index``: block counter from 0.
* ``fault_time_s``: stream time of fault inception, or None while no fault has been triggered.

``SimStream.scaling`` (:class:`sma3_sim.waveforms.AdcScaling`) converts codes to primary values:
``primary = (code * lsb_v - range_v) * gains[channel]`` (V for ``V*``, A for ``I*``);
``SimStream.sample_rate_hz`` gives the rate.

The samples are continuous pre-fault until the fault is triggered -- at a stream time given up front
(``fault_at_s``) or by calling :meth:`SimStream.trigger` (the fault then starts at the first sample
of the next block) -- then fault samples (and post-trip samples when the config has
``trip_after_s``), through the same signal chain as :func:`sma3_sim.waveforms.synthesize`.
``speed`` paces the blocks against the wall clock: 1.0 real time, 2.0 twice as fast, 0 as fast as
possible. The stream is endless unless ``duration_s`` is given.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sma3_sim.solver import FaultSolution
from sma3_sim.waveforms import AdcScaling, MeterSignals, SamplingConfig, held_times

__all__ = ["SimStream", "StreamBlock"]


@dataclass(frozen=True)
class StreamBlock:
    """One block of raw samples; see the module notes for the format."""

    index: int
    first_sample: int
    codes: np.ndarray
    fault_time_s: float | None


class SimStream:
    """Endless (or ``duration_s`` long) stream of one meter's ADC codes for a fault solution.

    Parameters
    ----------
    solution : FaultSolution
        Pre-fault and fault phasors (:func:`sma3_sim.solver.solve`).
    meter_id : str
        Meter to stream.
    config : SamplingConfig
        Signal chain; ``duration_s`` and ``fault_time_s`` of the config are not used (see
        ``duration_s`` and ``fault_at_s``); ``inception_angle_rad`` applies when ``fault_at_s`` is
        given.
    seed : int
        Seed of the noise (and of the inception angle when drawn).
    block_size : int
        Samples per block (default 320: 0.1 s at 3.2 kHz).
    speed : float
        Wall-clock pacing factor (1.0 real time, 0 as fast as possible).
    fault_at_s : float or None
        Stream time of fault inception, s; None: wait for :meth:`trigger`.
    duration_s : float or None
        Stop after this much stream time, s; None: endless.
    """

    def __init__(
        self,
        solution: FaultSolution,
        meter_id: str,
        config: SamplingConfig | None = None,
        seed: int = 0,
        block_size: int = 320,
        speed: float = 1.0,
        fault_at_s: float | None = None,
        duration_s: float | None = None,
    ) -> None:
        config = config or SamplingConfig()
        if meter_id not in solution.pre:
            raise KeyError(f"unknown meter {meter_id!r}; known: {sorted(solution.pre)}")
        if block_size < 1:
            raise ValueError(f"block_size: must be >= 1, got {block_size}")
        if not (math.isfinite(speed) and speed >= 0):
            raise ValueError(f"speed: must be a finite number >= 0, got {speed}")
        if fault_at_s is not None and not (math.isfinite(fault_at_s) and fault_at_s >= 0):
            raise ValueError(f"fault_at_s: must be a finite number >= 0 or None, got {fault_at_s}")
        self.solution = solution
        self.meter_id = meter_id
        self.config = config
        self.block_size = block_size
        self.speed = speed
        self.duration_s = duration_s
        self.sample_rate_hz = config.sample_rate_hz
        self.scaling: AdcScaling = config.scaling()
        self._rng = np.random.default_rng(seed)
        angle = config.inception_angle_rad
        if angle is None:
            angle = float(self._rng.uniform(0.0, 2.0 * math.pi))
        omega = 2.0 * math.pi * solution.frequency_hz
        # Phase reference: with a fault time known up front, the source EMF of phase A has phase
        # ``angle`` at inception; otherwise ``angle`` at stream time 0.
        self._shift = angle - omega * (fault_at_s or 0.0)
        self._lock = threading.Lock()
        self._fault_time: float | None = None
        self._signals = MeterSignals(solution, meter_id, math.inf, self._shift)
        if fault_at_s is not None:
            self._set_fault(fault_at_s)
        self._next_sample = 0
        self._index = 0
        self._wall_start: float | None = None

    @property
    def fault_time_s(self) -> float | None:
        """Stream time of fault inception, or None before the fault is triggered."""
        return self._fault_time

    def _set_fault(self, at_s: float) -> None:
        self._fault_time = at_s
        self._signals = MeterSignals(
            self.solution, self.meter_id, at_s, self._shift, self.config.trip_after_s
        )

    def trigger(self) -> float:
        """Start the fault at the first sample of the next block; return its stream time (s).

        A second call does nothing and returns the time of the fault already triggered.
        """
        with self._lock:
            if self._fault_time is not None:
                return self._fault_time
            at_s = self._next_sample / self.sample_rate_hz
            self._set_fault(at_s)
            return at_s

    def __iter__(self) -> Iterator[StreamBlock]:
        return self

    def __next__(self) -> StreamBlock:
        with self._lock:
            first = self._next_sample
            count = self.block_size
            if self.duration_s is not None:
                remaining = round(self.duration_s * self.sample_rate_hz) - first
                if remaining <= 0:
                    raise StopIteration
                count = min(count, remaining)
            index = np.arange(first, first + count)
            t = held_times(index, self.sample_rate_hz, self.config.sim_step_s)
            daq = self._signals.values(t) / np.asarray(self.scaling.gains)
            if self.config.noise_v_rms > 0:
                daq = daq + self._rng.normal(0.0, self.config.noise_v_rms, size=daq.shape)
            codes, _ = self.scaling.to_codes(daq)
            block = StreamBlock(
                index=self._index, first_sample=first, codes=codes, fault_time_s=self._fault_time
            )
            self._next_sample = first + count
            self._index += 1
        if self.speed > 0:
            now = time.monotonic()
            if self._wall_start is None:
                self._wall_start = now - first / self.sample_rate_hz / self.speed
            due = self._wall_start + (first + count) / self.sample_rate_hz / self.speed
            if due > now:
                time.sleep(due - now)
        return block
