"""Outage detection: loss of voltage per phase, restoration, and the last-gasp alarm.

A phase is *dead* after its RMS voltage stays below ``outage_fraction`` of the nominal
phase-to-ground voltage for ``outage_cycles`` consecutive cycle reports; the supply is *restored*
when every phase stays above ``restore_fraction`` for ``restore_cycles`` reports. The last-gasp
alarm is built by :meth:`OutageMonitor.last_gasp` from a signal handler installed with
:func:`install_last_gasp_handler` (SIGTERM, and SIGPWR where the OS has it: sent by UPS/power
daemons on supply failure), so the node publishes it before the process exits.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import numpy as np

__all__ = [
    "LAST_GASP",
    "LOSS_OF_VOLTAGE",
    "RESTORED",
    "OutageChange",
    "OutageMonitor",
    "OutageSettings",
    "install_last_gasp_handler",
]

# Same values as sma3_interfaces/msg/OutageAlarm constants.
LAST_GASP = 1
LOSS_OF_VOLTAGE = 2
RESTORED = 3


@dataclass(frozen=True)
class OutageSettings:
    """Thresholds of :class:`OutageMonitor`.

    Parameters
    ----------
    nominal_voltage_v : float
        Nominal phase-to-ground RMS voltage (V), e.g. 22000 / sqrt(3).
    outage_fraction : float
        A phase below this fraction of nominal is dead.
    restore_fraction : float
        Every phase above this fraction of nominal means restored.
    outage_cycles, restore_cycles : int
        Consecutive cycle reports needed.
    """

    nominal_voltage_v: float = 22000.0 / math.sqrt(3.0)
    outage_fraction: float = 0.2
    restore_fraction: float = 0.85
    outage_cycles: int = 3
    restore_cycles: int = 5


@dataclass(frozen=True)
class OutageChange:
    """An outage alarm: ``kind`` is LAST_GASP, LOSS_OF_VOLTAGE or RESTORED.

    ``phases`` are the dead phases (LAST_GASP, LOSS_OF_VOLTAGE) or the restored ones (RESTORED);
    ``v_mag`` the phase RMS voltages (V) at detection; ``sample_index`` the report's sample.
    """

    kind: int
    sample_index: int
    phases: tuple[bool, bool, bool]
    v_mag: tuple[float, float, float]


class OutageMonitor:
    """Per-phase loss-of-voltage and restoration state machine fed with cycle voltage magnitudes."""

    def __init__(self, settings: OutageSettings | None = None) -> None:
        self.settings = settings or OutageSettings()
        if self.settings.nominal_voltage_v <= 0:
            raise ValueError(f"nominal_voltage_v must be positive, got {self.settings.nominal_voltage_v}")
        self.dead = [False, False, False]
        self._low = [0, 0, 0]
        self._healthy = 0
        self._last_v = (math.nan, math.nan, math.nan)
        self._last_index = -1

    @property
    def in_outage(self) -> bool:
        """True while at least one phase is dead."""
        return any(self.dead)

    def update(self, sample_index: int, v_mag: Sequence[float] | np.ndarray) -> OutageChange | None:
        """Feed the RMS phase voltages (V) of one cycle report; return an alarm when the state changes."""
        s = self.settings
        v = tuple(v_mag.tolist() if isinstance(v_mag, np.ndarray) else [float(x) for x in v_mag])
        if len(v) != 3:
            raise ValueError(f"v_mag must hold 3 phase voltages, got {len(v)}")
        self._last_v = (v[0], v[1], v[2])
        self._last_index = sample_index
        low_level = s.outage_fraction * s.nominal_voltage_v
        if v[0] >= low_level and v[1] >= low_level and v[2] >= low_level and not any(self.dead):
            self._low = [0, 0, 0]  # the common case: every phase alive
            return None
        newly_dead = False
        for k in range(3):
            self._low[k] = self._low[k] + 1 if v[k] < low_level else 0
            if not self.dead[k] and self._low[k] >= s.outage_cycles:
                self.dead[k] = True
                newly_dead = True
        if newly_dead:
            self._healthy = 0
            return OutageChange(LOSS_OF_VOLTAGE, sample_index, self._dead_tuple(), self._last_v)
        if self.in_outage:
            healthy = min(v) >= s.restore_fraction * s.nominal_voltage_v
            self._healthy = self._healthy + 1 if healthy else 0
            if self._healthy >= s.restore_cycles:
                restored = self._dead_tuple()
                self.dead = [False, False, False]
                self._healthy = 0
                return OutageChange(RESTORED, sample_index, restored, self._last_v)
        return None

    def _dead_tuple(self) -> tuple[bool, bool, bool]:
        return (self.dead[0], self.dead[1], self.dead[2])

    def last_gasp(self) -> OutageChange:
        """The last-gasp alarm: the dead phases, or all three when the meter loses its own supply while
        the measured voltages are still present (or were never measured)."""
        low_level = self.settings.outage_fraction * self.settings.nominal_voltage_v
        phases = tuple(bool(self.dead[k] or not self._last_v[k] >= low_level) for k in range(3))
        if not any(phases):
            phases = (True, True, True)
        return OutageChange(LAST_GASP, self._last_index, (phases[0], phases[1], phases[2]), self._last_v)


def install_last_gasp_handler(
    callback: Callable[[str], None],
    signal_names: Sequence[str] = ("SIGTERM", "SIGPWR"),
    chain: bool = True,
) -> dict[int, object]:
    """Call ``callback(signal_name)`` when one of the signals arrives, then end as the signal asks.

    With ``chain`` the previous Python handler runs after the callback, or, with the default
    disposition, the signal is re-raised so the process ends as it would have. Without ``chain``
    :class:`SystemExit` (status 128 + signal number) is raised in the main thread, so ``finally``
    blocks (flushing records, shutting ROS down) still run. Python runs signal handlers between
    bytecodes of the main thread: the main loop must not block indefinitely in C code (spin with a
    timeout). Signals the platform lacks (SIGPWR outside Linux) are skipped. Call from the main thread.

    Returns
    -------
    dict
        The previous handlers by signal number (to restore them with :func:`signal.signal`).
    """
    previous: dict[int, object] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        try:
            callback(signal.Signals(signum).name)
        finally:
            before = previous.get(signum, signal.SIG_DFL)
            if not chain:
                raise SystemExit(128 + signum)
            if callable(before):
                before(signum, frame)
            elif before == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

    for name in signal_names:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        previous[int(signum)] = signal.signal(signum, handler)
    return previous
