"""Thermal dose, one sample at a time: CEM43 (Sapareto & Dewey) and the Arrhenius Ω.

A package of its own at the bottom of the layering: it imports only ``math`` and NumPy, and
both the simulator (``sim``, for the ground truth of its skin models) and the monitor's safety
core (``monitor.core``, for the live dose from the measured skin temperature) import it. See
``thermal_dose.dose`` for the definitions and their sources, docs/architecture.md for why it
sits here.
"""

from thermal_dose.dose import (
    FIRST_DEGREE_OMEGA,
    HENRIQUES_MORITZ,
    SECOND_DEGREE_OMEGA,
    ArrheniusConstants,
    ArrheniusDose,
    ArrheniusField,
    Cem43Dose,
    log_add,
    log_damage_rate,
)

__all__ = [
    "FIRST_DEGREE_OMEGA",
    "HENRIQUES_MORITZ",
    "SECOND_DEGREE_OMEGA",
    "ArrheniusConstants",
    "ArrheniusDose",
    "ArrheniusField",
    "Cem43Dose",
    "log_add",
    "log_damage_rate",
]
