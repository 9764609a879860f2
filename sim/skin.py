"""The skin surface temperature that the IR sensor sees.

A demonstration model, not a dosimetry model: it reproduces the behaviour an interlock must
catch (each pulse heats the epidermis; contact cooling pulls it back; when the cooling fails
the post-pulse peaks climb past the burn threshold) with published inputs, but one lumped
parameter, `COUPLING`, is tuned rather than measured. Never use it to choose treatment
settings.

Model:

- Between pulses the surface relaxes exponentially (tau `TAU_S`) toward
  ``T_eq = w * T_plate + (1 - w) * T_core``, w = `CONTACT_WEIGHT` with a sapphire window in
  contact. The step is exact for a constant plate temperature, so any dt works.
- A pulse adds ``dT = COUPLING * F * mu_a_mel(lambda) * f_mel(type) / rho_c``:
  F fluence [J/cm2]; melanin absorption ``mu_a_mel = 6.6e11 * lambda_nm ** -3.33`` [1/cm]
  (S. L. Jacques, "Optical properties of biological tissues: a review", Phys. Med. Biol.
  58 (2013) R37); f_mel the epidermal melanin volume fraction per Fitzpatrick type
  (midpoints of published ranges: I <= 10 %, II 10-16 %, III 16-23 %, IV 23-33 %,
  V 33-43 %, VI > 43 %); rho_c = 1.15 g/cm3 * 3.6 J/gK (epidermis).
  ``F * mu_a * f_mel / rho_c`` is the adiabatic temperature rise of the melanin-laden
  epidermis right after the pulse; `COUPLING` lumps how much of that spike is left once the
  epidermis has relaxed (epidermal TRT 3-10 ms) and after the sensor averages over its spot.
  Pulse width and spot size do not enter.
"""

from __future__ import annotations

import math

from device_profiles.schema import SkinType

T_CORE_C = 34.0
CONTACT_WEIGHT = 0.8
TAU_S = 1.5
RHO_C_J_CM3_K = 1.15 * 3.6
#: Model parameter, tuned (not measured): the fraction of the adiabatic epidermal spike that
#: the sensor sees. 0.03 puts a type III, 1064 nm, 120 J/cm2, 1 Hz treatment at about 30 degC
#: peaks on a 5 degC plate and about 47 degC once the plate has warmed to 26 degC.
COUPLING = 0.03

MELANIN_FRACTION: dict[SkinType, float] = {
    SkinType.I: 0.05,
    SkinType.II: 0.13,
    SkinType.III: 0.20,
    SkinType.IV: 0.28,
    SkinType.V: 0.38,
    SkinType.VI: 0.48,
}


def melanin_absorption_cm(wavelength_nm: float) -> float:
    """Absorption coefficient of melanin [1/cm] (Jacques 2013)."""
    return float(6.6e11 * wavelength_nm**-3.33)


def equilibrium_c(plate_c: float) -> float:
    """Where the surface settles with the window at ``plate_c`` and no pulses."""
    return CONTACT_WEIGHT * plate_c + (1.0 - CONTACT_WEIGHT) * T_CORE_C


class SkinModel:
    """One surface temperature state, for one skin type and one wavelength."""

    def __init__(self, skin_type: SkinType, wavelength_nm: float, *, temp_c: float) -> None:
        self.skin_type = skin_type
        self.wavelength_nm = wavelength_nm
        self.temp_c = temp_c
        # A heat load the window does not remove (a scenario's skin_heat_load): the surface
        # settles this much warmer than the plate alone would keep it.
        self.heat_load_c = 0.0

    def pulse_rise_c(self, fluence_j_cm2: float) -> float:
        """Temperature rise the sensor sees from one pulse at ``fluence_j_cm2``."""
        return (
            COUPLING
            * fluence_j_cm2
            * melanin_absorption_cm(self.wavelength_nm)
            * MELANIN_FRACTION[self.skin_type]
            / RHO_C_J_CM3_K
        )

    def pulse(self, fluence_j_cm2: float) -> float:
        """Apply one pulse; return the temperature right after it."""
        self.temp_c += self.pulse_rise_c(fluence_j_cm2)
        return self.temp_c

    def relax(self, dt_s: float, plate_c: float) -> float:
        """Let ``dt_s`` seconds pass with the window at ``plate_c`` (exact for constant plate)."""
        if dt_s < 0:
            raise ValueError(f"time runs forward only, got dt {dt_s}")
        target = equilibrium_c(plate_c) + self.heat_load_c
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt_s / TAU_S)
        return self.temp_c
