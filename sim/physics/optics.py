"""Where a laser pulse's energy is absorbed in depth: a 1-D attenuation model per layer.

The light entering the skin (incident fluence less the specular reflection at the surface)
falls off with depth; each cell absorbs its share ``µa / µ_att`` of what is lost across it,
integrated exactly over the cell so the answer does not depend on the grid:

- epidermis and vessel: collimated light, ``µ_att = µa``. The epidermis is thinner than one
  scattering length (1/µs' ≈ 0.25 mm at 532 nm) and blood absorbs far more than it scatters
  at the vascular wavelengths, so absorption sets the fall-off there.
- dermis and subcutis: diffuse light, ``µ_att = µ_eff = √(3 µa (µa + µs'))`` (diffusion
  approximation). The fraction ``1 − µa/µ_eff`` of the loss is light scattered out of the
  beam (remitted or spread sideways), not heat.

What this leaves out (say so when quoting results): the diffuse fluence build-up just under
the surface (which can exceed the incident fluence in a scattering dermis, so the vessel's
heating here is a lower estimate), the spot size, and the change of optical properties as
blood coagulates.

Layer composition: epidermis = melanin fraction × µa,mel + the rest × background (Jacques
1998); dermis = 0.2 % blood (Jacques 2013, typical dermis: approximate, review) + 65 % water
(approximate, review) + background for the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.physics import spectra
from sim.physics.tissue import F64, Grid, Material

SKIN_REFRACTIVE_INDEX = 1.4  # approximate
#: Fresnel reflection at normal incidence, air to skin: ((n − 1)/(n + 1))² ≈ 2.8 %.
SPECULAR_REFLECTANCE = ((SKIN_REFRACTIVE_INDEX - 1.0) / (SKIN_REFRACTIVE_INDEX + 1.0)) ** 2
DERMAL_BLOOD_FRACTION = 0.002
DERMAL_WATER_FRACTION = 0.65
J_CM2_TO_J_M2 = 1e4


@dataclass(frozen=True)
class LayerOptics:
    """One material at one wavelength: absorption and attenuation, 1/cm."""

    mu_a_cm: float
    mu_att_cm: float


@dataclass(frozen=True)
class SkinOptics:
    wavelength_nm: float
    layers: dict[Material, LayerOptics]


def skin_optics(
    wavelength_nm: float, melanin_fraction: float, blood_saturation: float = 0.75
) -> SkinOptics:
    """Absorption and attenuation of every layer at ``wavelength_nm``."""
    if not 0.0 <= melanin_fraction <= 1.0:
        raise ValueError(f"melanin fraction is a volume fraction 0-1, got {melanin_fraction}")
    background = spectra.background_mu_a_cm(wavelength_nm)
    blood = spectra.blood_mu_a_cm(wavelength_nm, blood_saturation)
    water = spectra.water_mu_a_cm(wavelength_nm)
    scatter = spectra.reduced_scattering_cm(wavelength_nm)
    epidermis = (
        melanin_fraction * spectra.melanin_mu_a_cm(wavelength_nm)
        + (1.0 - melanin_fraction) * background
    )
    rest = 1.0 - DERMAL_BLOOD_FRACTION - DERMAL_WATER_FRACTION
    dermis = DERMAL_BLOOD_FRACTION * blood + DERMAL_WATER_FRACTION * water + rest * background

    def diffuse(mu_a: float) -> LayerOptics:
        return LayerOptics(mu_a, math.sqrt(3.0 * mu_a * (mu_a + scatter)))

    return SkinOptics(
        wavelength_nm,
        {
            Material.EPIDERMIS: LayerOptics(epidermis, epidermis),
            Material.DERMIS: diffuse(dermis),
            Material.BLOOD: LayerOptics(blood, blood),
            Material.SUBCUTIS: diffuse(dermis),
        },
    )


def deposition_j_m2(grid: Grid, optics: SkinOptics, fluence_j_cm2: float = 1.0) -> F64:
    """Energy absorbed in each cell [J per m² of skin surface] for ``fluence_j_cm2`` incident.

    The sum is at most the fluence that entered; the rest was remitted or left the bottom.
    """
    mu_a = np.array([optics.layers[Material(m)].mu_a_cm for m in grid.material]) * 100.0
    mu_att = np.array([optics.layers[Material(m)].mu_att_cm for m in grid.material]) * 100.0
    optical_depth = np.concatenate(([0.0], np.cumsum(mu_att * grid.widths_m)))
    entering = fluence_j_cm2 * J_CM2_TO_J_M2 * (1.0 - SPECULAR_REFLECTANCE)
    at_faces = entering * np.exp(-optical_depth)
    lost = at_faces[:-1] - at_faces[1:]
    out: F64 = lost * np.divide(mu_a, mu_att, out=np.zeros_like(mu_a), where=mu_att > 0)
    return out
