"""Pydantic models: the catalog's API contract (REST bodies, MQTT payloads, configuration).

All times are timezone-aware UTC datetimes, serialized as ISO-8601 (``...Z``); durations are
seconds (float). Strings that reach storage forbid control characters so every backend accepts
them; wrong input is rejected by validation (HTTP 422 with a message naming the field).
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

#: Device ids: letters, digits and ``_ . : -``; no ``/``, ``+`` or ``#`` so they fit in MQTT topics.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
#: Printable text without control characters, at most 256 characters.
Text = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: Names of grid elements (buses, lines, feeders) as in the network description.
GridName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: Algorithm names: lower-case identifiers such as ``fault_location``.
AlgorithmName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
#: A concrete MQTT topic (no wildcards).
Topic = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f+#]+$")]
#: An MQTT topic filter (``+`` and ``#`` allowed).
TopicFilter = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Role = Literal["feeder_head", "secondary"]
EventType = Literal["created", "updated", "expired", "deleted", "configured"]

_MAX_TTL_S = 7 * 86400.0


class _Strict(BaseModel):
    # No coercion (``"5"`` is not an int, ``false`` is not an address) and no unknown fields.
    model_config = ConfigDict(extra="forbid", strict=True)


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


#: An IPv4 or IPv6 address as text (normalized).
IpAddress = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_check_ip),
    WithJsonSchema({"type": "string", "format": "ip"}),
]


class GridPortion(_Strict):
    """The part of the grid a device monitors (ids of the network description)."""

    network: GridName | None = Field(default=None, description="Network name, e.g. 'mini'.")
    feeder: GridName | None = Field(default=None, description="Feeder id (first line out of the source).")
    lateral: GridName | None = Field(default=None, description="Lateral id, when the device watches one.")
    bus: GridName | None = Field(default=None, description="Bus where the device sits.")
    line: GridName | None = Field(
        default=None, description="Measured line (current flows from `bus` into it)."
    )


class Endpoints(_Strict):
    """How to reach a device."""

    ip: IpAddress | None = Field(default=None, description="IP address of the device.")
    rest_base_url: (
        Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f\x7f]{1,500}$")] | None
    ) = Field(default=None, description="Base URL of the device's own REST API (http or https).")
    mqtt_publishes: list[Topic] = Field(
        default_factory=list, max_length=64, description="Topics it publishes."
    )
    mqtt_subscribes: list[TopicFilter] = Field(
        default_factory=list, max_length=64, description="Topic filters it subscribes to."
    )


class DeviceRegistration(_Strict):
    """Body of ``PUT /devices/{id}``: what a device (or an operator) declares about it."""

    role: Role
    grid: GridPortion = Field(default_factory=GridPortion)
    endpoints: Endpoints = Field(default_factory=Endpoints)
    algorithms: list[AlgorithmName] = Field(
        default_factory=list, max_length=32, description="Algorithms running now."
    )
    firmware_version: Text | None = None
    config_version: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Configuration version applied."
    )
    ttl: float | None = Field(
        default=None,
        gt=0,
        le=_MAX_TTL_S,
        description="Seconds the record stays valid without refresh; server default when absent.",
    )


class DevicePatch(_Strict):
    """Body of ``PATCH /devices/{id}`` (JSON merge patch: given fields replace, nested objects merge)."""

    role: Role = Field(default=None, description="New role (cannot be null).")  # type: ignore[arg-type]
    grid: dict[str, GridName | None] | None = None
    endpoints: dict[str, Any] | None = None
    algorithms: list[AlgorithmName] = Field(default=None, max_length=32)  # type: ignore[arg-type]
    firmware_version: Text | None = None
    config_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    ttl: float | None = Field(default=None, gt=0, le=_MAX_TTL_S)


class Device(BaseModel):
    """A device record as stored and returned by the catalog."""

    id: DeviceId
    role: Role
    grid: GridPortion
    endpoints: Endpoints
    algorithms: list[str]
    firmware_version: str | None = None
    config_version: int | None = None
    created: datetime = Field(description="First registration (UTC).")
    modified: datetime = Field(description="Last change of the record (UTC).")
    ttl: float = Field(description="Seconds of validity after each refresh or heartbeat.")
    expires: datetime = Field(description="The record is removed (event `expired`) after this instant (UTC).")
    alive: bool = Field(
        description="False once the device announced (or its Last Will announced) it is offline."
    )
    health: str | None = Field(default=None, description="Health reported by the last heartbeat.")
    last_heartbeat: datetime | None = None


class DeviceStatus(BaseModel):
    """Heartbeat payload on ``sma3/mgmt/devices/{id}/status`` (JSON). Unknown fields are ignored.

    The Last Will the catalog hands out is a DeviceStatus with ``state`` ``offline``.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    state: Literal["online", "offline"] = "online"
    algorithms: list[AlgorithmName] | None = Field(default=None, max_length=32)
    config_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    health: Literal["ok", "degraded", "fault"] | None = None
    reason: Text | None = None


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite (got {value})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


class AlgorithmSpec(_Strict):
    """One algorithm a device must run, with its parameters (JSON values, SI units)."""

    name: AlgorithmName
    parameters: dict[Annotated[str, StringConstraints(max_length=64)], Any] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_finite(value, "parameters")
        return value


