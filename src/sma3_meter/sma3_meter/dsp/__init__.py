"""Signal processing of the 3-SMA: DFT phasors with frequency tracking, sequence components, power.

Public API (units: V, A, Hz, rad; RMS phasors):

- :func:`dft_phasors` - one-cycle DFT phasors with off-nominal correction.
- :func:`phasors_at`, :func:`estimate_frequency` - one-shot estimates on arrays (e.g. records).
- :class:`PhasorEstimator`, :class:`PhasorSample` - streaming estimates every cycle and on demand.
- :class:`FrequencyTracker`, :func:`rotation_frequency` - frequency and ROCOF.
- :func:`sequence_components`, :func:`from_sequence`, :func:`per_phase_power`.
- :class:`SampleBuffer` - samples addressed by absolute index.
"""

from sma3_meter.dsp.buffer import SampleBuffer, SampleGapError
from sma3_meter.dsp.estimator import CHANNELS, PhasorEstimator, PhasorSample, estimate_frequency, phasors_at
from sma3_meter.dsp.frequency import FrequencyTracker, rotation_frequency
from sma3_meter.dsp.phasor import advance, dft_phasors, samples_per_cycle, synchro_rotation, waveform
from sma3_meter.dsp.sequence import (
    A_OPERATOR,
    from_sequence,
    per_phase_power,
    positive_sequence,
    sequence_components,
)

__all__ = [
    "A_OPERATOR",
    "CHANNELS",
    "FrequencyTracker",
    "PhasorEstimator",
    "PhasorSample",
    "SampleBuffer",
    "SampleGapError",
    "advance",
    "dft_phasors",
    "estimate_frequency",
    "from_sequence",
    "per_phase_power",
    "phasors_at",
    "positive_sequence",
    "rotation_frequency",
    "samples_per_cycle",
    "sequence_components",
    "synchro_rotation",
    "waveform",
]
