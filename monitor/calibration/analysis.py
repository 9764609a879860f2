"""The arithmetic of a calibration: points, the line fit, the verdict. No devices, no I/O.

An *energy point* is one spot size at one set energy: the shots the meter read, their mean
and standard deviation, and the mean's deviation from the set energy. A point passes when
``|mean / set - 1| <= tolerance`` (21 CFR 1040.11(a): +-20 %). A shot the meter read as
over-range has no value: its point fails (the laser delivered more than the head's range,
which the setup's sweep keeps above set energy + tolerance).

The line fit of delivered against set energy (least squares: slope, offset, R^2) shows a
laser's error as a gain (slope) and an offset; the verdict rests on the points.

A *reference point* is one temperature: the sensor's readings against a reference
thermometer. The offset (reading - reference) must lie within the tolerance; a sensor that
reads *low* is the dangerous direction (the skin or plate is hotter than shown, so an upper
limit trips late), and the words say so.

Verdicts: PASS (everything measured and within tolerance), FAIL (a point out of tolerance,
even if the run was cut short), INCOMPLETE (cut short with nothing out of tolerance yet:
no result, and never a pass).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "EnergyPoint",
    "EnergyResult",
    "LineFit",
    "ReferencePoint",
    "ReferenceResult",
    "Verdict",
    "combine",
    "fit_line",
    "judge_energy",
    "judge_reference",
]


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCOMPLETE = "incomplete"


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """A run's verdict from its parts: any FAIL fails; else any INCOMPLETE; else PASS."""
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCOMPLETE in verdicts or not verdicts:
        return Verdict.INCOMPLETE
    return Verdict.PASS


@dataclass(frozen=True)
class EnergyPoint:
    """One spot size at one set energy, and what the meter read."""

    spot_mm: float
    target_j: float  # the energy the sweep asked for
    fluence_j_cm2: float  # the fluence the laser confirmed
    set_j: float  # what that fluence puts into the spot: the reference of this point
    readings_j: tuple[float, ...]
    over_range: bool = False  # a shot read above the meter head's range

    @property
    def label(self) -> str:
        return f"{self.spot_mm:g} mm at {self.set_j:.3g} J"

    @property
    def mean_j(self) -> float:
        return statistics.fmean(self.readings_j) if self.readings_j else math.nan

    @property
    def sd_j(self) -> float:
        return statistics.stdev(self.readings_j) if len(self.readings_j) > 1 else math.nan

    @property
    def deviation(self) -> float:
        """mean / set - 1 (+0.3 is 30 % high); infinite for an over-range point."""
        if self.over_range:
            return math.inf
        return self.mean_j / self.set_j - 1.0

    def within(self, tolerance: float) -> bool:
        return not self.over_range and abs(self.deviation) <= tolerance

    def describe(self, tolerance: float) -> str:
        if self.over_range:
            return (
                f"{self.label}: the meter read over-range (above its head's range): far beyond "
                f"±{tolerance:.0%}"
            )
        verdict = "within" if self.within(tolerance) else "beyond"
        return (
            f"{self.label}: mean {self.mean_j:.3g} J over {len(self.readings_j)} shots "
            f"({self.deviation:+.1%}), {verdict} ±{tolerance:.0%}"
        )

    def as_record(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(x, 6) if math.isfinite(x) else None

        return {
            "spot_mm": self.spot_mm,
            "target_j": self.target_j,
            "fluence_j_cm2": self.fluence_j_cm2,
            "set_j": round(self.set_j, 6),
            "readings_j": [round(r, 6) for r in self.readings_j],
            "over_range": self.over_range,
            "mean_j": num(self.mean_j),
            "sd_j": num(self.sd_j),
            "deviation": num(self.deviation),
        }

    @staticmethod
    def from_record(r: dict[str, Any]) -> EnergyPoint:
        return EnergyPoint(
            spot_mm=float(r["spot_mm"]),
            target_j=float(r["target_j"]),
            fluence_j_cm2=float(r["fluence_j_cm2"]),
            set_j=float(r["set_j"]),
            readings_j=tuple(float(x) for x in r["readings_j"]),
            over_range=bool(r["over_range"]),
        )


@dataclass(frozen=True)
class LineFit:
    """delivered = slope x set + offset_j, least squares over every shot."""

    slope: float
    offset_j: float
    r2: float
    n: int

    def as_record(self) -> dict[str, Any]:
        return {
            "slope": round(self.slope, 6),
            "offset_j": round(self.offset_j, 6),
            "r2": round(self.r2, 6),
            "n": self.n,
        }


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """The least-squares line through (x, y); None without two distinct x values."""
    n = len(xs)
    if n != len(ys) or n < 2 or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    offset = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (slope * x + offset)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return LineFit(slope, offset, r2, n)


@dataclass(frozen=True)
class EnergyResult:
    points: tuple[EnergyPoint, ...]
    tolerance: float
    fit: LineFit | None
    verdict: Verdict
    worst: EnergyPoint | None
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "tolerance_fraction": self.tolerance,
            "fit": None if self.fit is None else self.fit.as_record(),
            "worst_point": None if self.worst is None else self.worst.label,
            "points": len(self.points),
        }


