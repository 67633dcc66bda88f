"""One diverged OpenDSS solve must not poison the solves that follow it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sma3_grid.io import load_network
from sma3_sim.opendss import DssCircuit, SolverError


@pytest.mark.parametrize("load_model", ["z", "pq"])
def test_solve_recovers_after_a_diverged_solution(load_model: str) -> None:
    net = load_network("mini")
    circuit = DssCircuit(net, load_model=load_model)
    forecast = {b: complex(load.p_kw, load.q_kvar) for b, load in net.loads.items()}
    bus = next(iter(forecast))
    circuit.set_loads(forecast)
    circuit.solve()
    healthy = circuit.bus_voltages(bus)

    # NaN set-points make OpenDSS diverge and leave NaN in its voltage vector.
    circuit.set_loads({b: complex(math.nan, 0.0) for b in forecast})
    with pytest.raises(SolverError, match="did not converge"):
        circuit.solve()

    circuit.set_loads(forecast)
    circuit.solve()
    np.testing.assert_allclose(circuit.bus_voltages(bus), healthy, rtol=1e-6)
