"""Start the nodes of ``sma3_meter.launch_spec`` as separate processes, as ``ros2 launch`` would.

Each started node runs its installed executable, renamed and namespaced by ``--ros-args``, with its
resolved parameters in a parameters file; output goes to ``<logs>/<node>.log``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sma3_meter.launch_spec import NODES, PACKAGE, resolve, started

TOP = Path(__file__).resolve().parents[2]
INSTALL_LIB = TOP / "install" / PACKAGE / "lib" / PACKAGE


def start_process(name: str, cmd: list[str], logs: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr in ``logs/<name>.log``."""
    log = (logs / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=logs)


def start_meter_nodes(
    overrides: dict[str, str], logs: Path
) -> tuple[list[subprocess.Popen[bytes]], dict[str, dict[str, Any]]]:
    """Start the nodes meter.launch.py would start for these arguments.

    Returns the processes and, by node name, the parameters each was given.
    """
    namespace = "/" + str(resolve(NODES[0], overrides)["meter_id"])
    procs: list[subprocess.Popen[bytes]] = []
    params: dict[str, dict[str, Any]] = {}
    for spec in NODES:
        if not started(spec, overrides):
            continue
        values = resolve(spec, overrides)
        params[spec.name] = values
        pfile = logs / f"{spec.name}.params.yaml"
        pfile.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
        cmd = [
            sys.executable,
            str(INSTALL_LIB / spec.executable),
            "--ros-args",
            "-r",
            f"__node:={spec.name}",
            "-r",
            f"__ns:={namespace}",
            "--params-file",
            str(pfile),
        ]
        procs.append(start_process(spec.name, cmd, logs))
    return procs, params


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM every process (last started first), then SIGKILL those still alive after the timeout."""
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tails(logs: Path, chars: int = 2000) -> str:
    """The end of every process log, for assertion messages."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(logs.glob("*.log"))
    )
