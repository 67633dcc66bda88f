"""Packaging of the sma3_sim ROS 2 package (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "sma3_sim"

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
        "Software-in-the-loop fault simulator: OpenDSS fault solutions turned into the waveforms "
        "a 3-SMA samples, COMTRADE records and live streams."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sma3-sim = sma3_sim.cli:main",
        ],
    },
)