def judge_energy(
    points: Sequence[EnergyPoint],
    tolerance: float,
    *,
    planned: int,
    cut_short: str | None = None,
) -> EnergyResult:
    """The verdict on the points measured; ``planned`` points were meant, ``cut_short`` says
    why the sweep ended early (None: it ran to its end)."""
    pts = tuple(points)
    shots = [(p.set_j, r) for p in pts if not p.over_range for r in p.readings_j]
    fit = fit_line([s for s, _ in shots], [r for _, r in shots])
    worst = max(pts, key=lambda p: abs(p.deviation), default=None)
    out = [p for p in pts if not p.within(tolerance)]
    if out:
        assert worst is not None
        why = f"{len(out)} of {len(pts)} points beyond ±{tolerance:.0%}; worst {worst.describe(tolerance)}"
        if cut_short is not None:
            why += f" (the sweep was cut short: {cut_short})"
        return EnergyResult(pts, tolerance, fit, Verdict.FAIL, worst, why)
    if cut_short is not None or len(pts) < planned:
        why = f"incomplete: {cut_short or 'the sweep did not finish'} ({len(pts)} of {planned} points measured)"
        return EnergyResult(pts, tolerance, fit, Verdict.INCOMPLETE, worst, why)
    assert worst is not None
    why = f"all {len(pts)} points within ±{tolerance:.0%}; worst {worst.describe(tolerance)}"
    return EnergyResult(pts, tolerance, fit, Verdict.PASS, worst, why)


SENSOR_WORDS = {"skin_sensor": "skin-temperature sensor", "plate": "cooling plate thermometer"}


@dataclass(frozen=True)
class ReferencePoint:
    """A sensor's readings at one reference temperature."""

    sensor: str  # "skin_sensor" or "plate"
    reference_c: float
    readings_c: tuple[float, ...]

    @property
    def mean_c(self) -> float:
        return statistics.fmean(self.readings_c) if self.readings_c else math.nan

    @property
    def offset_c(self) -> float:
        """reading - reference: negative reads low (the dangerous direction)."""
        return self.mean_c - self.reference_c

    @property
    def reads_low(self) -> bool:
        return self.offset_c < 0

    def within(self, tolerance_c: float) -> bool:
        return math.isfinite(self.offset_c) and abs(self.offset_c) <= tolerance_c

    def describe(self, tolerance_c: float) -> str:
        what = SENSOR_WORDS.get(self.sensor, self.sensor)
        ok = self.within(tolerance_c)
        side = "LOW" if self.reads_low else "HIGH"
        text = (
            f"{what} reads {side} by {abs(self.offset_c):.2f} °C at {self.reference_c:.2f} °C "
            f"({'within' if ok else 'beyond'} ±{tolerance_c:g} °C)"
        )
        if self.reads_low and not ok:
            text += (
                ": the dangerous direction, the real temperature is higher than shown and an "
                "upper limit would trip late"
            )
        return text

    def as_record(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "reference_c": self.reference_c,
            "readings_c": [round(r, 4) for r in self.readings_c],
            "mean_c": round(self.mean_c, 4),
            "offset_c": round(self.offset_c, 4),
            "reads_low": self.reads_low,
        }

    @staticmethod
    def from_record(r: dict[str, Any]) -> ReferencePoint:
        return ReferencePoint(
            sensor=str(r["sensor"]),
            reference_c=float(r["reference_c"]),
            readings_c=tuple(float(x) for x in r["readings_c"]),
        )


@dataclass(frozen=True)
class ReferenceResult:
    sensor: str
    points: tuple[ReferencePoint, ...]
    tolerance_c: float
    verdict: Verdict
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "tolerance_c": self.tolerance_c,
            "reads_low": any(p.reads_low and not p.within(self.tolerance_c) for p in self.points),
        }


def judge_reference(
    sensor: str, points: Sequence[ReferencePoint], tolerance_c: float, *, planned: int
) -> ReferenceResult:
    """The verdict on one sensor's reference points (``planned`` were meant)."""
    pts = tuple(points)
    out = [p for p in pts if not p.within(tolerance_c)]
    if out:
        worst = max(out, key=lambda p: abs(p.offset_c) if math.isfinite(p.offset_c) else math.inf)
        return ReferenceResult(sensor, pts, tolerance_c, Verdict.FAIL, worst.describe(tolerance_c))
    if len(pts) < planned:
        what = SENSOR_WORDS.get(sensor, sensor)
        why = f"incomplete: {len(pts)} of {planned} reference points of the {what} measured"
        return ReferenceResult(sensor, pts, tolerance_c, Verdict.INCOMPLETE, why)
    worst = max(pts, key=lambda p: abs(p.offset_c))
    return ReferenceResult(sensor, pts, tolerance_c, Verdict.PASS, worst.describe(tolerance_c))
