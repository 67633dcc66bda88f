"""The meter's configuration: validation, the grid portion as a Network, the on-disk cache, diffs.

The configuration document is the catalog's ``GET /api/v1/devices/{id}/config`` body, validated
with the catalog's own contract (:class:`sma3_catalog.models.DeviceConfig`). Nothing here talks to
the network: :mod:`sma3_meter.agent.catalog_client` fetches, :mod:`sma3_meter.agent.core` applies.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sma3_catalog.models import AlgorithmSpec, BrokerInfo, DeviceConfig, NetworkDescription
from sma3_grid.model import Bus, Line, Load, Meter, Network, NetworkError, NetworkInfo, Switch

__all__ = [
    "AgentConfigError",
    "ConfigCache",
    "ConfigChanges",
    "network_from_description",
    "parse_config",
    "plan_changes",
]


class AgentConfigError(ValueError):
    """A configuration document (fetched or cached) is unusable; the message says where and why."""


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "document"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_config(document: bytes | str | Mapping[str, Any], device_id: str, source: str) -> DeviceConfig:
    """Validate a configuration document for ``device_id``.

    Parameters
    ----------
    document
        JSON text or an already decoded mapping (the body of ``GET /devices/{id}/config``).
    device_id
        The meter's own id; the document must be addressed to it.
    source
        Where the document comes from (URL or file), used in error messages.

    Returns
    -------
    DeviceConfig
        The validated configuration.

    Raises
    ------
    AgentConfigError
        Invalid JSON, a schema violation, another device's configuration, duplicate algorithm names
        or a network description that is not a valid radial network.
    """
    try:
        if isinstance(document, Mapping):
            config = DeviceConfig.model_validate(dict(document))
        else:
            config = DeviceConfig.model_validate_json(document)
    except ValidationError as exc:
        raise AgentConfigError(f"{source}: invalid configuration: {_describe_errors(exc)}") from None
    if config.device_id != device_id:
        raise AgentConfigError(
            f"{source}: configuration is for device {config.device_id!r}, not for {device_id!r}"
        )
    for purpose in ("data", "management"):
        if purpose not in config.brokers:
            raise AgentConfigError(f"{source}: configuration names no {purpose} broker")
        if config.brokers[purpose].purpose != purpose:
            raise AgentConfigError(
                f"{source}: brokers.{purpose} is declared for {config.brokers[purpose].purpose}"
            )
    names = [a.name for a in config.algorithms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AgentConfigError(f"{source}: algorithms listed twice: {duplicates}")
    if config.heartbeat.interval_s <= 0 or config.heartbeat.ttl_s <= 0:
        raise AgentConfigError(f"{source}: heartbeat interval and ttl must be positive")
    if config.network is not None:
        try:
            network_from_description(config.network)
        except NetworkError as exc:
            raise AgentConfigError(f"{source}: invalid network description: {exc}") from None
    return config


def network_from_description(description: NetworkDescription) -> Network:
    """Build a :class:`~sma3_grid.model.Network` from the JSON network description contract.

    Parameters
    ----------
    description
        ``network`` (network.yaml fields) and one row list per table (buses, lines, loads,
        switches, meters), units as in the contract (km, ohm/km, nF/km, kW, kvar).

    Raises
    ------
    sma3_grid.model.NetworkError
        Unknown references, loops, islanded buses, non-positive lengths (the message names the
        table and element).
    """
    info = NetworkInfo(**description.network.model_dump())
    return Network(
        info,
        [Bus(**b.model_dump()) for b in description.buses],
        [Line(**ln.model_dump()) for ln in description.lines],
        [Load(**ld.model_dump()) for ld in description.loads],
        [Switch(**s.model_dump()) for s in description.switches],
        [Meter(**m.model_dump()) for m in description.meters],
    )


class ConfigCache:
    """The last good configuration of one meter, kept as JSON in ``directory``.

    The file is ``<directory>/<device_id>.config.json``; it is replaced atomically (write to a
    temporary file in the same folder, fsync, rename), so a crash leaves the old or the new
    document, never a torn one.
    """

    def __init__(self, directory: Path, device_id: str) -> None:
        self.directory = Path(directory)
        self.device_id = device_id
        self.path = self.directory / f"{device_id}.config.json"

    def save(self, config: DeviceConfig) -> None:
        """Store ``config`` (atomic replace).

        Raises
        ------
        OSError
            When the folder cannot be created or written.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        data = config.model_dump_json(indent=1).encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.device_id}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def load(self) -> DeviceConfig | None:
        """The cached configuration, or None when there is no cache file.

        Raises
        ------
        AgentConfigError
            When the file exists but is unreadable or not a valid configuration of this device.
        """
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AgentConfigError(f"{self.path}: cannot read cached configuration: {exc}") from None
        return parse_config(text, self.device_id, str(self.path))


