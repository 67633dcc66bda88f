"""Fault inception detection, fault classification, clearing and outage detection.

Public API:

- :class:`SignalChain` - samples -> phasors -> :class:`FaultDetected`, :class:`FaultCleared`,
  :class:`Disturbance` and outage alarms (:class:`OutageChange`).
- :func:`classify_fault`, :data:`FAULT_TYPES` - fault type from pre-fault and fault phasors.
- :class:`DeltaDetector`, :func:`cycle_delta` - sample-accurate abrupt-change detection.
- :class:`OutageMonitor`, :func:`install_last_gasp_handler` - loss of voltage, restoration, last gasp.
"""

from sma3_meter.detection.chain import (
    ChainOutput,
    ChainSettings,
    Disturbance,
    FaultCleared,
    FaultDetected,
    SignalChain,
)
from sma3_meter.detection.classify import (
    FAULT_TYPES,
    ClassifierSettings,
    FaultClassification,
    classify_fault,
    fault_type_name,
)
from sma3_meter.detection.delta import DeltaDetector, DeltaSettings, cycle_delta
from sma3_meter.detection.outage import (
    LAST_GASP,
    LOSS_OF_VOLTAGE,
    RESTORED,
    OutageChange,
    OutageMonitor,
    OutageSettings,
    install_last_gasp_handler,
)

__all__ = [
    "FAULT_TYPES",
    "LAST_GASP",
    "LOSS_OF_VOLTAGE",
    "RESTORED",
    "ChainOutput",
    "ChainSettings",
    "ClassifierSettings",
    "DeltaDetector",
    "DeltaSettings",
    "Disturbance",
    "FaultClassification",
    "FaultCleared",
    "FaultDetected",
    "OutageChange",
    "OutageMonitor",
    "OutageSettings",
    "SignalChain",
    "classify_fault",
    "cycle_delta",
    "fault_type_name",
    "install_last_gasp_handler",
]
