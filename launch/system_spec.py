"""What ``sim_system.launch.py`` starts, as plain data: the whole simulated deployment on one host.

Two MQTT brokers (data and management), the Device Catalog and one feeder-head meter fed by the
simulated grid, whose agent configures itself from the catalog. :func:`prepare` writes the
configuration files the processes need into a state folder and returns the commands; the launch file
turns them into ``ExecuteProcess`` actions and includes ``meter.launch.py`` with :func:`meter_arguments`.
The test ``tests/ros/test_sim_system.py`` starts the same commands without ``launch``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

#: Loopback ports of the demo deployment (data broker, management broker, catalog HTTP).
DEFAULT_PORTS = {"data": 1883, "management": 1884, "catalog": 8080}
METER_ID = "M02"
NETWORK = "turin22"
#: Demo credentials; the deployment is bound to 127.0.0.1 only.
OPERATOR_TOKEN = "sim-operator-token"
METER_TOKEN = "sim-token-M02"


@dataclass(frozen=True)
class ProcessSpec:
    """A process of the deployment: a name and its command line."""

    name: str
    cmd: list[str]


def _mosquitto() -> str:
    """The broker executable (Debian installs it in /usr/sbin, not always on a user's PATH)."""
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _broker_conf(port: int, name: str) -> str:
    return (
        f"# {name} broker of the simulated deployment (loopback only)\n"
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "log_type error\n"
        "log_type warning\n"
    )


def prepare(state: Path, ports: dict[str, int] | None = None) -> list[ProcessSpec]:
    """Write the deployment's configuration into ``state`` and return the processes to start.

    Parameters
    ----------
    state : Path
        Folder for the generated configuration, the catalog database and the meter's caches.
    ports : dict, optional
        ``data``, ``management`` and ``catalog`` ports on 127.0.0.1 (default :data:`DEFAULT_PORTS`).
    """
    ports = {**DEFAULT_PORTS, **(ports or {})}
    state.mkdir(parents=True, exist_ok=True)
    (state / "broker-data.conf").write_text(_broker_conf(ports["data"], "data"))
    (state / "broker-mgmt.conf").write_text(_broker_conf(ports["management"], "management"))
    catalog_dir = state / "catalog"
    catalog_dir.mkdir(exist_ok=True)
    (catalog_dir / "brokers.yaml").write_text(
        "brokers:\n"
        f"  - {{name: mgmt, purpose: management, host: 127.0.0.1, port: {ports['management']}, tls: false}}\n"
        f"  - {{name: data, purpose: data, host: 127.0.0.1, port: {ports['data']}, tls: false}}\n"
        "defaults: {management: mgmt, data: data}\n"
    )
    (catalog_dir / "tokens.yaml").write_text(
        f"- {{name: operator, role: operator, token: {OPERATOR_TOKEN}}}\n"
        f"- {{name: {METER_ID}, role: device, device_id: {METER_ID}, token: {METER_TOKEN}}}\n"
    )
    (state / f"{METER_ID}.token").write_text(METER_TOKEN + "\n")
    return [
        ProcessSpec("broker_data", [_mosquitto(), "-c", str(state / "broker-data.conf")]),
        ProcessSpec("broker_mgmt", [_mosquitto(), "-c", str(state / "broker-mgmt.conf")]),
        ProcessSpec(
            "catalog",
            [
                "sma3-catalog",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["catalog"]),
                "--db",
                f"sqlite:///{state / 'catalog.db'}",
                "--config-dir",
                str(catalog_dir),
                "--network",
                f"{NETWORK}={NETWORK}",
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(ports["management"]),
            ],
        ),
    ]


def meter_arguments(state: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    """Arguments of ``meter.launch.py`` for the deployment's feeder-head meter."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    return {
        "meter_id": METER_ID,
        "network": NETWORK,
        "record_dir": str(state / "records"),
        "catalog_url": f"http://127.0.0.1:{ports['catalog']}",
        "token_file": str(state / f"{METER_ID}.token"),
        "cache_dir": str(state / "cache"),
    }