def _params(spec: AlgorithmSpec) -> str:
    return json.dumps(spec.parameters, sort_keys=True)


@dataclass(frozen=True)
class ConfigChanges:
    """What applying a new configuration changes (see :func:`plan_changes`).

    Attributes
    ----------
    start, stop, reconfigure, keep
        Algorithm names to start, to stop, to give new parameters or a new grid portion, and to
        leave alone.
    management_broker, data_broker
        The broker connection must be (re)made: first configuration, or host/port/TLS/credentials
        changed (for management also the Last Will).
    network_changed
        The grid portion's description or the device's grid portion changed.
    heartbeat_changed
        Heartbeat topic or interval changed.
    """

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    reconfigure: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    management_broker: bool = False
    data_broker: bool = False
    network_changed: bool = False
    heartbeat_changed: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (
            self.start
            or self.stop
            or self.reconfigure
            or self.management_broker
            or self.data_broker
            or self.network_changed
            or self.heartbeat_changed
        )


def _broker_key(broker: BrokerInfo) -> tuple[object, ...]:
    return (broker.host, broker.port, broker.tls, broker.ca_ref, broker.credentials_ref)


def plan_changes(old: DeviceConfig | None, new: DeviceConfig) -> ConfigChanges:
    """Compare two configurations of the same device.

    Parameters
    ----------
    old
        The configuration in force (None before the first one).
    new
        The configuration to apply.

    Returns
    -------
    ConfigChanges
        Algorithms to start/stop/reconfigure (a parameter, role or grid change reconfigures) and
        which broker connections must be remade.
    """
    new_specs = {a.name: a for a in new.algorithms}
    if old is None:
        return ConfigChanges(
            start=tuple(new_specs),
            management_broker=True,
            data_broker=True,
            network_changed=True,
            heartbeat_changed=True,
        )
    old_specs = {a.name: a for a in old.algorithms}
    network_changed = (
        old.grid != new.grid
        or old.role != new.role
        or (old.network.model_dump() if old.network else None)
        != (new.network.model_dump() if new.network else None)
    )
    start = tuple(n for n in new_specs if n not in old_specs)
    stop = tuple(n for n in old_specs if n not in new_specs)
    reconfigure = tuple(
        n
        for n in new_specs
        if n in old_specs and (network_changed or _params(old_specs[n]) != _params(new_specs[n]))
    )
    keep = tuple(n for n in new_specs if n in old_specs and n not in reconfigure)
    management = (
        _broker_key(old.brokers["management"]) != _broker_key(new.brokers["management"])
        or old.last_will != new.last_will
    )
    data = _broker_key(old.brokers["data"]) != _broker_key(new.brokers["data"])
    heartbeat = old.heartbeat != new.heartbeat or old.topics != new.topics
    return ConfigChanges(
        start=start,
        stop=stop,
        reconfigure=reconfigure,
        keep=keep,
        management_broker=management,
        data_broker=data,
        network_changed=network_changed,
        heartbeat_changed=heartbeat,
    )
