"""Call a ROS 2 service from a test without losing to the discovery race.

``Client.service_is_ready()`` only says the server's request reader has been matched; the reply
writer on the server side may not yet have matched the client's reply reader, and a reply sent in
that gap is dropped (DDS discovery is per endpoint and not symmetric). The calls our tests make are
idempotent, so the robust answer is to send the request again when no reply came within a short
attempt window, until an overall deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def call_until_answered(
    client: Any,
    request: Any,
    spin_once: Callable[[float], None],
    *,
    what: str,
    timeout_s: float = 30.0,
    attempt_s: float = 3.0,
    details: Callable[[], str] = lambda: "",
) -> Any:
    """Send ``request`` on ``client`` until a reply arrives; return the reply.

    Args:
        client: an ``rclpy.client.Client`` whose service is (or will soon be) available.
        request: the request message; it must be safe to send more than once.
        spin_once: spins the node or executor owning ``client`` for at most the given seconds.
        what: name of the call, used in the failure message.
        timeout_s: overall deadline in seconds, waiting for the service included.
        attempt_s: seconds to wait for one reply before sending the request again.
        details: extra text for the failure message (e.g. the tails of the node logs).

    Raises:
        AssertionError: when no reply arrived within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not client.service_is_ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the service never became available\n{details()}")
        spin_once(0.1)
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        future = client.call_async(request)
        give_up = min(deadline, time.monotonic() + attempt_s)
        while not future.done() and time.monotonic() < give_up:
            spin_once(0.05)
        if future.done():
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"{what}: no reply after {attempts} attempts in {timeout_s:.0f} s\n{details()}")
