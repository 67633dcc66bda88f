"""MQTT topic layout on the management broker (one place, used by catalog and meters).

=====================================  =========  ============================================
Topic                                  Publisher  Payload
=====================================  =========  ============================================
``{prefix}/devices/{id}/status``       device     DeviceStatus JSON (heartbeat; Last Will with
                                                  ``state: offline``)
``{prefix}/devices/{id}/config``       catalog    ``{"device_id", "version"}`` of a new
                                                  configuration (retained)
``{prefix}/events``                    catalog    Event JSON (created/updated/expired/deleted/
                                                  configured)
=====================================  =========  ============================================

The default prefix is ``sma3/mgmt``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Topic names under ``prefix`` (no trailing slash, no wildcards)."""

    prefix: str = "sma3/mgmt"

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.endswith("/") or any(c in self.prefix for c in "+#\x00"):
            raise ValueError(f"invalid MQTT topic prefix {self.prefix!r}")

    def status(self, device_id: str) -> str:
        """Heartbeat / Last Will topic of ``device_id``."""
        return f"{self.prefix}/devices/{device_id}/status"

    def config(self, device_id: str) -> str:
        """Configuration announcements for ``device_id``."""
        return f"{self.prefix}/devices/{device_id}/config"

    @property
    def status_filter(self) -> str:
        """Subscription matching every device's status topic."""
        return f"{self.prefix}/devices/+/status"

    @property
    def events(self) -> str:
        """Catalog change announcements."""
        return f"{self.prefix}/events"

    def device_id_from_status(self, topic: str) -> str | None:
        """The device id in a status topic, None when ``topic`` is not one."""
        head = f"{self.prefix}/devices/"
        if not topic.startswith(head) or not topic.endswith("/status"):
            return None
        device_id = topic[len(head) : -len("/status")]
        return device_id if device_id and "/" not in device_id else None
