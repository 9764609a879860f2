"""The live thermal dose: CEM43 and an Arrhenius Ω from the measured skin temperature.

The interlock loop feeds every new skin-temperature sample (the checked one: the hotter of
two redundant sensors) to ``DoseMeter.add``, timed by when the sample was fresh. Each sample
counts as held for the time since the previous one. The dose accumulates per **treatment
area** (the tissue under the handpiece while that area is current) and for the whole
session. The check engine starts each session on its treatment site's area (``legs``,
``face``, ...); ``set_area`` moves the handpiece to another area (an area's dose stays with it
when the handpiece moves on, and comes back when it returns).

What the figures mean, and do not:

- **CEM43** (Sapareto & Dewey 1984) is validated for rises of about 2-15 °C over a 37-39 °C
  baseline; for millisecond heating under a cooled window it is a trend. Its checks are on
  the current area: ``thermal_dose_warn`` at ``limits.thermal_dose.cem43_warn_min`` (a
  warning: it refuses arming, it halts nothing), ``thermal_dose_high`` at
  ``cem43_halt_min`` when the profile sets one (a halt that cannot be acknowledged away:
  the area has had its dose; treatment goes on elsewhere). The skin-temperature band stays
  the hard limit.
- **Ω** is the Henriques–Moritz integral of the *surface* temperature the sensor reads: an
  estimate, shown and logged, not a check (the basal layer under a cooled window is
  colder, under a warm one hotter).
- A sample that is unknown (NaN, a sensor's sentinel) or a gap in the samples longer than the
  sensor's staleness limit makes the dose incomplete: from then on it is a lower bound
  (``complete`` False; views show ``≥``). Both already halt by their own checks.

Costs: ``add`` is a handful of float operations and two ``math.exp``/``log`` per accumulator,
no containers (``laserguard bench`` reports ``dose_meter_ns_per_sample``). ``add`` runs on the
loop's thread only; ``set_area`` on the operator's (it swaps one reference).
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.schema import ThermalDoseLimits
from thermal_dose import FIRST_DEGREE_OMEGA, ArrheniusDose, Cem43Dose

__all__ = ["DEFAULT_AREA", "AreaDose", "DoseFigures", "DoseMeter", "ThermalDose"]

DEFAULT_AREA = "default"


class AreaDose:
    """The dose accumulated at one treatment area (or over the whole session)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cem43 = Cem43Dose()
        self.omega = ArrheniusDose()
        self.gaps = 0  # samples that came after a gap longer than the staleness limit
        self.held_s = 0.0  # time counted, in seconds

    def add(self, temp_c: float, dt_s: float, gap: bool) -> None:
        self.cem43.add(temp_c, dt_s)
        self.omega.add(temp_c, dt_s)
        self.held_s += dt_s
        if gap:
            self.gaps += 1

    @property
    def complete(self) -> bool:
        return self.cem43.complete and self.gaps == 0

    def figures(self) -> DoseFigures:
        return DoseFigures(
            area=self.name,
            cem43_min=self.cem43.minutes,
            omega=self.omega.omega,
            log_omega=self.omega.log_value,
            seconds=round(self.held_s, 3),
            samples=self.cem43.samples,
            complete=self.complete,
        )


@dataclass(frozen=True)
class DoseFigures:
    """One accumulator's figures at a moment."""

    area: str
    cem43_min: float
    omega: float
    log_omega: float  # ln Ω: compare huge doses here (Ω saturates at inf)
    seconds: float
    samples: int
    complete: bool  # False: a lower bound (an unknown sample or a gap)

    def as_dict(self) -> dict[str, object]:
        return {
            "area": self.area,
            "cem43_min": _finite_or_text(self.cem43_min),
            "omega": _finite_or_text(self.omega),
            "log_omega": _finite_or_text(self.log_omega),
            "seconds": self.seconds,
            "samples": self.samples,
            "complete": self.complete,
        }


