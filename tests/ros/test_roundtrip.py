"""Every sma3 message and service crosses a process boundary through real ROS 2 intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sma3_rostest.runtime import require_ros
from sma3_rostest.services import call_until_answered

require_ros()

import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402

from sma3_rostest.echo_node import QOS, response_seed  # noqa: E402
from sma3_rostest.interfaces import (  # noqa: E402
    differences,
    message_class,
    message_names,
    sample,
    service_class,
    service_names,
)

pytestmark = pytest.mark.ros

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def echo_process() -> Iterator[subprocess.Popen[str]]:
    """The echo node in a separate process, stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sma3_rostest.echo_node"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"echo node did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    yield proc
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def node(echo_process: subprocess.Popen[str]) -> Iterator[Node]:
    """A test node in this process."""
    rclpy.init()
    n = rclpy.create_node("sma3_roundtrip_test")
    yield n
    n.destroy_node()
    rclpy.shutdown()


def _spin_until(node: Node, done: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {TIMEOUT_S} s waiting for {what}")
        rclpy.spin_once(node, timeout_sec=0.05)


def test_interfaces_are_all_there() -> None:
    assert message_names() == sorted(
        [
            "DeviceStatus",
            "FaultCandidate",
            "FaultEvent",
            "FaultLocation",
            "FdirReport",
            "FdirStep",
            "OutageAlarm",
            "PhasorFrame",
            "SwitchCommand",
            "SwitchStatus",
            "WaveformFrame",
        ]
    )
    assert service_names() == ["GetDeviceConfig", "LocateFault", "OperateSwitch"]


@pytest.mark.parametrize("name", message_names())
def test_message_round_trip(node: Node, name: str) -> None:
    cls = message_class(name)
    received: list[Any] = []
    pub = node.create_publisher(cls, f"sma3_roundtrip/in/{name}", QOS)
    sub = node.create_subscription(cls, f"sma3_roundtrip/out/{name}", received.append, QOS)
    try:
        _spin_until(
            node,
            lambda: pub.get_subscription_count() > 0 and sub.get_publisher_count() > 0,
            f"the echo node to match {name}",
        )
        sent = [sample(cls, seed) for seed in (1, 2, 3)]
        for msg in sent:
            pub.publish(msg)
        _spin_until(node, lambda: len(received) >= len(sent), f"{name} echoes")
        for k, (want, got) in enumerate(zip(sent, received, strict=True)):
            assert differences(want, got) == [], f"{name} message {k} changed in the round trip"
            assert want == got
    finally:
        node.destroy_publisher(pub)
        node.destroy_subscription(sub)


@pytest.mark.parametrize("name", service_names())
def test_service_round_trip(node: Node, name: str) -> None:
    srv = service_class(name)
    client = node.create_client(srv, f"sma3_roundtrip/{name}")
    try:
        for seed in (11, 12):
            request = sample(srv.Request, seed)
            response = call_until_answered(
                client, request, lambda t: rclpy.spin_once(node, timeout_sec=t), what=f"service {name}"
            )
            expected = sample(srv.Response, response_seed(request))
            assert differences(expected, response) == []
    finally:
        node.destroy_client(client)
