"""Pennes bioheat equation in depth: finite volumes in space, exact exponential in time.

    ρc ∂T/∂t = ∂/∂z (k ∂T/∂z) + ω ρ_b c_b (T_a − T) + q_laser(z, t)

Space: cell-centred finite volumes (`tissue.Grid`); the conductance between two cells is
the series (harmonic) combination of their half-cells, so layer boundaries are exact and
heat flows out of one cell into the next with nothing lost: the discrete system conserves
energy by construction. The surface loses ``h (T_s − T_env)`` through the cooling
boundary's conductance h in series with the top half-cell; the bottom face is held at core
temperature (or insulated, for energy tests).

Time: the method of lines gives ``C dT/dt = −K T + s(t)``, C diagonal (heat capacity per
cell), K symmetric (conduction, perfusion, boundaries). With ``S = C^−½ K C^−½ = V Λ Vᵀ``
the modal coordinates ``y = Vᵀ C^½ T`` decouple, and for a source held constant over a step

    y(t + dt) = e^(−Λ dt) y(t) + (1 − e^(−Λ dt)) Λ⁻¹ Vᵀ C^−½ s

is the exact solution of the semi-discrete system for any dt: unconditionally stable (no
CFL limit; the explicit limit here would be dt < min ρc·dz²/2k ≈ 0.2 ms at 5 µm), with no
time-stepping error. A laser pulse is a constant source over its width, so the step size
only sets how often the caller samples temperatures (for the damage integral and the
sensor), never the accuracy of the temperatures themselves. Each step costs O(N); going
back to temperatures costs one N×N product, and only for the rows that are watched.

One eigen-decomposition per value of the surface conductance h (cached): cooling switching
between contact, cryogen and air reuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.physics.tissue import ARTERIAL_C, CORE_C, F64, Grid


@dataclass(frozen=True)
class _Modes:
    """The decomposition for one surface conductance, and every source in modal form."""

    h_w_m2k: float
    rate: F64  # Λ, 1/s
    to_modal: F64  # Vᵀ C^½
    from_modal: F64  # C^−½ V
    watch: F64  # watched rows of from_modal
    env_source: F64  # per °C of the cooling medium
    fixed_source: F64  # core temperature at the bottom, arterial blood
    laser_source: F64  # per J/cm² per second of incident fluence
    lossy: npt.NDArray[np.bool_]  # Λ > 0
    lossless: npt.NDArray[np.intp]  # modes with Λ = 0 (insulated, no perfusion: total heat)


class BioheatSolver:
    """Temperatures in every cell, advanced exactly for sources held constant over a step."""

    def __init__(
        self,
        grid: Grid,
        deposition_j_m2: F64,
        *,
        watch: F64 | None = None,
        h_w_m2k: float = 0.0,
        arterial_c: float = ARTERIAL_C,
        core_c: float = CORE_C,
        perfusion: bool = True,
        bottom_insulated: bool = False,
    ) -> None:
        """``deposition_j_m2``: energy absorbed per cell for 1 J/cm² incident (optics).
        ``watch``: rows of weights over the cells (m×N) whose values `watched` returns.
        ``h_w_m2k``: the surface conductance to start with (`set_surface` changes it)."""
        self.grid = grid
        n = grid.n
        w = grid.widths_m
        k = grid.property_of("conductivity_w_mk")
        self.heat_capacity_j_m2k: F64 = grid.property_of("rho_c_j_m3k") * w
        self._perfusion_w_m2k: F64 = (
            grid.property_of("perfusion_w_m3k") * w if perfusion else np.zeros(n)
        )
        self._face_w_m2k: F64 = 1.0 / (w[:-1] / (2.0 * k[:-1]) + w[1:] / (2.0 * k[1:]))
        self.top_half_cell_w_m2k = float(2.0 * k[0] / w[0])
        self._bottom_w_m2k = 0.0 if bottom_insulated else float(2.0 * k[-1] / w[-1])
        self.arterial_c = arterial_c
        self.core_c = core_c
        self._deposition = np.asarray(deposition_j_m2, dtype=np.float64)
        self._watch = np.eye(n) if watch is None else np.asarray(watch, dtype=np.float64)
        self._modes_by_h: dict[float, _Modes] = {}
        self._modes = self._modes_for(h_w_m2k)
        self._y: F64 = np.zeros(n)
        self._decay = np.empty(n)
        self._gain = np.empty(n)
        self._force = np.empty(n)
        self._laser = np.empty(n)
        self._watched = np.empty(self._watch.shape[0])

    # --- assembly -------------------------------------------------------------------------

    def surface_conductance_w_m2k(self, h_w_m2k: float) -> float:
        """The cooling medium's h in series with the top half-cell."""
        if h_w_m2k <= 0.0:
            return 0.0
        return 1.0 / (1.0 / h_w_m2k + 1.0 / self.top_half_cell_w_m2k)

    def stiffness(self, h_w_m2k: float) -> F64:
        """K of ``C dT/dt = −K T + s`` [W/m²K]."""
        n = self.grid.n
        diag = self._perfusion_w_m2k.copy()
        diag[:-1] += self._face_w_m2k
        diag[1:] += self._face_w_m2k
        diag[0] += self.surface_conductance_w_m2k(h_w_m2k)
        diag[-1] += self._bottom_w_m2k
        k = np.diag(diag)
        idx = np.arange(n - 1)
        k[idx, idx + 1] = -self._face_w_m2k
        k[idx + 1, idx] = -self._face_w_m2k
        return k

    def sources_w_m2(self, h_w_m2k: float, env_c: float, fluence_rate_j_cm2_s: float) -> F64:
        """s of ``C dT/dt = −K T + s`` [W/m²]."""
        s = self._perfusion_w_m2k * self.arterial_c + self._deposition * fluence_rate_j_cm2_s
        s[0] += self.surface_conductance_w_m2k(h_w_m2k) * env_c
        s[-1] += self._bottom_w_m2k * self.core_c
        out: F64 = s
        return out

    def _modes_for(self, h_w_m2k: float) -> _Modes:
        cached = self._modes_by_h.get(h_w_m2k)
        if cached is not None:
            return cached
        root_c = np.sqrt(self.heat_capacity_j_m2k)
        sym = self.stiffness(h_w_m2k) / root_c[:, None] / root_c[None, :]
        rate, vectors = np.linalg.eigh(sym)
        rate = np.maximum(rate, 0.0)  # K is positive semi-definite; clip rounding below zero
        from_modal = vectors / root_c[:, None]
        to_modal = vectors.T * root_c[None, :]

        def modal(source: F64) -> F64:
            out: F64 = vectors.T @ (source / root_c)
            return out

        env = np.zeros(self.grid.n)
        env[0] = self.surface_conductance_w_m2k(h_w_m2k)
        fixed = self._perfusion_w_m2k * self.arterial_c
        fixed[-1] += self._bottom_w_m2k * self.core_c
        modes = _Modes(
            h_w_m2k=h_w_m2k,
            rate=rate,
            to_modal=to_modal,
            from_modal=from_modal,
            watch=self._watch @ from_modal,
            env_source=modal(env),
            fixed_source=modal(fixed),
            laser_source=modal(self._deposition),
            lossy=rate > 0.0,
            lossless=np.flatnonzero(rate <= 0.0),
        )
        self._modes_by_h[h_w_m2k] = modes
        return modes

    # --- state ----------------------------------------------------------------------------

    @property
    def h_w_m2k(self) -> float:
        return self._modes.h_w_m2k

    def set_surface(self, h_w_m2k: float) -> None:
        """Switch the cooling boundary's conductance (keeps the temperatures)."""
        if not (h_w_m2k >= 0.0 and np.isfinite(h_w_m2k)):
            raise ValueError(f"surface conductance must be finite and >= 0, got {h_w_m2k}")
        if h_w_m2k == self._modes.h_w_m2k:
            return
        temps = self.temperatures_c()
        self._modes = self._modes_for(h_w_m2k)
        self._y = self._modes.to_modal @ temps

    def temperatures_c(self) -> F64:
        out: F64 = self._modes.from_modal @ self._y
        return out

    def set_temperatures_c(self, temps_c: F64) -> None:
        temps: F64 = np.asarray(temps_c, dtype=np.float64)
        if temps.shape != (self.grid.n,) or not np.all(np.isfinite(temps)):
            raise ValueError("temperatures must be finite, one per cell")
        self._y = np.matmul(self._modes.to_modal, temps)

    def steady_state_c(self, h_w_m2k: float, env_c: float) -> F64:
        """Temperatures with the boundary held and no laser, after a long time."""
        stiffness = self.stiffness(h_w_m2k)
        sources = self.sources_w_m2(h_w_m2k, env_c, 0.0)
        return np.asarray(np.linalg.solve(stiffness, sources), dtype=np.float64)

    def energy_j_m2(self) -> float:
        """Heat content per m² of skin, relative to 0 °C."""
        return float(self.heat_capacity_j_m2k @ self.temperatures_c())

    def watched(self) -> F64:
        """The watched rows' values now (a view into a buffer reused by the next call)."""
        np.matmul(self._modes.watch, self._y, out=self._watched)
        return self._watched

    # --- time -----------------------------------------------------------------------------

    def step(self, dt_s: float, env_c: float, fluence_rate_j_cm2_s: float = 0.0) -> None:
        """Advance ``dt_s`` with the medium at ``env_c`` and the laser at a constant rate."""
        if not dt_s >= 0.0:
            raise ValueError(f"time runs forward only, got dt {dt_s}")
        m = self._modes
        np.multiply(m.rate, -dt_s, out=self._decay)
        # gain = (1 − e^(−λ dt)) / λ, and dt where λ = 0 (no loss at all in that mode)
        np.expm1(self._decay, out=self._gain)
        np.negative(self._gain, out=self._gain)
        np.divide(self._gain, m.rate, out=self._gain, where=m.lossy)
        self._gain[m.lossless] = dt_s
        np.exp(self._decay, out=self._decay)
        np.multiply(m.env_source, env_c, out=self._force)
        self._force += m.fixed_source
        if fluence_rate_j_cm2_s:
            np.multiply(m.laser_source, fluence_rate_j_cm2_s, out=self._laser)
            self._force += self._laser
        self._y *= self._decay
        self._force *= self._gain
        self._y += self._force
