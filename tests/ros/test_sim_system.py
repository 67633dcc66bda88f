"""The whole simulated deployment of ``launch/sim_system.launch.py``, started process by process.

Brokers, catalog and the meter's nodes come from ``launch/system_spec.py`` and
``sma3_meter.launch_spec`` exactly as the launch file uses them. The meter M02 of turin22 must
configure itself from the catalog (which derives a feeder-head configuration from the network's
meter table), register, heartbeat on ROS, and locate the simulated fault through its agent.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sma3_rostest.runtime import require_ros
from sma3_testing.ports import free_port, wait_for_port

require_ros()

import rclpy  # noqa: E402

from sma3_grid.networks import PAPER_SECTIONS  # noqa: E402
from sma3_interfaces.msg import DeviceStatus, FaultLocation  # noqa: E402
from sma3_rostest.processes import log_tails, start_meter_nodes, start_process, stop_processes  # noqa: E402

pytestmark = pytest.mark.ros

TOP = Path(__file__).resolve().parents[2]


def _system_spec() -> Any:
    spec = importlib.util.spec_from_file_location("system_spec", TOP / "launch" / "system_spec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["system_spec"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SYSTEM = _system_spec()


def test_launch_file_uses_the_spec() -> None:
    text = (TOP / "launch" / "sim_system.launch.py").read_text()
    assert "from system_spec import meter_arguments, prepare" in text
    assert "meter.launch.py" in text


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Every process of the deployment, on free loopback ports; stopped at the end."""
    ports = {"data": free_port(), "management": free_port(), "catalog": free_port()}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for process in SYSTEM.prepare(tmp_path / "state", ports):
            procs.append(start_process(process.name, process.cmd, tmp_path))
        for port in ports.values():
            wait_for_port(port, timeout_s=30)
        overrides = {
            **SYSTEM.meter_arguments(tmp_path / "state", ports),
            "sim_fault_at_s": "8.0",
        }  # after discovery
        overrides["locator"] = "false"  # with a catalog, the configuration decides
        nodes, _params = start_meter_nodes(overrides, tmp_path)
        procs += nodes
        yield {"ports": ports, "namespace": "/" + overrides["meter_id"], "logs": tmp_path}
    finally:
        stop_processes(procs)


def test_simulated_deployment_configures_the_meter_and_locates_the_fault(deployment: dict[str, Any]) -> None:
    ns = deployment["namespace"]
    rclpy.init()
    node = rclpy.create_node("sim_system_test")
    try:
        locations: list[FaultLocation] = []
        statuses: list[DeviceStatus] = []
        node.create_subscription(FaultLocation, f"{ns}/fault_location", locations.append, 10)
        node.create_subscription(DeviceStatus, f"{ns}/device_status", statuses.append, 10)
        deadline = time.monotonic() + 90
        while not (locations and statuses):
            assert time.monotonic() < deadline, (
                f"locations {len(locations)}, statuses {len(statuses)}\n{log_tails(deployment['logs'])}"
            )
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()

    assert "fault_location" in statuses[-1].algorithms
    location = locations[0]
    assert location.fault_type == "AG"
    assert PAPER_SECTIONS["F"] in [c.line_id for c in location.candidates]

    url = f"http://127.0.0.1:{deployment['ports']['catalog']}/api/v1/devices/M02"
    device = httpx.get(url, timeout=5).json()
    assert device["role"] == "feeder_head" and device["alive"]
    assert device["algorithms"] == ["fault_location"]
