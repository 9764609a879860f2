"""Chromophore absorption against the published values it was taken from."""

from __future__ import annotations

import math

import pytest

from sim.physics import spectra


@pytest.mark.parametrize(
    # The values quoted with the formula in the domain facts (Jacques 2013).
    ("nm", "mu_a"),
    [(532, 552), (595, 380), (755, 172), (810, 136), (940, 83), (1064, 55)],
)
def test_melanin_follows_jacques_2013(nm: float, mu_a: float) -> None:
    assert spectra.melanin_mu_a_cm(nm) == pytest.approx(mu_a, rel=0.01)


def test_blood_at_a_tabulated_row_is_prahls_value_converted() -> None:
    # Prahl, 532 nm: HbO2 43876, Hb 40584 cm-1/M; 150 g/L at 64,500 g/mol; ln(10).
    molar = 150.0 / 64_500.0
    expected = math.log(10) * molar * (0.75 * 43876 + 0.25 * 40584)
    assert spectra.hemoglobin_mu_a_cm(532, 0.75) == pytest.approx(expected, rel=1e-12)


def test_blood_absorbs_where_the_vascular_lasers_are_chosen_to() -> None:
    b = {nm: spectra.blood_mu_a_cm(nm, 0.75) for nm in (532, 585, 595, 755, 810, 940, 1064)}
    # 532 and 585 sit on the hemoglobin bands; 595 is on the flank; the NIR lines are ~50x
    # weaker (which is why they need 100+ J/cm²).
    assert b[532] > 200 and 150 < b[585] < 200 and 30 < b[595] < 80
    assert all(2.0 < b[nm] < 10.0 for nm in (755, 810, 940, 1064))


@pytest.mark.parametrize(
    # 4πk/λ of Hale & Querry's k at their own rows; 1064 from Segelstein's finer table.
    ("nm", "mu_a", "rel"),
    [(600, 4 * math.pi * 1.09e-8 / 600e-7, 1e-9), (1000, 4 * math.pi * 2.89e-6 / 1000e-7, 1e-9),
     (1064, 0.151, 0.02), (532, 3.5e-4, 0.05)],
)  # fmt: skip
def test_water_follows_hale_querry_and_segelstein(nm: float, mu_a: float, rel: float) -> None:
    assert spectra.water_mu_a_cm(nm) == pytest.approx(mu_a, rel=rel)


@pytest.mark.parametrize("nm", [499.0, 1065.0, 10_600.0, math.nan])
def test_wavelength_outside_the_tables_is_refused_not_extrapolated(nm: float) -> None:
    with pytest.raises(ValueError, match="nm"):
        spectra.blood_mu_a_cm(nm, 0.75)
    with pytest.raises(ValueError, match="nm"):
        spectra.melanin_mu_a_cm(nm)


def test_saturation_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="saturation"):
        spectra.hemoglobin_mu_a_cm(595, 1.5)
