"""The bioheat solver against analytic solutions, conservation and refinement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from device_profiles.schema import SkinType
from sim.physics.bioheat import BioheatSolver
from sim.physics.cooling import NoCooling
from sim.physics.layered import LayeredSkin, LayeredSkinConfig
from sim.physics.tissue import THERMAL, Grid, Material, SkinGeometry, build_grid

DERMIS = THERMAL[Material.DERMIS]


def uniform_dermis(n: int = 400, dz_m: float = 5e-6) -> Grid:
    return Grid(np.full(n, dz_m), np.full(n, int(Material.DERMIS)))


def semi_infinite(h_w_m2k: float) -> BioheatSolver:
    grid = uniform_dermis()
    solver = BioheatSolver(
        grid, np.zeros(grid.n), h_w_m2k=h_w_m2k, perfusion=False, bottom_insulated=True
    )
    solver.set_temperatures_c(np.full(grid.n, 30.0))
    return solver


def test_a_plate_in_perfect_contact_gives_the_erfc_profile() -> None:
    """Surface held at 5 °C on a 30 °C slab: T = 5 + 25·erf(z / 2√(αt)) (Carslaw & Jaeger)."""
    solver = semi_infinite(1e9)
    solver.step(0.05, env_c=5.0)
    alpha = DERMIS.conductivity_w_mk / DERMIS.rho_c_j_m3k
    z = solver.grid.centres_m
    exact = 5.0 + 25.0 * np.array([math.erf(x / (2.0 * math.sqrt(alpha * 0.05))) for x in z])
    assert np.max(np.abs(solver.temperatures_c() - exact)) < 0.05


def test_a_plate_through_a_contact_conductance_gives_the_robin_solution() -> None:
    """T_s(t) = T_i + (T_p − T_i)·(1 − e^(β²) erfc β), β = h√(αt)/k (Carslaw & Jaeger §2.7)."""
    h = 1000.0
    solver = semi_infinite(h)
    alpha = DERMIS.conductivity_w_mk / DERMIS.rho_c_j_m3k
    for t in (0.1, 0.5, 1.0):
        solver.set_temperatures_c(np.full(solver.grid.n, 30.0))
        solver.step(t, env_c=5.0)
        beta = h * math.sqrt(alpha * t) / DERMIS.conductivity_w_mk
        exact = 30.0 + (5.0 - 30.0) * (1.0 - math.exp(beta**2) * math.erfc(beta))
        g = solver.top_half_cell_w_m2k
        surface = (g * solver.temperatures_c()[0] + h * 5.0) / (g + h)
        assert surface == pytest.approx(exact, abs=0.05)


def test_one_long_step_equals_many_short_ones() -> None:
    """Exact in time: the step size never changes the temperatures."""
    grid = build_grid(SkinGeometry())
    deposit = np.linspace(1.0, 0.0, grid.n)
    one = BioheatSolver(grid, deposit, h_w_m2k=1000.0)
    many = BioheatSolver(grid, deposit, h_w_m2k=1000.0)
    start = np.linspace(20.0, 37.0, grid.n)
    one.set_temperatures_c(start)
    many.set_temperatures_c(start)
    one.step(0.7, env_c=5.0, fluence_rate_j_cm2_s=100.0)
    for _ in range(700):
        many.step(0.001, env_c=5.0, fluence_rate_j_cm2_s=100.0)
    assert np.max(np.abs(one.temperatures_c() - many.temperatures_c())) < 1e-8


def test_a_huge_step_is_stable_and_lands_on_the_steady_state() -> None:
    grid = build_grid(SkinGeometry())
    solver = BioheatSolver(grid, np.zeros(grid.n), h_w_m2k=1000.0)
    solver.set_temperatures_c(np.full(grid.n, 80.0))
    solver.step(1e6, env_c=5.0)
    steady = solver.steady_state_c(1000.0, 5.0)
    assert np.max(np.abs(solver.temperatures_c() - steady)) < 1e-6
    assert 5.0 < steady[0] < steady[-1] < 37.0


@pytest.mark.parametrize("wavelength_nm", [532, 1064])
def test_issue13_item1_energy_is_conserved_without_perfusion_or_boundary_losses(
    wavelength_nm: float,
) -> None:
    """Insulated top and bottom, no perfusion: the heat gained is the light absorbed."""
    skin = LayeredSkin(
        LayeredSkinConfig(
            SkinType.III,
            wavelength_nm,
            cooling=NoCooling(h_w_m2k=0.0),
            perfusion=False,
            bottom_insulated=True,
        )
    )
    before = skin.energy_j_m2()
    for k in range(5):
        skin.fire(0.2 + k * 0.5, 20.0, 30.0)
    skin.advance_to(4.0)
    absorbed = 5 * 20.0 * float(skin.deposition_j_m2.sum())
    assert skin.energy_j_m2() - before == pytest.approx(absorbed, rel=1e-9)
    # and the optics never absorb more than entered the skin
    assert 0.0 < skin.deposition_j_m2.sum() <= 1e4


def pulse_outcome(**config: float) -> tuple[float, float, float]:
    skin = LayeredSkin(
        LayeredSkinConfig(SkinType.II, 1064, sensor_noise_c=0.0, **config)  # type: ignore[arg-type]
    )
    skin.advance_to(2.0)
    skin.peaks.reset()
    skin.fire(2.0, 120.0, 30.0)
    skin.advance_to(3.0)
    reading = skin.reading()
    return skin.peaks.basal_c, reading.log_basal_omega, reading.log_vessel_omega


def test_issue13_item1_refining_the_grid_converges() -> None:
    coarse, medium, fine = (pulse_outcome(grid_um=dz) for dz in (10.0, 5.0, 2.5))
    # The peak basal temperature and the damage settle as the cells halve ...
    assert abs(medium[0] - fine[0]) < 0.05
    assert abs(medium[1] - fine[1]) < 0.05 and abs(medium[2] - fine[2]) < 0.05
    # ... and each halving changes less than the one before.
    assert abs(medium[0] - fine[0]) < abs(coarse[0] - medium[0])


def test_refining_the_sampling_converges() -> None:
    base, finer = pulse_outcome(pulse_steps=10), pulse_outcome(pulse_steps=40, max_step_s=0.01)
    assert base[0] == pytest.approx(finer[0], abs=0.05)
    assert base[1] == pytest.approx(finer[1], abs=0.05)
    assert base[2] == pytest.approx(finer[2], abs=0.05)


def test_bad_temperatures_and_conductances_are_refused() -> None:
    grid = uniform_dermis(10)
    solver = BioheatSolver(grid, np.zeros(grid.n))
    with pytest.raises(ValueError, match="finite"):
        solver.set_temperatures_c(np.full(grid.n, math.nan))
    with pytest.raises(ValueError, match="conductance"):
        solver.set_surface(-1.0)
    with pytest.raises(ValueError, match="forward"):
        solver.step(-0.1, env_c=5.0)
