"""In-memory index of the device records, from which ``GET /devices`` pages are served.

Plain module (no database, no HTTP). The :class:`~sma3_catalog.registry.Registry` keeps the index
equal to the ``devices`` table: it applies every committed change event (``created``/``updated``
replace an entry, ``deleted``/``expired`` remove it) and every heartbeat's new ``expires`` /
``last_heartbeat``, and it replays the events table so that writes by other catalog instances on
the same database are seen too. A page is then built from pre-rendered JSON text without SQL and
with few releases of the GIL, which keeps the query latency low while heartbeats are applied by
other threads.

Each entry remembers the id of the event it was built from. Changes may reach the index out of
order (several writer threads; another instance's events read later); an event older than the one
an entry (or a removal) already reflects is ignored, so the index converges to the newest state.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sma3_catalog.models import Device

#: Fields a heartbeat changes without an event; rendered after the rest of the record.
_HEARTBEAT_FIELDS = {"expires", "last_heartbeat"}


def iso(epoch_s: float) -> str:
    """Seconds since the Unix epoch as UTC ISO-8601 text, as pydantic writes it (``...Z``)."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Aware datetime of ISO-8601 text as the catalog writes it (the inverse of :func:`iso`).

    ``datetime.fromisoformat`` accepts the ``Z`` suffix only from Python 3.11 on; this also works
    on 3.10. Text without an offset is taken as UTC.

    Raises
    ------
    ValueError
        When ``text`` is not ISO-8601.
    """
    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One device in the index.

    Attributes
    ----------
    device_id, role, feeder, alive, algorithms
        What the list filters look at.
    head
        JSON text of the record without ``expires`` and ``last_heartbeat`` and without the closing
        brace (see :meth:`render`).
    expires, last_heartbeat
        Epoch seconds (s); ``last_heartbeat`` is None before the first heartbeat.
    event_id
        Id of the newest event this entry reflects (the index snapshot's last event id for entries
        loaded from the table).
    text
        The full JSON text of the record, equal in content to ``Device.model_dump(mode="json")``.
    """

    device_id: str
    role: str
    feeder: str | None
    alive: bool
    algorithms: frozenset[str]
    head: str
    expires: float
    last_heartbeat: float | None
    event_id: int
    text: str

    @staticmethod
    def render(head: str, expires: float, last_heartbeat: float | None) -> str:
        """JSON text of a record from its ``head`` and the two heartbeat fields (epoch s)."""
        heartbeat = f'"{iso(last_heartbeat)}"' if last_heartbeat is not None else "null"
        return f'{head},"expires":"{iso(expires)}","last_heartbeat":{heartbeat}}}'

    @classmethod
    def from_device(cls, device: Device, event_id: int) -> IndexEntry:
        """The entry of ``device`` as of event ``event_id``."""
        body = device.model_dump(mode="json", exclude=_HEARTBEAT_FIELDS)
        head = json.dumps(body, separators=(",", ":"))[:-1]
        expires = device.expires.timestamp()
        last_heartbeat = device.last_heartbeat.timestamp() if device.last_heartbeat is not None else None
        return cls(
            device_id=device.id,
            role=device.role,
            feeder=device.grid.feeder,
            alive=device.alive,
            algorithms=frozenset(device.algorithms),
            head=head,
            expires=expires,
            last_heartbeat=last_heartbeat,
            event_id=event_id,
            text=cls.render(head, expires, last_heartbeat),
        )

    def refreshed(self, expires: float, last_heartbeat: float) -> IndexEntry:
        """This entry after a heartbeat that changed only ``expires`` and ``last_heartbeat`` (s)."""
        # positional construction: several times faster than dataclasses.replace (once per heartbeat)
        return IndexEntry(
            self.device_id,
            self.role,
            self.feeder,
            self.alive,
            self.algorithms,
            self.head,
            expires,
            last_heartbeat,
            self.event_id,
            self.render(self.head, expires, last_heartbeat),
        )


