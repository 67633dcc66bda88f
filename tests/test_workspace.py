"""The colcon workspace is laid out as DESIGN.md section 2 says and every package is well formed."""

from __future__ import annotations

import ast
import configparser
import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

TOP = Path(__file__).resolve().parents[1]
SRC = TOP / "src"
PYTHON_PACKAGES = ["sma3_grid", "sma3_sim", "sma3_meter", "sma3_catalog", "sma3_fdir", "sma3_bridge"]
ALL_PACKAGES = ["sma3_interfaces", *PYTHON_PACKAGES]


def test_colcon_lists_the_seven_packages() -> None:
    colcon = shutil.which("colcon")
    assert colcon, "colcon is not on PATH (run ./scripts/setup and source scripts/env.sh)"
    out = subprocess.run(
        [colcon, "list", "--names-only", "--base-paths", str(SRC)],
        capture_output=True,
        text=True,
        check=True,
        cwd=TOP,
    ).stdout.split()
    assert sorted(out) == sorted(ALL_PACKAGES)


def test_top_level_layout() -> None:
    for name in ("launch", "docker", "colcon.meta", "README.md", ".ci/run", "scripts/setup"):
        assert (TOP / name).exists(), f"{name} is missing"


@pytest.mark.parametrize("name", ALL_PACKAGES)
def test_package_manifest(name: str) -> None:
    package = parse_package(str(SRC / name / "package.xml"))
    package.validate()
    assert package.name == name
    build_types = {e.content for e in package.exports if e.tagname == "build_type"}
    assert build_types == {"ament_cmake" if name == "sma3_interfaces" else "ament_python"}
    for maintainer in package.maintainers:
        assert maintainer.email and "@" in maintainer.email


def _console_scripts(setup_py: Path) -> list[str]:
    tree = ast.parse(setup_py.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    assert isinstance(value, ast.List)
                    return [ast.literal_eval(e) for e in value.elts]
    return []


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_python_package_layout(name: str) -> None:
    root = SRC / name
    assert (root / "resource" / name).is_file(), "ament resource marker missing"
    assert (root / name / "__init__.py").is_file()
    assert (root / "test").is_dir()
    assert (root / "README.md").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    # ROS finds an ament_python package's executables only in lib/<package>.
    assert cfg["install"]["install_scripts"] == f"$base/lib/{name}"
    assert cfg["develop"]["script_dir"] == f"$base/lib/{name}"


@pytest.mark.parametrize("name", PYTHON_PACKAGES)
def test_entry_points_resolve(name: str) -> None:
    for spec in _console_scripts(SRC / name / "setup.py"):
        command, target = (part.strip() for part in spec.split("="))
        module_name, function = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function, None)), f"{command}: {target} is not a function"
