"""The self-configuring meter: configuration life cycle, registration, heartbeat, algorithms.

:class:`MeterAgent` is middleware-free: it talks to the catalog through
:class:`~sma3_meter.agent.catalog_client.CatalogClient` (HTTP) and to the brokers through a
:class:`BrokerLinks` object (the paho shell :class:`sma3_meter.agent.mqtt.MqttLinks`, which calls
back :meth:`MeterAgent.on_management_message` and :meth:`MeterAgent.on_data_message`).

Life cycle (:meth:`MeterAgent.step`, called a few times per second by :meth:`MeterAgent.run`):

1. fetch the configuration (``GET /devices/{id}/config``, ``If-None-Match`` its version) at start,
   every ``refresh_s`` and when the management broker announces a new version; a new one is
   validated, cached on disk and applied live (:func:`~sma3_meter.agent.config.plan_changes`:
   start/stop/reconfigure algorithms, reconnect only the brokers that changed);
2. when the catalog is unreachable, keep running (or start) on the cached configuration and
   report health ``degraded``;
3. register (``PUT /devices/{id}``) after each applied configuration and whenever the catalog
   comes back, lost the record (404 on the periodic check) or announces it ``expired``/``deleted``;
4. heartbeat a ``DeviceStatus`` on the management broker every ``heartbeat.interval_s`` (own thread,
   and at once after each applied configuration);
5. look up the feeder's other meters (``GET /devices?feeder=...``) for runners that need peers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import ValidationError

from sma3_catalog.models import BrokerInfo, DeviceConfig, DeviceRegistration, Endpoints, Event, LastWill
from sma3_grid.comtrade import Record
from sma3_grid.model import Network, NetworkError
from sma3_meter.dsp import PhasorSample
from sma3_meter.location.pipeline import RecordLocation

from .algorithms import (
    AlgorithmContext,
    AlgorithmError,
    AlgorithmRunner,
    AlgorithmStatus,
    FaultLocation,
    OutageDetection,
    create_runner,
)
from .catalog_client import CatalogClient, CatalogRequestError, CatalogUnavailableError
from .config import AgentConfigError, ConfigCache, network_from_description, plan_changes
from .messages import DataTopics

__all__ = ["AgentSettings", "BrokerLinks", "MeterAgent"]

log = logging.getLogger(__name__)

_MAX_ENDPOINT_TOPICS = 64
_MAX_REASON = 256


class BrokerLinks(Protocol):
    """The agent's two broker connections (implemented by :class:`sma3_meter.agent.mqtt.MqttLinks`)."""

    def configure(
        self,
        management: BrokerInfo,
        data: BrokerInfo,
        will: LastWill,
        reconnect_management: bool,
        reconnect_data: bool,
    ) -> None:
        """Use these brokers; (re)connect the ones flagged (the Last Will is set on management)."""

    def set_subscriptions(self, purpose: Literal["management", "data"], topics: set[str]) -> None:
        """Topic filters to hold on a broker (kept across reconnections)."""

    def publish(self, purpose: Literal["management", "data"], topic: str, payload: str) -> None:
        """Publish with QoS 1."""

    def connected(self) -> dict[str, bool]:
        """Connection state by purpose."""

    def close(self, final: tuple[str, str] | None) -> None:
        """Publish ``final`` (topic, payload) on management, then disconnect cleanly (no Last Will)."""


