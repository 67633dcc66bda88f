"""Per-device configuration, brokers and networks over REST (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import httpx

from .conftest import DEVICE_TOKENS, RunningCatalog


def test_default_config_from_network_meter_table(catalog: RunningCatalog) -> None:
    with catalog.client(DEVICE_TOKENS["M2"]) as c:
        r = c.get("/devices/M2/config")
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == '"0"'
        cfg = r.json()
    assert cfg["version"] == 0 and cfg["role"] == "secondary"
    assert cfg["grid"] == {"network": "tiny", "feeder": "L1", "lateral": None, "bus": "B2", "line": "L2"}
    assert [a["name"] for a in cfg["algorithms"]] == ["outage_detection", "sag_reporting"]
    assert cfg["brokers"]["management"]["purpose"] == "management"
    assert cfg["brokers"]["data"]["purpose"] == "data"
    assert cfg["heartbeat"]["topic"] == "sma3/mgmt/devices/M2/status"
    will = cfg["last_will"]
    assert will["topic"] == cfg["heartbeat"]["topic"]
    assert json.loads(will["payload"]) == {"state": "offline", "reason": "last_will"}
    net = cfg["network"]
    assert net["feeder"] == "L1" and net["network"]["source_bus"] == "S"
    assert sorted(b["bus_id"] for b in net["buses"]) == ["B1", "B2", "S"]
    assert [ln["line_id"] for ln in net["lines"]] == ["L1", "L2"]
    assert [m["meter_id"] for m in net["meters"]] == ["M1", "M2"]
    assert [s["switch_id"] for s in net["switches"]] == ["CB1"]
    assert net["lines"][0]["length_km"] == 1.5


def test_feeder_head_defaults_and_unknown_device(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        cfg = c.get("/devices/M1/config").json()
        assert cfg["role"] == "feeder_head"
        assert "fault_location" in [a["name"] for a in cfg["algorithms"]]
        r = c.get("/devices/X9/config")
        assert r.status_code == 404 and "no configuration" in r.json()["detail"]


def test_put_config_versions_and_etag(catalog: RunningCatalog) -> None:
    spec = {
        "network": "tiny",
        "algorithms": [{"name": "sag_report", "parameters": {"sag_threshold_pu": 0.85}}],
        "heartbeat_interval_s": 2.0,
        "network_scope": "full",
    }
    with catalog.client() as c:
        r = c.put("/devices/M3/config", json=spec)
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == '"1"'
        cfg = r.json()
        assert cfg["version"] == 1
        assert cfg["algorithms"] == spec["algorithms"]
        assert cfg["heartbeat"] == {"topic": "sma3/mgmt/devices/M3/status", "interval_s": 2.0, "ttl_s": 6.0}
        assert cfg["network"]["feeder"] is None and len(cfg["network"]["lines"]) == 5
        assert cfg["grid"]["feeder"] == "L3"
        # optimistic locking with If-Match
        r = c.put("/devices/M3/config", json={**spec, "heartbeat_interval_s": 5}, headers={"If-Match": '"0"'})
        assert r.status_code == 412 and "version 1" in r.json()["detail"]
        r = c.put("/devices/M3/config", json={**spec, "heartbeat_interval_s": 5}, headers={"If-Match": '"1"'})
        assert r.status_code == 200 and r.json()["version"] == 2
        assert c.put("/devices/M3/config", json=spec, headers={"If-Match": "garbage"}).status_code == 422
        # conditional GET and old versions
        assert c.get("/devices/M3/config", headers={"If-None-Match": '"2"'}).status_code == 304
        assert c.get("/devices/M3/config", headers={"If-None-Match": '"1"'}).status_code == 200
        old = c.get("/devices/M3/config", params={"version": 1}).json()
        assert old["version"] == 1 and old["heartbeat"]["interval_s"] == 2.0
        assert c.get("/devices/M3/config", params={"version": 7}).status_code == 404
        versions = c.get("/devices/M3/config/versions").json()
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[0]["author"] == "operator"


def test_put_config_rejects_unknown_references(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        cases = [
            ({"network": "atlantis"}, "unknown network"),
            ({"network": "tiny", "brokers": {"data": "nope"}}, "unknown broker"),
            ({"network": "tiny", "brokers": {"data": "management"}}, "management broker"),
            ({"network": "tiny", "grid": {"feeder": "L2"}}, "not a feeder"),
            ({"algorithms": [{"name": "x"}]}, "role"),  # device X7 not in any network, no role given
            ({"heartbeat_interval_s": 0}, "heartbeat_interval_s"),
            ({"algorithms": [{"name": "ok", "parameters": {"v": float("inf")}}]}, ""),
        ]
        for body, message in cases:
            if "inf" in repr(body):
                r = c.put(
                    "/devices/X7/config",
                    content=b'{"algorithms":[{"name":"ok","parameters":{"v":Infinity}}]}',
                    headers={"Content-Type": "application/json"},
                )
            else:
                r = c.put("/devices/X7/config", json=body)
            assert r.status_code == 422, (body, r.text)
            assert message in r.text, (body, r.text)
        assert c.get("/devices/X7/config/versions").json() == []
        # with an explicit role the same device can be configured
        r = c.put("/devices/X7/config", json={"role": "secondary", "algorithms": [{"name": "sag_report"}]})
        assert r.status_code == 200 and r.json()["network"] is None


def test_brokers_and_networks(catalog: RunningCatalog) -> None:
    brokers = httpx.get(catalog.api + "/brokers").json()
    assert {b["purpose"] for b in brokers} == {"data", "management"}
    assert all("password" not in json.dumps(b) for b in brokers)
    assert httpx.get(catalog.api + "/networks").json() == ["tiny"]
    net = httpx.get(catalog.api + "/networks/tiny").json()
    assert net["network"]["name"] == "tiny" and len(net["buses"]) == 5
    assert {s["switch_id"]: s["normally_open"] for s in net["switches"]} == {
        "CB1": False,
        "CB2": False,
        "NOP1": True,
    }
    feeder = httpx.get(catalog.api + "/networks/tiny", params={"feeder": "L3"}).json()
    assert [ln["line_id"] for ln in feeder["lines"]] == ["L3", "L4"]
    assert httpx.get(catalog.api + "/networks/tiny", params={"feeder": "L4"}).status_code == 404
    r = httpx.get(catalog.api + "/networks/atlantis")
    assert r.status_code == 404 and "tiny" in r.json()["detail"]


def test_network_description_round_trips_through_sma3_grid(catalog: RunningCatalog, tmp_path) -> None:
    """The JSON is the network description contract: written back as CSV it loads again."""
    import csv

    from sma3_grid.io import load_network

    net = httpx.get(catalog.api + "/networks/tiny", params={"feeder": "L1"}).json()
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "network.yaml").write_text("\n".join(f"{k}: {v}" for k, v in net["network"].items()) + "\n")
    for table in ("buses", "lines", "loads", "switches", "meters"):
        rows = net[table]
        with open(folder / f"{table}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["x"])
            writer.writeheader()
            writer.writerows(rows)
    loaded = load_network(folder)
    assert sorted(loaded.lines) == ["L1", "L2"]
    assert loaded.feeders() == ["L1"]
    assert loaded.meters["M2"].line_id == "L2"


def test_shipped_network_configures_its_meters(catalog_factory, sqlite_url: str) -> None:
    """With the shipped ``mini`` network, its meters get a derived configuration of their feeder."""
    from sma3_grid.io import load_network

    net = load_network("mini")
    running = catalog_factory(sqlite_url, networks={"mini": "mini"})
    with running.client() as c:
        for meter in net.meters.values():
            cfg = c.get(f"/devices/{meter.meter_id}/config").json()
            assert cfg["role"] == meter.role
            assert cfg["grid"]["feeder"] == net.feeder_of(meter.line_id)
            lines = {ln["line_id"] for ln in cfg["network"]["lines"]}
            assert meter.line_id in lines
            assert lines == {
                lid for lid in net.energized_lines() if net.feeder_of(lid) == cfg["grid"]["feeder"]
            }
