"""Packaging of the sma3_catalog ROS 2 package (ament_python)."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "sma3_catalog"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md"]),
        ("share/" + PACKAGE + "/config", sorted(str(p) for p in Path("config").glob("*") if p.is_file())),
        ("share/" + PACKAGE + "/launch", ["launch/catalog.launch.py"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sma3 maintainers",
    maintainer_email="maintainers@sma3.dev",
    description=(
        "Device Catalog: REST (FastAPI) and MQTT service keeping the live list of meters "
        "and handing out their configuration."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sma3-catalog = sma3_catalog.cli:main",
        ],
    },
)
