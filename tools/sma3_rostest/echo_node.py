"""A ROS 2 node, run as its own process, that echoes every sma3 message and answers every service.

Messages received on ``sma3_roundtrip/in/<Name>`` are republished unchanged on
``sma3_roundtrip/out/<Name>``. Service ``sma3_roundtrip/<Name>`` answers with
``sample(<Name>.Response, seed=crc32(text of the request))``, so the caller can check both that the
request arrived intact and that the response came back intact.

Run: ``python -m sma3_rostest.echo_node`` (prints ``ready`` on stdout once everything is created).
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from sma3_rostest.interfaces import message_class, message_names, sample, service_class, service_names

#: Reliable and transient-local on both legs: DDS discovery is not symmetric, so a writer can see its
#: reader matched before that reader (or the echo's own writer) has matched back. Transient-local history
#: is delivered on the late match instead of being dropped, which keeps the round trip from racing discovery.
QOS = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def response_seed(request: Any) -> int:
    """Seed of the response to ``request``: CRC-32 of its text form (every field's value).

    Not the CDR bytes: alignment padding in them is not guaranteed to be zeroed.
    """
    return zlib.crc32(repr(request).encode())


class EchoNode(Node):
    """Echo every message type and serve every service of sma3_interfaces."""

    def __init__(self) -> None:
        super().__init__("sma3_roundtrip_echo")
        self._keep: list[Any] = []
        for name in message_names():
            cls = message_class(name)
            pub = self.create_publisher(cls, f"sma3_roundtrip/out/{name}", QOS)
            self._keep.append(pub)
            self._keep.append(self.create_subscription(cls, f"sma3_roundtrip/in/{name}", pub.publish, QOS))
        for name in service_names():
            srv = service_class(name)
            self._keep.append(self.create_service(srv, f"sma3_roundtrip/{name}", self._answer(srv)))

    @staticmethod
    def _answer(srv: type) -> Any:
        def handle(request: Any, response: Any) -> Any:
            return sample(srv.Response, response_seed(request))

        return handle


def main() -> None:
    """Spin the echo node until interrupted."""
    rclpy.init()
    node = EchoNode()
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        node.get_logger().info("interrupted, stopping")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
