"""The launch description: its arguments map onto real ``sma3-catalog`` options."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sma3_catalog.cli import build_parser
from sma3_catalog.launch_spec import ARGS, EXECUTABLE, PACKAGE, command_arguments

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "catalog.launch.py"


def test_defaults_parse_as_cli_options() -> None:
    args = build_parser().parse_args(command_arguments({}))
    assert args.db == "sqlite:///sma3-catalog.db" and args.port == 8080 and args.mqtt_host == "127.0.0.1"
    assert args.config_dir is None and args.tokens is None


def test_every_argument_reaches_the_cli(tmp_path: Path) -> None:
    values = {a.name: a.default for a in ARGS}
    values.update(port="9000", config_dir=str(tmp_path), tokens=str(tmp_path / "t.yaml"), mqtt_host="")
    args = build_parser().parse_args(command_arguments(values))
    assert args.port == 9000 and args.config_dir == tmp_path and args.tokens == tmp_path / "t.yaml"
    assert args.mqtt_host is None, "an empty mqtt_host runs the catalog without MQTT"
    options = {a.option for a in ARGS}
    assert options <= {o for action in build_parser()._actions for o in action.option_strings}
    with pytest.raises(KeyError, match="unknown launch arguments"):
        command_arguments({"colour": "blue"})


def test_launch_file_uses_the_spec() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"ARGS", "command_arguments", "EXECUTABLE", "PACKAGE", "Node", "DeclareLaunchArgument"} <= names
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    setup = (LAUNCH_FILE.parents[1] / "setup.py").read_text()
    assert "launch/catalog.launch.py" in setup and f"{EXECUTABLE} = sma3_catalog.cli:main" in setup
    assert PACKAGE == "sma3_catalog"