class DeviceIndex:
    """Device records by id, ordered by id, with the filter fields of ``GET /devices``.

    Thread-safe: writers (heartbeat worker, REST handlers, expiry loop) and readers (the event
    loop) may call it concurrently; each call holds an internal lock for a short, SQL-free time.

    Parameters
    ----------
    tombstone_s
        How long (s) a removal is remembered so that an older, late event cannot bring the
        record back.
    clock
        Monotonic time source (s) for the tombstones.
    """

    def __init__(self, tombstone_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.tombstone_s = tombstone_s
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, IndexEntry] = {}
        self._ids: list[str] = []  # sorted
        self._by_feeder: dict[str | None, list[str]] = {}  # sorted ids per feeder
        self._removed: dict[str, tuple[int, float]] = {}  # id -> (event id, clock time)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._entries

    def entry(self, device_id: str) -> IndexEntry | None:
        """The entry of ``device_id``, None when it is not in the index."""
        return self._entries.get(device_id)

    # ---------------------------------------------------------------- changes
    def reset(self, entries: Iterable[IndexEntry]) -> None:
        """Replace the whole content (a snapshot of the table)."""
        with self._lock:
            self._entries = {e.device_id: e for e in entries}
            self._ids = sorted(self._entries)
            self._by_feeder = {}
            for device_id in self._ids:
                self._by_feeder.setdefault(self._entries[device_id].feeder, []).append(device_id)
            self._removed.clear()

    def upsert(self, device: Device, event_id: int) -> bool:
        """Enter ``device`` as of event ``event_id``; False when the index already reflects a newer
        event for this id (the change is then ignored)."""
        new = IndexEntry.from_device(device, event_id)
        with self._lock:
            old = self._entries.get(device.id)
            if old is not None and old.event_id >= event_id:
                return False
            removed = self._removed.get(device.id)
            if removed is not None:
                if removed[0] >= event_id:
                    return False
                del self._removed[device.id]
            if old is None:
                bisect.insort(self._ids, device.id)
                bisect.insort(self._by_feeder.setdefault(new.feeder, []), device.id)
            elif old.feeder != new.feeder:
                self._drop_from_feeder(old)
                bisect.insort(self._by_feeder.setdefault(new.feeder, []), device.id)
            self._entries[device.id] = new
            return True

    def remove(self, device_id: str, event_id: int) -> bool:
        """Remove ``device_id`` as of event ``event_id``; False when it was absent or the entry
        reflects a newer event."""
        with self._lock:
            now = self.clock()
            self._forget_old_removals(now)
            old = self._entries.get(device_id)
            if old is not None and old.event_id > event_id:
                return False
            previous = self._removed.pop(device_id, None)
            # re-inserted at the end: the dict stays ordered by the time of the removal
            self._removed[device_id] = (max(event_id, previous[0] if previous else 0), now)
            if old is None:
                return False
            del self._entries[device_id]
            del self._ids[bisect.bisect_left(self._ids, device_id)]
            self._drop_from_feeder(old)
            return True

    def refresh(self, device_id: str, expires: float, last_heartbeat: float) -> bool:
        """Apply a heartbeat that changed only ``expires`` and ``last_heartbeat`` (epoch s).

        Ignored (False) when the device is not in the index or the entry already holds this or a
        later heartbeat.
        """
        with self._lock:
            old = self._entries.get(device_id)
            if old is None or (old.last_heartbeat is not None and old.last_heartbeat >= last_heartbeat):
                return False
            self._entries[device_id] = old.refreshed(expires, last_heartbeat)
            return True

    def _drop_from_feeder(self, entry: IndexEntry) -> None:
        ids = self._by_feeder[entry.feeder]
        del ids[bisect.bisect_left(ids, entry.device_id)]
        if not ids:
            del self._by_feeder[entry.feeder]

    def _forget_old_removals(self, now: float) -> None:
        while self._removed:
            oldest = next(iter(self._removed))
            if now - self._removed[oldest][1] <= self.tombstone_s:
                break
            del self._removed[oldest]

    # ---------------------------------------------------------------- queries
    def page(
        self,
        feeder: str | None = None,
        role: str | None = None,
        algorithm: str | None = None,
        alive: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[str, bool]:
        """Records matching all given filters, ordered by id, as JSON text of a list.

        Returns
        -------
        (page, more)
            The JSON list of at most ``limit`` records from ``offset``, and whether more follow.

        Raises
        ------
        ValueError
            For ``offset`` < 0 or ``limit`` < 1.
        """
        if offset < 0 or limit < 1:
            raise ValueError(f"offset must be >= 0 and limit >= 1 (got {offset}, {limit})")
        texts: list[str] = []
        with self._lock:
            ids = self._ids if feeder is None else self._by_feeder.get(feeder, [])
            entries = self._entries
            if role is None and algorithm is None and alive is None:
                chosen = ids[offset : offset + limit + 1]
                texts = [entries[i].text for i in chosen]
            else:
                skip = offset
                for device_id in ids:
                    e = entries[device_id]
                    if (
                        (role is not None and e.role != role)
                        or (alive is not None and e.alive != alive)
                        or (algorithm is not None and algorithm not in e.algorithms)
                    ):
                        continue
                    if skip:
                        skip -= 1
                        continue
                    texts.append(e.text)
                    if len(texts) > limit:
                        break
        more = len(texts) > limit
        return "[" + ",".join(texts[:limit]) + "]", more
