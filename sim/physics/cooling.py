"""The skin surface's cooling boundary: what the surface sees, as a conductance and a temperature.

Every kind is a heat transfer coefficient h [W/m²·K] to a medium at ``T_env``: the surface
loses ``h · (T_surface − T_env)``. The kinds:

- `ContactCooling`: a chilled sapphire window pressed on the skin. Anvari et al. (IEEE
  Trans. Biomed. Eng. 45 (1998) 934, "A comparative study of human skin thermal response to
  sapphire contact and cryogen spray cooling") measured the surface falling from 30 °C to
  14–19 °C within about 1 s with the window at 6–12 °C. The contact conductance is not given
  as one number; 1000 W/m²·K reproduces that figure in this model with the plate at 5 °C
  (a model parameter fitted to it, so the contact-cooling test checks the fit, not the
  physics; approximate, review). The plate temperature may change while it is on (a chiller
  failing): `LayeredSkin.set_plate_c`.
- `CryogenSpray`: a spurt of R134a (boiling point −26 °C) ending ``delay_ms`` before each
  pulse; still air the rest of the time. Anvari et al. (1998) measured the surface at 5 to
  −9 °C after 20–100 ms spurts. Published fits of h range from ~2400 W/m²·K (Anvari et al.,
  Phys. Med. Biol. 40 (1995)) to ~10⁴ for other nozzles; 5000 W/m²·K to a medium at
  −26 °C is a middle value that reproduces the measured range (approximate, review). The
  frost and the liquid film left after the spurt are not modelled, nor is freezing (skin
  freezes at about −2 °C: no latent heat here).
- `ColdAir`: a cold-air blower (e.g. −20 °C at the skin); forced convection of order
  100 W/m²·K (approximate, review).
- `NoCooling`: still room air: natural convection plus radiation, about 10 W/m²·K to 22 °C
  (approximate, review). With ``h_w_m2k=0`` the surface is insulated (energy tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SurfaceBoundary:
    """The boundary over one stretch of time."""

    h_w_m2k: float
    env_c: float


@dataclass(frozen=True)
class NoCooling:
    ambient_c: float = 22.0
    h_w_m2k: float = 10.0

    def resting(self) -> SurfaceBoundary:
        return SurfaceBoundary(self.h_w_m2k, self.ambient_c)


@dataclass(frozen=True)
class ContactCooling:
    plate_c: float = 5.0
    conductance_w_m2k: float = 1000.0

    def resting(self) -> SurfaceBoundary:
        return SurfaceBoundary(self.conductance_w_m2k, self.plate_c)


@dataclass(frozen=True)
class ColdAir:
    air_c: float = -20.0
    h_w_m2k: float = 100.0

    def resting(self) -> SurfaceBoundary:
        return SurfaceBoundary(self.h_w_m2k, self.air_c)


@dataclass(frozen=True)
class CryogenSpray:
    spurt_ms: float = 40.0
    delay_ms: float = 20.0
    cryogen_c: float = -26.0
    h_w_m2k: float = 5000.0
    air: NoCooling = field(default_factory=NoCooling)

    def resting(self) -> SurfaceBoundary:
        """Between spurts: still air."""
        return self.air.resting()

    def spraying(self) -> SurfaceBoundary:
        return SurfaceBoundary(self.h_w_m2k, self.cryogen_c)


Cooling = NoCooling | ContactCooling | ColdAir | CryogenSpray


def validate(cooling: Cooling) -> None:
    """Refuse a boundary the solver cannot use (negative or non-finite conductances, times)."""
    rest = cooling.resting()
    values = [rest.h_w_m2k, rest.env_c]
    if isinstance(cooling, CryogenSpray):
        values += [cooling.spurt_ms, cooling.delay_ms, cooling.h_w_m2k, cooling.cryogen_c]
        if cooling.spurt_ms < 0 or cooling.delay_ms < 0 or cooling.h_w_m2k < 0:
            raise ValueError(f"cryogen spurt, delay and h must be >= 0: {cooling}")
    if rest.h_w_m2k < 0 or not all(v == v and abs(v) != float("inf") for v in values):
        raise ValueError(f"cooling parameters must be finite and h >= 0: {cooling}")
