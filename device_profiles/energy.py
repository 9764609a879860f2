"""The energy per pulse a laser is set to deliver: fluence times the spot's area.

    set energy [J] = fluence [J/cm^2] x pi x (spot_mm / 20)^2 [cm^2]

One statement of the rule, for the calibration procedure (which sets fluences to fire given
energies into a meter) and for the session (which holds a laser's reported delivered energy
against its settings).
"""

from __future__ import annotations

import math

__all__ = ["fluence_j_cm2_for", "set_energy_j", "spot_area_cm2"]


def spot_area_cm2(spot_mm: float) -> float:
    """The area of a round spot of diameter ``spot_mm``, in cm^2."""
    return math.pi * (spot_mm / 20.0) ** 2


def set_energy_j(fluence_j_cm2: float, spot_mm: float) -> float:
    """The energy per pulse that ``fluence_j_cm2`` over a ``spot_mm`` spot delivers."""
    return fluence_j_cm2 * spot_area_cm2(spot_mm)


def fluence_j_cm2_for(energy_j: float, spot_mm: float) -> float:
    """The fluence that puts ``energy_j`` into a ``spot_mm`` spot."""
    return energy_j / spot_area_cm2(spot_mm)
