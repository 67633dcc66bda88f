"""The device registry: registration, refresh by heartbeats, expiry and the event log.

Plain module (no HTTP, no MQTT). Every change is written together with an :class:`Event` row in
one transaction; after the commit the registry calls its listeners (SSE notifier, MQTT
announcer). Several catalog instances may share one PostgreSQL database: expiry uses
``DELETE ... RETURNING`` so exactly one instance reports each expiry.

``GET /devices`` pages come from an in-memory :class:`~sma3_catalog.index.DeviceIndex` (no SQL
per page): each committed change is applied to it after the commit, each heartbeat refreshes its
entry, and :meth:`Registry.sync_index` replays the events table so that the changes made by other
instances sharing the database are applied too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Connection, Engine, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sma3_catalog.index import DeviceIndex, IndexEntry, iso
from sma3_catalog.models import (
    Device,
    DevicePatch,
    DeviceRegistration,
    DeviceStatus,
    Event,
    EventType,
)
from sma3_catalog.storage import device_algorithms, devices, events, is_sqlite

log = logging.getLogger(__name__)

EventListener = Callable[[Event], None]


class DeviceNotFoundError(KeyError):
    """No device with this id is registered."""

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self.device_id = device_id

    def __str__(self) -> str:
        return f"device {self.device_id!r} is not registered"


class InvalidPatchError(ValueError):
    """A merge patch produced an invalid record; the message names the field."""


class IndexUnavailableError(RuntimeError):
    """The device index is too old to serve and a replay of the event log is still running."""


def to_datetime(epoch_s: float) -> datetime:
    """Convert seconds since the Unix epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_s, timezone.utc)


__all__ = [
    "DeviceNotFoundError",
    "Heartbeat",
    "HeartbeatResult",
    "InvalidPatchError",
    "Registry",
    "iso",
    "to_datetime",
]

