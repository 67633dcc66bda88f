"""``sim`` backend: the live stream of raw ADC codes of :mod:`sma3_sim.stream` (software in the loop).

The stream yields int16 offset-binary codes, shape (block, 6) in the order VA VB VC IA IB IC, and its
``scaling`` converts them to primary values; codes at either end of the range are flagged saturated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from sma3_meter.daq.base import DaqBackend, DaqError, EndOfDataError, SampleBlock, utc_now

__all__ = ["SimBackend"]


class _Scaling(Protocol):
    max_code: int

    def to_primary(self, codes: np.ndarray) -> np.ndarray: ...


class _Stream(Protocol):
    sample_rate_hz: float
    scaling: _Scaling

    def __iter__(self) -> Iterator[Any]: ...

    def __next__(self) -> Any: ...


class SimBackend(DaqBackend):
    """Acquisition from a :class:`sma3_sim.stream.SimStream` (or any stream with the same block format).

    Parameters
    ----------
    stream : SimStream
        The stream; it paces itself (``speed``).
    start_time : datetime, optional
        UTC time of sample 0 (default: when :meth:`start` is called).
    """

    def __init__(self, stream: _Stream, start_time: datetime | None = None) -> None:
        self.stream = stream
        self.sample_rate_hz = float(stream.sample_rate_hz)
        self._start_time = start_time
        self._running = False

    @classmethod
    def from_scenario(
        cls,
        network: str,
        meter_id: str,
        line_id: str,
        fault_type: str,
        position: float = 0.5,
        rf_ohm: float = 0.001,
        fault_at_s: float | None = None,
        trip_after_s: float | None = None,
        sample_rate_hz: float = 3200.0,
        block_size: int = 64,
        speed: float = 1.0,
        duration_s: float | None = None,
        seed: int = 0,
    ) -> SimBackend:
        """Build the stream of ``meter_id`` for a fault on ``line_id`` of a shipped or on-disk network.

        An empty ``line_id`` streams the healthy network (no fault); so does ``fault_at_s=None``
        until :meth:`sma3_sim.stream.SimStream.trigger` is called on :attr:`stream`.

        Raises
        ------
        DaqError
            sma3_sim is not installed, or the network/scenario is invalid (one-line reason).
        """
        try:
            from sma3_grid.io import load_network
            from sma3_sim.scenario import FaultScenario
            from sma3_sim.solver import solve
            from sma3_sim.stream import SimStream
            from sma3_sim.waveforms import SamplingConfig
        except ImportError as exc:
            raise DaqError(f"sim backend: sma3_sim is not available ({exc})") from None
        try:
            net = load_network(network)
            if not line_id:  # no fault: any energized line, the fault is never triggered
                line_id, fault_at_s = net.energized_lines()[0], None
            scenario = FaultScenario(
                line_id,
                position,
                fault_type,
                rf_ohm=rf_ohm,
                rg_ohm=rf_ohm if fault_type.endswith("G") else 0.001,
                seed=seed,
            )
            solution = solve(net, scenario)
            config = SamplingConfig(sample_rate_hz=sample_rate_hz, trip_after_s=trip_after_s)
            stream = SimStream(
                solution,
                meter_id,
                config,
                seed=seed,
                block_size=block_size,
                speed=speed,
                fault_at_s=fault_at_s,
                duration_s=duration_s,
            )
        except KeyError as exc:
            raise DaqError(f"sim backend: {exc.args[0]}") from None
        except ValueError as exc:
            raise DaqError(f"sim backend: {exc}") from None
        return cls(stream)

    def start(self) -> None:
        if self._start_time is None:
            self._start_time = utc_now()
        self._running = True

    def read(self, timeout_s: float = 0.1) -> SampleBlock | None:
        """Next stream block (the stream paces itself; ``timeout_s`` is not used)."""
        if not self._running or self._start_time is None:
            raise DaqError("sim backend: read() before start()")
        try:
            block = next(self.stream)
        except StopIteration:
            raise EndOfDataError("sim stream ended") from None
        codes = np.asarray(block.codes)
        if codes.ndim != 2 or codes.shape[1] != 6:
            raise DaqError(f"sim backend: stream block has shape {codes.shape}, expected (n, 6)")
        primary = self.stream.scaling.to_primary(codes).T
        top = self.stream.scaling.max_code
        clipped = np.asarray((codes <= 0) | (codes >= top)).any(axis=0)
        saturated = tuple(bool(x) for x in np.atleast_1d(clipped))
        first = int(block.first_sample)
        return SampleBlock(
            first_index=first,
            samples=np.ascontiguousarray(primary),
            first_time=self._start_time + timedelta(seconds=first / self.sample_rate_hz),
            saturated=saturated,
        )

    def stop(self) -> None:
        self._running = False
