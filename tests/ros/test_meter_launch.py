"""meter.launch.py: its nodes exist, accept exactly its parameters, and locate a simulated fault.

The ``launch`` package is not among the ROS 2 wheels, so the launch file is checked in two parts:
its source must build every action from ``sma3_meter.launch_spec`` (nothing else to go stale), and
the nodes of that spec are started here the way ``ros2 launch`` starts them — one process each,
renamed and namespaced by ``--ros-args``, with the resolved parameters in a parameters file.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sma3_rostest.runtime import require_ros
from sma3_rostest.services import call_until_answered

require_ros()

import rclpy  # noqa: E402
from rcl_interfaces.srv import ListParameters  # noqa: E402
from rclpy.node import Node  # noqa: E402

from sma3_interfaces.msg import FaultLocation  # noqa: E402
from sma3_meter.launch_spec import ARGS, NODES, PACKAGE, resolve, started  # noqa: E402
from sma3_meter.nodes.qos import EVENT_QOS  # noqa: E402
from sma3_rostest.processes import INSTALL_LIB, log_tails, start_meter_nodes, stop_processes  # noqa: E402

pytestmark = pytest.mark.ros

TOP = Path(__file__).resolve().parents[2]
LAUNCH_FILE = TOP / "src" / "sma3_meter" / "launch" / "meter.launch.py"


def test_launch_file_is_built_from_the_spec() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "sma3_meter.launch_spec"
        for alias in node.names
    }
    assert {"ARGS", "NODES", "PACKAGE"} <= imported
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    # No node or argument is spelled out in the launch file itself.
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & {spec.executable for spec in NODES}
    assert not literals & {arg.name for arg in ARGS if arg.name != "meter_id"}


def test_launch_file_is_installed() -> None:
    share = TOP / "install" / PACKAGE / "share" / PACKAGE / "launch" / "meter.launch.py"
    assert share.exists(), "colcon did not install launch/meter.launch.py (setup.py data_files)"


def test_spec_executables_are_installed() -> None:
    for spec in NODES:
        exe = INSTALL_LIB / spec.executable
        assert exe.exists() and os.access(exe, os.X_OK), f"{exe} missing: `ros2 run` would fail"


def test_resolve_types_and_unknown_arguments() -> None:
    acquisition = resolve(NODES[0], {"sample_rate_hz": "6400.0", "record": "/tmp/r.cfg"})
    assert acquisition["sample_rate_hz"] == 6400.0
    assert acquisition["sources"] == ["/tmp/r.cfg"]
    locator = resolve(NODES[2], {"locator": "false"})
    assert locator["enabled"] is False
    agent = next(spec for spec in NODES if spec.executable == "meter_agent")
    assert not started(agent)  # no catalog, no agent
    assert started(agent, {"catalog_url": "http://127.0.0.1:8080"})
    with pytest.raises(KeyError, match="no argument 'nope'"):
        resolve(NODES[0], {"nope": "1"})


@pytest.fixture
def meter_processes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The launch spec's nodes as processes: AG fault on turin22 section F at 5 s (after discovery)."""
    overrides = {"sim_fault_at_s": "5.0", "record_dir": str(tmp_path / "records")}
    procs, params = start_meter_nodes(overrides, tmp_path)
    namespace = "/" + str(resolve(NODES[0], overrides)["meter_id"])
    try:
        yield {"namespace": namespace, "params": params, "logs": tmp_path, "records": tmp_path / "records"}
    finally:
        stop_processes(procs)


def test_meter_nodes_take_the_launch_parameters_and_locate_the_fault(
    meter_processes: dict[str, Any],
) -> None:
    from sma3_grid.networks import PAPER_SECTIONS

    ns = meter_processes["namespace"]
    rclpy.init()
    node: Node = rclpy.create_node("meter_launch_test")
    try:
        locations: list[FaultLocation] = []
        node.create_subscription(FaultLocation, f"{ns}/fault_location", locations.append, EVENT_QOS)
        for name, values in meter_processes["params"].items():
            client = node.create_client(ListParameters, f"{ns}/{name}/list_parameters")
            listed = call_until_answered(
                client,
                ListParameters.Request(),
                lambda t: rclpy.spin_once(node, timeout_sec=t),
                what=f"{name}/list_parameters",
                details=lambda: log_tails(meter_processes["logs"]),
            )
            declared = set(listed.result.names)
            assert set(values) <= declared, f"{name} does not declare {set(values) - declared}"
        deadline = time.monotonic() + 60
        while not locations:
            assert time.monotonic() < deadline, f"no FaultLocation\n{log_tails(meter_processes['logs'])}"
            rclpy.spin_once(node, timeout_sec=0.1)
        location = locations[0]
        assert location.fault_type == "AG"
        # Head meter alone: sections at the same electrical distance on parallel laterals are
        # indistinguishable, so the true section must be among the candidates, at the right distance.
        by_line = {c.line_id: c for c in location.candidates}
        true_section = PAPER_SECTIONS["F"]
        assert true_section in by_line, [c.line_id for c in location.candidates]
        assert by_line[true_section].distance_from_upstream_km == pytest.approx(0.1347 / 2, abs=0.05)
        assert list(meter_processes["records"].glob("*.cfg")), "no COMTRADE record written"
    finally:
        node.destroy_node()
        rclpy.shutdown()
