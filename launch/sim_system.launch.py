"""The whole simulated deployment on one host (needs a ROS 2 install with ``launch``):

    ros2 launch launch/sim_system.launch.py            # from the repository root, workspace sourced

Two MQTT brokers (data :1883, management :1884), the Device Catalog (:8080) and the feeder-head meter
M02 of turin22 on the simulated grid, whose agent fetches its configuration from the catalog. An AG
fault on section F happens 3 s after start; watch ``/M02/fault_location`` and ``/M02/device_status``
and ``curl http://127.0.0.1:8080/api/v1/devices``. State goes to ``$SMA3_STATE`` (default
``/tmp/sma3-sim-system``). What runs is listed in ``launch/system_spec.py``.
"""

import os
import sys
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from system_spec import meter_arguments, prepare


def generate_launch_description() -> LaunchDescription:
    state = Path(os.environ.get("SMA3_STATE", "/tmp/sma3-sim-system"))
    actions = [ExecuteProcess(cmd=p.cmd, name=p.name, output="screen") for p in prepare(state)]
    meter = Path(get_package_share_directory("sma3_meter")) / "launch" / "meter.launch.py"
    actions.append(
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(meter)),
            launch_arguments=meter_arguments(state).items(),
        )
    )
    return LaunchDescription(actions)
