"""From a fault record to a fault location: detection, phasors, locator.

:func:`locate_record` is the one path used by ``sma3-locate``, ``sma3-paper-table``, the sweep
bench and the locator node:

1. the record's six channels are run through the meter's own signal chain
   (:class:`sma3_meter.detection.SignalChain`, fed one cycle per block as the live meter does) to
   find the fault inception, its type and, if the breaker tripped inside the record, the end of the
   fault state;
2. averaged pre-fault and fault phasors are taken around it (:func:`.record.record_phasors`);
3. :func:`.locator.locate` returns the ranked candidates.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from sma3_grid.comtrade import Record
from sma3_meter.detection import FaultCleared, FaultDetected, SignalChain
from sma3_meter.dsp import samples_per_cycle

from .feeder import LocationError
from .locator import (
    LoadEvidence,
    LocationResult,
    LocatorSettings,
    OutageEvidence,
    SagEvidence,
    load_evidence_meters,
    locate,
)
from .record import RecordPhasors, record_phasors, record_samples

__all__ = [
    "Detection",
    "RecordLocation",
    "detect_fault",
    "feeder_evidence",
    "locate_record",
    "peer_evidence",
    "with_evidence",
]


@dataclass(frozen=True)
class Detection:
    """Fault found in a record.

    Attributes
    ----------
    inception_index : int
        Index of the first faulted sample.
    fault_type : str
        ``AG`` ... ``ABC``.
    fault_end_index : int | None
        First sample after the fault state (breaker trip or clearing), None if it lasts to the end.
    """

    inception_index: int
    fault_type: str
    fault_end_index: int | None


@dataclass(frozen=True)
class RecordLocation:
    """A located record.

    Attributes
    ----------
    meter_id : str
        Meter that took the record.
    fault_type : str
        Detected type.
    inception_s : float
        Inception, seconds from the first sample of the record.
    detection : Detection
        Inception and end of the fault state in samples, and the type.
    phasors : RecordPhasors
        Phasors used.
    result : LocationResult
        Ranked candidates.
    computation_time_s : float
        Wall-clock time of detection, phasors and location, s.
    """

    meter_id: str
    fault_type: str
    inception_s: float
    detection: Detection
    phasors: RecordPhasors
    result: LocationResult
    computation_time_s: float

    def as_dict(self) -> dict[str, object]:
        """The JSON object of the locator command contract (DESIGN.md section 4)."""
        return {
            "fault_type": self.fault_type,
            "inception_s": round(self.inception_s, 6),
            "meter_id": self.meter_id,
            "candidates": [c.as_dict() for c in self.result.candidates],
        }


def detect_fault(samples: np.ndarray, sample_rate_hz: float, nominal_hz: float) -> Detection:
    """First fault of a record according to the meter's signal chain.

    Parameters
    ----------
    samples : numpy.ndarray
        (6, M) ``VA VB VC`` (V) and ``IA IB IC`` (A).
    sample_rate_hz, nominal_hz : float
        Sampling rate and nominal frequency, Hz.

    Raises
    ------
    LocationError
        No fault in the record, or a fault behind the meter / on another feeder (no fault current
        through the meter: the meter cannot locate it).
    """
    chain = SignalChain(sample_rate_hz, nominal_hz)
    n = samples_per_cycle(sample_rate_hz, nominal_hz)
    found: FaultDetected | None = None
    end: int | None = None
    m = samples.shape[1]
    for start in range(0, m, n):
        out = chain.process(samples[:, start : start + n], start)
        for event in out.events:
            if found is None and isinstance(event, FaultDetected):
                found = event
            elif (
                found is not None
                and isinstance(event, FaultCleared)
                and end is None
                and event.inception_index == found.inception_index
            ):
                end = int(event.clearing_index)
        if end is not None:
            break
    if found is None:
        raise LocationError("no fault found in the record")
    if not found.classification.forward:
        raise LocationError(
            "the fault is not downstream of the meter (no fault current through it: "
            f"{found.classification.reason}); another meter must locate it"
        )
    return Detection(int(found.inception_index), found.fault_type, end)


def locate_record(
    net: object,
    record: Record,
    meter_id: str,
    evidence: Iterable[SagEvidence | OutageEvidence | LoadEvidence] = (),
    settings: LocatorSettings | None = None,
) -> RecordLocation:
    """Detect, extract phasors and locate the fault of a meter's record.

    Parameters
    ----------
    net : sma3_grid.model.Network
        Network description.
    record : sma3_grid.comtrade.Record
        Record with channels ``VA VB VC`` (V) and ``IA IB IC`` (A).
    meter_id : str
        Meter that took it (at the upstream end of its measured line).
    evidence : iterable
        Sag/outage evidence of other meters, see :func:`.locator.locate`.
    settings : LocatorSettings, optional
        Locator tuning.

    Raises
    ------
    LocationError
        Meter unknown, channels missing or malformed, no fault found, record too short.
    """
    t0 = time.perf_counter()
    meters = net.meters  # type: ignore[attr-defined]
    if meter_id not in meters:
        raise LocationError(f"meter {meter_id!r} is not in network {net.info.name!r}")  # type: ignore[attr-defined]
    samples = record_samples(record.channels)
    fs = float(record.sample_rate_hz)
    f0 = float(net.info.frequency_hz)  # type: ignore[attr-defined]
    if not fs >= 32 * f0:
        raise LocationError(
            f"record sampled at {fs:g} Hz; at least 32 samples per cycle ({32 * f0:g} Hz) needed"
        )
    detection = detect_fault(samples, fs, f0)
    phasors = record_phasors(samples, fs, f0, detection.inception_index, detection.fault_end_index)
    result = locate(
        net,
        meter_id,
        phasors.pre,
        phasors.fault,
        detection.fault_type,
        evidence,
        settings=settings,
        fault_sigma=phasors.fault_sigma,
    )
    return RecordLocation(
        meter_id=meter_id,
        fault_type=detection.fault_type,
        inception_s=detection.inception_index / fs,
        detection=detection,
        phasors=phasors,
        result=result,
        computation_time_s=time.perf_counter() - t0,
    )


def peer_evidence(
    record: Record,
    meter_id: str,
    inception_index: int,
    fault_end_index: int | None,
    nominal_hz: float,
) -> tuple[SagEvidence, LoadEvidence]:
    """Voltage-sag and pre-fault power evidence of another meter from its own record of the event.

    The records of the meters share the time base (synchronised sampling), so the fault window is
    the one found in the locating meter's record; the sag magnitudes are those of the averaged
    fault phasors and the power is ``sum(V I*)`` of the averaged pre-fault phasors
    (:func:`.record.record_phasors`). Only magnitudes and the meter's own V-I angles are used, so
    the evidence does not depend on the meters' clocks agreeing within a fraction of a cycle.

    Parameters
    ----------
    record : sma3_grid.comtrade.Record
        The other meter's record (channels ``VA VB VC IA IB IC``).
    meter_id : str
        The other meter.
    inception_index, fault_end_index : int, int | None
        Fault state in samples, from the locating meter's detection.
    nominal_hz : float
        Nominal frequency, Hz.
    """
    samples = record_samples(record.channels)
    phasors = record_phasors(
        samples, float(record.sample_rate_hz), nominal_hz, inception_index, fault_end_index
    )
    s_va = complex(np.sum(phasors.pre.v * np.conj(phasors.pre.i)))
    return SagEvidence(meter_id, np.abs(phasors.fault.v)), LoadEvidence(meter_id, s_va)


def feeder_evidence(
    net: object, meter_id: str, records: Mapping[str, Record], detection: Detection
) -> list[SagEvidence | LoadEvidence]:
    """Evidence of the other meters' records of the event located by ``meter_id``.

    Sag magnitudes of every record (:func:`peer_evidence`) and the pre-fault powers of the meters
    that measure a section of the feeder (:func:`.locator.load_evidence_meters`).

    Parameters
    ----------
    net : sma3_grid.model.Network
        Network description.
    meter_id : str
        Locating meter.
    records : mapping meter_id -> Record
        Records of other meters on the feeder (e.g. of :func:`.locator.evidence_meters`).
    detection : Detection
        Fault window found in the locating meter's record.
    """
    loadable = set(load_evidence_meters(net, meter_id))
    out: list[SagEvidence | LoadEvidence] = []
    for other, record in records.items():
        sag, load = peer_evidence(
            record,
            other,
            detection.inception_index,
            detection.fault_end_index,
            float(net.info.frequency_hz),  # type: ignore[attr-defined]
        )
        out.append(sag)
        if other in loadable:
            out.append(load)
    return out


def with_evidence(
    net: object,
    located: RecordLocation,
    evidence: Iterable[SagEvidence | OutageEvidence | LoadEvidence],
    settings: LocatorSettings | None = None,
) -> RecordLocation:
    """Re-rank a located record with evidence gathered after its detection (same phasors).

    Evidence is usually selected with the detected fault window (e.g. :func:`feeder_evidence`), so it
    comes after :func:`locate_record`; this runs the locator again on the same phasors with it.
    """
    t0 = time.perf_counter()
    ph = located.phasors
    result = locate(
        net,
        located.meter_id,
        ph.pre,
        ph.fault,
        located.fault_type,
        evidence,
        settings=settings,
        fault_sigma=ph.fault_sigma,
    )
    return dataclasses.replace(
        located, result=result, computation_time_s=located.computation_time_s + time.perf_counter() - t0
    )