@dataclass(frozen=True)
class AgentSettings:
    """What a meter knows before its configuration (durations in s).

    Parameters
    ----------
    device_id
        The meter's id in the catalog.
    catalog_url
        Catalog base URL (``http://host:port`` or ``.../api/v1``).
    token
        The meter's bearer token.
    cache_dir
        Folder of the configuration cache.
    ip, rest_base_url
        End-points announced in the registration.
    firmware_version
        Announced firmware version.
    refresh_s
        Period of configuration re-fetch and registration check.
    retry_s
        Period of retries while the catalog is unreachable.
    peers_refresh_s
        Period of the peers look-up (also done on catalog events about the feeder).
    http_timeout_s
        Timeout of each catalog request.
    catalog_ca
        CA bundle (PEM) to verify an https catalog; None: the system trust store.
    data_prefix
        Prefix of the data-broker topics.
    """

    device_id: str
    catalog_url: str
    token: str
    cache_dir: Path
    ip: str | None = None
    rest_base_url: str | None = None
    firmware_version: str = "0.1.0"
    refresh_s: float = 30.0
    retry_s: float = 2.0
    peers_refresh_s: float = 60.0
    http_timeout_s: float = 3.0
    catalog_ca: str | None = None
    data_prefix: str = "sma3/data"

    def __post_init__(self) -> None:
        for name in ("refresh_s", "retry_s", "peers_refresh_s", "http_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 s, got {getattr(self, name)}")


@dataclass
class _Due:
    fetch: float = 0.0
    check_registration: float = float("inf")
    peers: float = float("inf")


@dataclass
class _Flags:
    refetch: threading.Event = field(default_factory=threading.Event)
    register: threading.Event = field(default_factory=threading.Event)
    peers: threading.Event = field(default_factory=threading.Event)


def _reason(parts: Iterable[str]) -> str | None:
    text = "; ".join(p for p in parts if p)
    text = "".join(c if c.isprintable() else " " for c in text)
    if not text:
        return None
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


