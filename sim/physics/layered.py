"""The layered skin model: pulses in, temperatures and damage out, on simulated time.

`LayeredSkin` puts the pieces together for one patient site, one wavelength, one cooling
method: the optics (`optics`) say where a pulse's energy goes, the bioheat solver
(`bioheat`) moves the heat, the cooling boundary (`cooling`) takes it out at the surface,
and every sample feeds the IR sensor (`sensor`) and the damage integrals (`dose`).

It reports what the interlock and a reviewer care about: the surface as the IR sensor sees
it, the basal layer (the epidermis–dermis junction, where melanin sits and burns start),
the vessel (mean and hottest cell), and the Henriques–Moritz Ω at the basal layer and in
every vessel cell (the vessel counts as coagulated where Ω ≥ 1).

Time is simulated and injected: nothing here reads a clock. `advance_to` and `fire` take
simulated seconds; sampling is fine during and right after a pulse (``pulse_steps`` per
pulse width) and grows geometrically to ``max_step_s`` between pulses, which is what makes
a 10-minute session cheap. The temperatures are exact for any step (`bioheat`); the step
only sets how finely Ω and the sensor are sampled.

The skin starts in the steady state of resting skin in room air (`NoCooling`, surface about
31–33 °C), and the configured cooling starts at t = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from device_profiles.schema import SkinType
from sim.physics import cooling as cooling_mod
from sim.physics.bioheat import BioheatSolver
from sim.physics.cooling import (
    ContactCooling,
    Cooling,
    CryogenSpray,
    NoCooling,
    SurfaceBoundary,
)
from sim.physics.optics import deposition_j_m2, skin_optics
from sim.physics.sensor import IrSensor
from sim.physics.tissue import (
    F64,
    MELANIN_FRACTION,
    Grid,
    Material,
    SkinGeometry,
    build_grid,
)
from thermal_dose.dose import SECOND_DEGREE_OMEGA, ArrheniusField

#: How much each sampling step may grow over the last one, away from a pulse or a change of
#: boundary.
STEP_GROWTH = 1.5


@dataclass(frozen=True)
class LayeredSkinConfig:
    skin_type: SkinType
    wavelength_nm: float
    geometry: SkinGeometry = field(default_factory=SkinGeometry)
    cooling: Cooling = field(default_factory=ContactCooling)
    #: None: by skin type (`tissue.MELANIN_FRACTION`).
    melanin_fraction: float | None = None
    blood_saturation: float = 0.75
    grid_um: float = 5.0
    sensor_response_ms: float = 2.0
    sensor_noise_c: float = 0.05
    seed: int = 0
    #: Samples during one pulse; the first step after it is as fine.
    pulse_steps: int = 20
    #: The longest sampling step between pulses.
    max_step_s: float = 0.05
    #: Off only for tests of the solver (energy conservation).
    perfusion: bool = True
    bottom_insulated: bool = False

    @property
    def melanin(self) -> float:
        if self.melanin_fraction is not None:
            return self.melanin_fraction
        return MELANIN_FRACTION[self.skin_type]


@dataclass(frozen=True)
class SkinReading:
    """The model at one moment. Ω values are also given as natural logs (exact when huge)."""

    t_s: float
    surface_c: float
    sensor_c: float
    basal_c: float
    vessel_c: float  # mean over the vessel
    vessel_peak_c: float  # its hottest cell
    basal_omega: float
    vessel_omega: float  # its most damaged cell
    vessel_coagulated_fraction: float  # share of the vessel's depth with Ω >= 1
    log_basal_omega: float
    log_vessel_omega: float


@dataclass
class Peaks:
    """Highest temperatures seen since the last `reset` (sampled, see the module doc)."""

    surface_c: float = -math.inf
    basal_c: float = -math.inf
    vessel_c: float = -math.inf
    sensor_min_c: float = math.inf  # the detector, before its noise
    surface_min_c: float = math.inf

    def reset(self) -> None:
        self.surface_c = self.basal_c = self.vessel_c = -math.inf
        self.sensor_min_c = self.surface_min_c = math.inf


class LayeredSkin:
    """One site of skin, advanced on simulated time (see the module docstring)."""

    def __init__(self, config: LayeredSkinConfig) -> None:
        cooling_mod.validate(config.cooling)
        if not (config.pulse_steps >= 1 and config.max_step_s > 0):
            raise ValueError("pulse_steps must be >= 1 and max_step_s > 0")
        self.config = config
        self.grid: Grid = build_grid(config.geometry, config.grid_um)
        self.optics = skin_optics(config.wavelength_nm, config.melanin, config.blood_saturation)
        self.deposition_j_m2: F64 = deposition_j_m2(self.grid, self.optics)
        self._vessel_cells = self.grid.cells_of(Material.BLOOD)
        self._boundary = config.cooling.resting()
        self.solver = BioheatSolver(
            self.grid,
            self.deposition_j_m2,
            watch=self._watch_rows(),
            h_w_m2k=self._boundary.h_w_m2k,
            perfusion=config.perfusion,
            bottom_insulated=config.bottom_insulated,
        )
        rest = NoCooling().resting()
        if config.bottom_insulated and not config.perfusion:
            start = np.full(self.grid.n, 37.0)  # no steady state without any loss
        else:
            start = self.solver.steady_state_c(rest.h_w_m2k, rest.env_c)
        self.solver.set_temperatures_c(start)
        self.t_s = 0.0
        watched = self.solver.watched()
        self.sensor = IrSensor(
            config.sensor_response_ms,
            config.sensor_noise_c,
            config.seed,
            self._surface_c(float(watched[0])),
        )
        self.damage = ArrheniusField(watched[1:].copy())
        self.peaks = Peaks()
        #: The next sampling step: fine after a pulse or a change of boundary, then growing.
        self._next_dt_s = config.max_step_s
        self._pulses = 0
        self.samples = 0

    # --- what is watched ------------------------------------------------------------------

    def _watch_rows(self) -> F64:
        """Rows over the cells: the top cell, the basal face, each vessel cell."""
        n = self.grid.n
        epidermis = self.grid.cells_of(Material.EPIDERMIS)
        last = int(epidermis[-1])
        k = self.grid.property_of("conductivity_w_mk")
        w = self.grid.widths_m
        half = 2.0 * k / w  # conductance of each half-cell
        rows = np.zeros((2 + self._vessel_cells.size, n))
        rows[0, 0] = 1.0
        # The face between two cells sits where their half-cell conductances balance.
        total = half[last] + half[last + 1]
        rows[1, last] = half[last] / total
        rows[1, last + 1] = half[last + 1] / total
        rows[2 + np.arange(self._vessel_cells.size), self._vessel_cells] = 1.0
        return rows

    def _surface_c(self, top_cell_c: float) -> float:
        """The surface itself, between the top cell and the medium (flux continuity)."""
        g = self.solver.top_half_cell_w_m2k
        h = self._boundary.h_w_m2k
        return (g * top_cell_c + h * self._boundary.env_c) / (g + h)

    # --- time -----------------------------------------------------------------------------

    def _check_time(self, t_s: float) -> None:
        if not math.isfinite(t_s):
            raise ValueError(f"simulated time must be finite, got {t_s} s")
        if t_s < self.t_s:
            raise ValueError(f"time runs forward only: at {self.t_s} s, asked for {t_s} s")

    def advance_to(self, t_s: float) -> None:
        """Let time run to ``t_s`` under the current boundary, no laser."""
        self._check_time(t_s)
        self._run(t_s, 0.0)

    def fire(self, t_s: float, fluence_j_cm2: float, pulse_ms: float) -> None:
        """A pulse starting at ``t_s``. With `CryogenSpray` the spurt comes first, ending
        ``delay_ms`` before the pulse, so ``t_s`` must leave room for it after now."""
        if not (math.isfinite(fluence_j_cm2) and fluence_j_cm2 >= 0.0):
            raise ValueError(f"fluence must be finite and >= 0, got {fluence_j_cm2} J/cm2")
        if not (math.isfinite(pulse_ms) and pulse_ms > 0.0):
            raise ValueError(f"pulse width must be finite and > 0, got {pulse_ms} ms")
        self._check_time(t_s)
        cooling = self.config.cooling
        if isinstance(cooling, CryogenSpray) and cooling.spurt_ms > 0:
            spurt_end = t_s - cooling.delay_ms / 1000.0
            spurt_start = spurt_end - cooling.spurt_ms / 1000.0
            if spurt_start < self.t_s - 1e-12:
                # Skipping or shortening the spurt would quietly fire on uncooled skin.
                raise ValueError(
                    f"a pulse at {t_s} s needs its cryogen spurt from {spurt_start} s, "
                    f"but the skin is already at {self.t_s} s"
                )
            self.advance_to(spurt_start)
            self._set_boundary(cooling.spraying(), cooling.spurt_ms / 1000.0)
            self.advance_to(spurt_end)
            self._set_boundary(cooling.resting(), cooling.spurt_ms / 1000.0)
        self.advance_to(t_s)
        pulse_s = pulse_ms / 1000.0
        fine = pulse_s / self.config.pulse_steps
        self._next_dt_s = fine
        self._run(t_s + pulse_s, fluence_j_cm2 / pulse_s)
        self._next_dt_s = fine
        self._pulses += 1

    def set_plate_c(self, plate_c: float) -> None:
        """The contact window's temperature from now on (a chiller drifting, a new setpoint)."""
        if not isinstance(self.config.cooling, ContactCooling):
            raise ValueError("only contact cooling has a plate")
        if not math.isfinite(plate_c):
            raise ValueError(f"plate temperature must be finite, got {plate_c}")
        self._boundary = SurfaceBoundary(self._boundary.h_w_m2k, plate_c)

    def _set_boundary(self, boundary: SurfaceBoundary, span_s: float) -> None:
        self._boundary = boundary
        self.solver.set_surface(boundary.h_w_m2k)
        self._next_dt_s = min(self._next_dt_s, max(span_s / 20.0, 1e-5))

    def _run(self, t_end_s: float, fluence_rate_j_cm2_s: float) -> None:
        max_step = self.config.max_step_s
        while self.t_s < t_end_s:
            dt = min(self._next_dt_s, t_end_s - self.t_s)
            if t_end_s - (self.t_s + dt) < 1e-12:  # land exactly on the end
                dt = t_end_s - self.t_s
            self.solver.step(dt, self._boundary.env_c, fluence_rate_j_cm2_s)
            self.t_s = t_end_s if dt == t_end_s - self.t_s else self.t_s + dt
            self._observe(dt)
            self._next_dt_s = min(self._next_dt_s * STEP_GROWTH, max_step)

    def _observe(self, dt_s: float) -> None:
        self.samples += 1
        watched = self.solver.watched()
        surface = self._surface_c(float(watched[0]))
        self.sensor.follow(surface, dt_s)
        self.damage.add(watched[1:], dt_s)
        peaks = self.peaks
        basal = float(watched[1])
        vessel = float(watched[2:].max())
        peaks.surface_c = max(peaks.surface_c, surface)
        peaks.surface_min_c = min(peaks.surface_min_c, surface)
        peaks.basal_c = max(peaks.basal_c, basal)
        peaks.vessel_c = max(peaks.vessel_c, vessel)
        peaks.sensor_min_c = min(peaks.sensor_min_c, self.sensor.detector_c)

    # --- what it reports ------------------------------------------------------------------

    @property
    def pulses(self) -> int:
        return self._pulses

    def reading(self) -> SkinReading:
        """The model now; the sensor value carries fresh noise."""
        watched = self.solver.watched()
        vessel = watched[2:]
        log_omega = self.damage.log_omega
        log_vessel = log_omega[1:]
        with np.errstate(over="ignore"):
            basal_omega = float(np.exp(log_omega[0]))
            vessel_omega = float(np.exp(log_vessel.max()))
        return SkinReading(
            t_s=self.t_s,
            surface_c=self._surface_c(float(watched[0])),
            sensor_c=self.sensor.read(),
            basal_c=float(watched[1]),
            vessel_c=float(vessel.mean()),
            vessel_peak_c=float(vessel.max()),
            basal_omega=basal_omega,
            vessel_omega=vessel_omega,
            vessel_coagulated_fraction=float(np.mean(log_vessel >= math.log(SECOND_DEGREE_OMEGA))),
            log_basal_omega=float(log_omega[0]),
            log_vessel_omega=float(log_vessel.max()),
        )

    def temperatures_c(self) -> F64:
        """Temperature in every cell, top down (depths: ``grid.centres_m``)."""
        return self.solver.temperatures_c()

    def energy_j_m2(self) -> float:
        return self.solver.energy_j_m2()
