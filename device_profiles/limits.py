"""The invariants every limit table must meet, checked at load, and the one applicability rule.

A limit table's rows give, per skin type, treatment site, cooling method, spot range and
pulse-width range, a fluence range and a repetition-rate ceiling. A row published for some
sites and cooling methods (``sites``, ``cooling``) judges only treatments there (``fits``).
Where rows overlap (a shared border), a setting must satisfy every row that contains it, so
the *effective* ceiling at a point is the lowest ceiling of the rows containing it. Fluence
ceilings may depend on the pulse width: more rows, one per pulse band. The invariants are
stated on effective ceilings, for each site and cooling method that some row names:

1. every Fitzpatrick type I–VI is covered by some row (a contraindicated row counts);
2. for one skin type and one pulse width, the fluence ceiling never rises as the spot grows;
3. at one spot size and pulse width, a darker type's fluence ceiling and rate ceiling are
   never above a lighter type's (a contraindicated row has ceiling 0);
4. darker skin, longer pulse: at one spot size, the shortest pulse a darker type may be
   treated with is never shorter than a lighter type's (contraindicated rows allow nothing);
5. ranges are ordered (``min <= max``), checked by the schema.

Effective ceilings are piecewise constant between the borders of the rows, so checking each
border value and one point inside each gap between borders checks every point. The grid is
evaluated with NumPy, one site and cooling method at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.schema import SettingsLimit, SkinType

EPS = 1e-9

_Array = TypeVar("_Array", bound=npt.NDArray[np.generic])


# --- when a row applies: the one statement of the rule ------------------------------------------
#
# A limit row applies to a setting when it fits the treatment (the session's site is one of
# the row's sites and the setup's cooling method one of its methods), the skin type is listed,
# and both the spot size and the pulse width lie within the row's ranges, borders included (a
# border value lies in both rows that meet there, so it must satisfy both). NaN lies in no
# range. Everything that picks rows goes through these: the gate (which keeps only the rows
# that fit the session's treatment, once, at start), its hot path and its batch path, its
# explanations, and the invariants below.


@overload
def within(low: float, high: float, x: float) -> bool: ...
@overload
def within(low: _Array | float, high: _Array | float, x: _Array) -> npt.NDArray[np.bool_]: ...
@overload
def within(low: _Array, high: _Array, x: _Array | float) -> npt.NDArray[np.bool_]: ...
def within(low: object, high: object, x: object) -> object:
    """``low <= x <= high``, borders included; elementwise on arrays. NaN is never within."""
    return (low <= x) & (x <= high)  # type: ignore[operator]


def fits(row: SettingsLimit, site: TreatmentSite | None, cooling: CoolingMethod | None) -> bool:
    """The row was published for this site and this cooling method. ``None`` stands for a
    site (or method) not stated: every row fits it, and the lowest ceiling of all judges."""
    return (site is None or site in row.sites) and (cooling is None or cooling in row.cooling)


def at_spot(row: SettingsLimit, skin_type: SkinType, spot_mm: float) -> bool:
    """The row is for this skin type and its spot range contains ``spot_mm``."""
    return skin_type in row.skin_types and within(row.spot_mm.min, row.spot_mm.max, spot_mm)


def applies(row: SettingsLimit, skin_type: SkinType, spot_mm: float, pulse_ms: float) -> bool:
    """The row judges this setting: ``at_spot`` and its pulse range contains ``pulse_ms``."""
    return at_spot(row, skin_type, spot_mm) and within(row.pulse_ms.min, row.pulse_ms.max, pulse_ms)


def describe(i: int, row: SettingsLimit) -> str:
    types = ",".join(t.value for t in row.skin_types)
    allowed = "contraindicated" if row.contraindicated else f"≤ {row.fluence_j_cm2.max:g} J/cm²"
    where = ""
    if set(row.sites) != set(TreatmentSite) or set(row.cooling) != set(CoolingMethod):
        where = f"{'/'.join(row.sites)}, {'/'.join(row.cooling)} cooling; "
    return (
        f"row {i} ({where}types {types}; spot {row.spot_mm.min:g}–{row.spot_mm.max:g} mm; "
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
    rows: Sequence[SettingsLimit],
    skin_type: SkinType,
    spot_mm: float,
    pulse_ms: float,
    site: TreatmentSite | None = None,
    cooling: CoolingMethod | None = None,
) -> Ceiling | None:
    """The lowest ceilings of the rows containing this point; None if no row covers it."""
    best: Ceiling | None = None
    for i, r in enumerate(rows):
        if not (fits(r, site, cooling) and applies(r, skin_type, spot_mm, pulse_ms)):
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


def treatments(rows: Sequence[SettingsLimit]) -> list[tuple[TreatmentSite, CoolingMethod]]:
    """Every (site, cooling method) that some row names, in enum order."""
    named = {(s, c) for r in rows for s in r.sites for c in r.cooling}
    return [(s, c) for s in TreatmentSite for c in CoolingMethod if (s, c) in named]


@dataclass(frozen=True)
class _Grid:
    """Effective ceilings of one site and cooling method on every border and gap point."""

    index: npt.NDArray[np.intp]  # grid row -> table row
    spots: npt.NDArray[np.float64]
    pulses: npt.NDArray[np.float64]
    covered: npt.NDArray[np.bool_]  # (type, spot, pulse)
    fluence: npt.NDArray[np.float64]
    fluence_row: npt.NDArray[np.intp]  # table row
    rate: npt.NDArray[np.float64]
    rate_row: npt.NDArray[np.intp]
    allowed: npt.NDArray[np.bool_]  # some applying row is not contraindicated, per point


def _grid(rows: Sequence[SettingsLimit], site: TreatmentSite, cooling: CoolingMethod) -> _Grid:
    index = np.array([i for i, r in enumerate(rows) if fits(r, site, cooling)], dtype=np.intp)
    sel = [rows[i] for i in index]
    spots = np.array(_points([b for r in sel for b in (r.spot_mm.min, r.spot_mm.max)]))
    pulses = np.array(_points([b for r in sel for b in (r.pulse_ms.min, r.pulse_ms.max)]))
    types = np.array([[t in r.skin_types for r in sel] for t in SkinType])  # (T, R)
    s_lo, s_hi = (np.array([getattr(r.spot_mm, k) for r in sel]) for k in ("min", "max"))
    p_lo, p_hi = (np.array([getattr(r.pulse_ms, k) for r in sel]) for k in ("min", "max"))
    in_spot = within(s_lo[None, :], s_hi[None, :], spots[:, None])  # (S, R)
    in_pulse = within(p_lo[None, :], p_hi[None, :], pulses[:, None])  # (P, R)
    app = types[:, None, None, :] & in_spot[None, :, None, :] & in_pulse[None, None, :, :]
    ceil = np.array([r.ceiling_j_cm2 for r in sel])
    rate = np.array([0.0 if r.contraindicated else r.rep_rate_hz_max for r in sel])
    contra = np.array([r.contraindicated for r in sel])
    f = np.where(app, ceil, np.inf)
    q = np.where(app, rate, np.inf)
    f_at = f.argmin(axis=-1)
    q_at = q.argmin(axis=-1)
    return _Grid(
        index=index,
        spots=spots,
        pulses=pulses,
        covered=np.asarray(app.any(axis=-1)),
        fluence=f.min(axis=-1),
        fluence_row=index[f_at],
        rate=q.min(axis=-1),
        rate_row=index[q_at],
        allowed=np.asarray((app & ~contra).any(axis=-1)),
    )


def invariant_errors(rows: Sequence[SettingsLimit], where: str) -> list[str]:
    """Every broken invariant, each naming the table, the rows and the numbers."""
    covered = {t for r in rows for t in r.skin_types}
    missing = [t.value for t in SkinType if t not in covered]
    if missing:
        return [f"{where}: settings limits do not cover skin types {missing}"]
    errors: dict[tuple[object, ...], str] = {}
    combos = treatments(rows)
    several = len(combos) > 1
    for site, cooling in combos:
        g = _grid(rows, site, cooling)
        at = f" ({site}, {cooling} cooling)" if several else ""
        _spot_errors(rows, g, where, at, errors)
        _type_errors(rows, g, where, at, errors)
        _pulse_errors(rows, g, where, at, errors)
    return list(errors.values())


def _spot_errors(
    rows: Sequence[SettingsLimit],
    g: _Grid,
    where: str,
    at: str,
    errors: dict[tuple[object, ...], str],
) -> None:
    """Invariant 2: for one type and pulse width, the ceiling never rises as the spot grows."""
    for ti, t in enumerate(SkinType):
        for pi, p in enumerate(g.pulses):
            prev: int | None = None
            for si in range(len(g.spots)):
                if not g.covered[ti, si, pi]:
                    continue
                if prev is not None and g.fluence[ti, si, pi] > g.fluence[ti, prev, pi] + EPS:
                    row, lrow = int(g.fluence_row[ti, si, pi]), int(g.fluence_row[ti, prev, pi])
                    errors.setdefault(
                        ("spot", row, lrow),
                        f"{where}: fluence ceiling rises with spot size for type {t.value} at "
                        f"{p:g} ms{at}: {describe(row, rows[row])} allows "
                        f"{g.fluence[ti, si, pi]:g} J/cm² at {g.spots[si]:g} mm, above the "
                        f"{g.fluence[ti, prev, pi]:g} J/cm² of {describe(lrow, rows[lrow])} at "
                        f"{g.spots[prev]:g} mm",
                    )
                prev = si


def _type_errors(
    rows: Sequence[SettingsLimit],
    g: _Grid,
    where: str,
    at: str,
    errors: dict[tuple[object, ...], str],
) -> None:
    """Invariant 3: a darker type's ceilings never above a lighter type's."""
    types = list(SkinType)
    for si, s in enumerate(g.spots):
        for pi, p in enumerate(g.pulses):
            lighter: int | None = None
            for ti, t in enumerate(types):
                if not g.covered[ti, si, pi]:
                    continue
                if lighter is not None:
                    li = lighter
                    for what, unit, val, rowat in (
                        ("fluence", "J/cm²", g.fluence, g.fluence_row),
                        ("repetition-rate", "Hz", g.rate, g.rate_row),
                    ):
                        mine, theirs = val[ti, si, pi], val[li, si, pi]
                        if mine > theirs + EPS:
                            row, lrow = int(rowat[ti, si, pi]), int(rowat[li, si, pi])
                            errors.setdefault(
                                ("type", what, row, lrow),
                                f"{where}: darker type {t.value} gets a higher {what} ceiling "
                                f"than lighter type {types[li].value} at {s:g} mm, {p:g} ms{at}: "
                                f"{describe(row, rows[row])} allows {mine:g} {unit}, "
                                f"{describe(lrow, rows[lrow])} only {theirs:g} {unit}",
                            )
                lighter = ti


def _pulse_errors(
    rows: Sequence[SettingsLimit],
    g: _Grid,
    where: str,
    at: str,
    errors: dict[tuple[object, ...], str],
) -> None:
    """Invariant 4: darker skin, longer pulse. The shortest pulse a type may be treated with
    at a spot is never shorter for a darker type than for a lighter one."""
    types = list(SkinType)
    for si, s in enumerate(g.spots):
        shortest: tuple[int, float] | None = None  # (type index, pulse) of the lighter types
        for ti, t in enumerate(types):
            allowed = np.flatnonzero(g.allowed[ti, si, :])
            if allowed.size == 0:
                continue
            mine = float(g.pulses[allowed[0]])
            if shortest is not None and mine < shortest[1] - EPS:
                li, theirs = shortest
                row = _row_allowing(rows, g, t, float(s), mine)
                errors.setdefault(
                    ("pulse", row, types[li].value),
                    f"{where}: darker type {t.value} may be treated with shorter pulses than "
                    f"lighter type {types[li].value} at {s:g} mm{at}: "
                    f"{describe(row, rows[row])} allows {mine:g} ms, type "
                    f"{types[li].value} only from {theirs:g} ms (darker skin: longer pulse)",
                )
            if shortest is None or mine > shortest[1]:
                shortest = (ti, mine)


def _row_allowing(
    rows: Sequence[SettingsLimit], g: _Grid, t: SkinType, spot: float, pulse: float
) -> int:
    """The first non-contraindicated row of the grid that applies at this point."""
    for i in g.index:
        r = rows[int(i)]
        if not r.contraindicated and applies(r, t, spot, pulse):
            return int(i)
    raise AssertionError("no row allows a point the grid says is allowed")