def _finite_or_text(x: float) -> float | str:
    """JSON has no inf: a saturated dose is written as text, not as a number it is not."""
    if x == float("inf"):
        return "inf"
    if x == float("-inf"):
        return "-inf"
    return x


@dataclass(frozen=True)
class ThermalDose:
    """What a snapshot shows: the current area, every area, the session, and the limits."""

    current: DoseFigures
    session: DoseFigures
    areas: tuple[DoseFigures, ...]
    cem43_warn_min: float
    cem43_halt_min: float | None
    first_degree_omega: float

    def as_dict(self) -> dict[str, object]:
        return {
            "current": self.current.as_dict(),
            "session": self.session.as_dict(),
            "areas": [a.as_dict() for a in self.areas],
            "cem43_warn_min": self.cem43_warn_min,
            "cem43_halt_min": self.cem43_halt_min,
            "first_degree_omega": self.first_degree_omega,
        }


class DoseMeter:
    """Live CEM43 and Ω per treatment area and per session, one sample at a time."""

    def __init__(self, limits: ThermalDoseLimits, gap_ns: float) -> None:
        self.limits = limits
        self.gap_ns = gap_ns  # a longer silence than this between samples is a gap
        self.session = AreaDose("session")
        self._areas: dict[str, AreaDose] = {DEFAULT_AREA: AreaDose(DEFAULT_AREA)}
        self.current = self._areas[DEFAULT_AREA]
        self._last_ns: int | None = None
        self._warn = limits.cem43_warn_min
        self._halt = limits.cem43_halt_min

    def set_area(self, name: str) -> None:
        """The handpiece is now on ``name`` (made on first use). The seam for treatment sites."""
        area = self._areas.get(name)
        if area is None:
            area = AreaDose(name)
            self._areas[name] = area
        self.current = area

    def add(self, temp_c: float, t_ns: int) -> None:
        """A new skin sample fresh at ``t_ns`` (perf_counter_ns), held since the last one."""
        last = self._last_ns
        self._last_ns = t_ns
        if last is None or t_ns <= last:
            dt_s, gap = 0.0, False  # the first sample: nothing known about the time before it
        else:
            dt_ns = t_ns - last
            dt_s, gap = dt_ns / 1e9, dt_ns > self.gap_ns
        self.current.add(temp_c, dt_s, gap)
        self.session.add(temp_c, dt_s, gap)

    @property
    def warn(self) -> bool:
        """The current area's CEM43 is at or above the warning level."""
        return self.current.cem43.minutes >= self._warn

    @property
    def over_limit(self) -> bool:
        """The profile sets a halting CEM43 limit and the current area has reached it."""
        return self._halt is not None and self.current.cem43.minutes >= self._halt

    def frozen(self) -> ThermalDose:
        """The figures now (read from another thread: each number is one atomic read)."""
        return ThermalDose(
            current=self.current.figures(),
            session=self.session.figures(),
            areas=tuple(a.figures() for a in list(self._areas.values())),
            cem43_warn_min=self._warn,
            cem43_halt_min=self._halt,
            first_degree_omega=FIRST_DEGREE_OMEGA,
        )

    def reason(self, halting: bool) -> str:
        """Words for a dose check that just became active (not on the hot path)."""
        f = self.current.figures()
        lower = "" if f.complete else "at least "
        head = (
            f"thermal dose at treatment area {f.area!r}: {lower}{f.cem43_min:.3g} CEM43 over "
            f"{f.seconds:.0f} s (Arrhenius Ω estimated from the surface {f.omega:.2g})"
        )
        if halting:
            return (
                f"{head}, at or above the profile's limit {self._halt:g} CEM43: this area has "
                "had its dose; stop treating it"
            )
        return (
            f"{head}, at or above the warning level {self._warn:g} CEM43 (a trend, not a burn "
            "threshold): let the skin cool, check the cooling, or move to another area"
        )
