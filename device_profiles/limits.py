"""The invariants every limit table must meet, checked at load.

A limit table's rows give, per skin type, spot range and pulse-width range, a fluence range
and a repetition-rate ceiling. Where rows overlap (a shared border), a setting must satisfy
every row that contains it, so the *effective* ceiling at a point is the lowest ceiling of
the rows containing it. The invariants are stated on effective ceilings:

1. every Fitzpatrick type I–VI is covered by some row (a contraindicated row counts);
2. for one skin type and one pulse width, the fluence ceiling never rises as the spot grows;
3. at one spot size and pulse width, a darker type's fluence ceiling and rate ceiling are
   never above a lighter type's (a contraindicated row has ceiling 0);
4. ranges are ordered (``min <= max``), checked by the schema.

Effective ceilings are piecewise constant between the borders of the rows, so checking each
border value and one point inside each gap between borders checks every point.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

from device_profiles.schema import SettingsLimit, SkinType

EPS = 1e-9

_Array = TypeVar("_Array", bound=npt.NDArray[np.generic])


# --- when a row applies: the one statement of the rule ------------------------------------------
#
# A limit row applies to a setting when the skin type is listed and both the spot size and the
# pulse width lie within the row's ranges, borders included (a border value lies in both rows
# that meet there, so it must satisfy both). NaN lies in no range. Everything that picks rows
# goes through these: the gate's hot path and its batch path, its explanations, and the
# invariants below.


@overload
def within(low: float, high: float, x: float) -> bool: ...
@overload
def within(low: _Array | float, high: _Array | float, x: _Array) -> npt.NDArray[np.bool_]: ...
@overload
def within(low: _Array, high: _Array, x: _Array | float) -> npt.NDArray[np.bool_]: ...
def within(low: object, high: object, x: object) -> object:
    """``low <= x <= high``, borders included; elementwise on arrays. NaN is never within."""
    return (low <= x) & (x <= high)  # type: ignore[operator]


def at_spot(row: SettingsLimit, skin_type: SkinType, spot_mm: float) -> bool:
    """The row is for this skin type and its spot range contains ``spot_mm``."""
    return skin_type in row.skin_types and within(row.spot_mm.min, row.spot_mm.max, spot_mm)


def applies(row: SettingsLimit, skin_type: SkinType, spot_mm: float, pulse_ms: float) -> bool:
    """The row judges this setting: ``at_spot`` and its pulse range contains ``pulse_ms``."""
    return at_spot(row, skin_type, spot_mm) and within(row.pulse_ms.min, row.pulse_ms.max, pulse_ms)


def describe(i: int, row: SettingsLimit) -> str:
    types = ",".join(t.value for t in row.skin_types)
    allowed = "contraindicated" if row.contraindicated else f"≤ {row.fluence_j_cm2.max:g} J/cm²"
    return (
        f"row {i} (types {types}; spot {row.spot_mm.min:g}–{row.spot_mm.max:g} mm; "
        f"pulse {row.pulse_ms.min:g}–{row.pulse_ms.max:g} ms; {allowed})"
    )


def _points(bounds: Sequence[float]) -> list[float]:
    """Every border, and one point inside each gap between consecutive borders."""
    edges = sorted(set(bounds))
    mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    return sorted(edges + mids)


@dataclass(frozen=True)
class Ceiling:
    """The effective limits at one point for one skin type, and the rows that set them."""

    fluence_j_cm2: float
    fluence_row: int
    rep_rate_hz: float
    rate_row: int


def effective_ceiling(
    rows: Sequence[SettingsLimit], skin_type: SkinType, spot_mm: float, pulse_ms: float
) -> Ceiling | None:
    """The lowest ceilings of the rows containing this point; None if no row covers it."""
    best: Ceiling | None = None
    for i, r in enumerate(rows):
        if not applies(r, skin_type, spot_mm, pulse_ms):
            continue
        f, rate = r.ceiling_j_cm2, 0.0 if r.contraindicated else r.rep_rate_hz_max
        if best is None:
            best = Ceiling(f, i, rate, i)
            continue
        if f < best.fluence_j_cm2:
            best = Ceiling(f, i, best.rep_rate_hz, best.rate_row)
        if rate < best.rep_rate_hz:
            best = Ceiling(best.fluence_j_cm2, best.fluence_row, rate, i)
    return best


def invariant_errors(rows: Sequence[SettingsLimit], where: str) -> list[str]:
    """Every broken invariant, each naming the table, the rows and the numbers."""
    covered = {t for r in rows for t in r.skin_types}
    missing = [t.value for t in SkinType if t not in covered]
    if missing:
        return [f"{where}: settings limits do not cover skin types {missing}"]
    errors: dict[tuple[object, ...], str] = {}
    spots = _points([b for r in rows for b in (r.spot_mm.min, r.spot_mm.max)])
    pulses = _points([b for r in rows for b in (r.pulse_ms.min, r.pulse_ms.max)])
    grid = {
        (t, s, p): effective_ceiling(rows, t, s, p) for t in SkinType for s in spots for p in pulses
    }
    for t in SkinType:
        for p in pulses:
            prev: tuple[float, Ceiling] | None = None
            for s in spots:
                c = grid[t, s, p]
                if c is None:
                    continue
                if prev is not None and c.fluence_j_cm2 > prev[1].fluence_j_cm2 + EPS:
                    ps, pc = prev
                    key = ("spot", c.fluence_row, pc.fluence_row)
                    errors.setdefault(
                        key,
                        f"{where}: fluence ceiling rises with spot size for type {t.value} at "
                        f"{p:g} ms: {describe(c.fluence_row, rows[c.fluence_row])} allows "
                        f"{c.fluence_j_cm2:g} J/cm² at {s:g} mm, above the "
                        f"{pc.fluence_j_cm2:g} J/cm² of "
                        f"{describe(pc.fluence_row, rows[pc.fluence_row])} at {ps:g} mm",
                    )
                prev = (s, c)
    for s in spots:
        for p in pulses:
            lighter: tuple[SkinType, Ceiling] | None = None
            for t in SkinType:
                c = grid[t, s, p]
                if c is None:
                    continue
                if lighter is not None:
                    lt, lc = lighter
                    for what, unit, mine, theirs, row, lrow in (
                        ("fluence", "J/cm²", c.fluence_j_cm2, lc.fluence_j_cm2,
                         c.fluence_row, lc.fluence_row),
                        ("repetition-rate", "Hz", c.rep_rate_hz, lc.rep_rate_hz,
                         c.rate_row, lc.rate_row),
                    ):  # fmt: skip
                        if mine > theirs + EPS:
                            errors.setdefault(
                                ("type", what, row, lrow),
                                f"{where}: darker type {t.value} gets a higher {what} ceiling "
                                f"than lighter type {lt.value} at {s:g} mm, {p:g} ms: "
                                f"{describe(row, rows[row])} allows {mine:g} {unit}, "
                                f"{describe(lrow, rows[lrow])} only {theirs:g} {unit}",
                            )
                lighter = (t, c)
    return list(errors.values())
