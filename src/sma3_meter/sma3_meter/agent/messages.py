"""Data-broker topics and JSON payloads of the meter agent's algorithms.

=========================================  ===============  =========================================
Topic (data broker)                        Publisher        Payload
=========================================  ===============  =========================================
``sma3/data/meters/{id}/sag``              sag_reporting    :class:`SagMessage` (``state`` start/end)
``sma3/data/meters/{id}/outage``           outage_detection :class:`OutageMessage`
``sma3/data/meters/{id}/location``         fault_location   :class:`LocationMessage`
=========================================  ===============  =========================================

The prefix ``sma3/data/meters/{id}/`` is the one the example mosquitto ACL of the catalog lets a
meter write (``pattern write sma3/data/meters/%u/#``). Voltages are RMS phase-to-ground in V,
``*_pu`` values per unit of the nominal phase-to-ground voltage, times UTC ISO-8601.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "DataTopics",
    "LocationMessage",
    "MessageError",
    "OutageMessage",
    "SagMessage",
    "decode",
]

Magnitudes = Annotated[
    list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]], Field(min_length=3, max_length=3)
]


class MessageError(ValueError):
    """A data-broker payload is not valid JSON of the expected message; the message says why."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class SagMessage(_Message):
    """A voltage sag seen by a meter.

    ``state`` ``start``: published at the first steady (non-transient) report below the threshold;
    ``v_mag`` are the fault-state magnitudes. ``end``: the voltage recovered; ``v_mag`` are the
    lowest magnitudes seen during the sag and ``duration_s`` its length.
    """

    meter_id: str
    time: datetime
    state: Literal["start", "end"]
    v_mag: Magnitudes = Field(description="Phase A, B, C RMS magnitudes (V).")
    v_pu: Magnitudes = Field(description="The same per unit of nominal phase-to-ground voltage.")
    duration_s: float | None = Field(None, ge=0.0, description="Sag length (s), for state 'end'.")
    sample_index: int | None = None
    pre_p_w: float | None = Field(
        None,
        allow_inf_nan=False,
        description="State 'start': three-phase active power (W) into the measured line before the sag "
        "(mean of the last steady reports); used by feeder-head locators to model the loads.",
    )
    pre_q_var: float | None = Field(
        None, allow_inf_nan=False, description="State 'start': the same for reactive power (var)."
    )


class OutageMessage(_Message):
    """An outage alarm (from :class:`sma3_meter.detection.OutageMonitor`)."""

    meter_id: str
    time: datetime
    kind: Literal["loss_of_voltage", "restored", "last_gasp"]
    phases: Annotated[list[bool], Field(min_length=3, max_length=3)] = Field(
        description="Dead phases (loss_of_voltage, last_gasp) or restored ones (restored), A B C."
    )
    v_mag: Annotated[list[float], Field(min_length=3, max_length=3)] = Field(
        description="Phase RMS magnitudes (V) at detection (NaN-free; -1 when never measured)."
    )
    sample_index: int | None = None


class LocationMessage(_Message):
    """Result of the feeder head's fault location."""

    meter_id: str
    time: datetime
    fault_type: str
    inception_index: int
    candidates: list[dict[str, Any]] = Field(
        description="Candidates best first, as sma3_meter.location.Candidate.as_dict() (km, ohm)."
    )
    evidence: list[str] = Field(description="Meters whose sag/outage reports were used.")


@dataclass(frozen=True)
class DataTopics:
    """Topic layout on the data broker under ``prefix`` (no trailing slash)."""

    prefix: str = "sma3/data"

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.endswith("/") or any(c in self.prefix for c in "+#\x00"):
            raise ValueError(f"invalid MQTT topic prefix {self.prefix!r}")

    def meter(self, meter_id: str, kind: str) -> str:
        """``{prefix}/meters/{meter_id}/{kind}``."""
        return f"{self.prefix}/meters/{meter_id}/{kind}"

    def sag(self, meter_id: str) -> str:
        """Sag reports of ``meter_id``."""
        return self.meter(meter_id, "sag")

    def outage(self, meter_id: str) -> str:
        """Outage alarms of ``meter_id``."""
        return self.meter(meter_id, "outage")

    def location(self, meter_id: str) -> str:
        """Fault location results of the feeder-head meter ``meter_id``."""
        return self.meter(meter_id, "location")

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(meter_id, kind)`` of a meter data topic, None for other topics."""
        head = f"{self.prefix}/meters/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0], parts[1]


_KINDS: dict[str, type[_Message]] = {
    "sag": SagMessage,
    "outage": OutageMessage,
    "location": LocationMessage,
}


def decode(topics: DataTopics, topic: str, payload: bytes) -> SagMessage | OutageMessage | LocationMessage:
    """Decode a payload received on a meter data topic.

    Raises
    ------
    MessageError
        Unknown topic, invalid JSON or schema, or a ``meter_id`` that differs from the topic's.
    """
    parsed = topics.parse(topic)
    if parsed is None or parsed[1] not in _KINDS:
        raise MessageError(f"{topic!r} is not a sag/outage/location topic under {topics.prefix}/meters/")
    meter_id, kind = parsed
    try:
        message = _KINDS[kind].model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise MessageError(f"invalid {kind} message on {topic!r}: {where}: {first['msg']}") from None
    if message.meter_id != meter_id:  # type: ignore[attr-defined]
        raise MessageError(
            f"{kind} message on {topic!r} names meter {message.meter_id!r}"  # type: ignore[attr-defined]
        )
    return message  # type: ignore[return-value]
