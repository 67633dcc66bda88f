"""Sequence parameters of the MV cables used by the benchmark networks.

The cables are three single-core 12/20 kV XLPE-insulated aluminium cables (type NA2XS2Y / ARE4H1R,
Um = 24 kV, fit for a 22 kV system) laid in trefoil, with 25 mm² copper wire screens bonded and
earthed at both ends. Values are computed from the cable geometry with the classic line-constant
formulas (Carson's earth return in its usual simplified form), not typed in:

- conductor resistance: IEC 60228 maximum DC resistance at 20 °C (Al 185 mm²: 0.164 ohm/km,
  Al 240 mm²: 0.125 ohm/km; Cu 25 mm² screen: 0.727 ohm/km);
- positive sequence: ``Z1 = Rc + j w mu0/(2 pi) ln(D / GMRc)`` plus the loss of the circulating screen
  current ``Rs Xm² / (Rs² + Xm²)`` with ``Xm = w mu0/(2 pi) ln(D / rs)`` (solid bonding);
- zero sequence with return shared by the three screens and the earth: conductor-group and
  screen-group zero sequence loop impedances ``Z0c``, ``Z0s`` and their mutual ``Z0cs`` with earth
  resistance ``pi² f 1e-4`` ohm/km and depth ``De = 658 sqrt(rho / f)`` m, then
  ``Z0 = Z0c - Z0cs² / Z0s`` (screens shorted to earth at both ends);
- capacitance of a screened cable: ``C = 2 pi eps0 epsr / ln(Ri / ro)`` between conductor screen and
  insulation screen, the same for positive and zero sequence (each core has its own earthed screen).

Results (50 Hz, soil 100 ohm m), in ohm/km and nF/km:

=========  ======  ======  ======  ======  =====  =====
cable      r1      x1      r0      x0      c1     c0
=========  ======  ======  ======  ======  =====  =====
Al 185     0.1683  0.1108  0.7911  0.2797  274.8  274.8
Al 240     0.1292  0.1069  0.7510  0.2770  305.2  305.2
=========  ======  ======  ======  ======  =====  =====

They agree with pandapower's standard types for NA2XS2Y 1x185/1x240 RM/25 12/20 kV (r1 0.161/0.122,
x1 0.117/0.112 ohm/km, c 273/304 nF/km) within 6 %; r0 ≈ 4.7–5.8 r1 and x0 ≈ 2.5–2.6 x1, the usual
ratios for screened MV cables with screen and earth return.

References
----------
J. R. Carson, "Wave propagation in overhead wires with ground return", Bell Syst. Tech. J., 1926.
P. M. Anderson, *Analysis of Faulted Power Systems*, IEEE Press, 1995, ch. 4 (cable impedances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MU0_OVER_2PI = 2e-7  # H/m
EPS0 = 8.854187817e-12  # F/m


@dataclass(frozen=True, slots=True)
class CableGeometry:
    """Geometry and materials of a single-core screened cable in trefoil formation.

    Parameters
    ----------
    name : str
        Display name.
    r_conductor_ohm_km : float
        AC resistance of the conductor (ohm/km) at 20 °C.
    conductor_radius_m : float
        Outer radius of the stranded conductor (m).
    insulation_inner_radius_m, insulation_outer_radius_m : float
        Radii over the conductor screen and under the insulation screen (m): the capacitor.
    screen_radius_m : float
        Mean radius of the metallic screen (m).
    r_screen_ohm_km : float
        Resistance of one metallic screen (ohm/km).
    outer_diameter_m : float
        Cable outer diameter = axis spacing in touching trefoil (m).
    eps_r : float
        Relative permittivity of the insulation (XLPE 2.5).
    """

    name: str
    r_conductor_ohm_km: float
    conductor_radius_m: float
    insulation_inner_radius_m: float
    insulation_outer_radius_m: float
    screen_radius_m: float
    r_screen_ohm_km: float
    outer_diameter_m: float
    eps_r: float = 2.5


@dataclass(frozen=True, slots=True)
class CableParameters:
    """Per-km sequence parameters of a cable (ohm/km, nF/km)."""

    name: str
    r1: float
    x1: float
    r0: float
    x0: float
    c1: float
    c0: float


def sequence_parameters(
    cable: CableGeometry, frequency_hz: float = 50.0, soil_resistivity_ohm_m: float = 100.0
) -> CableParameters:
    """Positive and zero sequence parameters of a trefoil circuit of screened single-core cables.

    Parameters
    ----------
    cable : CableGeometry
        The cable.
    frequency_hz : float
        Frequency (Hz).
    soil_resistivity_ohm_m : float
        Soil resistivity (ohm m), for the earth return.

    Returns
    -------
    CableParameters
        r1, x1, r0, x0 in ohm/km, c1 = c0 in nF/km, rounded to 4 significant decimals.
    """
    w_l = 2.0 * math.pi * frequency_hz * MU0_OVER_2PI * 1000.0  # ohm/km per unit of ln()
    gmr = 0.7788 * cable.conductor_radius_m  # geometric mean radius of a round conductor
    d = cable.outer_diameter_m
    rs = cable.screen_radius_m
    # positive sequence, with the loss of the circulating screen currents (solid bonding)
    xm = w_l * math.log(d / rs)
    r_extra = cable.r_screen_ohm_km * xm**2 / (cable.r_screen_ohm_km**2 + xm**2)
    z1 = complex(
        cable.r_conductor_ohm_km + r_extra,
        w_l * math.log(d / gmr) - xm**3 / (cable.r_screen_ohm_km**2 + xm**2),
    )
    # zero sequence: conductors, screens and earth (Carson, simplified)
    re = math.pi**2 * frequency_hz * 1e-4  # earth resistance (ohm/km)
    de = 658.0 * math.sqrt(soil_resistivity_ohm_m / frequency_hz)  # m
    z_cc = complex(cable.r_conductor_ohm_km + re, w_l * math.log(de / gmr))
    z_mutual = complex(re, w_l * math.log(de / d))  # between different cables (conductor or screen)
    z_ss = complex(cable.r_screen_ohm_km + re, w_l * math.log(de / rs))
    z_cs = complex(re, w_l * math.log(de / rs))  # conductor to its own screen
    z0c = z_cc + 2.0 * z_mutual
    z0s = z_ss + 2.0 * z_mutual
    z0cs = z_cs + 2.0 * z_mutual
    z0 = z0c - z0cs**2 / z0s
    c_nf = (
        2.0
        * math.pi
        * EPS0
        * cable.eps_r
        / math.log(cable.insulation_outer_radius_m / cable.insulation_inner_radius_m)
        * 1e12
    )  # F/m -> nF/km
    return CableParameters(
        cable.name,
        round(z1.real, 4),
        round(z1.imag, 4),
        round(z0.real, 4),
        round(z0.imag, 4),
        round(c_nf, 1),
        round(c_nf, 1),
    )


#: 12/20 kV XLPE Al 185 mm², 25 mm² Cu screen (typical NA2XS2Y 1x185 RM/25 dimensions).
AL185 = CableGeometry(
    name="XLPE Al 185 mm2 12/20 kV",
    r_conductor_ohm_km=0.164,
    conductor_radius_m=0.0081,
    insulation_inner_radius_m=0.0085,
    insulation_outer_radius_m=0.0141,
    screen_radius_m=0.0152,
    r_screen_ohm_km=0.727,
    outer_diameter_m=0.0370,
)
#: 12/20 kV XLPE Al 240 mm², 25 mm² Cu screen (typical NA2XS2Y 1x240 RM/25 dimensions).
AL240 = CableGeometry(
    name="XLPE Al 240 mm2 12/20 kV",
    r_conductor_ohm_km=0.125,
    conductor_radius_m=0.0092,
    insulation_inner_radius_m=0.0097,
    insulation_outer_radius_m=0.0153,
    screen_radius_m=0.0163,
    r_screen_ohm_km=0.727,
    outer_diameter_m=0.0395,
)
