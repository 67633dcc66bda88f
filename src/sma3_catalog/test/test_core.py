"""The plain core modules, without HTTP or MQTT: registry, configuration, tokens, topics, CLI options."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sma3_catalog.auth import Principal, TokenFileError, TokenTable
from sma3_catalog.cli import build_parser, main, settings_from_args
from sma3_catalog.configuration import ConfigError, ConfigStore, Configurator, VersionConflictError
from sma3_catalog.models import BrokerInfo, ConfigSpec, DevicePatch, DeviceRegistration, DeviceStatus
from sma3_catalog.networks import NetworkCatalog, UnknownNetworkError
from sma3_catalog.registry import DeviceNotFoundError, Heartbeat, InvalidPatchError, Registry
from sma3_catalog.service import CatalogSettings, load_config_dir
from sma3_catalog.storage import make_engine
from sma3_catalog.topics import Topics

from .conftest import registration


class Clock:
    """A settable time source (epoch seconds) for the registry."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(sqlite_url: str, clock: Clock) -> Registry:
    return Registry(
        make_engine(sqlite_url), default_ttl_s=10.0, offline_grace_s=2.0, event_retention=5, clock=clock
    )


def reg(**extra: object) -> DeviceRegistration:
    return DeviceRegistration.model_validate(registration(**extra))


def beat(device_id: str, t: float, **status: object) -> Heartbeat:
    return Heartbeat(device_id, DeviceStatus.model_validate(status), t)


def test_put_get_delete_and_events(registry: Registry, clock: Clock) -> None:
    seen = []
    registry.add_listener(seen.append)
    device, created = registry.put("M2", reg(ttl=None))
    assert created and device.ttl == 10.0 and device.expires.timestamp() == clock.now + 10
    clock.now += 1
    device, created = registry.put("M2", reg(ttl=None))
    assert not created and device.created.timestamp() == clock.now - 1
    assert registry.delete("M2").id == "M2"
    with pytest.raises(DeviceNotFoundError, match="'M2' is not registered"):
        registry.get("M2")
    assert [e.type for e in seen] == ["created", "updated", "deleted"]
    assert [e.id for e in registry.events_after(seen[0].id)] == [seen[1].id, seen[2].id]


def test_put_many_and_prune(registry: Registry) -> None:
    assert registry.put_many([(f"D{i}", reg()) for i in range(8)]) == 8
    assert registry.count() == 8
    assert registry.last_event_id() == 8
    assert registry.prune_events() == 3  # retention 5
    assert [e.id for e in registry.events_after(0)] == [4, 5, 6, 7, 8]


def test_patch_rules(registry: Registry) -> None:
    registry.put("M2", reg())
    patched = registry.patch("M2", DevicePatch.model_validate({"grid": {"feeder": "L3"}, "ttl": None}))
    assert patched.grid.feeder == "L3" and patched.grid.bus == "B2" and patched.ttl == 10.0
    with pytest.raises(InvalidPatchError, match="endpoints"):
        registry.patch("M2", DevicePatch.model_validate({"endpoints": {"ip": "not-an-ip"}}))
    with pytest.raises(DeviceNotFoundError):
        registry.patch("X", DevicePatch())


def test_heartbeats_refresh_coalesce_and_offline(registry: Registry, clock: Clock) -> None:
    registry.put("M2", reg(ttl=5.0))
    registry.put("M3", reg(ttl=5.0))
    t = clock.now + 3
    result = registry.heartbeat_many(
        [beat("M2", t - 1), beat("M2", t), beat("M3", t, config_version=0), beat("ghost", t)]
    )
    assert (result.refreshed, result.unknown, result.changed) == (2, 1, 0)
    assert registry.get("M2").expires.timestamp() == t + 5
    listed = {d["id"]: d for d in json.loads(registry.query_json()[0])}
    for device_id in ("M2", "M3"):  # the pre-rendered list JSON follows heartbeats too
        assert listed[device_id] == registry.get(device_id).model_dump(mode="json")
    assert registry.get("M2").last_heartbeat.timestamp() == t  # type: ignore[union-attr]
    result = registry.heartbeat_many([beat("M3", t + 1, algorithms=["sag_report"], health="fault")])
    assert result.changed == 1
    m3 = registry.get("M3")
    assert m3.algorithms == ["sag_report"] and m3.health == "fault"
    assert [d.id for d in registry.query(algorithm="outage_report")[0]] == ["M2"]
    registry.heartbeat_many([beat("M2", t + 1, state="offline", reason="last_will")])
    m2 = registry.get("M2")
    assert m2.alive is False and m2.expires.timestamp() == t + 1 + 2.0  # offline grace
    assert [d.id for d in registry.query(alive=False)[0]] == ["M2"]
    registry.heartbeat_many([beat("M2", t + 2)])
    assert registry.get("M2").alive is True, "a device coming back is alive again"


def test_expire_due_reports_lag(registry: Registry, clock: Clock) -> None:
    registry.put("M2", reg(ttl=1.0))
    registry.put("M3", reg(ttl=4.0))
    assert registry.next_expiry() == clock.now + 1.0
    assert registry.expire_due(clock.now + 0.5) == []
    removed = registry.expire_due(clock.now + 1.25)
    assert [(d.id, round(lag, 6)) for d, lag in removed] == [("M2", 0.25)]
    events = registry.events_after(0)
    assert events[-1].type == "expired" and events[-1].reason == "ttl" and events[-1].device is not None
    assert registry.expire_due(clock.now + 1.25) == []
    assert registry.next_expiry() == clock.now + 4.0


