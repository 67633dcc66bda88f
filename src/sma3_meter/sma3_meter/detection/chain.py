"""The meter's signal chain: samples -> phasors -> fault, clearing and outage events.

:class:`SignalChain` feeds each block of samples to the :class:`~sma3_meter.dsp.PhasorEstimator`
(cycle reports), to the :class:`~sma3_meter.detection.delta.DeltaDetector` (sample-accurate
inception) and runs the event state machine:

``NORMAL`` -- change detected at ``k0`` --> ``PENDING`` -- one full cycle after ``k0`` is available:
pre-fault phasors (window ending just before ``k0``) and fault phasors (window starting at ``k0``)
are classified --> :class:`FaultDetected` and ``FAULTED`` (or :class:`Disturbance` and back to
``NORMAL``). In ``FAULTED`` the next abrupt change ``k1`` is the clearing candidate; one cycle later
the currents tell a breaker trip (all below ``open_current_a``) from a clearing by another device
(currents back near pre-fault) -> :class:`FaultCleared`. A fault whose currents fall below
``open_current_a`` for a whole cycle without a detected change is also reported cleared.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sma3_meter.detection.classify import ClassifierSettings, FaultClassification, classify_fault
from sma3_meter.detection.delta import DeltaDetector, DeltaSettings
from sma3_meter.detection.outage import OutageChange, OutageMonitor, OutageSettings
from sma3_meter.dsp.estimator import CHANNELS, PhasorEstimator, PhasorSample
from sma3_meter.dsp.phasor import advance

__all__ = [
    "ChainOutput",
    "ChainSettings",
    "Disturbance",
    "FaultCleared",
    "FaultDetected",
    "SignalChain",
]


@dataclass(frozen=True)
class ChainSettings:
    """Settings of the signal chain.

    Parameters
    ----------
    delta : DeltaSettings
        Inception detector thresholds.
    classifier : ClassifierSettings
        Fault classification thresholds.
    outage : OutageSettings
        Loss-of-voltage thresholds.
    fault_window_delay_s : float
        Start of the fault-phasor window after inception (s); 0 gives the shortest latency (one cycle).
    blanking_cycles : float
        Cycles after an event during which no new change is looked for.
    open_current_a : float
        Below this RMS current (A) on every phase, or below ``open_ratio`` of the pre-fault current,
        the feeder is open (breaker trip). Above the current noise of the converter (a 12-bit
        converter over +-40 kA has 20 A steps).
    open_ratio : float
        Relative open-current threshold (fraction of the largest pre-fault phase current).
    clear_ratio : float
        Cleared by another device when every ``|I - I_pre|`` falls below this fraction of the
        largest fault change.
    history_cycles : int
        Cycles of samples kept for on-demand phasors.
    clearing_settle_s : float
        Time allowed after the first change of a clearing for every pole to interrupt (each breaker
        pole opens at its own current zero; the last up to about 2/3 of a half cycle after the
        first, more with DC offset), before the post-clearing window (s).
    report_sags : bool
        Also report faults seen only as voltage sags (not on the measured line: no forward fault
        current) as :class:`FaultDetected` (``classification.forward`` False); otherwise they are
        :class:`Disturbance` events naming the sag type.
    """

    delta: DeltaSettings = field(default_factory=DeltaSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    outage: OutageSettings = field(default_factory=OutageSettings)
    fault_window_delay_s: float = 0.0
    blanking_cycles: float = 2.0
    open_current_a: float = 5.0
    open_ratio: float = 0.05
    clear_ratio: float = 0.3
    history_cycles: int = 12
    clearing_settle_s: float = 0.015
    report_sags: bool = False


@dataclass(frozen=True)
class FaultDetected:
    """A fault: first faulted sample, classification, pre-fault and fault phasors."""

    inception_index: int
    classification: FaultClassification
    prefault: PhasorSample
    fault: PhasorSample

    @property
    def fault_type(self) -> str:
        """Fault type (one of AG ... ABC)."""
        assert self.classification.fault_type is not None
        return self.classification.fault_type


@dataclass(frozen=True)
class FaultCleared:
    """End of a fault: ``breaker_open`` when every current dropped below the open threshold (trip)."""

    inception_index: int
    clearing_index: int
    breaker_open: bool
    post: PhasorSample


@dataclass(frozen=True)
class Disturbance:
    """An abrupt change that is not a fault (e.g. a balanced load step); ``reason`` says why."""

    index: int
    reason: str


_SQRT2 = float(np.sqrt(2.0))
REFERENCE_EVERY = 5  # cycle reports between refreshes of the detector's reference peaks

Event = FaultDetected | FaultCleared | Disturbance | OutageChange


@dataclass
class ChainOutput:
    """Cycle reports and events produced by one :meth:`SignalChain.process` call."""

    reports: list[PhasorSample]
    events: list[Event]


class SignalChain:
    """Phasors, fault and outage detection for the six channels VA VB VC IA IB IC.

    Parameters
    ----------
    sample_rate_hz : float
        Sampling rate in Hz.
    nominal_hz : float
        Nominal frequency in Hz.
    settings : ChainSettings, optional
        Thresholds and windows.
    """

    def __init__(
        self, sample_rate_hz: float, nominal_hz: float, settings: ChainSettings | None = None
    ) -> None:
        self.settings = settings or ChainSettings()
        self.sample_rate_hz = float(sample_rate_hz)
        self.nominal_hz = float(nominal_hz)
        self.estimator = PhasorEstimator(
            sample_rate_hz, nominal_hz, history_cycles=self.settings.history_cycles
        )
        self.n = self.estimator.samples_per_cycle
        self.detector = DeltaDetector(sample_rate_hz, len(CHANNELS), self.settings.delta)
        self.outage = OutageMonitor(self.settings.outage)
        self.state = "NORMAL"
        self._delay = max(0, round(self.settings.fault_window_delay_s * sample_rate_hz))
        self._blanking = round(self.settings.blanking_cycles * self.n)
        self._recent: deque[PhasorSample] = deque(maxlen=self.settings.history_cycles)
        self._event_index = 0
        self._fault: FaultDetected | None = None
        self._clearing_index = 0
        self._transients: deque[int] = deque(maxlen=8)
        self._since_reference = REFERENCE_EVERY  # refresh at the first report

    def process(self, block: np.ndarray, first_index: int) -> ChainOutput:
        """Process a block (6, M) of samples (V, A) whose first sample has absolute index ``first_index``.

        A block that does not continue the previous one (gap) restarts the estimator and the
        detector and abandons a pending classification.
        """
        buffer = self.estimator.buffer
        if len(buffer) and first_index != buffer.end_index:
            self.detector.reset()
            if self.state in ("PENDING", "CLEARING"):
                self.state = "NORMAL" if self.state == "PENDING" else "FAULTED"
        reports = self.estimator.push(block, first_index)
        events: list[Event] = []
        for rep in reports:
            self._follow(rep, events)
        self._detect(events)
        if not reports:  # frames shorter than a cycle: most carry no report
            return ChainOutput(reports, events)
        self._check_open(reports, events)
        marked = [self._mark(rep) for rep in reports] if self._transients else reports
        return ChainOutput(marked, events)

    def _follow(self, rep: PhasorSample, events: list[Event]) -> None:
        """Per cycle report: reference peaks of the detector, outage monitor."""
        mags = np.abs(rep.phasors)
        # The thresholds follow the load slowly: the reference peak is refreshed every
        # REFERENCE_EVERY reports (and at once after a state change).
        self._since_reference += 1
        refresh = self._since_reference >= REFERENCE_EVERY
        if self.state == "NORMAL" and not rep.transient:
            self._recent.append(rep)
            if refresh:
                self.detector.reference_peak = _SQRT2 * mags
                self._since_reference = 0
        elif (
            self.state == "FAULTED"
            and self._fault is not None
            and rep.sample_index >= self._fault.inception_index + self._blanking + self.n
            and refresh
        ):
            self.detector.reference_peak = _SQRT2 * mags
            self._since_reference = 0
        va, vb, vc = mags[:3].tolist()
        change = self.outage.update(rep.sample_index, (va, vb, vc))
        if change is not None:
            events.append(change)

    def _mark(self, rep: PhasorSample) -> PhasorSample:
        if max(self._transients) <= rep.sample_index - self.n:
            return rep  # every change is older than the report's window
        for k in self._transients:
            if rep.sample_index - self.n < k <= rep.sample_index:
                return dataclasses.replace(rep, transient=True)
        return rep

    def _period(self) -> float:
        return self.sample_rate_hz / self.estimator.frequency_hz

    def _detect(self, events: list[Event]) -> None:
        buffer = self.estimator.buffer
        while True:
            if self.state == "NORMAL":
                k0 = self.detector.scan(buffer, self._period())
                if k0 is None:
                    return
                self._on_change(k0)
            elif self.state == "PENDING":
                if not self._resolve_fault(events):
                    return
            elif self.state == "FAULTED":
                k1 = self.detector.scan(buffer, self._period())
                if k1 is None:
                    return
                self._clearing_index = k1
                self._transients.append(k1)
                self.detector.skip_to(k1 + self._blanking)
                self.state = "CLEARING"
            elif not self._resolve_clearing(events):  # CLEARING
                return

    def _on_change(self, k0: int) -> None:
        self._event_index = k0
        self._transients.append(k0)
        before = [r for r in self._recent if r.sample_index < k0]
        f_pre = before[-1].frequency_hz if before else self.estimator.frequency_hz
        self.estimator.tracker.reset(f_pre)
        self.detector.skip_to(k0 + self._blanking)
        self._since_reference = REFERENCE_EVERY
        self.state = "PENDING"

    def _resolve_fault(self, events: list[Event]) -> bool:
        k0 = self._event_index
        end = k0 + self._delay + self.n - 1
        if self.estimator.buffer.end_index <= end:
            return False
        f = self.estimator.frequency_hz
        try:
            pre = self.estimator.at(k0 - 2, f)
        except IndexError:
            self.state = "NORMAL"
            events.append(Disturbance(k0, "no full pre-fault cycle in the buffer"))
            return True
        fault = self.estimator.at(end, f)
        aligned = self._aligned(pre, end)
        result = classify_fault(aligned[:3], aligned[3:], fault.v, fault.i, self.settings.classifier)
        if result.fault_type is None or not (result.forward or self.settings.report_sags):
            reason = (
                result.reason if result.fault_type is None else f"{result.fault_type} sag: {result.reason}"
            )
            events.append(Disturbance(k0, reason))
            self.state = "NORMAL"
            return True
        self._fault = FaultDetected(k0, result, pre, fault)
        self.detector.reference_peak = np.sqrt(2.0) * np.maximum(np.abs(fault.phasors), np.abs(pre.phasors))
        events.append(self._fault)
        self.state = "FAULTED"
        return True

    def _resolve_clearing(self, events: list[Event]) -> bool:
        k1 = self._clearing_index
        end = k1 + round(self.settings.clearing_settle_s * self.sample_rate_hz) + self.n - 1
        if self.estimator.buffer.end_index <= end:
            return False
        assert self._fault is not None
        post = self.estimator.at(end, self.estimator.frequency_hz)
        i_post = np.abs(post.i)
        fault = self._fault
        if i_post.max() < self._open_threshold(fault):
            events.append(FaultCleared(fault.inception_index, k1, True, post))
            self._end_fault()
            return True
        change = np.abs(fault.fault.i - self._aligned(fault.prefault, fault.fault.sample_index)[3:]).max()
        if (
            np.abs(post.i - self._aligned(fault.prefault, end)[3:]).max()
            <= self.settings.clear_ratio * change
        ):
            events.append(FaultCleared(fault.inception_index, k1, False, post))
            self._end_fault()
            return True
        self.state = "FAULTED"  # the fault evolves; keep waiting for its end
        return True

    def _aligned(self, sample: PhasorSample, to_index: int) -> np.ndarray:
        return advance(
            sample.phasors,
            sample.sample_index,
            to_index,
            self.sample_rate_hz,
            sample.frequency_hz,
            self.nominal_hz,
        )

    def _open_threshold(self, fault: FaultDetected) -> float:
        pre = float(np.abs(fault.prefault.i).max())
        return max(self.settings.open_current_a, self.settings.open_ratio * pre)

    def _check_open(self, reports: list[PhasorSample], events: list[Event]) -> None:
        if self.state != "FAULTED" or self._fault is None:
            return
        for rep in reports:
            if rep.sample_index < self._fault.fault.sample_index + self.n:
                continue
            if np.abs(rep.i).max() < self._open_threshold(self._fault):
                events.append(
                    FaultCleared(self._fault.inception_index, rep.sample_index - self.n + 1, True, rep)
                )
                self._end_fault()
                return

    def _end_fault(self) -> None:
        self._since_reference = REFERENCE_EVERY
        self._fault = None
        self._recent.clear()
        self.state = "NORMAL"

    def last_gasp(self) -> OutageChange:
        """Last-gasp alarm from the current voltages (call from the SIGTERM/SIGPWR handler)."""
        return self.outage.last_gasp()
