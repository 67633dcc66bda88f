"""On-board algorithms the agent starts by name, and their registry (plain module, no middleware).

A runner gets its parameters (JSON values, SI units or per unit) and an
:class:`AlgorithmContext` (meter id, grid portion as a :class:`~sma3_grid.model.Network`, a
``publish(topic, json)`` callable for the data broker). The agent feeds it:

- :meth:`AlgorithmRunner.on_phasors` - cycle reports (:class:`~sma3_meter.dsp.PhasorSample`) of the
  signal chain (:class:`~sma3_meter.detection.SignalChain`), given by the ROS shell or a test;
- :meth:`AlgorithmRunner.on_chain_event` - the chain's events (e.g. :class:`FaultDetected`);
- :meth:`AlgorithmRunner.on_data` - data-broker messages on the runner's :meth:`subscriptions`;
- :meth:`AlgorithmRunner.poll` - the time, a few times per second.

Runners that have not received signal-chain input say so: their status is ``waiting``.

Registered algorithms (:data:`ALGORITHMS`): ``sag_reporting``, ``outage_detection``,
``fault_location``; the catalog's default names ``sag_report`` and ``outage_report`` are aliases
(:data:`ALIASES`).
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np

from sma3_catalog.models import GridPortion
from sma3_grid.comtrade import Record
from sma3_grid.model import Network
from sma3_meter.detection import (
    LAST_GASP,
    LOSS_OF_VOLTAGE,
    RESTORED,
    FaultDetected,
    OutageChange,
    OutageMonitor,
    OutageSettings,
)
from sma3_meter.dsp import PhasorSample
from sma3_meter.location import (
    LoadEvidence,
    LocationError,
    LocationResult,
    LocatorSettings,
    OutageEvidence,
    SagEvidence,
    feeder_model,
    load_evidence_meters,
    locate,
)
from sma3_meter.location.pipeline import RecordLocation, locate_record

from .messages import DataTopics, LocationMessage, MessageError, OutageMessage, SagMessage, decode

__all__ = [
    "ALGORITHMS",
    "ALIASES",
    "AlgorithmContext",
    "AlgorithmError",
    "AlgorithmRunner",
    "AlgorithmStatus",
    "FaultLocation",
    "OutageDetection",
    "SagReporting",
    "UnknownAlgorithmError",
    "create_runner",
    "register_algorithm",
]

log = logging.getLogger(__name__)

Publish = Callable[[str, str], None]


class AlgorithmError(ValueError):
    """An algorithm cannot run with these parameters or this grid portion; the message says why."""


class UnknownAlgorithmError(AlgorithmError):
    """No runner is registered under this name."""


@dataclass
class AlgorithmContext:
    """What a runner knows about its meter.

    Attributes
    ----------
    meter_id : str
        The meter's device id.
    role : str
        ``feeder_head`` or ``secondary``.
    grid : GridPortion
        The grid portion from the configuration.
    network : Network or None
        That portion's network description (None when the configuration has none).
    topics : DataTopics
        Data-broker topic layout.
    publish : callable
        ``publish(topic, payload_json)`` on the data broker (QoS 1).
    clock : callable
        Wall-clock time in s since the epoch.
    """

    meter_id: str
    role: str
    grid: GridPortion
    network: Network | None
    topics: DataTopics
    publish: Publish
    clock: Callable[[], float] = time.time

    def nominal_phase_voltage_v(self, override: float | None) -> float:
        """Nominal phase-to-ground RMS voltage (V): ``override`` or the network's ``nominal_kv``."""
        if override is not None:
            return override
        if self.network is None:
            raise AlgorithmError(
                "needs the grid portion's network description (for the nominal voltage) "
                "or the parameter nominal_voltage_v"
            )
        return self.network.info.nominal_kv * 1e3 / math.sqrt(3.0)

    def now_iso(self) -> datetime:
        """Current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)


@dataclass(frozen=True)
class AlgorithmStatus:
    """State of one algorithm: ``running``, ``waiting`` (for signal-chain input) or ``failed``."""

    name: str
    state: Literal["running", "waiting", "failed"]
    detail: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "state": self.state, "detail": self.detail}


class _Params:
    """Typed reading of a parameters mapping; :meth:`finish` rejects unknown names."""

    def __init__(self, algorithm: str, parameters: Mapping[str, Any]) -> None:
        self.algorithm = algorithm
        self.values = dict(parameters)
        self.used: set[str] = set()

    def number(
        self, key: str, default: float | None, low: float = -math.inf, high: float = math.inf
    ) -> float | None:
        self.used.add(key)
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise AlgorithmError(f"{self.algorithm}: parameter {key} must be a finite number, got {value!r}")
        if not low <= value <= high:
            raise AlgorithmError(f"{self.algorithm}: parameter {key} must be in [{low}, {high}], got {value}")
        return float(value)

    def required(self, key: str, default: float, low: float = -math.inf, high: float = math.inf) -> float:
        value = self.number(key, default, low, high)
        assert value is not None
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            raise AlgorithmError(
                f"{self.algorithm}: unknown parameters {unknown} (known: {sorted(self.used)})"
            )


class AlgorithmRunner(ABC):
    """Base of the runners; subclasses read their parameters in :meth:`configure`.

    Parameters
    ----------
    name
        The name the configuration used (an alias stays visible as such).
    parameters
        The configuration's parameters of this algorithm.
    context
        Meter, grid portion and data-broker publisher.

    Raises
    ------
    AlgorithmError
        Unknown or out-of-range parameters, a grid portion the algorithm cannot work on.
    """

    def __init__(self, name: str, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        self.name = name
        self.context = context
        self.reports = 0
        self.init_state()
        self.configure(parameters, context)

    # -- to override: configure and status always; the other hooks do nothing unless overridden
    # (B027: optional no-op hooks of an abstract base are intended here)
    def init_state(self) -> None:  # noqa: B027
        """Set up the state that survives reconfiguration (called once, before :meth:`configure`)."""

    @abstractmethod
    def configure(self, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        """Read parameters and context (called at start and on reconfiguration)."""

    @abstractmethod
    def status(self) -> AlgorithmStatus:
        """Current state for heartbeats and logs."""

    def subscriptions(self) -> set[str]:
        """Data-broker topic filters this runner needs."""
        return set()

    def publications(self) -> set[str]:
        """Data-broker topics this runner publishes."""
        return set()

    @property
    def wants_peers(self) -> bool:
        """True when the runner needs the other meters of its feeder (:meth:`set_peers`)."""
        return False

    def set_peers(self, meter_ids: Iterable[str]) -> None:
        """The meters of the feeder listed by the catalog (other than this one)."""
        raise AlgorithmError(f"{self.name} does not use peers")

    def on_phasors(self, sample: PhasorSample) -> None:
        """A cycle report of the signal chain."""
        self.reports += 1

    def on_chain_event(self, event: object) -> None:  # noqa: B027
        """An event of the signal chain (FaultDetected, FaultCleared, Disturbance, OutageChange)."""

    def on_data(self, topic: str, payload: bytes) -> None:  # noqa: B027
        """A message on one of :meth:`subscriptions`."""

    def poll(self, now: float) -> None:  # noqa: B027
        """Periodic call with the wall-clock time (s)."""

    def stop(self) -> None:  # noqa: B027
        """Release what the runner holds (called before it is dropped)."""

    # -- shared
    def reconfigure(self, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        """Apply new parameters or a new grid portion without losing the runner's identity."""
        self.context = context
        self.configure(parameters, context)


