"""What ``meter.launch.py`` starts, as plain data: launch arguments, nodes and their parameters.

The launch file (``launch/meter.launch.py``) only turns this description into ``launch`` /
``launch_ros`` actions, so the description can be checked, and its nodes started with exactly these
parameters, where the ``launch`` package is not installed (the PyPI ROS wheels do not ship it).

A parameter value is either a constant or :class:`Arg` (the value of a launch argument); launch
arguments are strings and are converted to the parameter's type as ``ros2 launch`` does (YAML
rules: ``3200.0`` is a float, ``true`` a boolean).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

PACKAGE = "sma3_meter"


@dataclass(frozen=True)
class Arg:
    """Reference to the launch argument ``name``; ``as_list`` wraps the value in a one-item list."""

    name: str
    as_list: bool = False


@dataclass(frozen=True)
class LaunchArg:
    """A launch argument with its default (a string, as on the command line) and its meaning."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeSpec:
    """A node of the meter: executable of ``sma3_meter``, node name and parameters.

    ``when`` names a launch argument: the node starts only when that argument is not empty.
    """

    executable: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    when: str | None = None


ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("meter_id", "M02", "Meter id of the network description; also the ROS namespace."),
    LaunchArg("bus_id", "PS", "Bus where the meter measures (for outage alarms)."),
    LaunchArg("network", "turin22", "Network description: shipped name, folder or .xlsx."),
    LaunchArg("backend", "sim", "DAQ backend: sim, replay, uldaq (Linux USB-201) or mcculw (Windows)."),
    LaunchArg("sample_rate_hz", "3200.0", "Sampling rate [Hz] (3200 as in the lab tests, or 6400)."),
    LaunchArg("nominal_hz", "50.0", "Nominal system frequency [Hz]."),
    LaunchArg("record", "", "replay backend: COMTRADE .cfg (or rosbag2 folder) to play."),
    LaunchArg("speed", "1.0", "sim/replay: 1.0 = real time, 0 = as fast as possible."),
    LaunchArg("sim_line_id", "L02_043", "sim: line where the simulated fault happens (empty: no fault)."),
    LaunchArg("sim_fault_type", "AG", "sim: fault type, AG ... ABC."),
    LaunchArg("sim_position", "0.5", "sim: fault position along the line, fraction from its upstream end."),
    LaunchArg("sim_fault_at_s", "3.0", "sim: time of the fault after start [s] (negative: never)."),
    LaunchArg("record_dir", "records", "Folder of the COMTRADE records of detected faults."),
    LaunchArg(
        "locator",
        "true",
        "Run the locator node on its own (without a catalog; with one, the configuration decides).",
    ),
    LaunchArg("catalog_url", "", "Device Catalog URL; when set, the meter agent configures the meter."),
    LaunchArg("token_file", "", "File holding the meter's bearer token for the catalog."),
    LaunchArg("cache_dir", "cache", "Folder where the agent caches its last good configuration."),
)


NODES: tuple[NodeSpec, ...] = (
    NodeSpec(
        "acquisition",
        "acquisition",
        {
            "meter_id": Arg("meter_id"),
            "backend": Arg("backend"),
            "sample_rate_hz": Arg("sample_rate_hz"),
            "nominal_hz": Arg("nominal_hz"),
            "sources": Arg("record", as_list=True),
            "speed": Arg("speed"),
            "sim_network": Arg("network"),
            "sim_line_id": Arg("sim_line_id"),
            "sim_fault_type": Arg("sim_fault_type"),
            "sim_position": Arg("sim_position"),
            "sim_fault_at_s": Arg("sim_fault_at_s"),
        },
    ),
    NodeSpec(
        "detector",
        "detector",
        {
            "meter_id": Arg("meter_id"),
            "bus_id": Arg("bus_id"),
            "nominal_hz": Arg("nominal_hz"),
            "record_dir": Arg("record_dir"),
        },
    ),
    NodeSpec(
        "locator",
        "locator",
        {
            "enabled": Arg("locator"),
            "network": Arg("network"),
            "meter_id": Arg("meter_id"),
        },
    ),
    NodeSpec(
        "meter_agent",
        "agent",
        {
            "device_id": Arg("meter_id"),
            "catalog_url": Arg("catalog_url"),
            "token_file": Arg("token_file"),
            "cache_dir": Arg("cache_dir"),
        },
        when="catalog_url",
    ),
)


def defaults() -> dict[str, str]:
    """Default value of every launch argument."""
    return {a.name: a.default for a in ARGS}


def started(node: NodeSpec, overrides: dict[str, str] | None = None) -> bool:
    """Whether ``node`` is started for these launch-argument values."""
    return node.when is None or bool({**defaults(), **(overrides or {})}[node.when])


def _typed(text: str) -> Any:
    """Convert a launch-argument string as ``ros2 launch`` does for parameters (YAML scalars)."""
    if text == "":
        return ""
    value = yaml.safe_load(text)
    return value if isinstance(value, (bool, int, float, str)) else text


def resolve(node: NodeSpec, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Concrete parameters of ``node`` for the given launch-argument values (defaults otherwise).

    Raises
    ------
    KeyError
        An override names no launch argument of the meter launch file.
    """
    values = defaults()
    for name, value in (overrides or {}).items():
        if name not in values:
            raise KeyError(f"meter.launch.py has no argument {name!r}")
        values[name] = value
    out: dict[str, Any] = {}
    for key, value in node.parameters.items():
        if isinstance(value, Arg):
            typed = _typed(values[value.name])
            out[key] = [str(typed)] if value.as_list else typed
        else:
            out[key] = value
    return out
