"""OpenDSS circuit of a :class:`sma3_grid.model.Network`, driven through dss-python (DSS-Extensions).

One :class:`DssCircuit` owns one OpenDSS engine context (``DSS.NewContext()``), builds the circuit
once with ``Text.Command`` and is then edited in place for each scenario (load set-points, a fault
split into a line, an opened feeder breaker). Results are read through the ``ActiveCircuit``
interfaces (``ActiveBus.Voltages``, ``ActiveCktElement.Currents``), never by parsing files.

Model
-----
* Source: a ``Vsource`` at the network's ``source_bus`` with EMF equal to the nominal voltage
  (1.0 pu, angle 0) behind the sequence impedances of :func:`sma3_sim.sequence.source_impedances`.
* Lines: only the energized lines (the closed radial tree, :meth:`Network.energized_lines`) as
  3-phase ``Line`` elements with sequence data ``r1 x1 r0 x0`` (ohm/km) and ``c1 c0`` (nF/km);
  OpenDSS builds the coupled phase model (Kron-reduced, no explicit neutral) and the pi-model shunt
  capacitance.
* Loads: 3-phase wye-grounded ``Load`` elements at their bus, ``model=2`` (constant impedance, the
  default: exact linear network, the impedance draws the set-point power at nominal voltage) or
  ``model=1`` (constant PQ; OpenDSS turns it into constant impedance below ``vminpu`` = 0.95 pu,
  i.e. near a fault).
* Fault: a 3-phase ``Fault`` element from the fault bus to ground whose conductance matrix is the
  star of :mod:`sma3_sim.scenario` (``rf`` per faulted phase to a star point, ``rg`` from it to
  ground) with the star point eliminated. A fault inside a line splits it at a fault bus into a head
  part (the original element, shortened) and a tail element.

Element names in OpenDSS are generated (``b<k>``, ``l<k>``, ``d<k>``), so any id of the network
description is accepted.
"""

from __future__ import annotations

import numpy as np
from dss import DSS, DSSException
from dss.ICircuit import ICircuit

from sma3_grid.model import Network
from sma3_sim.scenario import fault_phases, is_grounded
from sma3_sim.sequence import source_impedances

__all__ = ["LOAD_MODELS", "DssCircuit", "SolverError", "fault_conductance_matrix"]

LOAD_MODELS: dict[str, int] = {"z": 2, "pq": 1}
"""Load models accepted by :class:`DssCircuit`: name -> OpenDSS ``Load.model``."""

_MIN_FAULT_OHM = 1e-6
_FAULT_BUS = "sma3_fault"
_TAIL = "sma3_tail"
_FAULT = "sma3_fault"


class SolverError(RuntimeError):
    """OpenDSS rejected a command or did not converge; the message says which."""


def fault_conductance_matrix(fault_type: str, rf_ohm: float, rg_ohm: float) -> np.ndarray:
    """Nodal conductance matrix (phase-to-ground, S) of a shunt fault.

    Each faulted phase reaches a star point through ``rf_ohm``; for grounded types the star point
    reaches ground through ``rg_ohm``. Eliminating the star point gives
    ``G = diag(g) - g g^T / (sum(g) + g_g)``.

    Parameters
    ----------
    fault_type : str
        One of :data:`sma3_sim.scenario.FAULT_TYPES`.
    rf_ohm, rg_ohm : float
        Fault and ground resistance, ohm; values below 1e-6 ohm are taken as 1e-6 ohm.

    Returns
    -------
    numpy.ndarray
        Real (3, 3) matrix in S.
    """
    g = np.zeros(3)
    for k in fault_phases(fault_type):
        g[k] = 1.0 / max(rf_ohm, _MIN_FAULT_OHM)
    g_ground = 1.0 / max(rg_ohm, _MIN_FAULT_OHM) if is_grounded(fault_type) else 0.0
    return np.diag(g) - np.outer(g, g) / (g.sum() + g_ground)


