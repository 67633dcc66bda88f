"""Fault events waiting for their COMTRADE record (plain module, no middleware).

The detector publishes a ``FaultEvent`` at detection and writes its record ``record_post_s``
later (the ``.cfg`` last, so an existing ``.cfg`` means a complete record). Consumers that read the
record queue the event here and collect it once the file exists, or give up after a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["RecordWait", "Waited"]

T = TypeVar("T")


@dataclass(frozen=True)
class Waited(Generic[T]):
    """An item queued for a record: the record's path and the item (e.g. the event message)."""

    path: str
    item: T


@dataclass
class _Entry(Generic[T]):
    item: T
    deadline: float
    not_before: float


class RecordWait(Generic[T]):
    """Items keyed by the record path they wait for.

    Parameters
    ----------
    timeout_s
        How long an item waits for its record before it expires (s).
    clock
        Monotonic time in s.
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not timeout_s > 0:
            raise ValueError(f"record wait timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self.clock = clock
        self._entries: dict[str, _Entry[T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, path: str, item: T, min_wait_s: float = 0.0) -> None:
        """Queue ``item`` until the record ``path`` exists and at least ``min_wait_s`` s passed.

        A second item for the same path replaces the first.
        """
        now = self.clock()
        self._entries[path] = _Entry(item, now + self.timeout_s, now + min_wait_s)

    def collect(self) -> tuple[list[Waited[T]], list[Waited[T]]]:
        """``(ready, expired)``: items whose record is on disk (and whose minimum wait passed),
        and items whose record did not appear within the timeout; both leave the queue."""
        now = self.clock()
        ready: list[Waited[T]] = []
        expired: list[Waited[T]] = []
        for path, entry in list(self._entries.items()):
            if now >= entry.not_before and Path(path).exists():
                ready.append(Waited(path, entry.item))
            elif now > entry.deadline:
                expired.append(Waited(path, entry.item))
            else:
                continue
            del self._entries[path]
        return ready, expired
