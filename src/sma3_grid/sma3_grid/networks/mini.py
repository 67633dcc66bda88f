"""``mini``: a 12-bus, two-feeder 22 kV cable network for fast tests.

::

    SRC ─CB1─ L1 ─ B1 ─ L2 ─ B2 ─SW1─ L3 ─ B3 ─ L4 ─ B4 ┐
                             │                          │ L11 (NOP1, normally open)
                             DS1─ L5 ─ J1 ─ L6 ─ B5     │
                                       └─ L12 ─ B6      │
    SRC ─CB2─ L7 ─ B7 ─ L8 ─ B8 ─SW2─ L9 ─ B9 ─ L10 ─ B10┘

Feeder 1 (``L1``) has a lateral from B2 through the cable joint J1 to B5 and B6; feeder 2 (``L7``)
is a plain line. Remote load-break switches SW1 and SW2 split the main lines, a manual disconnector
DS1 protects the lateral, and the remote NOP1 on the tie line L11 joins the feeder ends. Meters: a
feeder-head meter per feeder (MH1, MH2) and two secondary meters (MS1 at the lateral end B5, MS2 at
the end of feeder 1, B4). Some lines are written "to–from" on purpose: the importer must orient them.
"""

from __future__ import annotations

from sma3_grid.model import Bus, Line, Load, Meter, Network, NetworkInfo, Switch
from sma3_grid.networks.cables import AL185, AL240, sequence_parameters


def build_mini() -> Network:
    """Build the ``mini`` network (see the module docstring)."""
    info = NetworkInfo(
        name="mini",
        nominal_kv=22.0,
        frequency_hz=50.0,
        source_bus="SRC",
        sc_mva_3ph=500.0,
        sc_mva_1ph=400.0,
        x_over_r=12.0,
    )
    buses = [
        Bus("SRC", "primary", 0.0, 0.0),
        Bus("B1", "secondary", -0.6, -0.5),
        Bus("B2", "secondary", -0.6, -0.7),
        Bus("B3", "secondary", -0.6, -0.95),
        Bus("B4", "secondary", -0.6, -1.15),
        Bus("J1", "junction", -0.9, -0.85),
        Bus("B5", "secondary", -1.2, -1.0),
        Bus("B6", "secondary", -0.9, -1.05),
        Bus("B7", "secondary", 0.6, -0.6),
        Bus("B8", "secondary", 0.6, -0.8),
        Bus("B9", "secondary", 0.6, -0.95),
        Bus("B10", "secondary", 0.6, -1.2),
    ]
    big = sequence_parameters(AL240)
    small = sequence_parameters(AL185)

    def line(line_id: str, a: str, b: str, km: float, heavy: bool) -> Line:
        c = big if heavy else small
        return Line(line_id, a, b, km, c.r1, c.x1, c.r0, c.x0, c.c1, c.c0)

    lines = [
        line("L1", "SRC", "B1", 0.5, True),
        line("L2", "B2", "B1", 0.2, True),  # written downstream-first
        line("L3", "B2", "B3", 0.25, True),
        line("L4", "B4", "B3", 0.2, True),  # written downstream-first
        line("L5", "B2", "J1", 0.15, False),
        line("L6", "B5", "J1", 0.2, False),  # written downstream-first
        line("L12", "J1", "B6", 0.12, False),
        line("L7", "SRC", "B7", 0.6, True),
        line("L8", "B7", "B8", 0.2, True),
        line("L9", "B9", "B8", 0.15, True),  # written downstream-first
        line("L10", "B9", "B10", 0.25, True),
        line("L11", "B4", "B10", 0.3, False),  # tie line
    ]
    loads = [
        Load("B1", 400.0, 130.0),
        Load("B2", 250.0, 80.0),
        Load("B3", 300.0, 100.0),
        Load("B4", 200.0, 65.0),
        Load("B5", 150.0, 50.0),
        Load("B6", 120.0, 40.0),
        Load("B7", 350.0, 115.0),
        Load("B8", 500.0, 160.0),
        Load("B9", 220.0, 70.0),
        Load("B10", 280.0, 90.0),
    ]
    switches = [
        Switch("CB1", "L1", "SRC", "breaker", False, True),
        Switch("CB2", "L7", "SRC", "breaker", False, True),
        Switch("SW1", "L3", "B2", "load_break_switch", False, True),
        Switch("SW2", "L9", "B8", "load_break_switch", False, True),
        Switch("DS1", "L5", "B2", "disconnector", False, False),
        Switch("NOP1", "L11", "B4", "load_break_switch", True, True),
    ]
    meters = [
        Meter("MH1", "SRC", "L1", "feeder_head"),
        Meter("MH2", "SRC", "L7", "feeder_head"),
        Meter("MS1", "B5", "L6", "secondary"),
        Meter("MS2", "B4", "L4", "secondary"),
    ]
    return Network(info, buses, lines, loads, switches, meters)
