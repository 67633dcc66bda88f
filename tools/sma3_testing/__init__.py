"""Test helpers for sma3: real services (mosquitto, PostgreSQL, uvicorn) on free loopback ports.

Every helper starts a real process or server in a temporary directory and stops it again; nothing
is mocked.  The pytest fixtures built on them live in :mod:`sma3_testing.fixtures` and are made
available to every package's tests by the repository's root ``conftest.py``.
"""

from sma3_testing.errors import MissingServiceError, ServiceStartError
from sma3_testing.http import UvicornServer
from sma3_testing.mosquitto import MosquittoBroker, MqttUser
from sma3_testing.ports import free_port, wait_for_port
from sma3_testing.postgres import PostgresCluster

__all__ = [
    "MissingServiceError",
    "MosquittoBroker",
    "MqttUser",
    "PostgresCluster",
    "ServiceStartError",
    "UvicornServer",
    "free_port",
    "wait_for_port",
]