class MeterAgent:
    """One meter's agent (thread-safe; :meth:`run` in one thread, callbacks from others).

    Parameters
    ----------
    settings
        Identity, catalog, cache and timing.
    links
        Broker connections.
    client
        Catalog client; built from ``settings`` when None.
    clock
        Wall-clock time (s since the epoch).
    """

    def __init__(
        self,
        settings: AgentSettings,
        links: BrokerLinks,
        client: CatalogClient | None = None,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.links = links
        self.client = client or CatalogClient(
            settings.catalog_url,
            settings.device_id,
            settings.token,
            timeout_s=settings.http_timeout_s,
            verify=settings.catalog_ca if settings.catalog_ca is not None else True,
        )
        self.clock = clock
        self.cache = ConfigCache(settings.cache_dir, settings.device_id)
        self.topics = DataTopics(settings.data_prefix)
        self.config: DeviceConfig | None = None
        #: ``catalog`` or ``cache``: where the configuration in force came from.
        self.config_source: str | None = None
        self.network: Network | None = None
        self.runners: dict[str, AlgorithmRunner] = {}
        #: Algorithms of the configuration that could not be started, with the reason.
        self.failed: dict[str, str] = {}
        #: None before the first request, then whether the last request reached the catalog.
        self.catalog_reachable: bool | None = None
        self.catalog_problem: str | None = None
        self.registered = False
        self.registrations = 0
        self.peers: list[str] = []
        self._lock = threading.RLock()
        self._due = _Due()
        self._flags = _Flags()
        self._stopped = False
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._wake = threading.Event()
        self._heartbeat_now = threading.Event()
        self._applied = False
        self._requested_version: int | None = None
        #: Called with each heartbeat's JSON after it is published (e.g. the ROS shell's DeviceStatus).
        self.heartbeat_listeners: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ configuration
    def _fetch(self, now: float) -> None:
        current = self.config.version if self.config is not None else None
        try:
            fetched = self.client.fetch_config(current)
        except CatalogUnavailableError as exc:
            self._catalog_down(str(exc))
            self._due.fetch = now + self.settings.retry_s
            return
        except (CatalogRequestError, AgentConfigError) as exc:
            came_back = self.catalog_reachable is False
            self.catalog_reachable = True
            self.catalog_problem = f"configuration not usable: {exc}"
            log.error("%s", self.catalog_problem)
            if self.config is None:
                self._start_from_cache()
            if came_back:
                self._flags.register.set()
            self._due.fetch = now + self.settings.refresh_s
            return
        came_back = self.catalog_reachable is False
        self.catalog_reachable = True
        self.catalog_problem = None
        if came_back:
            log.info("catalog %s reachable again", self.client.base)
            self._flags.register.set()
        if fetched is None:
            if self.config_source != "catalog":
                log.info("cached configuration version %s is current", current)
                with self._lock:
                    self.config_source = "catalog"
        else:
            try:
                self.apply(fetched, "catalog")
            except AgentConfigError as exc:
                self.catalog_problem = f"configuration not usable: {exc}"
                log.error("%s", self.catalog_problem)
            else:
                try:
                    self.cache.save(fetched)
                except OSError as exc:
                    log.error("cannot cache the configuration in %s: %s", self.cache.path, exc)
        self._due.fetch = now + self.settings.refresh_s
        if self._due.check_registration == float("inf"):
            self._due.check_registration = now + self.settings.refresh_s

    def _catalog_down(self, why: str) -> None:
        if self.catalog_reachable is not False:
            keeping = (
                f"keeping configuration version {self.config.version}" if self.config else "no configuration"
            )
            log.warning("%s; %s", why, keeping)
        self.catalog_reachable = False
        self.catalog_problem = "catalog unreachable"
        if self.config is None:
            self._start_from_cache()

    def _start_from_cache(self) -> None:
        try:
            cached = self.cache.load()
        except AgentConfigError as exc:
            log.error("cannot use the configuration cache: %s", exc)
            return
        if cached is None:
            log.warning("no cached configuration in %s; waiting for the catalog", self.cache.path)
            return
        log.info("starting on cached configuration version %d from %s", cached.version, self.cache.path)
        self.apply(cached, "cache")

    def apply(self, new: DeviceConfig, source: str) -> None:
        """Apply ``new`` live: start/stop/reconfigure algorithms, reconnect changed brokers.

        Parameters
        ----------
        new
            A validated configuration of this meter.
        source
            ``catalog`` or ``cache``.

        Raises
        ------
        AgentConfigError
            When its network description does not build a valid network (the old one stays).

        Notes
        -----
        Called from the agent's own thread only. The broker connections are changed without the
        agent's lock held: stopping a connection joins its network thread, which may be waiting
        for that lock.
        """
        with self._lock:
            changes = plan_changes(self.config, new)
            network = self.network
        if changes.network_changed:
            try:
                network = network_from_description(new.network) if new.network is not None else None
            except NetworkError as exc:
                raise AgentConfigError(f"configuration {new.version}: invalid network: {exc}") from None
        if changes.management_broker or changes.data_broker:
            self.links.configure(
                new.brokers["management"],
                new.brokers["data"],
                new.last_will,
                changes.management_broker,
                changes.data_broker,
            )
        with self._lock:
            context = AlgorithmContext(
                meter_id=self.settings.device_id,
                role=new.role,
                grid=new.grid,
                network=network,
                topics=self.topics,
                publish=self._publish_data,
                clock=self.clock,
            )
            specs = {a.name: a for a in new.algorithms}
            started, stopped, reconfigured = [], [], []
            for name in list(self.runners):
                if name not in specs:
                    self.runners.pop(name).stop()
                    stopped.append(name)
            for name in list(self.failed):
                if name not in specs or name not in changes.keep:
                    del self.failed[name]
            for name, spec in specs.items():
                runner = self.runners.get(name)
                if runner is not None:
                    if name in changes.reconfigure:
                        try:
                            runner.reconfigure(spec.parameters, context)
                            reconfigured.append(name)
                        except AlgorithmError as exc:
                            self.runners.pop(name).stop()
                            self.failed[name] = str(exc)
                            log.error("algorithm %s stopped: %s", name, exc)
                    else:
                        runner.context = context
                elif name not in self.failed:
                    try:
                        self.runners[name] = create_runner(name, spec.parameters, context)
                        started.append(name)
                    except AlgorithmError as exc:
                        self.failed[name] = str(exc)
                        log.error("algorithm %s not started: %s", name, exc)
            previous = self.config.version if self.config is not None else None
            self.config = new
            self.config_source = source
            self.network = network
            self.links.set_subscriptions("management", {new.topics.config, new.topics.events})
            self._update_data_subscriptions()
            if any(r.wants_peers for r in self.runners.values()):
                self._flags.peers.set()
            self._flags.register.set()
            self._applied = True
        log.info(
            "applied configuration version %d from %s (was %s): started %s, stopped %s, reconfigured %s, "
            "failed %s; brokers: management %s:%d%s, data %s:%d%s",
            new.version,
            source,
            previous,
            started,
            stopped,
            reconfigured,
            sorted(self.failed),
            new.brokers["management"].host,
            new.brokers["management"].port,
            " (reconnect)" if changes.management_broker else "",
            new.brokers["data"].host,
            new.brokers["data"].port,
            " (reconnect)" if changes.data_broker else "",
        )

    def _update_data_subscriptions(self) -> None:
        topics: set[str] = set()
        for runner in self.runners.values():
            topics |= runner.subscriptions()
        self.links.set_subscriptions("data", topics)

    def _publish_data(self, topic: str, payload: str) -> None:
        self.links.publish("data", topic, payload)

    # ------------------------------------------------------------------ registration
    def registration(self) -> DeviceRegistration:
        """The ``PUT /devices/{id}`` body describing the meter now.

        Raises
        ------
        RuntimeError
            Before a configuration is in force.
        """
        with self._lock:
            config = self.config
            if config is None:
                raise RuntimeError("no configuration in force yet")
            publishes = {config.heartbeat.topic}
            subscribes: set[str] = set()
            for runner in self.runners.values():
                publishes |= runner.publications()
                subscribes |= runner.subscriptions()
            if len(subscribes) + 2 > _MAX_ENDPOINT_TOPICS:
                # Too many per-peer topics for the record: announce their wildcard forms instead.
                subscribes = {self.topics.meter("+", t.rsplit("/", 1)[-1]) for t in subscribes}
            subscribes |= {config.topics.config, config.topics.events}
            return DeviceRegistration(
                role=config.role,
                grid=config.grid,
                endpoints=Endpoints(
                    ip=self.settings.ip,
                    rest_base_url=self.settings.rest_base_url,
                    mqtt_publishes=sorted(publishes)[:_MAX_ENDPOINT_TOPICS],
                    mqtt_subscribes=sorted(subscribes)[:_MAX_ENDPOINT_TOPICS],
                ),
                algorithms=sorted(self.runners)[:32],
                firmware_version=self.settings.firmware_version,
                config_version=config.version,
                ttl=config.heartbeat.ttl_s,
            )

    def _register(self, now: float) -> None:
        try:
            body = self.registration()
        except (RuntimeError, ValidationError) as exc:
            log.error("cannot build the registration: %s", exc)
            return
        try:
            created = self.client.register(body)
        except CatalogUnavailableError as exc:
            self._catalog_down(str(exc))
            self._flags.register.set()
            return
        except CatalogRequestError as exc:
            self.registered = False
            self.catalog_problem = f"registration refused: {exc}"
            log.error("%s", self.catalog_problem)
            return
        self.registered = True
        self.registrations += 1
        self._due.check_registration = now + self.settings.refresh_s
        log.info(
            "%s with the catalog: algorithms %s, config version %s, ttl %.1f s",
            "registered" if created else "registration updated",
            body.algorithms,
            body.config_version,
            body.ttl,
        )

    def _check_registration(self, now: float) -> None:
        self._due.check_registration = now + self.settings.refresh_s
        try:
            listed = self.client.registered()
        except CatalogUnavailableError as exc:
            self._catalog_down(str(exc))
            return
        except CatalogRequestError as exc:
            log.error("registration check failed: %s", exc)
            return
        if not listed:
            log.warning("the catalog no longer lists %s; registering again", self.settings.device_id)
            self.registered = False
            self._flags.register.set()

    # ------------------------------------------------------------------ peers
    def _refresh_peers(self, now: float) -> None:
        self._due.peers = now + self.settings.peers_refresh_s
        with self._lock:
            config = self.config
            wanting = [r for r in self.runners.values() if r.wants_peers]
        if config is None or not wanting:
            return
        feeder = config.grid.feeder
        if feeder is None:
            log.error("the configuration names no feeder: cannot look up peers")
            return
        try:
            devices = self.client.devices(feeder=feeder)
        except (CatalogUnavailableError, CatalogRequestError) as exc:
            log.warning("peer look-up on feeder %s failed: %s", feeder, exc)
            if isinstance(exc, CatalogUnavailableError):
                self._catalog_down(str(exc))
            self._due.peers = now + self.settings.retry_s
            return
        peers = sorted(d.id for d in devices if d.id != self.settings.device_id)
        with self._lock:
            before = {n: r.subscriptions() for n, r in self.runners.items()}
            for runner in self.runners.values():
                if runner.wants_peers:
                    runner.set_peers(peers)
            changed = before != {n: r.subscriptions() for n, r in self.runners.items()}
            self.peers = peers
            if changed:
                self._update_data_subscriptions()
                self._flags.register.set()
        if changed:
            log.info("peers on feeder %s: %s", feeder, peers)

    # ------------------------------------------------------------------ heartbeat and health
    def algorithm_status(self) -> list[AlgorithmStatus]:
        """Status of every configured algorithm (started ones and failed ones)."""
        with self._lock:
            out = [r.status() for r in self.runners.values()]
            out += [AlgorithmStatus(n, "failed", why) for n, why in self.failed.items()]
        return sorted(out, key=lambda s: s.name)

    def health(self) -> tuple[str, str | None]:
        """``(health, reason)``: ``ok`` or ``degraded`` with the reasons (at most 256 characters)."""
        with self._lock:
            problems: list[str] = []
            if self.config_source == "cache":
                problems.append(f"running on cached configuration version {self.config.version}")  # type: ignore[union-attr]
            if self.catalog_problem:
                problems.append(self.catalog_problem)
            elif self.config is not None and not self.registered:
                problems.append("not registered")
            problems += [f"{n} failed: {why}" for n, why in sorted(self.failed.items())]
            down = [p for p, ok in self.links.connected().items() if not ok]
            if down:
                problems.append(f"{'/'.join(sorted(down))} broker not connected")
            waiting = sorted(s.name for s in self.algorithm_status() if s.state == "waiting")
        if problems:
            return "degraded", _reason(problems)
        if waiting:
            return "ok", _reason([f"waiting for signal-chain input: {', '.join(waiting)}"])
        return "ok", None

    def status_payload(self, state: str = "online", reason: str | None = None) -> str:
        """The heartbeat JSON: :class:`~sma3_catalog.models.DeviceStatus` fields plus details.

        Extra fields (ignored by the catalog): ``config_source``, ``algorithm_status``.
        """
        health, why = self.health()
        with self._lock:
            body: dict[str, Any] = {
                "state": state,
                "algorithms": sorted(self.runners)[:32],
                "config_version": self.config.version if self.config is not None else None,
                "health": health,
                "reason": reason or why,
                "config_source": self.config_source,
                "algorithm_status": [s.as_dict() for s in self.algorithm_status()],
            }
        return json.dumps({k: v for k, v in body.items() if v is not None})

    def heartbeat(self) -> None:
        """Publish the heartbeat now (no-op before a configuration is in force)."""
        with self._lock:
            config = self.config
        if config is None:
            return
        payload = self.status_payload()
        self.links.publish("management", config.heartbeat.topic, payload)
        for listener in list(self.heartbeat_listeners):
            try:
                listener(payload)
            except Exception:
                log.exception("heartbeat listener %r failed", listener)

    # ------------------------------------------------------------------ inputs from the shells
    def on_phasors(self, sample: PhasorSample) -> None:
        """Feed one cycle report of the signal chain to every algorithm.

        Raises
        ------
        ValueError
            When the report does not hold six finite complex phasors (VA VB VC IA IB IC).
        """
        phasors = np.asarray(sample.phasors)
        if phasors.shape != (6,) or not np.all(np.isfinite(phasors)):
            raise ValueError(
                f"phasor report at sample {sample.sample_index} must hold 6 finite phasors, "
                f"got shape {phasors.shape}"
            )
        with self._lock:
            for runner in list(self.runners.values()):
                runner.on_phasors(sample)

    def on_chain_event(self, event: object) -> None:
        """Feed an event of the signal chain (e.g. FaultDetected) to every algorithm."""
        with self._lock:
            for runner in list(self.runners.values()):
                runner.on_chain_event(event)

    def config_in_force(self) -> DeviceConfig | None:
        """The configuration in force (None before the first one)."""
        with self._lock:
            return self.config

    def fault_locator(self) -> FaultLocation | None:
        """The running ``fault_location`` runner, None when the configuration does not start one."""
        with self._lock:
            return next((r for r in self.runners.values() if isinstance(r, FaultLocation)), None)

    def locate_record(
        self, record: Record, inception_index: int, detected: float
    ) -> tuple[RecordLocation, list[str]] | None:
        """Locate the fault of this meter's record with the running ``fault_location`` runner.

        See :meth:`sma3_meter.agent.algorithms.FaultLocation.locate_record` (parameters, the
        publication on the data broker, the returned located record and evidence meters). Returns None
        when no ``fault_location`` runs.

        Raises
        ------
        sma3_meter.location.LocationError
            The record holds no locatable fault.
        """
        with self._lock:
            runner = self.fault_locator()
            if runner is None:
                return None
            return runner.locate_record(record, inception_index, detected)

    def last_gasp(self) -> int:
        """Publish the last-gasp alarm of every running ``outage_detection``; returns how many.

        Call it when the meter is losing its own supply (e.g. from
        :func:`sma3_meter.detection.install_last_gasp_handler`), before :meth:`shutdown`.
        """
        with self._lock:
            runners = [r for r in self.runners.values() if isinstance(r, OutageDetection)]
            for runner in runners:
                runner.last_gasp()
        return len(runners)

    def on_data_message(self, topic: str, payload: bytes) -> None:
        """A data-broker message (from a network thread): queued for the agent's thread."""
        self._inbox.put((topic, payload))
        self._wake.set()

    def _dispatch_data(self) -> None:
        while True:
            try:
                topic, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                targets = [r for r in self.runners.values() if topic in r.subscriptions()]
                for runner in targets:
                    runner.on_data(topic, payload)
            if not targets:
                log.debug("data message on %s for no running algorithm", topic)

    def on_management_message(self, topic: str, payload: bytes) -> None:
        """A management-broker message: configuration announcements and catalog events."""
        self._handle_management(topic, payload)
        self._wake.set()

    def _handle_management(self, topic: str, payload: bytes) -> None:
        with self._lock:
            config = self.config
        if config is None:
            return
        if topic == config.topics.config:
            try:
                note = json.loads(payload)
                version = int(note["version"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("invalid configuration announcement on %s: %r (%s)", topic, payload[:200], exc)
                return
            self._announced(version, config)
            return
        if topic == config.topics.events:
            try:
                event = Event.model_validate_json(payload)
            except ValidationError as exc:
                log.warning("invalid catalog event on %s: %s", topic, exc.errors()[:2])
                return
            self._on_event(event, config)

    def _announced(self, version: int, config: DeviceConfig) -> None:
        # The config topic and the events topic both announce a version: fetch it once.
        if version in (config.version, self._requested_version):
            return
        self._requested_version = version
        log.info("catalog announced configuration version %d (in force: %d)", version, config.version)
        self._flags.refetch.set()

    def _on_event(self, event: Event, config: DeviceConfig) -> None:
        if event.device_id == self.settings.device_id:
            if event.type in ("expired", "deleted"):
                log.warning("catalog reports this meter %s (%s); registering again", event.type, event.reason)
                self.registered = False
                self._flags.register.set()
            elif event.type == "configured" and event.config_version is not None:
                self._announced(event.config_version, config)
            return
        feeder = event.device.grid.feeder if event.device is not None else None
        with self._lock:
            wants_peers = any(r.wants_peers for r in self.runners.values())
        if (
            wants_peers
            and event.type in ("created", "expired", "deleted")
            and (feeder is None or feeder == config.grid.feeder)
        ):
            self._flags.peers.set()

    # ------------------------------------------------------------------ main loop
    def step(self) -> float:
        """Do the catalog and algorithm work that is due; returns the seconds until more is due.

        Each part reads the clock afresh: catalog requests may take up to the HTTP timeout.
        """
        if self._flags.refetch.is_set() or self.clock() >= self._due.fetch:
            self._flags.refetch.clear()
            self._fetch(self.clock())
        if self.config is not None and self.catalog_reachable:
            if self._flags.register.is_set():
                self._flags.register.clear()
                self._register(self.clock())
            elif self.clock() >= self._due.check_registration:
                self._check_registration(self.clock())
        if self._applied:  # announce a new configuration at once (after registering it)
            self._applied = False
            self._heartbeat_now.set()
        if self._flags.peers.is_set() or self.clock() >= self._due.peers:
            self._flags.peers.clear()
            if self.catalog_reachable:
                self._refresh_peers(self.clock())
            else:
                self._due.peers = self.clock() + self.settings.retry_s
        self._dispatch_data()
        now = self.clock()
        with self._lock:
            for runner in list(self.runners.values()):
                runner.poll(now)
        return max(0.0, min(self._due.fetch, self._due.peers) - self.clock())

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        """Heartbeats in their own thread, so that slow catalog requests never delay them."""
        while not stop.is_set():
            with self._lock:
                config = self.config
            if config is not None and self.links.connected().get("management"):
                self.heartbeat()
                wait = config.heartbeat.interval_s
            else:  # a heartbeat queued while disconnected would be stale: send a fresh one once connected
                wait = 0.1
            self._heartbeat_now.wait(wait)
            self._heartbeat_now.clear()

    def run(self, stop: threading.Event, max_sleep_s: float = 0.1) -> None:
        """Call :meth:`step` and heartbeat until ``stop`` is set, then :meth:`shutdown`."""
        beats = threading.Thread(
            target=self._heartbeat_loop,
            args=(stop,),
            name=f"heartbeat-{self.settings.device_id}",
            daemon=True,
        )
        beats.start()
        try:
            while not stop.is_set():
                wait = self.step()
                self._wake.wait(min(wait, max_sleep_s))
                self._wake.clear()
        finally:
            stop.set()
            self._heartbeat_now.set()
            beats.join(timeout=10)
            self.shutdown()

    def shutdown(self) -> None:
        """Stop the algorithms, announce ``offline`` on the heartbeat topic and disconnect."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            config = self.config
            for runner in self.runners.values():
                runner.stop()
            final = (
                (config.heartbeat.topic, self.status_payload(state="offline", reason="shutdown"))
                if config is not None
                else None
            )
        self.links.close(final)
        self.client.close()
        log.info("meter agent %s stopped", self.settings.device_id)
