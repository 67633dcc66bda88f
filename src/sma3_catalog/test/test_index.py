"""The in-memory device index behind ``GET /devices``: equal to the table after every kind of write,
filters and pagination, out-of-order changes, and several registries sharing one database."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from sma3_catalog.index import DeviceIndex, iso, parse_iso
from sma3_catalog.models import Device, DevicePatch, DeviceRegistration, DeviceStatus
from sma3_catalog.registry import Heartbeat, IndexUnavailableError, Registry
from sma3_catalog.storage import devices, make_engine

from .conftest import registration


class Clock:
    """A settable time source (epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reg(feeder: str = "L1", role: str = "secondary", **extra: Any) -> DeviceRegistration:
    body = registration(role=role, **extra)
    body["grid"] = {**body["grid"], "feeder": feeder}
    return DeviceRegistration.model_validate(body)


def beat(device_id: str, t: float, **status: object) -> Heartbeat:
    return Heartbeat(device_id, DeviceStatus.model_validate(status), t)


def table(registry: Registry) -> list[dict[str, Any]]:
    """Every record as read from the ``devices`` table (the truth the index must equal), by id."""
    with registry.engine.connect() as conn:
        rows = conn.execute(select(devices)).all()
    records = [Registry._row_to_device(r).model_dump(mode="json") for r in rows]
    return sorted(records, key=lambda d: d["id"])


def listed(registry: Registry, **filters: Any) -> list[dict[str, Any]]:
    page, more = registry.query_json(limit=1000, **filters)
    assert not more
    result: list[dict[str, Any]] = json.loads(page)
    return result


def assert_index_equals_table(registry: Registry) -> None:
    assert listed(registry) == table(registry)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(db_url: str, clock: Clock) -> Registry:
    return Registry(make_engine(db_url), default_ttl_s=10.0, offline_grace_s=2.0, clock=clock)


def test_index_follows_every_write(registry: Registry, clock: Clock) -> None:
    registry.put("M2", reg(ttl=5.0))
    registry.load_index()  # loaded from the table, then kept up to date by the writes below
    registry.put_many([("M3", reg("L3")), ("M1", reg(role="feeder_head", algorithms=["fault_location"]))])
    assert [d["id"] for d in listed(registry)] == ["M1", "M2", "M3"]
    assert_index_equals_table(registry)
    clock.now += 1
    registry.put("M2", reg(firmware_version="2.0.0", ttl=5.0))
    registry.patch("M3", DevicePatch.model_validate({"grid": {"feeder": "L1"}, "algorithms": ["sag_report"]}))
    assert_index_equals_table(registry)
    t = clock.now + 1
    registry.heartbeat_many([beat("M2", t), beat("M3", t)])  # expiry refresh only
    assert_index_equals_table(registry)
    registry.heartbeat_many([beat("M2", t + 1, health="degraded", algorithms=["outage_report"])])
    registry.heartbeat_many([beat("M3", t + 1, state="offline", reason="last_will")])
    assert_index_equals_table(registry)
    assert [d["id"] for d in listed(registry, alive=False)] == ["M3"]
    registry.delete("M1")
    assert_index_equals_table(registry)
    removed = registry.expire_due(t + 1 + 2.0)  # M3 is past its offline grace
    assert [d.id for d, _lag in removed] == ["M3"]
    assert [d["id"] for d in listed(registry)] == ["M2"]
    assert_index_equals_table(registry)


def test_filters_and_pages(registry: Registry) -> None:
    items = []
    for i in range(30):
        role = "feeder_head" if i % 5 == 0 else "secondary"
        algorithms = ["fault_location"] if role == "feeder_head" else ["outage_report", "sag_report"]
        items.append((f"D{i:02d}", reg(f"F{i % 3}", role=role, algorithms=algorithms)))
    registry.put_many(items)
    registry.heartbeat_many(
        [beat(f"D{i:02d}", registry.clock() + 1, state="offline") for i in range(0, 30, 4)]
    )
    everything = table(registry)

    def expected(
        feeder: str | None, role: str | None, algorithm: str | None, alive: bool | None
    ) -> list[str]:
        return [
            d["id"]
            for d in everything
            if (feeder is None or d["grid"]["feeder"] == feeder)
            and (role is None or d["role"] == role)
            and (algorithm is None or algorithm in d["algorithms"])
            and (alive is None or d["alive"] == alive)
        ]

    for feeder in (None, "F1", "F9"):
        for role in (None, "feeder_head"):
            for algorithm in (None, "sag_report"):
                for alive in (None, True, False):
                    want = expected(feeder, role, algorithm, alive)
                    got: list[str] = []
                    offset = 0
                    while True:  # walk the pages as a client following Link: rel="next"
                        page, more = registry.query_json(feeder, role, algorithm, alive, offset, 4)
                        got += [d["id"] for d in json.loads(page)]
                        offset += 4
                        if not more:
                            break
                    assert got == want, (feeder, role, algorithm, alive)
    assert [d.id for d in registry.query(feeder="F2", offset=2, limit=3)[0]] == ["D08", "D11", "D14"]
    with pytest.raises(ValueError, match="limit"):
        registry.query_json(limit=0)


def device(device_id: str, feeder: str, t: float) -> Device:
    return Device.model_validate(
        {
            **reg(feeder).model_dump(mode="json", exclude={"ttl"}),
            "id": device_id,
            "created": t,
            "modified": t,
            "ttl": 10.0,
            "expires": t + 10,
            "alive": True,
        }
    )


def test_out_of_order_changes_converge() -> None:
    """Late events older than what an entry (or a removal) reflects are ignored."""
    index = DeviceIndex()
    assert index.upsert(device("A", "F1", 100.0), event_id=5)
    assert not index.upsert(device("A", "F2", 90.0), event_id=4), "older event ignored"
    assert index.upsert(device("A", "F2", 110.0), event_id=7), "newer event moves A to F2"
    assert json.loads(index.page(feeder="F1")[0]) == [] and len(json.loads(index.page(feeder="F2")[0])) == 1
    assert index.refresh("A", expires=200.0, last_heartbeat=50.0), "first heartbeat"
    assert index.refresh("A", expires=300.0, last_heartbeat=290.0)
    assert not index.refresh("A", expires=250.0, last_heartbeat=240.0), "an older heartbeat is ignored"
    assert json.loads(index.page()[0])[0]["expires"] == "1970-01-01T00:05:00Z"
    assert index.remove("A", event_id=9)
    assert not index.upsert(device("A", "F2", 120.0), event_id=8), "no resurrection by an older event"
    assert "A" not in index
    assert index.upsert(device("A", "F3", 130.0), event_id=10), "registered again"
    assert not index.remove("A", event_id=6), "an older removal is ignored"
    assert [d["grid"]["feeder"] for d in json.loads(index.page()[0])] == ["F3"]


def test_two_registries_on_postgres_see_each_others_writes(postgres_url: str, clock: Clock) -> None:
    """Instances sharing PostgreSQL: every write by one is listed by the other at its next query."""
    a = Registry(make_engine(postgres_url), clock=clock)
    b = Registry(make_engine(postgres_url), clock=clock)
    a.put("M1", reg())
    assert [d["id"] for d in listed(b)] == ["M1"]
    b.put("M2", reg("L3"))
    a.patch("M1", DevicePatch.model_validate({"grid": {"feeder": "L3"}}))
    assert [d["id"] for d in listed(b, feeder="L3")] == ["M1", "M2"]
    a.heartbeat_many([beat("M2", clock.now + 1, state="offline")])
    assert [d["id"] for d in listed(b, alive=False)] == ["M2"]
    b.delete("M1")
    assert [d["id"] for d in listed(a)] == ["M2"]
    assert b.expire_due(clock.now + 100) and listed(a) == [] and listed(b) == []
    assert_index_equals_table(a)


def test_event_committed_late_is_not_missed(postgres_url: str, clock: Clock) -> None:
    """With PostgreSQL an event with a smaller id can commit after a larger one; the replay still
    applies it (the skipped id is looked for again)."""
    a = Registry(make_engine(postgres_url), clock=clock)
    b = Registry(make_engine(postgres_url), clock=clock)
    b.load_index()
    with a._write() as (conn, emitted):  # a registration whose transaction stays open a while
        a._put_in(conn, emitted, "SLOW", reg(), clock.now)
        a.put("FAST", reg())  # takes the next event id and commits first
        assert [d["id"] for d in listed(b)] == ["FAST"]
    assert [d["id"] for d in listed(b)] == ["FAST", "SLOW"]
    assert_index_equals_table(b)


def test_index_reloads_after_missing_pruned_events(sqlite_url: str, clock: Clock) -> None:
    """An index that fell behind by more than the retained events starts again from the table."""
    writer = Registry(make_engine(sqlite_url), event_retention=10, clock=clock)
    reader = Registry(make_engine(sqlite_url), index_max_age_s=3600.0, clock=clock)
    writer.put("OLD", reg())
    reader.load_index()
    writer.delete("OLD")
    writer.put_many([(f"N{i:04d}", reg()) for i in range(1010)])
    assert writer.prune_events() > 1000  # the deletion of OLD is no longer in the log
    assert "OLD" in reader.index and len(reader.index) == 1, "stale until replayed (max age 1 h)"
    reader.sync_index()
    assert "OLD" not in reader.index and len(reader.index) == 1010
    page, more = reader.query_json(offset=10, limit=1000)
    assert json.loads(page) == table(writer)[10:] and not more


def test_list_query_does_not_wait_for_a_replay_stuck_on_a_lock(postgres_url: str, clock: Clock) -> None:
    """A replay blocked by a table lock (another thread's, like the poller's) does not hold list
    queries: they are served from the index until it is ``index_stale_limit_s`` old, then
    refused at once; once the lock goes, replays and queries work again."""
    writer = Registry(make_engine(postgres_url), clock=clock)
    reader = Registry(make_engine(postgres_url), index_max_age_s=0.05, index_stale_limit_s=1.0, clock=clock)
    writer.put("D1", reg())
    reader.load_index()
    locker = make_engine(postgres_url).connect()
    locker.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))  # held until rollback
    poller = threading.Thread(target=reader.sync_index, daemon=True)
    poller.start()
    try:
        while time.monotonic() - reader._last_sync < 0.05:
            time.sleep(0.01)
        assert poller.is_alive(), "the replay is blocked by the lock"
        outcome: list[object] = []
        query = threading.Thread(target=lambda: outcome.append(listed(reader)), daemon=True)
        query.start()
        query.join(timeout=20)
        assert outcome == [table(writer)], "served from the index, not queued behind the replay"
        while time.monotonic() - reader._last_sync < 1.0:
            time.sleep(0.05)
        with pytest.raises(IndexUnavailableError, match="still waiting for the database"):
            reader.query_json()
    finally:
        locker.rollback()
        locker.close()
    poller.join(timeout=20)
    assert not poller.is_alive()
    writer.put("D2", reg())
    assert [d["id"] for d in listed(reader)] == ["D1", "D2"]


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_parse_iso_inverts_iso(epoch_s: float) -> None:
    parsed = parse_iso(iso(epoch_s))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert abs(parsed.timestamp() - epoch_s) < 1e-6


def test_parse_iso_offsets_and_errors() -> None:
    assert parse_iso("2026-11-28T01:00:00+01:00").timestamp() == parse_iso("2026-11-28T00:00:00Z").timestamp()
    assert parse_iso("2026-11-28T00:00:00").tzinfo is not None  # no offset: UTC
    with pytest.raises(ValueError):
        parse_iso("28/11/2026")