def _mags(sample: PhasorSample) -> np.ndarray:
    return np.abs(np.asarray(sample.v, dtype=complex))


class SagReporting(AlgorithmRunner):
    """Reports voltage sags of this meter on ``sma3/data/meters/{id}/sag`` (:class:`SagMessage`).

    Parameters (``parameters`` mapping)
    -----------------------------------
    sag_threshold_pu : float, default 0.9
        A sag starts when a phase's magnitude drops below this (per unit of nominal phase voltage).
    recovery_pu : float, default min(sag_threshold_pu + 0.02, 1.0)
        The sag ends when every phase is back above this (hysteresis).
    nominal_voltage_v : float, optional
        Nominal phase-to-ground voltage (V); default from the network's ``nominal_kv``.

    Transient reports (windows straddling an abrupt change) are skipped, so ``v_mag`` of ``start``
    is a steady fault-state magnitude, usable as :class:`~sma3_meter.location.SagEvidence`; its
    ``pre_p_w`` / ``pre_q_var`` (mean three-phase power of the last ``PRE_REPORTS`` steady reports
    before the sag) are usable as :class:`~sma3_meter.location.LoadEvidence`.
    """

    PRE_REPORTS = 10

    def configure(self, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        p = _Params(self.name, parameters)
        self.threshold = p.required("sag_threshold_pu", 0.9, 0.01, 1.0)
        self.recovery = p.required("recovery_pu", min(self.threshold + 0.02, 1.0), self.threshold, 1.2)
        self.nominal_v = context.nominal_phase_voltage_v(p.number("nominal_voltage_v", None, 1.0, 1e6))
        p.finish()

    def init_state(self) -> None:
        self.sags = 0
        self._start: tuple[float, int] | None = None
        self._lowest = np.full(3, np.inf)
        self._pre_power: deque[complex] = deque(maxlen=self.PRE_REPORTS)

    def publications(self) -> set[str]:
        return {self.context.topics.sag(self.context.meter_id)}

    def _publish(
        self, state: Literal["start", "end"], mags: np.ndarray, index: int, duration: float | None
    ) -> None:
        pre = complex(np.mean(self._pre_power)) if state == "start" and self._pre_power else None
        msg = SagMessage(
            meter_id=self.context.meter_id,
            time=self.context.now_iso(),
            state=state,
            v_mag=[float(x) for x in mags],
            v_pu=[float(x) for x in mags / self.nominal_v],
            duration_s=duration,
            sample_index=index,
            pre_p_w=None if pre is None else pre.real,
            pre_q_var=None if pre is None else pre.imag,
        )
        self.context.publish(self.context.topics.sag(self.context.meter_id), msg.model_dump_json())

    def on_phasors(self, sample: PhasorSample) -> None:
        super().on_phasors(sample)
        if sample.transient:
            return
        mags = _mags(sample)
        pu = mags / self.nominal_v
        if self._start is None:
            if float(pu.min()) < self.threshold:
                self._start = (self.context.clock(), sample.sample_index)
                self._lowest = mags.copy()
                self.sags += 1
                log.info("%s: sag at sample %d, %s pu", self.name, sample.sample_index, np.round(pu, 3))
                self._publish("start", mags, sample.sample_index, None)
                self._pre_power.clear()
            else:
                self._pre_power.append(complex(np.sum(sample.p_w), np.sum(sample.q_var)))
            return
        self._lowest = np.minimum(self._lowest, mags)
        if float(pu.min()) >= self.recovery:
            started, _index = self._start
            self._start = None
            self._publish("end", self._lowest, sample.sample_index, max(self.context.clock() - started, 0.0))

    def status(self) -> AlgorithmStatus:
        if self.reports == 0:
            return AlgorithmStatus(self.name, "waiting", "no phasors received from the signal chain yet")
        state = "in a sag" if self._start is not None else "voltage normal"
        return AlgorithmStatus(self.name, "running", f"{state}; {self.sags} sags reported")


_OUTAGE_KIND = {LOSS_OF_VOLTAGE: "loss_of_voltage", RESTORED: "restored", LAST_GASP: "last_gasp"}


class OutageDetection(AlgorithmRunner):
    """Publishes outage alarms of :class:`~sma3_meter.detection.OutageMonitor` (:class:`OutageMessage`).

    Parameters (``parameters`` mapping)
    -----------------------------------
    undervoltage_pu : float, default 0.2
        A phase below this (per unit of nominal phase voltage) is dead.
    restore_pu : float, default 0.85
        Every phase above this means restored.
    hold_s, restore_hold_s : float, default 0.06 and 0.1
        Time (s) the condition must last, converted to cycle reports at the network frequency.
    nominal_voltage_v : float, optional
        Nominal phase-to-ground voltage (V); default from the network's ``nominal_kv``.
    """

    def configure(self, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        p = _Params(self.name, parameters)
        under = p.required("undervoltage_pu", 0.2, 0.0, 1.0)
        restore = p.required("restore_pu", 0.85, under, 1.2)
        hold = p.required("hold_s", 0.06, 0.0, 60.0)
        restore_hold = p.required("restore_hold_s", 0.1, 0.0, 600.0)
        nominal = context.nominal_phase_voltage_v(p.number("nominal_voltage_v", None, 1.0, 1e6))
        p.finish()
        f = context.network.info.frequency_hz if context.network is not None else 50.0
        self.settings = OutageSettings(
            nominal_voltage_v=nominal,
            outage_fraction=under,
            restore_fraction=restore,
            outage_cycles=max(1, round(hold * f)),
            restore_cycles=max(1, round(restore_hold * f)),
        )
        self.monitor = OutageMonitor(self.settings)

    def init_state(self) -> None:
        self.alarms = 0

    def publications(self) -> set[str]:
        return {self.context.topics.outage(self.context.meter_id)}

    def _publish(self, change: OutageChange) -> None:
        msg = OutageMessage(
            meter_id=self.context.meter_id,
            time=self.context.now_iso(),
            kind=_OUTAGE_KIND[change.kind],  # type: ignore[arg-type]
            phases=list(change.phases),
            v_mag=[float(v) if math.isfinite(v) else -1.0 for v in change.v_mag],
            sample_index=change.sample_index,
        )
        self.alarms += 1
        log.info("%s: %s on phases %s", self.name, msg.kind, change.phases)
        self.context.publish(self.context.topics.outage(self.context.meter_id), msg.model_dump_json())

    def on_phasors(self, sample: PhasorSample) -> None:
        super().on_phasors(sample)
        change = self.monitor.update(sample.sample_index, _mags(sample))
        if change is not None:
            self._publish(change)

    def last_gasp(self) -> None:
        """Publish the last-gasp alarm (the shell calls it when the meter loses its own supply)."""
        self._publish(self.monitor.last_gasp())

    def status(self) -> AlgorithmStatus:
        if self.reports == 0:
            return AlgorithmStatus(self.name, "waiting", "no phasors received from the signal chain yet")
        state = "outage" if self.monitor.in_outage else "voltage present"
        return AlgorithmStatus(self.name, "running", f"{state}; {self.alarms} alarms published")


@dataclass
class _Evidence:
    received: float
    sag: SagEvidence | None = None
    outage: OutageEvidence | None = None
    load: LoadEvidence | None = None


@dataclass
class _PendingFault:
    event: FaultDetected
    detected: float
    due: float


class FaultLocation(AlgorithmRunner):
    """Feeder-head fault location with the sag/outage reports of the feeder's other meters.

    Subscribes, on the data broker, to ``sag`` and ``outage`` of the peers the catalog lists on the
    feeder (:meth:`set_peers`) and keeps the latest of each as
    :class:`~sma3_meter.location.SagEvidence` / :class:`~sma3_meter.location.OutageEvidence`.
    When the signal chain reports a :class:`~sma3_meter.detection.FaultDetected`, it waits
    ``evidence_wait_s`` for the peers' reports, runs :func:`sma3_meter.location.locate` and
    publishes a :class:`LocationMessage` on ``sma3/data/meters/{id}/location``.

    Parameters (``parameters`` mapping)
    -----------------------------------
    max_candidates : int, default 5
        Most candidates reported.
    evidence_wait_s : float, default 0.5
        Time after the fault detection to collect peers' reports (s).
    evidence_max_age_s : float, default 30
        Reports received longer than this before the fault are not used (s).
    """

    def configure(self, parameters: Mapping[str, Any], context: AlgorithmContext) -> None:
        p = _Params(self.name, parameters)
        max_candidates = int(p.required("max_candidates", 5, 1, 1000))
        self.evidence_wait_s = p.required("evidence_wait_s", 0.5, 0.0, 60.0)
        self.evidence_max_age_s = p.required("evidence_max_age_s", 30.0, 0.0, 86400.0)
        p.finish()
        net = context.network
        if net is None:
            raise AlgorithmError(f"{self.name}: needs the grid portion's network description")
        if context.meter_id not in net.meters:
            raise AlgorithmError(
                f"{self.name}: meter {context.meter_id!r} is not in the network description "
                f"(meters: {sorted(net.meters)})"
            )
        self.locator_settings = LocatorSettings(max_candidates=max_candidates)
        try:
            model = feeder_model(net, context.meter_id, self.locator_settings)
        except LocationError as exc:
            raise AlgorithmError(f"{self.name}: cannot model the feeder below the meter: {exc}") from None
        below = set(model.section_of_bus) | {model.root_bus}
        #: Meters of the network on the feeder below this one: the peers whose reports can be used.
        self.locatable = {m.meter_id for m in net.meters.values() if m.bus_id in below} - {context.meter_id}
        #: Those whose pre-fault power models the loads (they measure a section of the feeder).
        self.loadable = set(load_evidence_meters(net, context.meter_id))
        self.peers &= self.locatable
        self.evidence = {m: e for m, e in self.evidence.items() if m in self.locatable}

    evidence: dict[str, _Evidence]
    peers: set[str]
    pending: _PendingFault | None
    last_result: LocationMessage | None
    last_error: str | None

    def init_state(self) -> None:
        self.evidence = {}
        self.peers = set()
        self.pending = None
        self.last_result = None
        self.last_error = None
        self.faults = 0
        self.rejected = 0

    @property
    def wants_peers(self) -> bool:
        return True

    def set_peers(self, meter_ids: Iterable[str]) -> None:
        ids = set(meter_ids) - {self.context.meter_id}
        unknown = sorted(ids - self.locatable)
        if unknown:
            log.info(
                "%s: catalog peers %s are not on the modelled feeder below %s; not used",
                self.name,
                unknown,
                self.context.meter_id,
            )
        self.peers = ids & self.locatable
        self.evidence = {m: e for m, e in self.evidence.items() if m in self.peers}

    def subscriptions(self) -> set[str]:
        t = self.context.topics
        return {t.sag(m) for m in self.peers} | {t.outage(m) for m in self.peers}

    def publications(self) -> set[str]:
        return {self.context.topics.location(self.context.meter_id)}

    def on_data(self, topic: str, payload: bytes) -> None:
        try:
            msg = decode(self.context.topics, topic, payload)
        except MessageError as exc:
            self.rejected += 1
            log.warning("%s: rejected message: %s", self.name, exc)
            return
        if msg.meter_id not in self.peers:
            self.rejected += 1
            log.warning("%s: message from %s, which is not a peer on this feeder", self.name, msg.meter_id)
            return
        now = self.context.clock()
        entry = self.evidence.setdefault(msg.meter_id, _Evidence(now))
        entry.received = now
        if isinstance(msg, SagMessage):
            # The 'start' magnitudes are the fault state; an 'end' only fills in a missed start.
            if msg.state == "start" or entry.sag is None:
                entry.sag = SagEvidence(msg.meter_id, np.asarray(msg.v_mag, dtype=float))
            if (
                msg.state == "start"
                and msg.meter_id in self.loadable
                and msg.pre_p_w is not None
                and msg.pre_q_var is not None
            ):
                entry.load = LoadEvidence(msg.meter_id, complex(msg.pre_p_w, msg.pre_q_var))
        elif isinstance(msg, OutageMessage):
            if msg.kind == "restored":
                entry.outage = None
            else:
                entry.outage = OutageEvidence(msg.meter_id, outage=True)

    def current_evidence(
        self, since: float | None = None
    ) -> list[SagEvidence | OutageEvidence | LoadEvidence]:
        """The latest sag, pre-fault power and outage evidence of the peers (received at or after
        ``since``, s)."""
        out: list[SagEvidence | OutageEvidence | LoadEvidence] = []
        for meter_id in sorted(self.evidence):
            entry = self.evidence[meter_id]
            if since is not None and entry.received < since:
                continue
            if entry.sag is not None:
                out.append(entry.sag)
            if entry.load is not None:
                out.append(entry.load)
            if entry.outage is not None:
                out.append(entry.outage)
        return out

    def on_chain_event(self, event: object) -> None:
        if not isinstance(event, FaultDetected):
            return
        if not event.classification.forward:
            log.info(
                "%s: fault at sample %d is not downstream of the meter; not located",
                self.name,
                event.inception_index,
            )
            return
        now = self.context.clock()
        self.faults += 1
        self.pending = _PendingFault(event, now, now + self.evidence_wait_s)

    def poll(self, now: float) -> None:
        pending = self.pending
        if pending is None or now < pending.due:
            return
        self.pending = None
        evidence = self.current_evidence(since=pending.detected - self.evidence_max_age_s)
        net = self.context.network
        assert net is not None
        try:
            result = locate(
                net,
                self.context.meter_id,
                pending.event.prefault,
                pending.event.fault,
                pending.event.fault_type,
                evidence=evidence,
                settings=self.locator_settings,
            )
        except LocationError as exc:
            self.last_error = f"location of the fault at sample {pending.event.inception_index} failed: {exc}"
            log.error("%s: %s", self.name, self.last_error)
            return
        self.last_error = None
        self._publish_result(result, pending.event.inception_index, evidence)

    def _publish_result(
        self,
        result: LocationResult,
        inception_index: int,
        evidence: list[SagEvidence | OutageEvidence | LoadEvidence],
    ) -> LocationMessage:
        msg = LocationMessage(
            meter_id=self.context.meter_id,
            time=self.context.now_iso(),
            fault_type=result.fault_type,
            inception_index=inception_index,
            candidates=[c.as_dict() for c in result.candidates],
            evidence=sorted({e.meter_id for e in evidence}),
        )
        self.last_result = msg
        note = result.rejected_note()
        if note is not None:
            log.warning("%s: %s", self.name, note)
        log.info(
            "%s: %d candidates for %s fault, evidence from %s",
            self.name,
            len(result.candidates),
            result.fault_type,
            msg.evidence,
        )
        self.context.publish(self.context.topics.location(self.context.meter_id), msg.model_dump_json())
        return msg

    def locate_record(
        self, record: Record, inception_index: int, detected: float
    ) -> tuple[RecordLocation, list[str]]:
        """Locate the fault of this meter's COMTRADE record with the peers' evidence and publish it.

        The record path of the signal chain (:func:`sma3_meter.location.pipeline.locate_record`)
        averages several cycles, so it is more accurate than the single-cycle phasors of a
        :class:`~sma3_meter.detection.FaultDetected`; the ROS shell uses it when the detector's
        record is on disk. The result goes on ``sma3/data/meters/{id}/location`` like
        :meth:`poll`'s.

        Parameters
        ----------
        record
            The meter's record around the fault (``VA VB VC`` in V, ``IA IB IC`` in A).
        inception_index
            The fault inception in the meter's sample counter (reported as ``inception_index``).
        detected
            Wall-clock time of the fault detection (s since the epoch): peers' reports received
            more than ``evidence_max_age_s`` before it are not used.

        Returns
        -------
        tuple
            The located record and the ids of the peers whose evidence was used (sorted).

        Raises
        ------
        LocationError
            No fault in the record, a fault not downstream of the meter, malformed channels.
        """
        self.faults += 1
        evidence = self.current_evidence(since=detected - self.evidence_max_age_s)
        net = self.context.network
        assert net is not None
        try:
            located = locate_record(net, record, self.context.meter_id, evidence, self.locator_settings)
        except LocationError as exc:
            self.last_error = f"location of the fault at sample {inception_index} failed: {exc}"
            log.error("%s: %s", self.name, self.last_error)
            raise
        self.last_error = None
        msg = self._publish_result(located.result, inception_index, evidence)
        return located, msg.evidence

    def status(self) -> AlgorithmStatus:
        have = sum(1 for e in self.evidence.values() if e.sag is not None or e.outage is not None)
        base = f"evidence from {have}/{len(self.peers)} peers"
        if self.last_error is not None:
            return AlgorithmStatus(self.name, "running", f"{base}; {self.last_error}")
        if self.reports == 0 and self.faults == 0:
            return AlgorithmStatus(
                self.name, "waiting", f"{base}; no phasors or fault events from the signal chain yet"
            )
        return AlgorithmStatus(self.name, "running", f"{base}; {self.faults} faults handled")


RunnerFactory = Callable[[str, Mapping[str, Any], AlgorithmContext], AlgorithmRunner]

#: Runner factories by algorithm name.
ALGORITHMS: dict[str, RunnerFactory] = {
    "sag_reporting": SagReporting,
    "outage_detection": OutageDetection,
    "fault_location": FaultLocation,
}

#: Other names of registered algorithms (the catalog's default role algorithms).
ALIASES: dict[str, str] = {"sag_report": "sag_reporting", "outage_report": "outage_detection"}


def register_algorithm(name: str, factory: RunnerFactory) -> None:
    """Make ``factory(name, parameters, context)`` available under ``name``.

    Raises
    ------
    ValueError
        When ``name`` is already registered (or an alias).
    """
    if name in ALGORITHMS or name in ALIASES:
        raise ValueError(f"algorithm {name!r} is already registered")
    ALGORITHMS[name] = factory


def create_runner(name: str, parameters: Mapping[str, Any], context: AlgorithmContext) -> AlgorithmRunner:
    """Start the algorithm ``name`` (or an alias) with ``parameters``.

    Raises
    ------
    UnknownAlgorithmError
        When no runner is registered under ``name``.
    AlgorithmError
        When the runner rejects its parameters or grid portion.
    """
    factory = ALGORITHMS.get(ALIASES.get(name, name))
    if factory is None:
        known = sorted(ALGORITHMS) + sorted(ALIASES)
        raise UnknownAlgorithmError(f"unknown algorithm {name!r} (this agent runs: {', '.join(known)})")
    return factory(name, parameters, context)
