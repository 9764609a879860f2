"""Skin physics for the simulator: a layered (1-D, depth) skin model and thermal dose.

- `LayeredSkin` (`layered`): Pennes bioheat in depth with melanin, blood and water
  absorption by wavelength, a target vessel, a cooling boundary, an IR sensor and the
  Henriques–Moritz damage integral. Opt-in: the simulator's default skin is still the
  lumped `sim.skin.SkinModel`.
- `dose`: incremental CEM43 and Arrhenius Ω, standalone (imports only math and NumPy) so
  the monitor can take it over.

See docs/physics.md for the model, its sources and what it leaves out.
"""

from sim.physics.cooling import ColdAir, ContactCooling, Cooling, CryogenSpray, NoCooling
from sim.physics.dose import (
    HENRIQUES_MORITZ,
    ArrheniusConstants,
    ArrheniusDose,
    ArrheniusField,
    Cem43Dose,
)
from sim.physics.layered import LayeredSkin, LayeredSkinConfig, Peaks, SkinReading
from sim.physics.tissue import MELANIN_FRACTION, SkinGeometry

__all__ = [
    "HENRIQUES_MORITZ",
    "MELANIN_FRACTION",
    "ArrheniusConstants",
    "ArrheniusDose",
    "ArrheniusField",
    "Cem43Dose",
    "ColdAir",
    "ContactCooling",
    "Cooling",
    "CryogenSpray",
    "LayeredSkin",
    "LayeredSkinConfig",
    "NoCooling",
    "Peaks",
    "SkinGeometry",
    "SkinReading",
]