_DEVICE_LIST = TypeAdapter(list[Device])


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat received from a device (``received`` in epoch seconds)."""

    device_id: str
    status: DeviceStatus
    received: float


@dataclass(frozen=True)
class HeartbeatResult:
    """What a batch of heartbeats did."""

    refreshed: int
    unknown: int
    changed: int


class Registry:
    """Device records in a database, with expiry and an event log.

    Parameters
    ----------
    engine
        SQLAlchemy engine whose schema was created by :func:`sma3_catalog.storage.make_engine`.
    default_ttl_s
        TTL (s) of a registration that gives none.
    offline_grace_s
        After a device reports ``offline`` (or its Last Will does), its record expires within
        this many seconds (s) unless it comes back.
    event_retention
        Number of most recent events kept for ``Last-Event-ID`` replay.
    clock
        Returns the current time in epoch seconds (``time.time``).
    index_max_age_s
        A list query first replays the events table into the index (:meth:`sync_index`) when the
        last replay is older than this (s). 0 replays before every query, so a write committed by
        another instance sharing the database is visible at once.
    gap_timeout_s
        How long (s) :meth:`sync_index` keeps looking for an event whose id was skipped (with
        PostgreSQL an event with a smaller id may commit after one with a larger id).
    index_stale_limit_s
        When ``index_max_age_s`` > 0 and another thread is replaying the event log when a list
        query finds the index older than ``index_max_age_s``, the query does not wait for that
        replay (it may be stuck on a database lock or a lost connection): it is served from the
        index while its last replay is younger than this (s), else refused at once with
        :class:`IndexUnavailableError`. Default: the larger of 10 s and ``index_max_age_s``.
    """

    def __init__(
        self,
        engine: Engine,
        default_ttl_s: float = 60.0,
        offline_grace_s: float = 5.0,
        event_retention: int = 10_000,
        clock: Callable[[], float] = time.time,
        index_max_age_s: float = 0.0,
        gap_timeout_s: float = 5.0,
        index_stale_limit_s: float | None = None,
    ) -> None:
        if default_ttl_s <= 0:
            raise ValueError(f"default_ttl_s must be positive, got {default_ttl_s}")
        if offline_grace_s < 0:
            raise ValueError(f"offline_grace_s must be >= 0, got {offline_grace_s}")
        self.engine = engine
        self.default_ttl_s = default_ttl_s
        self.offline_grace_s = offline_grace_s
        self.event_retention = event_retention
        self.clock = clock
        self._listeners: list[EventListener] = []
        # SQLite has one writer at a time; serialize our writers instead of retrying on SQLITE_BUSY.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(engine) else contextlib.nullcontext()
        )
        if index_max_age_s < 0 or gap_timeout_s < 0:
            raise ValueError(
                f"index_max_age_s and gap_timeout_s must be >= 0, got {index_max_age_s}, {gap_timeout_s}"
            )
        if index_stale_limit_s is None:
            index_stale_limit_s = max(10.0, index_max_age_s)
        if index_stale_limit_s < index_max_age_s:
            raise ValueError(
                f"index_stale_limit_s ({index_stale_limit_s}) must be >= index_max_age_s ({index_max_age_s})"
            )
        self.index_max_age_s = index_max_age_s
        self.gap_timeout_s = gap_timeout_s
        self.index_stale_limit_s = index_stale_limit_s
        #: The records as served by ``GET /devices`` (filled by :meth:`load_index`).
        self.index = DeviceIndex()
        self._index_loaded = False
        self._sync_lock = threading.RLock()
        self._synced_id = 0  # newest event id replayed into the index
        self._gaps: dict[int, float] = {}  # skipped event id -> monotonic time it was noticed
        self._last_sync = -math.inf

    # ----------------------------------------------------------------- events
    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(event)`` after each committed change (from the writer's thread)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        """Stop calling ``listener`` (no effect when it is not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _publish(self, emitted: Sequence[Event]) -> None:
        for ev in emitted:
            for listener in list(self._listeners):
                try:
                    listener(ev)
                except Exception:
                    # A broken listener must not undo a committed change; it is logged, not hidden.
                    log.exception("event listener %r failed on event %s", listener, ev.id)

    def _record_event(
        self,
        conn: Connection,
        type_: EventType,
        device_id: str,
        now: float,
        device: Device | None,
        config_version: int | None = None,
        reason: str | None = None,
    ) -> Event:
        body = {
            "device": device.model_dump(mode="json") if device else None,
            "config_version": config_version,
            "reason": reason,
        }
        result = conn.execute(
            insert(events).values(type=type_, device_id=device_id, time=now, body=json.dumps(body))
        )
        key = result.inserted_primary_key
        assert key is not None
        event_id = int(key[0])
        return Event(
            id=event_id,
            type=type_,
            device_id=device_id,
            time=to_datetime(now),
            device=device,
            config_version=config_version,
            reason=reason,
        )

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[Connection, list[Event]]]:
        emitted: list[Event] = []
        with self._write_lock:
            with self.engine.begin() as conn:
                yield conn, emitted
            self._apply_to_index(emitted)
        self._publish(emitted)

    def record_config_event(self, device_id: str, version: int, conn: Connection | None = None) -> Event:
        """Log a ``configured`` event (a new configuration version for ``device_id``)."""
        now = self.clock()
        if conn is not None:
            ev = self._record_event(conn, "configured", device_id, now, None, config_version=version)
            return ev
        with self._write() as (c, emitted):
            ev = self._record_event(c, "configured", device_id, now, None, config_version=version)
            emitted.append(ev)
        return ev

    def publish_later(self, ev: Event) -> None:
        """Hand an event recorded in someone else's transaction to the listeners (after commit)."""
        self._publish([ev])

    def events_after(self, last_id: int, limit: int = 500) -> list[Event]:
        """Events with id > ``last_id`` still retained, oldest first."""
        return self._events_where(events.c.id > last_id, limit)

    def _events_where(self, condition: ColumnElement[bool], limit: int) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).where(condition).order_by(events.c.id).limit(limit)).all()
        out = []
        for row in rows:
            body = json.loads(row.body)
            out.append(
                Event(
                    id=row.id,
                    type=row.type,
                    device_id=row.device_id,
                    time=to_datetime(row.time),
                    device=Device.model_validate(body["device"]) if body.get("device") else None,
                    config_version=body.get("config_version"),
                    reason=body.get("reason"),
                )
            )
        return out

    def last_event_id(self) -> int:
        """Id of the newest event (0 when there is none)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(events.c.id))).scalar()
        return int(value or 0)

    def prune_events(self) -> int:
        """Delete events older than the newest ``event_retention``; returns how many went."""
        newest = self.last_event_id()
        cutoff = newest - self.event_retention
        if cutoff <= 0:
            return 0
        with self._write_lock, self.engine.begin() as conn:
            return int(conn.execute(delete(events).where(events.c.id <= cutoff)).rowcount or 0)

    # ---------------------------------------------------------------- records
    @staticmethod
    def _row_to_dict(row: Any) -> dict[str, Any]:
        """A stored row as the JSON object of a :class:`Device` (times as ISO-8601 ``...Z``)."""
        body = json.loads(row.body)
        return {
            "id": row.id,
            "role": row.role,
            "grid": body["grid"],
            "endpoints": body["endpoints"],
            "algorithms": body["algorithms"],
            "firmware_version": body.get("firmware_version"),
            "config_version": row.config_version,
            "created": iso(row.created),
            "modified": iso(row.modified),
            "ttl": row.ttl,
            "expires": iso(row.expires),
            "alive": bool(row.alive),
            "health": row.health,
            "last_heartbeat": iso(row.last_heartbeat) if row.last_heartbeat is not None else None,
        }

    @classmethod
    def _row_to_device(cls, row: Any) -> Device:
        return Device.model_validate(cls._row_to_dict(row))

    @staticmethod
    def _columns(reg: DeviceRegistration) -> dict[str, Any]:
        body = {
            "grid": reg.grid.model_dump(mode="json"),
            "endpoints": reg.endpoints.model_dump(mode="json"),
            "algorithms": list(dict.fromkeys(reg.algorithms)),
            "firmware_version": reg.firmware_version,
        }
        return {
            "role": reg.role,
            "feeder": reg.grid.feeder,
            "config_version": reg.config_version,
            "body": json.dumps(body),
        }

    @staticmethod
    def _set_algorithms(conn: Connection, device_id: str, algorithms: Sequence[str]) -> None:
        conn.execute(delete(device_algorithms).where(device_algorithms.c.device_id == device_id))
        unique = list(dict.fromkeys(algorithms))
        if unique:
            conn.execute(
                insert(device_algorithms), [{"device_id": device_id, "algorithm": a} for a in unique]
            )

    def _fetch(self, conn: Connection, device_id: str) -> Device | None:
        row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
        return self._row_to_device(row) if row is not None else None

    def _put_in(
        self, conn: Connection, emitted: list[Event], device_id: str, reg: DeviceRegistration, now: float
    ) -> tuple[Device, bool]:
        ttl = reg.ttl if reg.ttl is not None else self.default_ttl_s
        values = {**self._columns(reg), "modified": now, "ttl": ttl, "expires": now + ttl, "alive": True}
        result = conn.execute(update(devices).where(devices.c.id == device_id).values(**values))
        created = result.rowcount == 0
        if created:
            conn.execute(insert(devices).values(id=device_id, created=now, **values))
        self._set_algorithms(conn, device_id, reg.algorithms)
        device = self._fetch(conn, device_id)
        assert device is not None, f"{device_id} was written in this transaction"
        emitted.append(self._record_event(conn, "created" if created else "updated", device_id, now, device))
        return device, created

    def put(self, device_id: str, reg: DeviceRegistration) -> tuple[Device, bool]:
        """Register ``device_id`` or replace its record; returns (record, created).

        The registration refreshes the record: ``expires`` = now + ttl and ``alive`` = True.
        """
        for _attempt in range(3):
            try:
                with self._write() as (conn, emitted):
                    return self._put_in(conn, emitted, device_id, reg, self.clock())
            except IntegrityError:
                # Another catalog instance inserted the same id concurrently: retry as an update.
                log.info("concurrent registration of %s, retrying as update", device_id)
        raise RuntimeError(f"could not register {device_id!r} after 3 attempts (concurrent writers)")

    def put_many(self, items: Sequence[tuple[str, DeviceRegistration]]) -> int:
        """Register or replace many records in one transaction (bulk provisioning); returns how many
        were created. Events are emitted as by :meth:`put`."""
        created = 0
        with self._write() as (conn, emitted):
            now = self.clock()
            for device_id, reg in items:
                created += self._put_in(conn, emitted, device_id, reg, now)[1]
        return created

    def get(self, device_id: str) -> Device:
        """Return the record of ``device_id``.

        Raises
        ------
        DeviceNotFoundError
            When it is not registered.
        """
        with self.engine.connect() as conn:
            device = self._fetch(conn, device_id)
        if device is None:
            raise DeviceNotFoundError(device_id)
        return device

    def patch(self, device_id: str, patch: DevicePatch) -> Device:
        """Apply a JSON merge patch (RFC 7396) to the record and refresh it.

        Raises
        ------
        DeviceNotFoundError
            When the device is not registered.
        InvalidPatchError
            When the patched record would be invalid.
        """
        changes = patch.model_dump(exclude_unset=True)
        now = self.clock()
        with self._write() as (conn, emitted):
            current = self._fetch(conn, device_id)
            if current is None:
                raise DeviceNotFoundError(device_id)
            merged: dict[str, Any] = {
                "role": current.role,
                "grid": current.grid.model_dump(mode="json"),
                "endpoints": current.endpoints.model_dump(mode="json"),
                "algorithms": current.algorithms,
                "firmware_version": current.firmware_version,
                "config_version": current.config_version,
                "ttl": current.ttl,
            }
            for key, value in changes.items():
                if key in ("grid", "endpoints") and value is not None:
                    for sub_key, sub_value in value.items():
                        if sub_value is None:
                            merged[key].pop(sub_key, None)
                        else:
                            merged[key][sub_key] = sub_value
                elif value is None and key in ("role", "algorithms"):
                    raise InvalidPatchError(f"'{key}' cannot be removed (null) from a device record")
                elif value is None and key in ("grid", "endpoints"):
                    merged[key] = {}
                elif value is None and key == "ttl":
                    merged[key] = self.default_ttl_s
                else:
                    merged[key] = value
            try:
                reg = DeviceRegistration.model_validate(merged)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
                )
                raise InvalidPatchError(f"patched record is invalid: {problems}") from None
            ttl = reg.ttl if reg.ttl is not None else self.default_ttl_s
            conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(**self._columns(reg), modified=now, ttl=ttl, expires=now + ttl, alive=True)
            )
            self._set_algorithms(conn, device_id, reg.algorithms)
            device = self._fetch(conn, device_id)
            assert device is not None, f"{device_id} was written in this transaction"
            emitted.append(self._record_event(conn, "updated", device_id, now, device))
        return device

    def delete(self, device_id: str) -> Device:
        """Remove ``device_id`` (event ``deleted``); returns the removed record.

        Raises
        ------
        DeviceNotFoundError
            When the device is not registered.
        """
        now = self.clock()
        with self._write() as (conn, emitted):
            current = self._fetch(conn, device_id)
            if current is None:
                raise DeviceNotFoundError(device_id)
            conn.execute(delete(devices).where(devices.c.id == device_id))
            conn.execute(delete(device_algorithms).where(device_algorithms.c.device_id == device_id))
            emitted.append(self._record_event(conn, "deleted", device_id, now, current))
        return current

    def query(
        self,
        feeder: str | None = None,
        role: str | None = None,
        algorithm: str | None = None,
        alive: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Device], bool]:
        """Records matching all given filters, ordered by id; returns (page, more_after_page).

        Parsed from :meth:`query_json` (one implementation of listing).
        """
        page, more = self.query_json(feeder, role, algorithm, alive, offset, limit)
        return _DEVICE_LIST.validate_json(page), more

    def query_json(
        self,
        feeder: str | None = None,
        role: str | None = None,
        algorithm: str | None = None,
        alive: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[str, bool]:
        """As :meth:`query`, but the page is returned as JSON text (a list of Device objects).

        The path of ``GET /devices``: served from the in-memory index, after replaying the events
        table when the last replay is older than ``index_max_age_s``.

        Raises
        ------
        ValueError
            For ``offset`` < 0 or ``limit`` < 1.
        IndexUnavailableError
            When the index is older than ``index_stale_limit_s`` and another thread's replay is
            still running (see :meth:`index_needs_replay`).
        OperationalError
            When this query's own replay cannot reach the database.
        """
        if self.index_needs_replay():
            self._replay_for_query()
        return self.index.page(feeder, role, algorithm, alive, offset, limit)

    def index_needs_replay(self) -> bool:
        """True when a list query would first replay the event log (SQL): the index is not loaded
        or its last replay is at least ``index_max_age_s`` old."""
        return not self._index_loaded or time.monotonic() - self._last_sync >= self.index_max_age_s

    def _replay_for_query(self) -> None:
        if self.index_max_age_s == 0:  # strict: every query sees every committed write
            self.sync_index()
            return
        if self._sync_lock.acquire(blocking=False):
            try:
                self.sync_index()
            finally:
                self._sync_lock.release()
            return
        # Another thread (the poller) is replaying right now; it may be waiting on a lock or a
        # lost connection, so do not queue behind it.
        age = time.monotonic() - self._last_sync
        if self._index_loaded and age < self.index_stale_limit_s:
            return
        raise IndexUnavailableError(
            f"device index last replayed {age:.1f} s ago (limit {self.index_stale_limit_s} s) and a "
            "replay of the event log is still waiting for the database"
        )

    # ------------------------------------------------------------------ index
    def load_index(self) -> None:
        """Fill the index from the ``devices`` table (a snapshot as of the newest event)."""
        with self._sync_lock:
            with self.engine.connect() as conn:
                newest = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
                rows = conn.execute(select(devices)).all()
            self.index.reset(IndexEntry.from_device(self._row_to_device(r), newest) for r in rows)
            self._synced_id = newest
            self._gaps.clear()
            self._last_sync = time.monotonic()
            self._index_loaded = True

    def sync_index(self) -> int:
        """Replay the events committed since the last replay (by any instance) into the index.

        Loads the index first when it is empty. Event ids skipped in the log are looked for again
        for ``gap_timeout_s`` (a transaction that took an id may commit later); after a jump of
        more than 1000 ids (events pruned before they were replayed) the index is reloaded from the
        table. Returns the number of events that changed the index.
        """
        with self._sync_lock:
            if not self._index_loaded:
                self.load_index()
                return 0
            now = time.monotonic()
            self._gaps = {i: t for i, t in self._gaps.items() if now - t <= self.gap_timeout_s}
            changed = 0
            while True:
                condition: ColumnElement[bool] = events.c.id > self._synced_id
                if self._gaps:
                    condition = or_(condition, events.c.id.in_(sorted(self._gaps)))
                batch = self._events_where(condition, 500)
                for ev in batch:
                    self._gaps.pop(ev.id, None)
                    if ev.id - self._synced_id > 1000:
                        # events this index never saw were pruned (replays failed for long):
                        # start again from the table
                        log.warning("device index missed events %d..%d; reloading", self._synced_id, ev.id)
                        self.load_index()
                        return changed
                    if ev.id > self._synced_id:
                        self._gaps.update(dict.fromkeys(range(self._synced_id + 1, ev.id), now))
                        self._synced_id = ev.id
                    changed += self._apply_to_index([ev])
                if len(batch) < 500:
                    break
            self._last_sync = now
            return changed

    def _apply_to_index(self, emitted: Sequence[Event]) -> int:
        """Apply committed events to the index (when it is loaded); returns how many changed it."""
        if not self._index_loaded:
            return 0
        changed = 0
        for ev in emitted:
            if ev.type in ("created", "updated") and ev.device is not None:
                changed += self.index.upsert(ev.device, ev.id)
            elif ev.type in ("deleted", "expired"):
                changed += self.index.remove(ev.device_id, ev.id)
        return changed

    def count(self) -> int:
        """Number of registered devices."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(devices)).scalar() or 0)

    # ------------------------------------------------------------- heartbeats
    def heartbeat_many(self, beats: Sequence[Heartbeat]) -> HeartbeatResult:
        """Apply a batch of heartbeats in one transaction.

        Each known device gets ``expires`` = received + ttl. A heartbeat that changes what the record
        says (algorithms, config version, health, alive) also updates it and emits ``updated``.
        ``offline`` (e.g. the Last Will) marks the device not alive and lets it expire within
        ``offline_grace_s``. Heartbeats of unknown devices are counted and otherwise ignored (the
        device must register with ``PUT`` first).
        """
        if not beats:
            return HeartbeatResult(0, 0, 0)
        latest: dict[str, Heartbeat] = {}
        for beat in beats:
            previous = latest.get(beat.device_id)
            if previous is None or beat.received >= previous.received or beat.status.state == "offline":
                latest[beat.device_id] = beat
        refreshed = changed = 0
        with self._write() as (conn, emitted):
            # only the columns a heartbeat reads: less to copy while holding the GIL
            wanted = (
                devices.c.id,
                devices.c.ttl,
                devices.c.expires,
                devices.c.alive,
                devices.c.config_version,
                devices.c.health,
                devices.c.body,
            )
            found = conn.execute(select(*wanted).where(devices.c.id.in_(list(latest)))).all()
            rows = {r.id: r for r in found}
            plain: list[dict[str, Any]] = []
            for device_id, beat in latest.items():
                row = rows.get(device_id)
                if row is None:
                    continue
                refreshed += 1
                status = beat.status
                if status.state == "offline":
                    expires = min(row.expires, beat.received + self.offline_grace_s)
                    alive = False
                else:
                    expires = beat.received + row.ttl
                    alive = True
                new_version = (
                    status.config_version if status.config_version is not None else row.config_version
                )
                new_health = status.health if status.health is not None else row.health
                body: dict[str, Any] | None = None
                same_algorithms = True
                if status.algorithms is not None:  # decode the stored body only when needed
                    body = json.loads(row.body)
                    same_algorithms = list(status.algorithms) == body["algorithms"]
                if (
                    alive == row.alive
                    and same_algorithms
                    and new_version == row.config_version
                    and new_health == row.health
                ):
                    plain.append({"b_id": device_id, "b_expires": expires, "b_hb": beat.received})
                    continue
                changed += 1
                if body is None:
                    body = json.loads(row.body)
                if status.algorithms is not None:
                    body["algorithms"] = list(dict.fromkeys(status.algorithms))
                conn.execute(
                    update(devices)
                    .where(devices.c.id == device_id)
                    .values(
                        alive=alive,
                        health=new_health,
                        config_version=new_version,
                        body=json.dumps(body),
                        modified=beat.received,
                        expires=expires,
                        last_heartbeat=beat.received,
                    )
                )
                if not same_algorithms:
                    self._set_algorithms(conn, device_id, body["algorithms"])
                device = self._fetch(conn, device_id)
                assert device is not None, f"{device_id} was written in this transaction"
                reason = status.reason or ("offline" if not alive else "heartbeat")
                emitted.append(
                    self._record_event(conn, "updated", device_id, beat.received, device, reason=reason)
                )
            if plain:
                conn.execute(
                    update(devices)
                    .where(devices.c.id == bindparam("b_id"))
                    .values(expires=bindparam("b_expires"), last_heartbeat=bindparam("b_hb")),
                    plain,
                )
        if self._index_loaded:
            for item in plain:
                self.index.refresh(item["b_id"], item["b_expires"], item["b_hb"])
        return HeartbeatResult(refreshed=refreshed, unknown=len(latest) - refreshed, changed=changed)

    # ----------------------------------------------------------------- expiry
    def next_expiry(self) -> float | None:
        """Earliest ``expires`` (epoch s) of any record, None when there is none."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(devices.c.expires))).scalar()
        return float(value) if value is not None else None

    def expire_due(self, now: float | None = None) -> list[tuple[Device, float]]:
        """Remove every record whose ``expires`` has passed; emit ``expired`` for each.

        Returns
        -------
        list of (device, lag_s)
            The removed records and how late (s) each was removed after its expiry instant.
        """
        now = self.clock() if now is None else now
        removed: list[tuple[Device, float]] = []
        with self._write() as (conn, emitted):
            rows = conn.execute(delete(devices).where(devices.c.expires <= now).returning(*devices.c)).all()
            if not rows:
                return removed
            ids = [r.id for r in rows]
            conn.execute(delete(device_algorithms).where(device_algorithms.c.device_id.in_(ids)))
            for row in rows:
                device = self._row_to_device(row)
                removed.append((device, now - row.expires))
                reason = "offline" if not row.alive else "ttl"
                emitted.append(self._record_event(conn, "expired", row.id, now, device, reason=reason))
        return removed
