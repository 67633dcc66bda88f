"""Per-device configuration: versioned operator specs and their rendering for a device.

A :class:`ConfigStore` keeps every version an operator stored (``PUT /devices/{id}/config``).
A :class:`Configurator` turns the newest spec (or, without one, defaults derived from the served
networks' meter tables) into the :class:`~sma3_catalog.models.DeviceConfig` a device fetches:
brokers, algorithms with parameters, heartbeat topic and Last Will, and its grid portion.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from sma3_catalog.models import (
    AlgorithmSpec,
    BrokerInfo,
    ConfigSpec,
    DeviceConfig,
    DeviceStatus,
    GridPortion,
    HeartbeatSpec,
    LastWill,
    ManagementTopics,
    StoredConfig,
)
from sma3_catalog.networks import NetworkCatalog, describe
from sma3_catalog.registry import to_datetime
from sma3_catalog.storage import configs, is_sqlite
from sma3_catalog.topics import Topics

#: Algorithms a device runs when its spec lists none, by role (parameters in SI units).
DEFAULT_ALGORITHMS: dict[str, list[AlgorithmSpec]] = {
    # Names of the meter agent's algorithm registry (sma3_meter.agent.algorithms); fault detection
    # itself is the signal chain's job on every meter, not a configurable algorithm.
    "feeder_head": [
        AlgorithmSpec(name="fault_location", parameters={"max_candidates": 5}),
    ],
    "secondary": [
        AlgorithmSpec(name="outage_detection", parameters={"undervoltage_pu": 0.1, "hold_s": 0.2}),
        AlgorithmSpec(name="sag_reporting", parameters={"sag_threshold_pu": 0.9}),
    ],
}


class ConfigError(ValueError):
    """A configuration cannot be stored or rendered; the message says why."""


class NoConfigurationError(LookupError):
    """Nothing configures this device: no stored spec and no served network lists it."""

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self.device_id = device_id

    def __str__(self) -> str:
        return (
            f"no configuration for device {self.device_id!r}: an operator must PUT one, "
            "or list the meter in a served network"
        )


class VersionConflictError(Exception):
    """The stored version is not the one the writer based its change on (HTTP 412)."""


class ConfigStore:
    """Versioned configuration specs in the database (versions 1, 2, ... per device)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock() if is_sqlite(engine) else None

    def latest_version(self, device_id: str) -> int:
        """Newest stored version of ``device_id`` (0 when none)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(configs.c.version)).where(configs.c.device_id == device_id)
            ).scalar()
        return int(value or 0)

    def put(
        self, device_id: str, spec: ConfigSpec, author: str, expected_version: int | None = None
    ) -> StoredConfig:
        """Store ``spec`` as the next version.

        Parameters
        ----------
        expected_version
            When given, store only if the newest version is this one (optimistic locking).

        Raises
        ------
        VersionConflictError
            When ``expected_version`` is not the newest version, or a concurrent writer won.
        """
        now = self.clock()
        try:
            if self._lock is not None:
                self._lock.acquire()
            with self.engine.begin() as conn:
                current = int(
                    conn.execute(
                        select(func.max(configs.c.version)).where(configs.c.device_id == device_id)
                    ).scalar()
                    or 0
                )
                if expected_version is not None and expected_version != current:
                    raise VersionConflictError(
                        f"configuration of {device_id!r} is at version {current}, not {expected_version}"
                    )
                version = current + 1
                conn.execute(
                    insert(configs).values(
                        device_id=device_id,
                        version=version,
                        created=now,
                        author=author,
                        spec=spec.model_dump_json(),
                    )
                )
        except IntegrityError:
            raise VersionConflictError(f"configuration of {device_id!r} was changed concurrently") from None
        finally:
            if self._lock is not None:
                self._lock.release()
        return StoredConfig(
            device_id=device_id, version=version, created=to_datetime(now), author=author, spec=spec
        )

    def get(self, device_id: str, version: int | None = None) -> StoredConfig | None:
        """The newest (or the given) version of ``device_id``'s spec; None when absent."""
        query = select(configs).where(configs.c.device_id == device_id)
        if version is None:
            query = query.order_by(configs.c.version.desc()).limit(1)
        else:
            query = query.where(configs.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._stored(row) if row is not None else None

    def versions(self, device_id: str) -> list[StoredConfig]:
        """All stored versions of ``device_id``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(configs).where(configs.c.device_id == device_id).order_by(configs.c.version)
            ).all()
        return [self._stored(r) for r in rows]

    @staticmethod
    def _stored(row: Any) -> StoredConfig:
        return StoredConfig(
            device_id=row.device_id,
            version=row.version,
            created=to_datetime(row.created),
            author=row.author,
            spec=ConfigSpec.model_validate_json(row.spec),
        )


class Configurator:
    """Renders device configurations from specs, brokers, networks and role defaults.

    Parameters
    ----------
    brokers
        Brokers devices may use, by name.
    default_brokers
        Names of the default ``data`` and ``management`` brokers.
    networks
        Served networks.
    topics
        Management topic layout.
    role_defaults
        Algorithms by role when a spec lists none (:data:`DEFAULT_ALGORITHMS` when None).
    """

    def __init__(
        self,
        brokers: Sequence[BrokerInfo],
        default_brokers: Mapping[str, str],
        networks: NetworkCatalog,
        topics: Topics,
        role_defaults: Mapping[str, list[AlgorithmSpec]] | None = None,
    ) -> None:
        self.brokers = {b.name: b for b in brokers}
        if len(self.brokers) != len(brokers):
            raise ConfigError("broker names must be unique")
        for purpose in ("data", "management"):
            name = default_brokers.get(purpose)
            if name is None or name not in self.brokers:
                raise ConfigError(
                    f"default {purpose} broker {name!r} is not among the brokers {sorted(self.brokers)}"
                )
            if self.brokers[name].purpose != purpose:
                raise ConfigError(
                    f"default {purpose} broker {name!r} is declared for {self.brokers[name].purpose}"
                )
        self.default_brokers = dict(default_brokers)
        self.networks = networks
        self.topics = topics
        self.role_defaults = dict(role_defaults if role_defaults is not None else DEFAULT_ALGORITHMS)

    def check(self, spec: ConfigSpec) -> None:
        """Validate a spec against what the catalog serves.

        Raises
        ------
        ConfigError
            Unknown broker or network, a broker of the wrong purpose, a grid feeder not in the network.
        """
        for purpose in ("data", "management"):
            name = getattr(spec.brokers, purpose)
            if name is None:
                continue
            if name not in self.brokers:
                raise ConfigError(
                    f"brokers.{purpose}: unknown broker {name!r} (known: {sorted(self.brokers)})"
                )
            if self.brokers[name].purpose != purpose:
                raise ConfigError(
                    f"brokers.{purpose}: broker {name!r} is a {self.brokers[name].purpose} broker"
                )
        if spec.network is not None and spec.network not in self.networks.sources:
            raise ConfigError(f"network: unknown network {spec.network!r} (served: {self.networks.names()})")
        if spec.network is not None and spec.grid is not None and spec.grid.feeder is not None:
            net = self.networks.get(spec.network)
            if spec.grid.feeder not in net.feeders():
                raise ConfigError(
                    f"grid.feeder: {spec.grid.feeder!r} is not a feeder of {spec.network!r} ({net.feeders()})"
                )

    def render(self, device_id: str, stored: StoredConfig | None) -> DeviceConfig:
        """Build the configuration of ``device_id`` from its newest stored spec (or defaults).

        Raises
        ------
        NoConfigurationError
            Without a stored spec when no served network lists the device as a meter.
        ConfigError
            When the spec leaves the role undetermined or names things that no longer exist.
        """
        spec = stored.spec if stored is not None else ConfigSpec()
        network_name = spec.network
        net = None
        if network_name is None:
            found = self.networks.find_meter(device_id)
            if found is not None:
                network_name, net = found
            elif stored is None:
                raise NoConfigurationError(device_id)
        elif network_name in self.networks.sources:
            net = self.networks.get(network_name)
        else:
            raise ConfigError(
                f"stored configuration names network {network_name!r}, which is no longer served"
            )
        meter = net.meters.get(device_id) if net is not None else None
        role = spec.role or (meter.role if meter is not None else None)
        if role != "feeder_head" and role != "secondary":
            raise ConfigError(
                f"the role of {device_id!r} is unknown: set 'role' in its configuration "
                "or list it in the network's meters table"
            )
        if spec.grid is not None:
            grid = spec.grid.model_copy(update={"network": spec.grid.network or network_name})
        elif meter is not None and net is not None:
            grid = GridPortion(
                network=network_name,
                feeder=net.feeder_of(meter.line_id),
                bus=meter.bus_id,
                line=meter.line_id,
            )
        else:
            grid = GridPortion(network=network_name)
        network_json = None
        if net is not None:
            feeder = grid.feeder if spec.network_scope == "feeder" else None
            network_json = describe(net, feeder)
        brokers = {}
        for purpose in ("data", "management"):
            name = getattr(spec.brokers, purpose) or self.default_brokers[purpose]
            if name not in self.brokers:
                raise ConfigError(
                    f"stored configuration names broker {name!r}, which is no longer configured"
                )
            brokers[purpose] = self.brokers[name]
        ttl = spec.ttl_s if spec.ttl_s is not None else 3.0 * spec.heartbeat_interval_s
        will = DeviceStatus(state="offline", reason="last_will")
        return DeviceConfig(
            device_id=device_id,
            version=stored.version if stored is not None else 0,
            modified=stored.created if stored is not None else None,
            role=role,
            grid=grid,
            brokers=brokers,  # type: ignore[arg-type]
            algorithms=spec.algorithms if spec.algorithms is not None else self.role_defaults.get(role, []),
            heartbeat=HeartbeatSpec(
                topic=self.topics.status(device_id), interval_s=spec.heartbeat_interval_s, ttl_s=ttl
            ),
            last_will=LastWill(
                topic=self.topics.status(device_id),
                payload=json.dumps(will.model_dump(mode="json", exclude_none=True)),
                qos=1,
                retain=False,
            ),
            topics=ManagementTopics(events=self.topics.events, config=self.topics.config(device_id)),
            network=network_json,
        )