def _vector(values: object) -> np.ndarray:
    """Interleaved (re, im) float array from dss-python -> complex array."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[0::2] + 1j * arr[1::2]


class DssCircuit:
    """The OpenDSS model of one network (one switch state), reusable across scenarios.

    Parameters
    ----------
    net : sma3_grid.model.Network
        Network to model; its current switch states decide the energized tree.
    load_model : str
        ``"z"`` (constant impedance, default) or ``"pq"`` (constant power); see the module notes.
    """

    def __init__(self, net: Network, load_model: str = "z") -> None:
        if load_model not in LOAD_MODELS:
            raise ValueError(f"load_model: expected one of {sorted(LOAD_MODELS)}, got {load_model!r}")
        self.net = net
        self.load_model = load_model
        self._engine = DSS.NewContext()
        self._engine.AllowForms = False
        self._text = self._engine.Text
        info = net.info
        self.energized_lines: list[str] = list(net.energized_lines())
        buses = [info.source_bus]
        for line_id in self.energized_lines:
            line = net.lines[line_id]
            buses.extend((line.bus_a, line.bus_b))
        self.bus_name: dict[str, str] = {}
        for bus_id in buses:
            if bus_id not in self.bus_name:
                self.bus_name[bus_id] = f"b{len(self.bus_name)}"
        self.line_name = {line_id: f"l{k}" for k, line_id in enumerate(self.energized_lines)}
        self.load_name = {
            bus_id: f"d{k}" for k, bus_id in enumerate(sorted(b for b in net.loads if b in self.bus_name))
        }
        self._split_line: str | None = None
        self._fault_bus: str | None = None
        self._fault_created = False
        self._tail_created = False
        self._build()
        self._ckt: ICircuit = self._engine.ActiveCircuit

    # -- construction -------------------------------------------------------------------------
    def _command(self, command: str) -> None:
        try:
            self._text.Command = command
        except DSSException as exc:
            raise SolverError(f"OpenDSS rejected {command!r}: {exc}") from exc

    def _line_spec(self, line_id: str, length_km: float) -> str:
        line = self.net.lines[line_id]
        return (
            f"phases=3 units=km length={length_km!r} r1={line.r1!r} x1={line.x1!r} r0={line.r0!r} "
            f"x0={line.x0!r} c1={line.c1!r} c0={line.c0!r}"
        )

    def _build(self) -> None:
        info = self.net.info
        z1, z0 = source_impedances(info)
        kv = info.nominal_kv
        self._command("clear")
        self._command(f"set defaultbasefrequency={info.frequency_hz!r}")
        self._command(
            f"new circuit.sma3 basekv={kv!r} pu=1.0 angle=0 phases=3 basefreq={info.frequency_hz!r} "
            f"bus1={self.bus_name[info.source_bus]} "
            f"Z1=[{z1.real!r}, {z1.imag!r}] Z0=[{z0.real!r}, {z0.imag!r}]"
        )
        for line_id in self.energized_lines:
            up = self.net.upstream_bus(line_id)
            down = self.net.downstream_bus(line_id)
            self._command(
                f"new line.{self.line_name[line_id]} bus1={self.bus_name[up]} bus2={self.bus_name[down]} "
                + self._line_spec(line_id, self.net.lines[line_id].length_km)
            )
        model = LOAD_MODELS[self.load_model]
        for bus_id, name in self.load_name.items():
            load = self.net.loads[bus_id]
            self._command(
                f"new load.{name} bus1={self.bus_name[bus_id]} phases=3 conn=wye kv={kv!r} "
                f"kw={load.p_kw!r} kvar={load.q_kvar!r} model={model}"
            )
        self._command(f"set voltagebases=[{kv!r}]")
        self._command("calcvoltagebases")
        self._command("set mode=snapshot controlmode=off tolerance=1e-10 maxiterations=100")

    # -- scenario edits -----------------------------------------------------------------------
    def set_loads(self, kva: dict[str, complex]) -> None:
        """Set the load set-points (kW + j kvar at nominal voltage) by bus id."""
        loads = self._ckt.Loads
        for bus_id, value in kva.items():
            loads.Name = self.load_name[bus_id]
            loads.kW = float(value.real)
            loads.kvar = float(value.imag)

    def apply_fault(
        self,
        line_id: str,
        position: float,
        fault_type: str,
        rf_ohm: float,
        rg_ohm: float,
        enabled: bool = True,
    ) -> str:
        """Place a fault on a line (splitting it when inside) and return the OpenDSS fault bus name.

        Positions within 1 m of an end put the fault on that end's bus. With ``enabled=False`` only
        the split is made (the fault element stays disabled), see :meth:`enable_fault`.
        """
        if self._fault_bus is not None or self._split_line is not None:
            self.clear_fault()
        if line_id not in self.line_name:
            raise SolverError(f"line {line_id!r} is not energized (open switch or outside the tree)")
        length = self.net.lines[line_id].length_km
        head_km = position * length
        up = self.bus_name[self.net.upstream_bus(line_id)]
        down = self.bus_name[self.net.downstream_bus(line_id)]
        if head_km < 1e-3:
            fault_bus = up
        elif length - head_km < 1e-3:
            fault_bus = down
        else:
            fault_bus = _FAULT_BUS
            name = self.line_name[line_id]
            self._command(f"edit line.{name} bus2={fault_bus} length={head_km!r}")
            verb = "edit" if self._tail_created else "new"
            self._command(
                f"{verb} line.{_TAIL} bus1={fault_bus} bus2={down} "
                + self._line_spec(line_id, length - head_km)
                + " enabled=yes"
            )
            self._tail_created = True
            self._split_line = line_id
        g = fault_conductance_matrix(fault_type, rf_ohm, rg_ohm)
        lower = " | ".join(" ".join(repr(float(g[i, j])) for j in range(i + 1)) for i in range(3))
        verb = "edit" if self._fault_created else "new"
        self._command(
            f"{verb} fault.{_FAULT} phases=3 bus1={fault_bus}.1.2.3 bus2={fault_bus}.0.0.0 "
            f"gmatrix=[{lower}] enabled={'yes' if enabled else 'no'}"
        )
        self._fault_created = True
        self._fault_bus = fault_bus
        return fault_bus

    def enable_fault(self) -> None:
        """Enable the fault element placed by :meth:`apply_fault`."""
        if self._fault_bus is None:
            raise SolverError("no fault is applied")
        self._command(f"edit fault.{_FAULT} enabled=yes")

    def clear_fault(self) -> None:
        """Remove the fault and re-join a split line."""
        if self._fault_created:
            self._command(f"edit fault.{_FAULT} enabled=no")
        if self._split_line is not None:
            line_id = self._split_line
            down = self.bus_name[self.net.downstream_bus(line_id)]
            length = self.net.lines[line_id].length_km
            self._command(f"edit line.{self.line_name[line_id]} bus2={down} length={length!r}")
            self._command(f"edit line.{_TAIL} enabled=no")
        self._split_line = None
        self._fault_bus = None

    def open_line_terminal(self, line_id: str, terminal: int) -> None:
        """Open all phases of a line terminal (1 = upstream end, 2 = downstream end)."""
        self._command(f"open line.{self.line_name[line_id]} {terminal}")

    def close_line_terminal(self, line_id: str, terminal: int) -> None:
        """Close all phases of a line terminal opened by :meth:`open_line_terminal`."""
        self._command(f"close line.{self.line_name[line_id]} {terminal}")

    # -- solution and results -----------------------------------------------------------------
    def solve(self) -> None:
        """Solve the present state (snapshot); raise :class:`SolverError` if it does not converge.

        OpenDSS starts each iteration from the previous solution, so one diverged solve (NaN or
        runaway voltages) would make every later one fail too. After a failure the voltages are
        restarted from a direct (linear, admittance-model) solution and the solve is tried once more;
        when that fails as well the error is raised with the restarted state left in place, so the
        next scenario starts clean.
        """
        try:
            self._solve_snapshot()
        except SolverError as first:
            self._restart_voltages()
            try:
                self._solve_snapshot()
            except SolverError as second:
                self._restart_voltages()
                raise SolverError(f"{second} (also after restarting from a direct solution)") from first

    def _solve_snapshot(self) -> None:
        solution = self._ckt.Solution
        try:
            solution.Solve()
        except DSSException as exc:
            raise SolverError(f"OpenDSS solve failed: {exc}") from exc
        if not solution.Converged:
            raise SolverError(f"OpenDSS solution did not converge after {solution.Iterations} iterations")

    def _restart_voltages(self) -> None:
        """Replace the voltage vector by a direct solution of the present circuit."""
        try:
            self._command("solve mode=direct")
        finally:
            self._command("set mode=snapshot")

    def bus_voltages(self, bus_id: str) -> np.ndarray:
        """Phase-to-ground RMS voltages (V, complex, phases A B C) of a network bus; zero if not modelled."""
        name = self.bus_name.get(bus_id)
        if name is None:
            return np.zeros(3, dtype=complex)
        return self._bus_voltages_dss(name)

    def fault_bus_voltages(self) -> np.ndarray:
        """Phase-to-ground RMS voltages (V, complex) at the fault point of the applied fault."""
        if self._fault_bus is None:
            raise SolverError("no fault is applied")
        return self._bus_voltages_dss(self._fault_bus)

    def _bus_voltages_dss(self, name: str) -> np.ndarray:
        self._ckt.SetActiveBus(name)
        bus = self._ckt.ActiveBus
        values = _vector(bus.Voltages)
        out = np.zeros(3, dtype=complex)
        for node, value in zip(bus.Nodes, values, strict=True):
            if 1 <= node <= 3:
                out[node - 1] = value
        return out

    def line_currents(self, line_id: str, at_bus: str) -> np.ndarray:
        """RMS phase currents (A, complex) flowing from ``at_bus`` into line ``line_id``.

        Zero when the line is not energized. Follows a split of the faulted line: the current at
        its downstream end is read on the tail element.
        """
        if line_id not in self.line_name:
            return np.zeros(3, dtype=complex)
        if at_bus == self.net.upstream_bus(line_id):
            element, terminal = self.line_name[line_id], 0
        elif at_bus == self.net.downstream_bus(line_id):
            element, terminal = (_TAIL if self._split_line == line_id else self.line_name[line_id]), 1
        else:
            raise SolverError(f"bus {at_bus!r} is not an end of line {line_id!r}")
        return self._element_currents(f"line.{element}")[terminal]

    def fault_currents(self) -> np.ndarray:
        """RMS currents (A, complex, phases A B C) flowing from the network into the fault."""
        return self._element_currents(f"fault.{_FAULT}")[0]

    def _element_currents(self, element: str) -> np.ndarray:
        self._ckt.SetActiveElement(element)
        values = _vector(self._ckt.ActiveCktElement.Currents)
        return values.reshape(2, 3)
