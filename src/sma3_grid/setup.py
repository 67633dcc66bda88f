"""Packaging of the sma3_grid ROS 2 package (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "sma3_grid"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={"sma3_grid": ["networks/*/*.csv", "networks/*/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sma3 maintainers",
    maintainer_email="maintainers@sma3.dev",
    description=(
        "Network model of MV distribution grids: importer of the network description contract, "
        "radial orientation, topology queries, benchmark networks and drawings."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sma3-grid = sma3_grid.cli:main",
        ],
    },
)
