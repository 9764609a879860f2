"""Skin physics for the simulator: a layered (1-D, depth) skin model and thermal dose.

- `LayeredSkin` (`layered`): Pennes bioheat in depth with melanin, blood and water
  absorption by wavelength, a target vessel, a cooling boundary, an IR sensor and the
  Henriques–Moritz damage integral. Opt-in: the simulator's default skin is still the
  lumped `sim.skin.SkinModel`.
- Thermal dose (CEM43 and the Arrhenius Ω) lives in the ``thermal_dose`` package, shared
  with the monitor's safety core (docs/architecture.md).

See docs/physics.md for the model, its sources and what it leaves out.
"""

from sim.physics.cooling import ColdAir, ContactCooling, Cooling, CryogenSpray, NoCooling
from sim.physics.layered import LayeredSkin, LayeredSkinConfig, Peaks, SkinReading
from sim.physics.tissue import MELANIN_FRACTION, SkinGeometry

__all__ = [
    "MELANIN_FRACTION",
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