def test_list_validates_paging(registry: Registry) -> None:
    with pytest.raises(ValueError, match="offset"):
        registry.query(offset=-1)


def test_config_store_versions(sqlite_url: str) -> None:
    store = ConfigStore(make_engine(sqlite_url))
    assert store.get("M2") is None and store.latest_version("M2") == 0
    first = store.put("M2", ConfigSpec(network="tiny"), "alice")
    second = store.put("M2", ConfigSpec(network="tiny", heartbeat_interval_s=2), "bob", expected_version=1)
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(VersionConflictError, match="at version 2, not 1"):
        store.put("M2", ConfigSpec(), "carol", expected_version=1)
    assert store.get("M2", 1).spec.heartbeat_interval_s == 10.0  # type: ignore[union-attr]
    assert [v.author for v in store.versions("M2")] == ["alice", "bob"]


def test_configurator_checks_its_brokers(network_dir: Path) -> None:
    nets = NetworkCatalog({"tiny": str(network_dir)})
    data = BrokerInfo(name="d", purpose="data", host="h", port=1)
    mgmt = BrokerInfo(name="m", purpose="management", host="h", port=2)
    with pytest.raises(ConfigError, match="default data broker 'x'"):
        Configurator([data, mgmt], {"data": "x", "management": "m"}, nets, Topics())
    with pytest.raises(ConfigError, match="declared for management"):
        Configurator([data, mgmt], {"data": "m", "management": "m"}, nets, Topics())
    conf = Configurator([data, mgmt], {"data": "d", "management": "m"}, nets, Topics("site/a"))
    rendered = conf.render("M1", None)
    assert rendered.heartbeat.topic == "site/a/devices/M1/status"
    assert rendered.grid.feeder == "L1" and rendered.brokers["data"].port == 1
    with pytest.raises(UnknownNetworkError, match="served: tiny"):
        nets.get("atlantis")


def test_topics() -> None:
    topics = Topics()
    assert topics.device_id_from_status("sma3/mgmt/devices/M1/status") == "M1"
    assert topics.device_id_from_status("sma3/mgmt/devices/a/b/status") is None
    assert topics.device_id_from_status("other/M1/status") is None
    with pytest.raises(ValueError, match="prefix"):
        Topics("bad/#")


def test_token_file(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "tokens.yaml"
    digest = hashlib.sha256(b"meter-secret-1").hexdigest()
    path.write_text(
        "- {name: ops, role: operator, token: operator-secret}\n"
        f"- {{role: device, device_id: M1, token_sha256: {digest}}}\n"
    )
    table = TokenTable.load(path)
    assert table.authenticate("operator-secret") == Principal("ops", "operator")
    meter = table.authenticate("meter-secret-1")
    assert meter is not None and meter.may_write_device("M1") and not meter.may_write_device("M2")
    assert table.authenticate("nope") is None
    for text, message in [
        ("- {role: king, token: abcdefghij}\n", "role must be"),
        ("- {role: device, token: abcdefghij}\n", "device_id"),
        ("- {role: operator}\n", "needs 'token'"),
        ("- {role: operator, token: short}\n", "too short"),
        ("{a: 1}\n", "YAML list"),
    ]:
        path.write_text(text)
        with pytest.raises(TokenFileError, match=message):
            TokenTable.load(path)


def test_config_dir_and_cli_options(tmp_path: Path, network_dir: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "config"
    settings = load_config_dir(CatalogSettings(db_url="sqlite:///x.db"), shipped)
    brokers, defaults = settings.resolved_brokers()
    assert defaults == {"management": "mgmt", "data": "data"} and all(b.tls for b in brokers)
    assert settings.role_defaults is not None and "secondary" in settings.role_defaults
    (tmp_path / "brokers.yaml").write_text("brokers: [{name: x, purpose: data}]\n")
    with pytest.raises(ConfigError, match="brokers"):
        load_config_dir(CatalogSettings(db_url="sqlite:///x.db"), tmp_path)
    args = build_parser().parse_args(
        [
            "--db",
            f"sqlite:///{tmp_path}/c.db",
            "--network",
            f"tiny={network_dir}",
            "--mqtt-host",
            "h",
            "--mqtt-port",
            "1884",
        ]
    )
    parsed = settings_from_args(args)
    assert (
        parsed.networks == {"tiny": str(network_dir)} and parsed.mqtt is not None and parsed.mqtt.port == 1884
    )
    with pytest.raises(ConfigError, match="NAME=SOURCE"):
        settings_from_args(build_parser().parse_args(["--network", "tiny"]))


def test_cli_exits_2_on_bad_configuration(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--db", "mysql://x/y"]) == 2
    assert "unsupported database backend" in capsys.readouterr().err
    assert main(["--db", "sqlite:///:memory:"]) == 2
    assert main(["--tokens", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read tokens file" in capsys.readouterr().err
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["--db", db, "--network", f"broken={tmp_path / 'nowhere'}"]) == 2
    assert "no network description" in capsys.readouterr().err


def test_a_database_of_another_schema_is_refused_at_start_up(tmp_path: Path) -> None:
    """An older catalog's table (extra NOT NULL column) is named at start-up, not a 500 per insert."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE devices (id TEXT PRIMARY KEY, role TEXT NOT NULL, doc TEXT NOT NULL)")
    with pytest.raises(
        ValueError, match=r"table 'devices' has unknown columns \['doc'\] and lacks \[.*'alive'"
    ):
        make_engine(f"sqlite:///{path}")
    make_engine(f"sqlite:///{tmp_path / 'new.db'}")  # a fresh file is created and accepted
    make_engine(f"sqlite:///{tmp_path / 'new.db'}")  # and accepted again once it exists
