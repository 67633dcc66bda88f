"""Start the sma3 Device Catalog (``ros2 launch sma3_catalog catalog.launch.py port:=8080``).

The arguments and the command are described in :mod:`sma3_catalog.launch_spec`.
"""

from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sma3_catalog.launch_spec import ARGS, EXECUTABLE, PACKAGE, command_arguments


def _catalog(context: Any, *_args: Any, **_kwargs: Any) -> list[Node]:
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGS}
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name="catalog",
            arguments=command_arguments(values),
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in ARGS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_catalog)])
