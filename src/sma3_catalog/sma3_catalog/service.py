"""The catalog service: storage, registry, configuration, expiry loop and MQTT link put together.

:class:`CatalogSettings` holds every option (the CLI fills it); :class:`CatalogService` builds
the parts and runs the background work (expiry sweeps, heartbeat batches). The FastAPI app in
:mod:`sma3_catalog.api` serves it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import OperationalError

from sma3_catalog.auth import TokenTable
from sma3_catalog.configuration import ConfigError, ConfigStore, Configurator
from sma3_catalog.metrics import CatalogMetrics
from sma3_catalog.models import AlgorithmSpec, BrokerInfo
from sma3_catalog.mqtt_link import MqttLink, MqttSettings
from sma3_catalog.networks import NetworkCatalog
from sma3_catalog.registry import Registry
from sma3_catalog.storage import make_engine
from sma3_catalog.topics import Topics

log = logging.getLogger(__name__)


class _OutageLog:
    """Logging of a background loop's database failures: the first with its traceback, then one
    line a minute while they last, and one line when the loop works again. Call from an
    ``except`` block (:meth:`failed`) and after each successful pass (:meth:`ok`)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False
        self.last_log = -1e9

    def failed(self) -> None:
        if not self.failing:
            log.exception("%s failed", self.what)
        elif time.monotonic() - self.last_log > 60:
            log.error("%s still failing", self.what)
        else:
            return
        self.failing = True
        self.last_log = time.monotonic()

    def ok(self) -> None:
        if self.failing:
            log.info("%s work again", self.what)
            self.failing = False


@dataclass
class CatalogSettings:
    """Options of a catalog instance (durations in seconds).

    Parameters
    ----------
    db_url
        SQLAlchemy URL (``sqlite:///file.db`` or ``postgresql+psycopg://...``).
    mqtt
        Management broker connection; None runs without MQTT (no heartbeats, no announcements).
    brokers
        Brokers handed out to devices. Empty: derived from ``mqtt`` (one broker serving both purposes
        under the names ``data`` and ``management``).
    default_brokers
        ``{"data": name, "management": name}``; derived when empty.
    networks
        Served networks: name -> source for :func:`sma3_grid.io.load_network`.
    role_defaults
        Default algorithms by role (None: built-in defaults).
    tokens
        Accepted bearer tokens.
    topic_prefix
        Management topic prefix.
    default_ttl_s, offline_grace_s
        See :class:`~sma3_catalog.registry.Registry`.
    expiry_poll_s
        Longest sleep of the expiry loop (s); expiry lag stays below this plus one sweep.
    sse_keepalive_s
        Idle interval (s) after which the event stream sends a comment line.
    index_poll_s
        Interval (s) at which a background thread replays the event log into the registry's device
        index, so that writes by other instances sharing the database appear in ``GET /devices``
        within about this time (this instance's own writes appear at once). A list query replays
        by itself when the last replay is older than ten intervals (e.g. the poller is failing).
        0: no poller, every list query replays first (no SQL-free list path).
    """

    db_url: str
    mqtt: MqttSettings | None = None
    brokers: list[BrokerInfo] = field(default_factory=list)
    default_brokers: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=lambda: {"mini": "mini", "turin22": "turin22"})
    role_defaults: dict[str, list[AlgorithmSpec]] | None = None
    tokens: TokenTable = field(default_factory=TokenTable)
    topic_prefix: str = "sma3/mgmt"
    default_ttl_s: float = 60.0
    offline_grace_s: float = 5.0
    expiry_poll_s: float = 0.2
    sse_keepalive_s: float = 15.0
    index_poll_s: float = 0.1

    def resolved_brokers(self) -> tuple[list[BrokerInfo], dict[str, str]]:
        """Brokers and default names, derived from ``mqtt`` when not configured explicitly."""
        if self.brokers:
            defaults = dict(self.default_brokers)
            for purpose in ("data", "management"):
                if purpose not in defaults:
                    match = [b.name for b in self.brokers if b.purpose == purpose]
                    if not match:
                        raise ConfigError(f"no {purpose} broker configured")
                    defaults[purpose] = match[0]
            return self.brokers, defaults
        host = self.mqtt.host if self.mqtt else "127.0.0.1"
        port = self.mqtt.port if self.mqtt else 1883
        tls = self.mqtt.tls if self.mqtt else False
        brokers = [
            BrokerInfo(
                name="management",
                purpose="management",
                host=host,
                port=port,
                tls=tls,
                credentials_ref="device",
            ),
            BrokerInfo(name="data", purpose="data", host=host, port=port, tls=tls, credentials_ref="device"),
        ]
        return brokers, {"data": "data", "management": "management"}


