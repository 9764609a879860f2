"""The settings gate: may these laser settings reach this patient's skin?

One vectorized evaluation serves a batch (``LimitTable.evaluate``): the operator's request
before READY, the read-back from the laser every cycle, and a CSV of proposals all go
through it. Rows of the limit table apply to some skin types over a range of spot sizes.

Conservative between rows: a spot size on the border of two rows (3.0 mm in 1-3 and 3-6)
must satisfy *every* row that contains it; a spot size that no row covers is refused.
Hard limits come only from the profile; nothing at run time widens them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device_profiles.schema import LASER_SETTINGS, SettingsLimit, SkinType

F64 = npt.NDArray[np.float64]
BoolA = npt.NDArray[np.bool_]

UNITS = {"fluence_j_cm2": "J/cm²", "pulse_ms": "ms", "spot_mm": "mm", "rep_rate_hz": "Hz"}
LABELS = {
    "fluence_j_cm2": "fluence",
    "pulse_ms": "pulse width",
    "spot_mm": "spot size",
    "rep_rate_hz": "repetition rate",
}


@dataclass(frozen=True)
class Violation:
    setting: str
    value: float
    limit: float
    bound: str  # "min" | "max" | "positive" | "number" | "covered"
    source: str

    @property
    def margin(self) -> float:
        """How far beyond the limit, in the setting's unit (>= 0 for a violation)."""
        if self.bound == "max":
            return self.value - self.limit
        if self.bound in ("min", "positive"):
            return self.limit - self.value
        return float("inf")  # not a number, or no row: outside by any measure

    def explain(self) -> str:
        unit = UNITS.get(self.setting, "")
        label = LABELS.get(self.setting, self.setting)
        if self.bound == "covered":
            return (
                f"{label} {self.value:g} {unit} is not covered by any limit row for this skin type"
            )
        if self.bound == "number":
            return f"{label} is not a number"
        if self.bound == "positive":
            return f"{label} {self.value:g} {unit} must be above 0 {unit}"
        word = "above the maximum" if self.bound == "max" else "below the minimum"
        return (
            f"{label} {self.value:g} {unit} is {word} of {self.limit:g} {unit} "
            f"(by {abs(self.margin):.3g} {unit}; source: {self.source})"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "setting": self.setting,
            "value": self.value,
            "limit": self.limit,
            "bound": self.bound,
            "margin": self.margin,
            "source": self.source,
            "message": self.explain(),
        }


@dataclass(frozen=True)
class GateResult:
    ok: bool
    violations: tuple[Violation, ...]

    def explain(self) -> str:
        return "within limits" if self.ok else "; ".join(v.explain() for v in self.violations)


class LimitTable:
    """A profile's settings limits as arrays: one column per limit row."""

    def __init__(self, rows: list[SettingsLimit]) -> None:
        self.rows = rows
        self.type_mask = np.array(
            [[t in r.skin_types for r in rows] for t in SkinType], dtype=np.bool_
        )  # (6, R)
        self.spot_min = np.array([r.spot_mm.min for r in rows])
        self.spot_max = np.array([r.spot_mm.max for r in rows])
        self.f_min = np.array([r.fluence_j_cm2.min for r in rows])
        self.f_max = np.array([r.fluence_j_cm2.max for r in rows])
        self.pw_min = np.array([r.pulse_ms.min for r in rows])
        self.pw_max = np.array([r.pulse_ms.max for r in rows])
        self.rate_max = np.array([r.rep_rate_hz_max for r in rows])

    def evaluate(
        self, fluence: F64, pulse: F64, spot: F64, rate: F64, skin_rank: npt.NDArray[np.int_]
    ) -> BoolA:
        """Pass/fail for each row of a batch of settings (NaN never passes)."""
        f, pw, s, r = (
            np.asarray(a, dtype=np.float64)[:, None] for a in (fluence, pulse, spot, rate)
        )
        applies = (
            self.type_mask[np.asarray(skin_rank)] & (self.spot_min <= s) & (s <= self.spot_max)
        )
        row_ok = (
            (self.f_min <= f) & (f <= self.f_max)
            & (self.pw_min <= pw) & (pw <= self.pw_max)
            & (r <= self.rate_max) & (r > 0)
        )  # fmt: skip
        result = applies.any(axis=1) & (row_ok | ~applies).all(axis=1)
        return np.asarray(result, dtype=np.bool_)

    def check(self, skin_type: SkinType, settings: dict[str, float]) -> GateResult:
        """One setting, with every violated limit explained."""
        missing = [k for k in LASER_SETTINGS if k not in settings]
        if missing:
            raise ValueError(f"settings lack {missing}")
        vals = {k: float(settings[k]) for k in LASER_SETTINGS}
        ok = bool(
            self.evaluate(
                np.array([vals["fluence_j_cm2"]]),
                np.array([vals["pulse_ms"]]),
                np.array([vals["spot_mm"]]),
                np.array([vals["rep_rate_hz"]]),
                np.array([skin_type.rank]),
            )[0]
        )
        if ok:
            return GateResult(True, ())
        return GateResult(False, tuple(self._violations(skin_type, vals)))

    def _violations(self, skin_type: SkinType, v: dict[str, float]) -> list[Violation]:
        """Every violated limit, once per setting and bound: the tightest applying row's."""
        rows = [r for r in self.rows if skin_type in r.skin_types]
        applying = [r for r in rows if r.spot_mm.min <= v["spot_mm"] <= r.spot_mm.max]
        if not applying:
            lo = min((r.spot_mm.min for r in rows), default=float("nan"))
            hi = max((r.spot_mm.max for r in rows), default=float("nan"))
            if v["spot_mm"] < lo:
                return [Violation("spot_mm", v["spot_mm"], lo, "min", "limit table")]
            if v["spot_mm"] > hi:
                return [Violation("spot_mm", v["spot_mm"], hi, "max", "limit table")]
            return [Violation("spot_mm", v["spot_mm"], float("nan"), "covered", "limit table")]
        worst: dict[tuple[str, str], Violation] = {}

        def keep(found: Violation) -> None:
            key = (found.setting, found.bound)
            if key not in worst or found.margin > worst[key].margin:
                worst[key] = found

        for r in applying:
            for name, rng in (("fluence_j_cm2", r.fluence_j_cm2), ("pulse_ms", r.pulse_ms)):
                value = v[name]
                if value != value:
                    keep(Violation(name, value, float("nan"), "number", r.source))
                elif value < rng.min:
                    keep(Violation(name, value, rng.min, "min", r.source))
                elif value > rng.max:
                    keep(Violation(name, value, rng.max, "max", r.source))
            rate = v["rep_rate_hz"]
            if rate != rate:
                keep(Violation("rep_rate_hz", rate, float("nan"), "number", r.source))
            elif rate <= 0:
                keep(Violation("rep_rate_hz", rate, 0.0, "positive", r.source))
            elif rate > r.rep_rate_hz_max:
                keep(Violation("rep_rate_hz", rate, r.rep_rate_hz_max, "max", r.source))
        return list(worst.values())
