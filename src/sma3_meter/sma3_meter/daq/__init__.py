"""DAQ backends of the 3-SMA: one interface (:class:`DaqBackend`), four implementations.

- ``uldaq`` - MCC USB-201 on Linux / Raspberry Pi (:class:`~sma3_meter.daq.uldaq_backend.UldaqBackend`)
- ``mcculw`` - the same on Windows (:class:`~sma3_meter.daq.mcculw_backend.McculwBackend`)
- ``sim`` - the live stream of sma3_sim (:class:`~sma3_meter.daq.sim.SimBackend`)
- ``replay`` - COMTRADE records and rosbag2 recordings (:class:`~sma3_meter.daq.replay.ReplayBackend`)

Vendor libraries are imported only when their backend starts; a missing library or device raises
:class:`DaqError` with a one-line reason. :func:`create_backend` builds a backend from flat options
(the acquisition node's parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sma3_meter.daq.base import (
    ChannelScaling,
    DaqBackend,
    DaqError,
    EndOfDataError,
    Frame,
    Framer,
    SampleBlock,
    parse_float_list,
    parse_int_list,
)

__all__ = [
    "BACKENDS",
    "ChannelScaling",
    "DaqBackend",
    "DaqError",
    "EndOfDataError",
    "Frame",
    "Framer",
    "SampleBlock",
    "create_backend",
]

BACKENDS = ("uldaq", "mcculw", "sim", "replay")


def create_backend(kind: str, options: Mapping[str, Any]) -> DaqBackend:
    """Build the backend ``kind`` from flat options.

    Options (unused ones are ignored): ``sample_rate_hz`` (3200), ``inputs`` ("0,1,2,3,4,5"),
    ``gains`` (primary units per DAQ volt, six values), ``offsets_v``; uldaq: ``unique_id``; mcculw:
    ``board_num``, ``discover``; replay: ``sources`` (list of .cfg / bag paths), ``block_samples``,
    ``speed``, ``loop``, ``topic``; sim: ``network``, ``meter_id``, ``line_id``, ``fault_type``,
    ``position``, ``rf_ohm``, ``fault_at_s``, ``trip_after_s``, ``block_samples``, ``speed``,
    ``duration_s``, ``seed``.

    Raises
    ------
    DaqError
        Unknown backend or bad option (one-line reason).
    """
    rate = float(options.get("sample_rate_hz", 3200.0))
    if kind in ("uldaq", "mcculw"):
        scaling = ChannelScaling(
            inputs=parse_int_list(options.get("inputs", "0,1,2,3,4,5"), 6, "inputs"),
            gains=parse_float_list(options.get("gains", "3000,3000,3000,4000,4000,4000"), 6, "gains"),
            offsets_v=parse_float_list(options.get("offsets_v", "0,0,0,0,0,0"), 6, "offsets_v"),
        )
        if kind == "uldaq":
            from sma3_meter.daq.uldaq_backend import UldaqBackend

            return UldaqBackend(rate, scaling, unique_id=str(options.get("unique_id", "")))
        from sma3_meter.daq.mcculw_backend import McculwBackend

        return McculwBackend(
            rate,
            scaling,
            board_num=int(options.get("board_num", 0)),
            discover=bool(options.get("discover", True)),
        )
    if kind == "replay":
        from sma3_meter.daq.replay import ReplayBackend

        sources = options.get("sources") or []
        if isinstance(sources, str):
            sources = [s for s in sources.split(",") if s]
        return ReplayBackend(
            [Path(s) for s in sources],
            block_samples=int(options.get("block_samples", 64)),
            speed=float(options.get("speed", 1.0)),
            loop=bool(options.get("loop", False)),
            topic=str(options.get("topic", "")),
        )
    if kind == "sim":
        from sma3_meter.daq.sim import SimBackend

        def _opt_float(name: str) -> float | None:
            value = options.get(name)
            return None if value is None or float(value) < 0 else float(value)

        return SimBackend.from_scenario(
            network=str(options.get("network", "mini")),
            meter_id=str(options.get("meter_id", "")),
            line_id=str(options.get("line_id", "")),
            fault_type=str(options.get("fault_type", "AG")),
            position=float(options.get("position", 0.5)),
            rf_ohm=float(options.get("rf_ohm", 0.001)),
            fault_at_s=_opt_float("fault_at_s"),
            trip_after_s=_opt_float("trip_after_s"),
            sample_rate_hz=rate,
            block_size=int(options.get("block_samples", 64)),
            speed=float(options.get("speed", 1.0)),
            duration_s=_opt_float("duration_s"),
            seed=int(options.get("seed", 0)),
        )
    raise DaqError(f"unknown DAQ backend {kind!r}; choose one of {', '.join(BACKENDS)}")
