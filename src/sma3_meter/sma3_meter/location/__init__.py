"""Impedance-based fault location on radial branched feeders (plain numpy, no middleware).

Public API: :func:`locate` with :class:`SagEvidence` / :class:`OutageEvidence` /
:class:`LoadEvidence`, returning a
:class:`LocationResult` of :class:`Candidate` objects; :class:`LocatorSettings` for tuning.
"""

from .locator import (
    FAULT_TYPES,
    Candidate,
    LoadEvidence,
    LocationError,
    LocationResult,
    LocatorSettings,
    OutageEvidence,
    SagEvidence,
    evidence_meters,
    feeder_model,
    load_evidence_meters,
    locate,
)

__all__ = [
    "FAULT_TYPES",
    "Candidate",
    "LoadEvidence",
    "LocationError",
    "LocationResult",
    "LocatorSettings",
    "OutageEvidence",
    "SagEvidence",
    "evidence_meters",
    "feeder_model",
    "load_evidence_meters",
    "locate",
]
