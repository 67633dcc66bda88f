"""Fixtures of the catalog tests: a small network, both databases, a served catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sma3_catalog.api import create_app
from sma3_catalog.auth import Principal, TokenTable
from sma3_catalog.mqtt_link import MqttSettings
from sma3_catalog.service import CatalogService, CatalogSettings
from sma3_testing import UvicornServer

OPERATOR_TOKEN = "operator-token-0001"
DEVICE_TOKENS = {"M1": "device-token-M1-xyz", "M2": "device-token-M2-xyz", "M3": "device-token-M3-xyz"}


def write_network(folder: Path) -> Path:
    """Write a 6-bus, two-feeder network (one NOP tie) in the network description contract."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "network.yaml").write_text(
        "name: tiny\nnominal_kv: 20.0\nfrequency_hz: 50.0\nsource_bus: S\n"
        "sc_mva_3ph: 500.0\nsc_mva_1ph: 200.0\nx_over_r: 10.0\n"
    )
    (folder / "buses.csv").write_text(
        "bus_id,kind,x,y\nS,primary,0,0\nB1,junction,1,0\nB2,secondary,2,0\nB3,junction,0,1\nB4,secondary,1,1\n"
    )
    line = "0.2,0.1,0.5,0.4,300,200"
    (folder / "lines.csv").write_text(
        "line_id,bus_a,bus_b,length_km,r1,x1,r0,x0,c1,c0\n"
        f"L1,S,B1,1.5,{line}\nL2,B1,B2,2.0,{line}\nL3,S,B3,1.0,{line}\nL4,B3,B4,2.5,{line}\nL5,B2,B4,1.0,{line}\n"
    )
    (folder / "loads.csv").write_text("bus_id,p_kw,q_kvar\nB2,400,100\nB4,300,90\n")
    (folder / "switches.csv").write_text(
        "switch_id,line_id,bus_id,kind,normally_open,remote\n"
        "CB1,L1,S,breaker,false,true\nCB2,L3,S,breaker,false,true\nNOP1,L5,B2,load_break_switch,true,true\n"
    )
    (folder / "meters.csv").write_text(
        "meter_id,bus_id,line_id,role\nM1,S,L1,feeder_head\nM2,B2,L2,secondary\nM3,B4,L4,secondary\n"
    )
    return folder


@pytest.fixture(scope="session")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the ``tiny`` test network."""
    return write_network(tmp_path_factory.mktemp("net") / "tiny")


def make_tokens() -> TokenTable:
    """One operator and one token per meter M1..M3."""
    table = TokenTable()
    table.add(OPERATOR_TOKEN, Principal(name="operator", role="operator"))
    for device_id, token in DEVICE_TOKENS.items():
        table.add(token, Principal(name=device_id, role="device", device_id=device_id))
    return table


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: SQLite file or PostgreSQL database (the same tests run on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file (for tests that need only one backend)."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@dataclass
class RunningCatalog:
    """A catalog served by a real uvicorn server."""

    service: CatalogService
    server: UvicornServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api(self) -> str:
        return self.server.url + "/api/v1"

    def client(self, token: str | None = OPERATOR_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api, headers=headers, timeout=10)


CatalogFactory = Callable[..., RunningCatalog]


@pytest.fixture
def catalog_factory(network_dir: Path, uvicorn_factory: Any) -> Iterator[CatalogFactory]:
    """Start catalogs: ``start(db_url, mqtt=None, **settings)`` -> :class:`RunningCatalog`."""

    def start(db_url: str, mqtt: MqttSettings | None = None, **overrides: Any) -> RunningCatalog:
        overrides.setdefault("sse_keepalive_s", 0.3)
        overrides.setdefault("networks", {"tiny": str(network_dir)})
        settings = CatalogSettings(db_url=db_url, mqtt=mqtt, tokens=make_tokens(), **overrides)
        service = CatalogService(settings)
        server = uvicorn_factory(create_app(service))
        return RunningCatalog(service=service, server=server)

    yield start


@pytest.fixture
def catalog(db_url: str, catalog_factory: CatalogFactory) -> RunningCatalog:
    """A catalog without MQTT on each database backend.

    The database is requested first so that it is dropped after the catalog has stopped (fixtures
    tear down in reverse order), not under its running threads.
    """
    return catalog_factory(db_url)


def registration(role: str = "secondary", **extra: Any) -> dict[str, Any]:
    """A valid PUT /devices body."""
    body: dict[str, Any] = {
        "role": role,
        "grid": {"network": "tiny", "feeder": "L1", "bus": "B2", "line": "L2"},
        "endpoints": {
            "ip": "10.0.0.12",
            "rest_base_url": "http://10.0.0.12:8000/api",
            "mqtt_publishes": ["sma3/data/M2/phasors"],
            "mqtt_subscribes": ["sma3/data/+/fault"],
        },
        "algorithms": ["outage_report", "sag_report"],
        "firmware_version": "1.2.3",
        "config_version": 0,
        "ttl": 60,
    }
    body.update(extra)
    return body
