"""Thermal dose, accumulated one temperature sample at a time: CEM43 and the Arrhenius Ω.

Standalone on purpose: this module imports only ``math`` and NumPy, nothing of LaserGuard. The
simulator's layered skin model integrates Ω with it (`ArrheniusField`), the simulator's lumped
skin keeps its ground-truth Ω with it, and the monitor's safety core accumulates the live dose
from the measured skin temperature with it (`monitor.core.thermal_dose`): one copy of the
constants and of the log-space arithmetic for all three (docs/architecture.md).

Two measures of how much heat a piece of tissue has taken:

- **CEM43** (Sapareto & Dewey, Int. J. Radiat. Oncol. Biol. Phys. 10 (1984) 787):
  cumulative equivalent minutes at 43 °C, ``Σ Δt[min] · R^(43 − T)`` with R = 0.5 at
  T ≥ 43 °C and R = 0.25 below. Validated for rises of about 2–15 °C over a 37–39 °C baseline
  (Dewhirst et al. 2003): for millisecond laser heating it is a trend, not a hard limit.
- **Arrhenius damage integral Ω** (Henriques & Moritz, Am. J. Pathol. 23 (1947) 531 and
  695): ``Ω = ∫ P · exp(−ΔE / (R·T)) dt`` with T in kelvin. With the Henriques–Moritz
  constants P = 3.1×10⁹⁸ s⁻¹, ΔE = 6.28×10⁵ J/mol, Ω ≥ 0.53 is a first-degree burn and
  Ω ≥ 1 a second-degree burn of the basal layer. Other constant sets exist (Weaver–Stoll,
  Takata, Mehta–Wong); pass your own `ArrheniusConstants` and say which.

Both are held as natural logarithms and summed with log-sum-exp: P alone is 3.1×10⁹⁸ and a
minute at 90 °C gives Ω ≈ 10¹⁴, so a float32, or a float64 summed naively at extreme
temperatures, would overflow or lose the small terms. ``log_*`` is exact to float64
rounding; the linear values saturate at ``math.inf`` (beyond any limit, never NaN).

A sample is held for the ``dt_s`` that ends at it (the monitor's samples are evenly spaced).
An unknown sample (NaN, ±inf, below absolute zero) is not guessed: it is counted in
``unknown_samples`` and ``complete`` turns False, so the dose is from then on a lower bound
and the caller must treat it as unknown (fail safe). A negative or non-finite ``dt_s`` is a
caller bug (time runs forward) and raises ValueError.

Cost per sample: a handful of float operations in ``math``; no NumPy arrays, no containers.
`ArrheniusField` is the vectorised form for many points (a simulator grid), with every
buffer preallocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

GAS_CONSTANT_J_MOL_K = 8.314462618  # CODATA 2018
ZERO_C_IN_K = 273.15
CEM43_REFERENCE_C = 43.0
#: ln R above and below the 43 °C breakpoint (Sapareto & Dewey 1984).
LN_R_AT_OR_ABOVE_43 = math.log(0.5)
LN_R_BELOW_43 = math.log(0.25)
_LN_60 = math.log(60.0)
#: exp() of anything above this overflows a float64.
_LN_FLOAT_MAX = math.log(np.finfo(np.float64).max)

FIRST_DEGREE_OMEGA = 0.53
SECOND_DEGREE_OMEGA = 1.0


@dataclass(frozen=True)
class ArrheniusConstants:
    """One published constant set for ``dΩ/dt = P · exp(−ΔE / (R·T))``."""

    name: str
    frequency_factor_per_s: float
    activation_energy_j_mol: float

    @property
    def ln_frequency_factor(self) -> float:
        return math.log(self.frequency_factor_per_s)

    @property
    def activation_temp_k(self) -> float:
        """ΔE / R, in kelvin (≈ 75,500 K for Henriques–Moritz)."""
        return self.activation_energy_j_mol / GAS_CONSTANT_J_MOL_K


HENRIQUES_MORITZ = ArrheniusConstants("Henriques-Moritz 1947", 3.1e98, 6.28e5)


def log_damage_rate(temp_c: float, constants: ArrheniusConstants = HENRIQUES_MORITZ) -> float:
    """ln(dΩ/dt [1/s]) at ``temp_c``; NaN for an unknown or impossible temperature."""
    temp_k = temp_c + ZERO_C_IN_K
    if not temp_k > 0.0 or temp_k == math.inf:
        return math.nan
    return constants.ln_frequency_factor - constants.activation_temp_k / temp_k


def log_add(a: float, b: float) -> float:
    """ln(e^a + e^b) without overflow; -inf stands for zero."""
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def _saturating_exp(log_value: float) -> float:
    return math.exp(log_value) if log_value < _LN_FLOAT_MAX else math.inf


class _Accumulator:
    """What the two scalar doses share: the log-space sum and the unknown-sample count."""

    def __init__(self) -> None:
        self.log_value = -math.inf
        self.samples = 0
        self.unknown_samples = 0
        self._dt_s = math.nan
        self._ln_dt = math.nan

    @property
    def complete(self) -> bool:
        """False once any sample was unknown: the dose is then only a lower bound."""
        return self.unknown_samples == 0

    def _ln_dt_of(self, dt_s: float) -> float:
        if dt_s != self._dt_s:  # a fixed-rate caller pays for the log once
            if not (dt_s >= 0.0 and dt_s != math.inf):
                raise ValueError(f"dt must be a finite duration >= 0 s, got {dt_s}")
            self._dt_s = dt_s
            self._ln_dt = math.log(dt_s) if dt_s > 0.0 else -math.inf
        return self._ln_dt

    def reset(self) -> None:
        self.log_value = -math.inf
        self.samples = 0
        self.unknown_samples = 0


class Cem43Dose(_Accumulator):
    """CEM43 in minutes, one sample at a time (Sapareto & Dewey 1984)."""

    def add(self, temp_c: float, dt_s: float) -> None:
        """Count ``temp_c`` as held for the ``dt_s`` seconds that end at this sample."""
        ln_dt_min = self._ln_dt_of(dt_s) - _LN_60
        self.samples += 1
        if not math.isfinite(temp_c) or temp_c < -ZERO_C_IN_K:
            self.unknown_samples += 1
            return
        ln_r = LN_R_AT_OR_ABOVE_43 if temp_c >= CEM43_REFERENCE_C else LN_R_BELOW_43
        self.log_value = log_add(self.log_value, ln_dt_min + (CEM43_REFERENCE_C - temp_c) * ln_r)

    @property
    def minutes(self) -> float:
        """CEM43 [min]; ``math.inf`` past the float range."""
        return _saturating_exp(self.log_value)


class ArrheniusDose(_Accumulator):
    """The Arrhenius damage integral Ω at one point, one sample at a time."""

    def __init__(self, constants: ArrheniusConstants = HENRIQUES_MORITZ) -> None:
        super().__init__()
        self.constants = constants
        self._ln_p = constants.ln_frequency_factor
        self._ea_over_r_k = constants.activation_temp_k

    def add(self, temp_c: float, dt_s: float) -> None:
        """Count ``temp_c`` as held for the ``dt_s`` seconds that end at this sample."""
        ln_dt = self._ln_dt_of(dt_s)
        self.samples += 1
        temp_k = temp_c + ZERO_C_IN_K
        if not (temp_k > 0.0 and temp_k != math.inf):  # also catches NaN
            self.unknown_samples += 1
            return
        self.log_value = log_add(self.log_value, ln_dt + self._ln_p - self._ea_over_r_k / temp_k)

    @property
    def omega(self) -> float:
        """Ω; ``math.inf`` past the float range (use `log_value` to compare huge doses)."""
        return _saturating_exp(self.log_value)


class ArrheniusField:
    """Ω at many points at once (a simulator's grid), all in log space.

    `add` takes the temperatures at the end of an interval. Over the interval the log of the
    damage rate is taken as linear in time between the previous call's value r0 and this
    one's r1, which integrates exactly to ``dt · (e^r1 − e^r0) / (r1 − r0)`` (the
    logarithmic mean of the two rates). The rate is so steep in temperature that a
    trapezoid on it overstates Ω by tens of per cent at the sampling a long session can
    afford; the log-linear form converges an order of magnitude faster.
    Buffers are allocated once: a call allocates no arrays.
    """

    def __init__(
        self, start_temps_c: F64, constants: ArrheniusConstants = HENRIQUES_MORITZ
    ) -> None:
        n = int(np.asarray(start_temps_c).shape[0])
        self.constants = constants
        self._log_sum = np.full(n, -np.inf)
        #: Points that have had an unknown temperature: their Ω is NaN from then on.
        self.unknown = np.zeros(n, dtype=np.bool_)
        self._prev_rate = np.empty(n)
        self._rate = np.empty(n)
        self._term = np.empty(n)
        self._spread = np.empty(n)
        self._bad = np.empty(n, dtype=np.bool_)
        self._nan = np.empty(n, dtype=np.bool_)
        self._log_rate_into(np.asarray(start_temps_c, dtype=np.float64), self._prev_rate)

    def _log_rate_into(self, temps_c: F64, out: F64) -> None:
        """ln k per point; an unknown temperature (NaN, at or below absolute zero) marks the
        point unknown and gets a stand-in rate so no NaN reaches the arithmetic below."""
        np.add(temps_c, ZERO_C_IN_K, out=out)
        np.less_equal(out, 0.0, out=self._bad)
        np.isnan(out, out=self._nan)
        np.logical_or(self._bad, self._nan, out=self._bad)
        np.logical_or(self.unknown, self._bad, out=self.unknown)
        np.copyto(out, 1.0, where=self._bad)
        np.divide(-self.constants.activation_temp_k, out, out=out)
        np.add(out, self.constants.ln_frequency_factor, out=out)

    def add(self, temps_c: F64, dt_s: float) -> None:
        """Integrate from the previous temperatures to ``temps_c`` over ``dt_s`` seconds."""
        if not (dt_s >= 0.0 and dt_s != math.inf):
            raise ValueError(f"dt must be a finite duration >= 0 s, got {dt_s}")
        self._log_rate_into(temps_c, self._rate)
        if dt_s > 0.0:
            # ln ∫ = ln dt + max(r0, r1) + ln((1 − e^−d) / d), d = |r1 − r0| (→ 0 as d → 0)
            spread, term = self._spread, self._term
            np.subtract(self._rate, self._prev_rate, out=spread)
            np.abs(spread, out=spread)
            np.maximum(spread, 1e-300, out=spread)  # d = 0: the ratio's limit, 1
            np.negative(spread, out=term)
            np.expm1(term, out=term)
            np.negative(term, out=term)
            np.divide(term, spread, out=term)
            np.log(term, out=term)
            term += math.log(dt_s)
            np.maximum(self._rate, self._prev_rate, out=spread)
            term += spread
            np.logaddexp(self._log_sum, term, out=self._log_sum)
        self._prev_rate[:] = self._rate

    @property
    def log_omega(self) -> F64:
        """ln Ω at every point; NaN where a temperature was unknown (a new array)."""
        out: F64 = np.where(self.unknown, np.nan, self._log_sum)
        return out

    def omega(self) -> F64:
        """Ω at every point (inf where it exceeds the float range, NaN where unknown)."""
        with np.errstate(over="ignore"):
            out: F64 = np.exp(self.log_omega)
        return out