class BrokerInfo(_Strict):
    """An MQTT broker devices may be told to use."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
    purpose: Literal["data", "management"]
    host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-\[\]]{1,255}$")]
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    ca_ref: Text | None = Field(
        default=None, description="Name of the CA bundle the device must trust (TLS)."
    )
    credentials_ref: Text | None = Field(
        default=None, description="Name of the credentials the device uses (never the secret itself)."
    )


class BrokerSelection(_Strict):
    """Broker names (from ``GET /brokers``) chosen for a device; defaults when None."""

    data: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] | None = None
    management: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] | None = None


class ConfigSpec(_Strict):
    """Body of ``PUT /devices/{id}/config``: what an operator decides for a device.

    Fields left out are derived: the role and grid portion from the network's meter table, the
    algorithms from the role defaults, the brokers from the catalog's defaults.
    """

    network: GridName | None = Field(default=None, description="Network name served by the catalog.")
    role: Role | None = None
    grid: GridPortion | None = None
    brokers: BrokerSelection = Field(default_factory=BrokerSelection)
    algorithms: list[AlgorithmSpec] | None = Field(default=None, max_length=32)
    heartbeat_interval_s: float = Field(default=10.0, ge=0.1, le=3600.0)
    ttl_s: float | None = Field(
        default=None, gt=0, le=_MAX_TTL_S, description="Default: 3 heartbeat intervals."
    )
    network_scope: Literal["feeder", "full"] = Field(
        default="feeder", description="Send the device's feeder only, or the whole network."
    )


class LastWill(BaseModel):
    """The MQTT Last Will a device must set when connecting to the management broker."""

    topic: str
    payload: str = Field(description="UTF-8 JSON of a DeviceStatus with state 'offline'.")
    qos: int = 1
    retain: bool = False


class HeartbeatSpec(BaseModel):
    """Where and how often a device heartbeats."""

    topic: str
    interval_s: float
    ttl_s: float


class ManagementTopics(BaseModel):
    """Topics on the management broker a device listens to."""

    events: str = Field(description="Catalog change announcements (Event JSON).")
    config: str = Field(description="Announcement of a new configuration version for this device.")


class NetworkInfoModel(BaseModel):
    """``network.yaml`` of the network description contract."""

    name: str
    nominal_kv: float
    frequency_hz: float
    source_bus: str
    sc_mva_3ph: float
    sc_mva_1ph: float
    x_over_r: float


class BusModel(BaseModel):
    """A row of ``buses.csv``."""

    bus_id: str
    kind: str
    x: float
    y: float


class LineModel(BaseModel):
    """A row of ``lines.csv`` (ohm/km, nF/km, km)."""

    line_id: str
    bus_a: str
    bus_b: str
    length_km: float
    r1: float
    x1: float
    r0: float
    x0: float
    c1: float
    c0: float


class LoadModel(BaseModel):
    """A row of ``loads.csv`` (kW, kvar)."""

    bus_id: str
    p_kw: float
    q_kvar: float


class SwitchModel(BaseModel):
    """A row of ``switches.csv``."""

    switch_id: str
    line_id: str
    bus_id: str
    kind: str
    normally_open: bool
    remote: bool


class MeterModel(BaseModel):
    """A row of ``meters.csv``."""

    meter_id: str
    bus_id: str
    line_id: str
    role: str


class NetworkDescription(BaseModel):
    """The network description contract as JSON: ``network`` (network.yaml) plus one list per table.

    ``feeder`` is set when the description is restricted to one feeder.
    """

    network: NetworkInfoModel
    feeder: str | None = None
    buses: list[BusModel]
    lines: list[LineModel]
    loads: list[LoadModel]
    switches: list[SwitchModel]
    meters: list[MeterModel]


class DeviceConfig(BaseModel):
    """Body of ``GET /devices/{id}/config``: everything a device needs to configure itself."""

    device_id: str
    version: int = Field(description="Configuration version (0: derived defaults, never stored).")
    modified: datetime | None = None
    role: Role
    grid: GridPortion
    brokers: dict[Literal["data", "management"], BrokerInfo]
    algorithms: list[AlgorithmSpec]
    heartbeat: HeartbeatSpec
    last_will: LastWill
    topics: ManagementTopics
    network: NetworkDescription | None = None


class StoredConfig(BaseModel):
    """One stored configuration version (``GET /devices/{id}/config/versions``)."""

    device_id: str
    version: int
    created: datetime
    author: str
    spec: ConfigSpec


class Event(BaseModel):
    """A catalog change, sent as SSE (``id``/``event``/``data``) and on the MQTT events topic."""

    id: int
    type: EventType
    device_id: str
    time: datetime
    device: Device | None = Field(
        default=None, description="The record after the change (before, for removals)."
    )
    config_version: int | None = None
    reason: str | None = None


class Health(BaseModel):
    """Body of ``/healthz``."""

    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool | None = Field(
        default=None, description="Connected to the management broker (None: MQTT disabled)."
    )
    devices: int


class ErrorBody(BaseModel):
    """Error response body."""

    detail: Any
