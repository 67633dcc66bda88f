"""Whether the ROS 2 runtime and the built interfaces are usable, and why not.

ROS tests call :func:`require_ros` at import time. Where the runtime genuinely cannot be installed
(no ROS 2 wheels for this platform and no /opt/ros install) they are skipped with that reason; on a
platform where the setup script installs ROS, a missing runtime is an error, never a skip.
"""

from __future__ import annotations

import glob
import platform
import sys

import pytest

WHEEL_PLATFORMS = {"x86_64", "AMD64"}
WHEEL_PYTHONS = ((3, 10), (3, 11), (3, 12), (3, 13))


def ros_installable() -> tuple[bool, str]:
    """Can ``scripts/setup`` give this machine a ROS 2 runtime? Returns (answer, reason)."""
    if glob.glob("/opt/ros/*/setup.bash"):
        return True, "a ROS 2 install exists under /opt/ros"
    if platform.machine() not in WHEEL_PLATFORMS:
        return False, f"no ROS 2 wheels for {platform.machine()} and no /opt/ros install"
    if sys.version_info[:2] not in WHEEL_PYTHONS:
        return False, f"no ROS 2 wheels for Python {sys.version_info[0]}.{sys.version_info[1]}"
    return True, "ROS 2 Kilted wheels exist for this platform"


def require_ros() -> None:
    """Skip (where ROS cannot exist) or fail (where it should) unless rclpy + sma3_interfaces import."""
    try:
        import rclpy  # noqa: F401

        import sma3_interfaces.msg  # noqa: F401
    except ImportError as exc:
        installable, why = ros_installable()
        if not installable:
            pytest.skip(f"ROS 2 runtime unavailable: {why}", allow_module_level=True)
        raise ImportError(
            f"{exc}: the ROS 2 runtime should be available here ({why}); "
            "run ./scripts/setup and `source scripts/env.sh` (./scripts/test does both)"
        ) from exc
