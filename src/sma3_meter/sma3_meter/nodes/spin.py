"""The spin loop of the nodes that publish a last gasp when the process is told to stop."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from sma3_meter.detection import install_last_gasp_handler


def spin_with_last_gasp(
    node: Node, last_gasp: Callable[[str], None], before_destroy: Callable[[], None] | None = None
) -> int:
    """Spin ``node`` until shutdown, SIGINT or SIGTERM/SIGPWR; return the process exit status.

    rclpy must have been initialised without its own signal handlers
    (``SignalHandlerOptions.NO``): SIGTERM/SIGPWR call ``last_gasp`` and end the process through
    :func:`~sma3_meter.detection.install_last_gasp_handler` (exit status 128 + signal), SIGINT raises
    KeyboardInterrupt (status 0). The loop spins with a timeout so Python handles signals promptly.
    ``before_destroy`` runs before the node is destroyed (e.g. to flush pending records).
    """
    install_last_gasp_handler(last_gasp, chain=False)
    status = 0
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SystemExit as exc:
        status = int(exc.code or 0)
    finally:
        if before_destroy is not None:
            before_destroy()
        node.destroy_node()
        rclpy.try_shutdown()
    return status
