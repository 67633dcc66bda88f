"""Server-Sent Events with Last-Event-ID replay, and expiry within TTL + 1 s (both databases)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sma3_catalog.index import parse_iso

from .conftest import CatalogFactory, RunningCatalog, registration
from .sse import SseReader


def test_sse_live_events_and_replay(catalog: RunningCatalog) -> None:
    live = SseReader(catalog.api + "/events")
    try:
        assert live.status_code == 200
        with catalog.client() as c:
            c.put("/devices/M2", json=registration())
            c.put("/devices/M2", json=registration(firmware_version="2.0"))
            c.put("/devices/M2/config", json={"network": "tiny"})
            c.delete("/devices/M2")
        last = live.wait_for(lambda m: m.event == "deleted")
        kinds = [(m.event, m.data["device_id"]) for m in live.messages]
        assert kinds == [("created", "M2"), ("updated", "M2"), ("configured", "M2"), ("deleted", "M2")]
        ids = [int(m.id) for m in live.messages]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert live.messages[1].data["device"]["firmware_version"] == "2.0"
        assert live.messages[2].data["config_version"] == 1
        assert last.data["device"]["id"] == "M2"
    finally:
        live.close()
    # a client reconnecting with Last-Event-ID gets what it missed, in order
    replay = SseReader(catalog.api + "/events", headers={"Last-Event-ID": str(ids[0])})
    try:
        replay.wait_for(lambda m: m.event == "deleted")
        assert [int(m.id) for m in replay.messages] == ids[1:]
    finally:
        replay.close()
    filtered = SseReader(catalog.api + "/events?type=created&type=deleted", headers={"Last-Event-ID": "0"})
    try:
        filtered.wait_for(lambda m: m.event == "deleted")
        assert [m.event for m in filtered.messages] == ["created", "deleted"]
    finally:
        filtered.close()
    r = httpx.get(catalog.api + "/events", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422


def test_expiry_within_ttl_plus_one_second(catalog: RunningCatalog) -> None:
    events = SseReader(catalog.api + "/events")
    try:
        with catalog.client() as c:
            t0 = time.time()
            body = c.put("/devices/M2", json=registration(ttl=1.0)).json()
            c.put("/devices/M3", json=registration(ttl=30.0))
            expires = parse_iso(body["expires"]).timestamp()
            msg = events.wait_for(lambda m: m.event == "expired", timeout_s=5)
            noticed = time.time()
            assert msg.data["device_id"] == "M2" and msg.data["reason"] == "ttl"
            removed_at = parse_iso(msg.data["time"]).timestamp()
            assert 0 <= removed_at - expires <= 1.0
            assert noticed - t0 <= 1.0 + 1.0 + 0.5  # TTL + 1 s (+ delivery)
            assert c.get("/devices/M2").status_code == 404
            assert c.get("/devices/M3").status_code == 200
            time.sleep(0.5)
            assert [m.event for m in events.messages].count("expired") == 1
        metrics = httpx.get(catalog.url + "/metrics").text
        assert "sma3_catalog_expiry_lag_seconds_count 1.0" in metrics
    finally:
        events.close()


def test_refresh_postpones_expiry(catalog: RunningCatalog) -> None:
    # refreshed every 0.5 s with a 2 s TTL: 1.5 s of margin for a loaded machine (CI runs the suite
    # on 2 shared cores), yet the refreshes span 1.5 TTLs
    ttl = 2.0
    with catalog.client() as c:
        assert c.put("/devices/M2", json=registration(ttl=ttl)).status_code == 201
        for _ in range(6):
            time.sleep(0.5)
            assert c.patch("/devices/M2", json={"ttl": ttl}).status_code == 200
        assert c.get("/devices/M2").status_code == 200, "refreshed records outlive their first TTL"
        time.sleep(ttl + 1.0)
        assert c.get("/devices/M2").status_code == 404


def listed_ids(client: httpx.Client, want: list[str], within_s: float) -> list[str]:
    """Ids listed by ``GET /devices``, asked again until they are ``want`` or ``within_s`` passed."""
    deadline = time.monotonic() + within_s
    while True:
        ids = [d["id"] for d in client.get("/devices").json()]
        if ids == want or time.monotonic() > deadline:
            return ids
        time.sleep(0.02)


def test_two_instances_share_postgres_expiry_once(postgres_url: str, catalog_factory: CatalogFactory) -> None:
    """Several catalogs on one PostgreSQL database: each lists the other's writes within its index
    poll interval (its own at once), and each expiry is reported exactly once."""
    a = catalog_factory(postgres_url)
    b = catalog_factory(postgres_url)
    stream_a = SseReader(a.api + "/events")
    try:
        with a.client() as ca, b.client() as cb:
            cb.put("/devices/M1", json=registration())
            assert listed_ids(cb, ["M1"], within_s=0) == ["M1"], "own write listed at once"
            # within a few poll intervals (0.1 s); generous for a loaded CI box, returns when seen
            assert listed_ids(ca, ["M1"], within_s=2.0) == ["M1"]
            ca.patch("/devices/M1", json={"grid": {"feeder": "L3"}})
            deadline = time.monotonic() + 2.0
            while cb.get("/devices", params={"feeder": "L3"}).json() == [] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [d["id"] for d in cb.get("/devices", params={"feeder": "L3"}).json()] == ["M1"]
            ca.delete("/devices/M1")
            assert listed_ids(cb, [], within_s=2.0) == []
            for i in range(6):
                (ca if i % 2 else cb).put(f"/devices/D{i}", json=registration(ttl=3.0))
            assert listed_ids(cb, [f"D{i}" for i in range(6)], within_s=2.0) == [f"D{i}" for i in range(6)]
            for i in range(6):
                stream_a.wait_for(lambda m, i=i: m.event == "expired" and m.data["device_id"] == f"D{i}")
            time.sleep(0.5)
        expired = [m.data["device_id"] for m in stream_a.messages if m.event == "expired"]
        assert sorted(expired) == [f"D{i}" for i in range(6)]
    finally:
        stream_a.close()


def test_database_outage_gives_503(catalog_factory: CatalogFactory, postgres_cluster: Any) -> None:
    """Losing the database is a 503 with a message (and /healthz says so), not a 500."""
    url = postgres_cluster.create_database()
    running = catalog_factory(url)
    with running.client() as c:
        assert c.put("/devices/M2", json=registration()).status_code == 201
        postgres_cluster.drop_database(url.rsplit("/", 1)[1])
        # the list is served from the device index until its last replay is 10 poll intervals old
        deadline = time.monotonic() + 10 * running.service.settings.index_poll_s + 1.0
        r = c.get("/devices")
        while r.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            r = c.get("/devices")
        assert r.status_code == 503 and "database unavailable" in r.json()["detail"]
        assert c.put("/devices/M2", json=registration()).status_code == 503
    health = httpx.get(running.url + "/healthz")
    assert health.status_code == 503 and health.json()["database"] is False
