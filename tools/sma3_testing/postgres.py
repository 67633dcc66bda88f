"""A throw-away PostgreSQL cluster (initdb + pg_ctl) on a free loopback port.

The cluster lives in a fresh directory under the system temp dir with its unix socket inside it.
``initdb`` refuses to run as root, so when the tests run as root the server runs as the
unprivileged ``postgres`` user (created by the Debian ``postgresql`` package) via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from sma3_testing.errors import MissingServiceError, ServiceStartError
from sma3_testing.ports import free_port

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_pg_bindir() -> Path:
    """Return the PostgreSQL server's bin directory (the one holding ``initdb`` and ``pg_ctl``).

    Looks at ``pg_config --bindir`` first, then ``/usr/lib/postgresql/*/bin`` (newest version).

    Raises
    ------
    MissingServiceError
        When no ``initdb`` is found (install the Debian package ``postgresql``).
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0),
        reverse=True,
    )
    candidates.extend(Path(p) for p in versions)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise MissingServiceError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found via pg_config or /usr/lib/postgresql/*/bin; "
        "install them with: apt-get install -y postgresql"
    )


class PostgresCluster:
    """A private PostgreSQL server; create one database per test with :meth:`create_database`.

    Parameters
    ----------
    port
        TCP port on 127.0.0.1; a free one is picked when None.
    superuser
        Name of the cluster's superuser (trust authentication on loopback and the socket).
    """

    def __init__(self, port: int | None = None, superuser: str = "sma3") -> None:
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self.superuser = superuser
        self.bindir = find_pg_bindir()
        self.root: Path | None = None
        self._run_as: list[str] = []
        self._uid: int | None = None
        self._gid: int | None = None
        self._counter = 0

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        if self.root is None:
            raise RuntimeError("the PostgreSQL cluster is not started")
        return self.root / "data"

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self._run_as, *args], capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise ServiceStartError(
                f"{Path(args[0]).name} failed with status {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}\n{self.log_text()}"
            )
        return result

    def log_text(self) -> str:
        """Return the server log so far ('' before start)."""
        if self.root is None or not (self.root / "server.log").exists():
            return ""
        return (self.root / "server.log").read_text(errors="replace")

    def start(self) -> PostgresCluster:
        """Run initdb and start the server; returns when it accepts connections.

        Raises
        ------
        MissingServiceError
            When the binaries or (as root) the ``postgres`` user are missing.
        ServiceStartError
            When initdb or the server fails; the message carries their output.
        """
        self.root = Path(tempfile.mkdtemp(prefix="sma3-pg-"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise MissingServiceError(
                    "running as root, but there is no unprivileged 'postgres' user to run initdb; "
                    "install the Debian package postgresql (it creates the user)"
                ) from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise MissingServiceError("runuser (util-linux) is needed to start PostgreSQL as root")
            self._uid, self._gid = account.pw_uid, account.pw_gid
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._run_as = [runuser, "-u", "postgres", "--"]
        self._cmd(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.superuser,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={self.host} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._cmd(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown: the data is throw-away) and delete its directory."""
        root, self.root = self.root, None
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self._run_as,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(root / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``database`` (TCP on loopback, trust authentication)."""
        return f"{driver}://{self.superuser}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL.

        Parameters
        ----------
        name
            Database name (lower-case identifier); ``test_N`` when None.
        """
        import psycopg

        if name is None:
            self._counter += 1
            name = f"test_{os.getpid()}_{self._counter}"
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid PostgreSQL database name {name!r}: use [a-z_][a-z0-9_]*")
        with psycopg.connect(
            host=self.host, port=self.port, user=self.superuser, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing its remaining connections (PostgreSQL >= 13)."""
        import psycopg

        if not _DB_NAME.match(name):
            raise ValueError(f"invalid PostgreSQL database name {name!r}: use [a-z_][a-z0-9_]*")
        with psycopg.connect(
            host=self.host, port=self.port, user=self.superuser, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
