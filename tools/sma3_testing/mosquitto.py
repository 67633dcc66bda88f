"""A real mosquitto broker on a free loopback port, configured from Python.

Example
-------
>>> with MosquittoBroker(tmp_path, users=[MqttUser("catalog", "pw")], acl="user catalog\\ntopic #\\n") as b:
...     client.connect(b.host, b.port)
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sma3_testing.errors import MissingServiceError, ServiceStartError
from sma3_testing.ports import free_port, wait_for_port

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


@dataclass(frozen=True)
class MqttUser:
    """One user of the broker's password file."""

    username: str
    password: str


def find_mosquitto() -> str:
    """Return the path of the ``mosquitto`` binary.

    Raises
    ------
    MissingServiceError
        When no binary is found (install the Debian package ``mosquitto``).
    """
    for candidate in (shutil.which("mosquitto"), *MOSQUITTO_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MissingServiceError(
        "mosquitto broker binary not found (looked in PATH and /usr/sbin); "
        "install it with: apt-get install -y mosquitto"
    )


def find_mosquitto_passwd() -> str:
    """Return the path of ``mosquitto_passwd`` (Debian package ``mosquitto``)."""
    found = shutil.which("mosquitto_passwd")
    if found is None:
        raise MissingServiceError("mosquitto_passwd not found; install it with: apt-get install -y mosquitto")
    return found


class MosquittoBroker:
    """A mosquitto process listening on ``127.0.0.1:port`` with its files in ``workdir``.

    Parameters
    ----------
    workdir
        Directory for the generated configuration, password file, ACL and log (created if needed).
    port
        TCP port; a free one is picked when None.
    users
        Users written to a password file. When given, anonymous clients are refused unless
        ``allow_anonymous`` is True.
    acl
        Text of a mosquitto ACL file (``user``/``topic``/``pattern`` lines). None means no ACL.
    allow_anonymous
        Explicit choice; by default anonymous access is allowed only when there are no users.
    extra_conf
        Extra configuration lines appended verbatim (e.g. TLS options for the listener).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: list[MqttUser] | tuple[MqttUser, ...] = (),
        acl: str | None = None,
        allow_anonymous: bool | None = None,
        extra_conf: str = "",
    ) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self.users = tuple(users)
        self.acl = acl
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.extra_conf = extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{self.host}:{self.port}"

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # Stay root instead of dropping to the 'mosquitto' user, which could not read workdir.
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if self.users:
            passwd_path = self.workdir / "passwd"
            passwd_path.write_text("")
            tool = find_mosquitto_passwd()
            for user in self.users:
                subprocess.run(
                    [tool, "-b", str(passwd_path), user.username, user.password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {passwd_path}")
        if self.acl is not None:
            acl_path = self.workdir / "acl"
            acl_path.write_text(self.acl)
            lines.append(f"acl_file {acl_path}")
        if self.extra_conf:
            lines.append(self.extra_conf)
        self.conf_path.write_text("\n".join(lines) + "\n")

    def log_text(self) -> str:
        """Return the broker's log so far ('' when there is none)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout_s: float = 10.0) -> MosquittoBroker:
        """Write the configuration, start mosquitto and wait until the port accepts connections.

        Raises
        ------
        MissingServiceError
            When mosquitto is not installed.
        ServiceStartError
            When the process exits or does not listen within ``timeout_s`` seconds.
        """
        binary = find_mosquitto()
        self._write_files()
        self._process = subprocess.Popen(
            [binary, "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise ServiceStartError(
                    f"mosquitto exited with status {self._process.returncode}: {err}\n{self.log_text()}"
                )
            try:
                wait_for_port(self.port, self.host, timeout_s=0.2)
                return self
            except TimeoutError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServiceStartError(
                        f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s\n"
                        f"{self.log_text()}"
                    ) from None

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
