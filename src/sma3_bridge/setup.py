"""Packaging of the sma3_bridge ROS 2 package (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "sma3_bridge"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sma3 maintainers",
    maintainer_email="maintainers@sma3.dev",
    description=(
        "Bridge between the ROS 2 graph and MQTT / REST peers (other meters, services, an external "
        "OMS)."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
        ],
    },
)
