"""pytest fixtures starting real services; loaded for every package by the root ``conftest.py``.

Fixtures
--------
free_port
    A free TCP port on 127.0.0.1 (int).
mosquitto_factory
    ``start(users=(), acl=None, allow_anonymous=None, extra_conf="") -> MosquittoBroker``; call it
    once per broker you need; all are stopped after the test.
mosquitto_broker
    One anonymous broker (a :class:`~sma3_testing.mosquitto.MosquittoBroker`).
postgres_cluster
    Session-wide PostgreSQL server (:class:`~sma3_testing.postgres.PostgresCluster`).
postgres_url
    SQLAlchemy URL of a fresh, empty database in that cluster, one per test.
uvicorn_factory
    ``start(app, **uvicorn_config) -> UvicornServer``; servers are stopped after the test.

Missing binaries make the fixtures fail with a message naming the Debian package; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sma3_testing.http import UvicornServer
from sma3_testing.mosquitto import MosquittoBroker, MqttUser
from sma3_testing.ports import free_port as _free_port
from sma3_testing.postgres import PostgresCluster

MosquittoFactory = Callable[..., MosquittoBroker]
UvicornFactory = Callable[..., UvicornServer]


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A TCP port on 127.0.0.1 that was free when the test started."""
    return _free_port()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """Start any number of mosquitto brokers, each in its own directory under ``tmp_path``."""
    started: list[MosquittoBroker] = []

    def start(
        users: list[MqttUser] | tuple[MqttUser, ...] = (),
        acl: str | None = None,
        allow_anonymous: bool | None = None,
        extra_conf: str = "",
        port: int | None = None,
    ) -> MosquittoBroker:
        broker = MosquittoBroker(
            tmp_path / f"mosquitto-{len(started)}",
            port=port,
            users=users,
            acl=acl,
            allow_anonymous=allow_anonymous,
            extra_conf=extra_conf,
        )
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def mosquitto_broker(mosquitto_factory: MosquittoFactory) -> MosquittoBroker:
    """One running broker accepting anonymous clients on 127.0.0.1."""
    return mosquitto_factory()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server for the whole test session, removed at the end."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://``) of a fresh, empty database, dropped after the test."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def uvicorn_factory() -> Iterator[UvicornFactory]:
    """Serve ASGI apps with real uvicorn servers on free ports; all stopped after the test."""
    started: list[UvicornServer] = []

    def start(app: Any, **config: Any) -> UvicornServer:
        server = UvicornServer(app, **config)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
