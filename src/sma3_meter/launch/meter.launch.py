"""Launch one 3-SMA meter: acquisition -> phasors/detection -> fault location.

    ros2 launch sma3_meter meter.launch.py                       # simulated feeder head M02 on turin22
    ros2 launch sma3_meter meter.launch.py backend:=replay record:=/path/rec.cfg
    ros2 launch sma3_meter meter.launch.py backend:=uldaq meter_id:=M07 locator:=false
    ros2 launch sma3_meter meter.launch.py locator:=false catalog_url:=http://catalog:8080 token_file:=t

Every node runs in the namespace of the meter id. The arguments, nodes and parameters are listed in
``sma3_meter.launch_spec`` (``ros2 launch ... --show-args`` prints them too).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from sma3_meter.launch_spec import ARGS, NODES, PACKAGE, Arg


def _value(value):
    """Launch value of a parameter of launch_spec (a list of lists of substitutions is a string array)."""
    if isinstance(value, Arg):
        substitution = LaunchConfiguration(value.name)
        return [[substitution]] if value.as_list else substitution
    return value


def _condition(when):
    """Start the node only when the launch argument ``when`` is not empty (None: always)."""
    if when is None:
        return None
    return IfCondition(PythonExpression(["'", LaunchConfiguration(when), "' != ''"]))


def generate_launch_description() -> LaunchDescription:
    actions = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in ARGS
    ]
    for spec in NODES:
        actions.append(
            Node(
                package=PACKAGE,
                executable=spec.executable,
                name=spec.name,
                namespace=LaunchConfiguration("meter_id"),
                parameters=[{key: _value(value) for key, value in spec.parameters.items()}],
                output="screen",
                emulate_tty=True,
                condition=_condition(spec.when),
            )
        )
    return LaunchDescription(actions)
