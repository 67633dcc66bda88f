"""A small Server-Sent Events reader for the tests (real HTTP streaming with httpx)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseMessage:
    """One SSE message."""

    id: str | None
    event: str
    data: Any


@dataclass
class SseReader:
    """Reads ``url`` in a background thread, collecting messages until :meth:`close`."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    messages: list[SseMessage] = field(default_factory=list)
    status_code: int | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._response: httpx.Response | None = None
        self._changed = threading.Condition()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._opened.wait(10):
            raise TimeoutError(f"SSE stream {self.url} did not open")

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError as exc:
            if not self._stop.is_set():  # an error while the test still listens is reported by wait_for
                self.error = exc
        finally:
            self._opened.set()
            with self._changed:
                self._changed.notify_all()

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", self.url, headers=self.headers) as response,
        ):
            self._response = response
            self.status_code = response.status_code
            self._opened.set()
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if "data" in fields:
                        msg = SseMessage(
                            fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                        )
                        with self._changed:
                            self.messages.append(msg)
                            self._changed.notify_all()
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> SseMessage:
        """Return the first message satisfying ``predicate`` (waiting up to ``timeout_s`` s)."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: self.error is not None or any(predicate(m) for m in self.messages), timeout=timeout_s
            )
            if self.error is not None:
                raise RuntimeError(f"SSE stream {self.url} failed: {self.error!r}")
            if not ok:
                raise TimeoutError(f"no matching SSE message in {timeout_s} s; got {self.messages}")
            return next(m for m in self.messages if predicate(m))

    def close(self) -> None:
        """Stop reading: closes the connection and joins the reader thread."""
        self._stop.set()
        if self._response is not None:
            self._response.close()
        self._thread.join(timeout=5)
