"""Database schema and engine set-up (SQLAlchemy Core; SQLite or PostgreSQL).

Times are stored as float seconds since the Unix epoch (UTC) so both backends compare them the
same way; JSON blobs are stored as text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("feeder", String(128), nullable=True),
    Column("alive", Boolean, nullable=False),
    Column("health", String(16), nullable=True),
    Column("config_version", Integer, nullable=True),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("ttl", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("last_heartbeat", Float, nullable=True),
    Column("body", Text, nullable=False),
    Index("ix_devices_expires", "expires"),
    Index("ix_devices_feeder_id", "feeder", "id"),
    Index("ix_devices_role_id", "role", "id"),
)

device_algorithms = Table(
    "device_algorithms",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("algorithm", String(64), primary_key=True),
    Index("ix_device_algorithms_algorithm", "algorithm"),
)

configs = Table(
    "configs",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created", Float, nullable=False),
    Column("author", String(128), nullable=False),
    Column("spec", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(16), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("time", Float, nullable=False),
    Column("body", Text, nullable=False),
)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """Create an engine for ``url`` and the schema if missing.

    Parameters
    ----------
    url
        ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://user@host:port/db``
        (``postgresql://`` is taken as psycopg 3).
    pool_size
        Connections kept open (PostgreSQL).

    Raises
    ------
    ValueError
        For an unparsable URL, an unsupported backend or an in-memory SQLite database (which
        cannot be shared between the catalog's threads), or a database whose tables have columns
        this version does not write (created by an older sma3_catalog).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"invalid database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("SQLite database must be a file (sqlite:///path/catalog.db), not in-memory")
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
    else:
        raise ValueError(f"unsupported database backend {backend!r} in {url!r}: use sqlite or postgresql")
    metadata.create_all(engine)
    check_schema(engine)
    return engine


def check_schema(engine: Engine) -> None:
    """Refuse tables with columns this version does not know (an older catalog's database).

    ``create_all`` leaves existing tables as they are; a leftover NOT NULL column would make
    every insert fail later, so the mismatch is reported at start-up instead.

    Raises
    ------
    ValueError
        Naming the table, the unknown columns and the database.
    """
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        unknown = sorted(present - {c.name for c in table.columns})
        missing = sorted({c.name for c in table.columns} - present)
        if unknown or missing:
            raise ValueError(
                f"database {engine.url.render_as_string(hide_password=True)} was not created by this "
                f"sma3_catalog version: table {table.name!r} has unknown columns {unknown} and lacks "
                f"{missing}; point --db at a new database or drop the catalog's tables"
            )


def is_sqlite(engine: Engine) -> bool:
    """True when ``engine`` talks to SQLite (a single writer at a time)."""
    return engine.dialect.name == "sqlite"
