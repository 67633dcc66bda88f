"""Packaging of the sma3_meter ROS 2 package (ament_python)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sma3_meter"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sma3 maintainers",
    maintainer_email="maintainers@sma3.dev",
    description=(
        "3-SMA meter: DAQ backends, phasor estimation, fault and outage detection, fault location "
        "and the meter ROS 2 nodes."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sma3-locate = sma3_meter.location.cli:main",
            "sma3-paper-table = sma3_meter.location.paper_table:main",
            "sma3-meter-agent = sma3_meter.agent.cli:main",
            "acquisition = sma3_meter.nodes.acquisition:main",
            "detector = sma3_meter.nodes.detector:main",
            "locator = sma3_meter.nodes.locator:main",
            "meter_agent = sma3_meter.nodes.agent:main",
        ],
    },
)
