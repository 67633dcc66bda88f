"""What ``catalog.launch.py`` starts, as plain data (checkable without the ROS ``launch`` package).

The launch file declares :data:`ARGS` as launch arguments and runs the ``sma3-catalog`` executable
of this package with :func:`command_arguments` (values are the launch arguments' strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PACKAGE = "sma3_catalog"
EXECUTABLE = "sma3-catalog"


@dataclass(frozen=True)
class LaunchArg:
    """A launch argument: name, default (string, as on the command line), meaning, CLI option."""

    name: str
    default: str
    description: str
    option: str


ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("db", "sqlite:///sma3-catalog.db", "SQLAlchemy database URL (sqlite or postgresql).", "--db"),
    LaunchArg("host", "127.0.0.1", "HTTP bind address.", "--host"),
    LaunchArg("port", "8080", "HTTP port.", "--port"),
    LaunchArg(
        "config_dir", "", "Folder with brokers/networks/algorithms/tokens YAML (empty: none).", "--config-dir"
    ),
    LaunchArg("tokens", "", "Bearer tokens file (empty: config_dir/tokens.yaml or none).", "--tokens"),
    LaunchArg("mqtt_host", "127.0.0.1", "Management broker host (empty: REST only).", "--mqtt-host"),
    LaunchArg("mqtt_port", "1883", "Management broker port.", "--mqtt-port"),
    LaunchArg("mqtt_username", "", "Catalog's broker user (empty: anonymous).", "--mqtt-username"),
    LaunchArg("mqtt_password_file", "", "File with that user's password.", "--mqtt-password-file"),
    LaunchArg("log_level", "info", "debug, info, warning or error.", "--log-level"),
)


def command_arguments(values: Mapping[str, str]) -> list[str]:
    """Command-line arguments of ``sma3-catalog`` for the given launch argument values.

    Arguments left empty are omitted (the CLI default applies).

    Raises
    ------
    KeyError
        When ``values`` names an argument not in :data:`ARGS`.
    """
    known = {a.name for a in ARGS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"unknown launch arguments {unknown}; known: {sorted(known)}")
    out: list[str] = []
    for arg in ARGS:
        value = values.get(arg.name, arg.default)
        if value != "":
            out += [arg.option, value]
    return out
