"""Conversions between the signal-chain objects (numpy) and the sma3_interfaces messages.

Times: ROS ``builtin_interfaces/Time`` <-> aware UTC ``datetime`` (nanoseconds kept as far as
``datetime`` allows, i.e. microseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
from builtin_interfaces.msg import Time

from sma3_grid.model import Network
from sma3_interfaces.msg import (
    FaultCandidate,
    FaultEvent,
    FaultLocation,
    OutageAlarm,
    PhasorFrame,
    WaveformFrame,
)
from sma3_meter.daq.base import Frame, SampleBlock
from sma3_meter.detection import FaultDetected, OutageChange
from sma3_meter.dsp.estimator import CHANNELS, PhasorSample
from sma3_meter.location.pipeline import RecordLocation

__all__ = [
    "block_from_msg",
    "datetime_from_time",
    "fault_event_msg",
    "fault_location_msg",
    "outage_alarm_msg",
    "phasor_frame_msg",
    "phasor_sample_from_msg",
    "time_from_datetime",
    "waveform_frame_msg",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNRELIABLE = PhasorFrame.QUALITY_TRANSIENT | PhasorFrame.QUALITY_SATURATED | PhasorFrame.QUALITY_GAP
#: Impedance base of the residuals in FaultLocation (per unit of this power at the nominal voltage).
_BASE_MVA = 100.0


def time_from_datetime(when: datetime) -> Time:
    """ROS time of an aware (or naive UTC) datetime."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def datetime_from_time(stamp: Time) -> datetime:
    """Aware UTC datetime of a ROS time (rounded to microseconds)."""
    return _EPOCH + timedelta(seconds=stamp.sec, microseconds=round(stamp.nanosec / 1000))


def waveform_frame_msg(frame: Frame, meter_id: str, sample_rate_hz: float) -> WaveformFrame:
    """``WaveformFrame`` of a frame of the framer (samples (6, M) in V and A)."""
    msg = WaveformFrame()
    msg.header.stamp = time_from_datetime(frame.first_time)
    msg.header.frame_id = meter_id
    msg.meter_id = meter_id
    msg.sample_rate_hz = float(sample_rate_hz)
    msg.first_sample_index = int(frame.first_index)
    msg.gap_samples = int(frame.gap_samples)
    samples = np.asarray(frame.samples, dtype=np.float64)
    msg.va, msg.vb, msg.vc, msg.ia, msg.ib, msg.ic = (samples[k] for k in range(6))
    msg.saturated = [bool(x) for x in frame.saturated]
    return msg


def block_from_msg(msg: WaveformFrame) -> SampleBlock:
    """Sample block (6, M) of a ``WaveformFrame``.

    Raises
    ------
    ValueError
        The six channel arrays differ in length.
    """
    arrays = [np.asarray(getattr(msg, name.lower()), dtype=np.float64) for name in CHANNELS]
    lengths = {a.size for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"WaveformFrame from {msg.meter_id!r}: channel lengths differ {sorted(lengths)}")
    return SampleBlock(
        first_index=int(msg.first_sample_index),
        samples=np.vstack(arrays),
        first_time=datetime_from_time(msg.header.stamp),
        gap_samples=int(msg.gap_samples),
        saturated=tuple(bool(x) for x in msg.saturated),
    )


def _polar(values: np.ndarray) -> tuple[list[float], list[float]]:
    return np.abs(values).tolist(), np.angle(values).tolist()


def phasor_frame_msg(sample: PhasorSample, meter_id: str, stamp: datetime, quality: int = 0) -> PhasorFrame:
    """``PhasorFrame`` of a phasor estimate (RMS magnitudes, radians)."""
    msg = PhasorFrame()
    msg.header.stamp = time_from_datetime(stamp)
    msg.header.frame_id = meter_id
    msg.meter_id = meter_id
    msg.sample_index = int(sample.sample_index)
    msg.frequency_hz = float(sample.frequency_hz)
    msg.rocof_hz_per_s = float(sample.rocof_hz_s)
    msg.v_mag, msg.v_ang = _polar(sample.v)
    msg.i_mag, msg.i_ang = _polar(sample.i)
    msg.v_seq_mag, msg.v_seq_ang = _polar(sample.v_seq)
    msg.i_seq_mag, msg.i_seq_ang = _polar(sample.i_seq)
    msg.p_w = sample.p_w.tolist()
    msg.q_var = sample.q_var.tolist()
    quality_flags = quality
    if not sample.locked:
        quality_flags |= PhasorFrame.QUALITY_FREQUENCY_UNLOCKED
    if sample.transient:
        quality_flags |= PhasorFrame.QUALITY_TRANSIENT
    msg.quality = quality_flags
    return msg