def load_config_dir(settings: CatalogSettings, config_dir: Path) -> CatalogSettings:
    """Read the optional files of a configuration folder into ``settings``.

    Files (all optional): ``brokers.yaml`` (``brokers``: list of BrokerInfo, ``defaults``:
    {data, management}), ``networks.yaml`` (name: source), ``algorithms.yaml`` (role: list of
    AlgorithmSpec), ``tokens.yaml`` (see :mod:`sma3_catalog.auth`).

    Raises
    ------
    ConfigError
        A file that is not valid YAML or does not match its schema; the message names the file.
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(f"configuration folder {config_dir} does not exist")

    def read(name: str) -> object | None:
        path = config_dir / name
        if not path.exists():
            return None
        try:
            return yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None

    def validate(name: str, kind: Any, data: object) -> Any:
        try:
            return TypeAdapter(kind).validate_python(data)
        except ValidationError as exc:
            raise ConfigError(f"{config_dir / name}: {exc}") from None

    brokers = read("brokers.yaml")
    if brokers is not None:
        if not isinstance(brokers, dict):
            raise ConfigError(f"{config_dir / 'brokers.yaml'}: expected keys 'brokers' and 'defaults'")
        settings.brokers = validate("brokers.yaml", list[BrokerInfo], brokers.get("brokers", []))
        settings.default_brokers = validate("brokers.yaml", dict[str, str], brokers.get("defaults", {}))
    networks = read("networks.yaml")
    if networks is not None:
        sources = validate("networks.yaml", dict[str, str], networks)
        settings.networks = {
            name: (str((config_dir / src).resolve()) if (config_dir / src).exists() else src)
            for name, src in sources.items()
        }
    algorithms = read("algorithms.yaml")
    if algorithms is not None:
        settings.role_defaults = validate("algorithms.yaml", dict[str, list[AlgorithmSpec]], algorithms)
    if (config_dir / "tokens.yaml").exists():
        settings.tokens = TokenTable.load(config_dir / "tokens.yaml")
    return settings


class CatalogService:
    """All parts of one catalog instance.

    Call :meth:`start` to run the expiry loop and the MQTT link, :meth:`stop` to end them.
    """

    def __init__(self, settings: CatalogSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.db_url)
        self.topics = Topics(settings.topic_prefix)
        if settings.index_poll_s < 0:
            raise ValueError(f"index_poll_s must be >= 0, got {settings.index_poll_s}")
        self.registry = Registry(
            self.engine,
            default_ttl_s=settings.default_ttl_s,
            offline_grace_s=settings.offline_grace_s,
            index_max_age_s=10 * settings.index_poll_s,
        )
        self.configs = ConfigStore(self.engine)
        brokers, defaults = settings.resolved_brokers()
        self.networks = NetworkCatalog(settings.networks)
        self.configurator = Configurator(
            brokers, defaults, self.networks, self.topics, role_defaults=settings.role_defaults
        )
        self.tokens = settings.tokens
        self.metrics = CatalogMetrics(self.registry.count)
        self.registry.add_listener(lambda ev: self.metrics.events.labels(ev.type).inc())
        self.mqtt = (
            MqttLink(settings.mqtt, self.topics, self.registry, self.metrics)
            if settings.mqtt is not None
            else None
        )
        self._stop = threading.Event()
        self._expiry_thread: threading.Thread | None = None
        self._index_thread: threading.Thread | None = None
        #: Incremented after every committed event; the SSE endpoint watches it.
        self.event_counter = 0
        self.registry.add_listener(self._count_event)

    def _count_event(self, _event: object) -> None:
        self.event_counter += 1

    def _expiry_loop(self) -> None:
        last_prune = time.monotonic()
        outage = _OutageLog("expiry sweeps")
        poll = self.settings.expiry_poll_s
        while not self._stop.is_set():
            nxt: float | None = None
            try:
                nxt = self.registry.next_expiry()
                now = time.time()
                if nxt is not None and nxt <= now:
                    for _device, lag in self.registry.expire_due(now):
                        self.metrics.expiry_lag.observe(lag)
                    continue
                if time.monotonic() - last_prune > 60:
                    self.registry.prune_events()
                    last_prune = time.monotonic()
                outage.ok()
            except Exception:
                # The loop must survive a database outage; it retries every poll interval.
                outage.failed()
                nxt = None
            wait = poll if nxt is None else min(poll, max(nxt - time.time(), 0.0))
            self._stop.wait(wait)

    def _index_loop(self) -> None:
        # A database outage must not end the poller; list queries replay by themselves meanwhile.
        outage = _OutageLog("device index replays")
        while not self._stop.wait(self.settings.index_poll_s):
            try:
                self.registry.sync_index()
                outage.ok()
            except Exception:
                outage.failed()

    def start(self) -> None:
        """Load the device index, start the expiry loop and (when configured) the MQTT link."""
        try:
            self.registry.load_index()
        except OperationalError:
            # The catalog still starts without its database (/healthz says so); the index is
            # loaded by the first list query once the database answers.
            log.exception("could not load the device index at start")
        self._stop.clear()
        self._expiry_thread = threading.Thread(target=self._expiry_loop, name="catalog-expiry", daemon=True)
        self._expiry_thread.start()
        if self.settings.index_poll_s > 0:
            self._index_thread = threading.Thread(target=self._index_loop, name="catalog-index", daemon=True)
            self._index_thread.start()
        if self.mqtt is not None:
            self.mqtt.start()

    def stop(self) -> None:
        """Stop background work and release database connections."""
        self._stop.set()
        if self.mqtt is not None:
            self.mqtt.stop()
        for thread in (self._expiry_thread, self._index_thread):
            if thread is not None:
                thread.join(timeout=10)
        self._expiry_thread = self._index_thread = None
        self.engine.dispose()