def fault_event_msg(
    fault: FaultDetected,
    event_id: str,
    meter_id: str,
    inception_time: datetime,
    prefault_time: datetime,
    fault_time: datetime,
    record_path: str,
    stamp: datetime,
) -> FaultEvent:
    """``FaultEvent`` of a detected fault."""
    msg = FaultEvent()
    msg.header.stamp = time_from_datetime(stamp)
    msg.header.frame_id = meter_id
    msg.event_id = event_id
    msg.meter_id = meter_id
    msg.inception_time = time_from_datetime(inception_time)
    msg.inception_sample_index = int(fault.inception_index)
    msg.fault_type = fault.fault_type
    msg.faulted_phases = list(fault.classification.phases)
    msg.ground = bool(fault.classification.ground)
    msg.prefault = phasor_frame_msg(fault.prefault, meter_id, prefault_time)
    msg.fault = phasor_frame_msg(fault.fault, meter_id, fault_time)
    msg.record_path = record_path
    return msg


def outage_alarm_msg(change: OutageChange, meter_id: str, bus_id: str, stamp: datetime) -> OutageAlarm:
    """``OutageAlarm`` of an outage state change (kinds share the message's constants)."""
    msg = OutageAlarm()
    msg.header.stamp = time_from_datetime(stamp)
    msg.header.frame_id = meter_id
    msg.meter_id = meter_id
    msg.bus_id = bus_id
    msg.kind = int(change.kind)
    msg.phases = [bool(x) for x in change.phases]
    msg.v_mag = [0.0 if x != x else float(x) for x in change.v_mag]  # NaN (never measured) -> 0
    return msg


def phasor_sample_from_msg(msg: PhasorFrame) -> PhasorSample:
    """The agent's :class:`~sma3_meter.dsp.PhasorSample` of a ``PhasorFrame`` (RMS V and A, rad).

    Windows flagged transient, saturated or with a gap are marked ``transient`` (the algorithms
    skip them where a steady value matters); a frame with unlocked frequency is not ``locked``.
    """
    v = np.asarray(msg.v_mag, dtype=float) * np.exp(1j * np.asarray(msg.v_ang, dtype=float))
    i = np.asarray(msg.i_mag, dtype=float) * np.exp(1j * np.asarray(msg.i_ang, dtype=float))
    return PhasorSample(
        sample_index=int(msg.sample_index),
        frequency_hz=float(msg.frequency_hz),
        rocof_hz_s=float(msg.rocof_hz_per_s),
        phasors=np.concatenate([v, i]),
        locked=not msg.quality & PhasorFrame.QUALITY_FREQUENCY_UNLOCKED,
        transient=bool(msg.quality & _UNRELIABLE),
    )


def fault_location_msg(
    located: RecordLocation,
    net: Network,
    event_id: str,
    inception: datetime,
    evidence: Sequence[str],
    stamp: datetime,
) -> FaultLocation:
    """``FaultLocation`` of a located record (residuals in per unit of the 100 MVA impedance base)."""
    msg = FaultLocation()
    msg.header.stamp = time_from_datetime(stamp)
    msg.header.frame_id = located.meter_id
    msg.event_id = event_id
    msg.meter_id = located.meter_id
    msg.fault_type = located.fault_type
    msg.inception_s = float(located.inception_s)
    msg.inception_time = time_from_datetime(inception)
    z_base = (net.info.nominal_kv * 1e3) ** 2 / (_BASE_MVA * 1e6)
    for c in located.result.candidates:
        msg.candidates.append(
            FaultCandidate(
                line_id=c.line_id,
                upstream_bus=c.upstream_bus,
                downstream_bus=c.downstream_bus,
                upstream_substation=c.upstream_substation,
                downstream_substation=c.downstream_substation,
                distance_from_upstream_km=float(c.distance_from_upstream_km),
                distance_from_meter_km=float(c.distance_from_meter_km),
                fault_resistance_ohm=float(c.fault_resistance_ohm),
                fault_reactance_ohm=0.0,
                score=float(c.score),
                residual=float(c.residual_ohm / z_base),
            )
        )
    msg.evidence_meters = sorted(set(evidence))
    msg.computation_time_s = float(located.computation_time_s)
    return msg
