"""The settings gate: may these laser settings reach this patient's skin?

One vectorized evaluation serves a batch: the operator's request before READY, the
read-back from the laser every cycle, and a CSV of proposals all go through it.
``LimitTable`` holds one laser family's rows; ``GateSet`` holds several tables and picks
each batch row's table by its wavelength.

A limit row applies to a setting when the skin type is listed and both the spot size and the
pulse width lie within the row's ranges, borders included (``device_profiles.limits.applies``:
the hot path, the batch path and the explanations all use that one rule). Conservative between
rows:

- a value on a border of two rows (3.0 mm in 1–3 and 3–6 mm; 10 ms in 3–10 and 10–30 ms)
  must satisfy *every* row that contains it, so the lower ceiling wins;
- a spot size or pulse width that no row covers is refused;
- a contraindicated row refuses every setting it applies to.

Hard limits come only from the profile; nothing at run time widens them.
``LimitTable.restricted`` (a relative contraindication) only ever tightens.

A session judges one treatment: its site and its setup's cooling method. ``for_treatment``
keeps only the rows published for them (``device_profiles.limits.fits``), once, at start; a
row published with cryogen never judges contact cooling. The hot path is unchanged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import IntFlag

import numpy as np
import numpy.typing as npt

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.limits import applies, at_spot, fits, within
from device_profiles.schema import (
    LASER_SETTINGS,
    LimitTableFile,
    Range,
    Restrictions,
    SettingsLimit,
    SkinType,
)
from monitor.core.treatment import TestSpotCover

F64 = npt.NDArray[np.float64]
BoolA = npt.NDArray[np.bool_]
U16 = npt.NDArray[np.uint16]
ArrayLike = npt.ArrayLike

UNITS = {
    "fluence_j_cm2": "J/cm²",
    "pulse_ms": "ms",
    "spot_mm": "mm",
    "rep_rate_hz": "Hz",
    "wavelength_nm": "nm",
    "skin_type": "",
}
LABELS = {
    "fluence_j_cm2": "fluence",
    "pulse_ms": "pulse width",
    "spot_mm": "spot size",
    "rep_rate_hz": "repetition rate",
    "wavelength_nm": "wavelength",
    "skin_type": "skin type",
}
CHUNK = 65_536  # batch rows per pass: the temporaries stay in cache
MAX_ROWS = 64  # a set of limit rows is a uint64 bitmask
SMALL = 4  # up to this many settings, plain Python beats NumPy's per-call cost


class Reason(IntFlag):
    """Why a batch row was refused: one bit each, OR-ed together (0 = passes)."""

    FLUENCE_HIGH = 1
    FLUENCE_LOW = 2
    PULSE_NOT_COVERED = 4
    SPOT_NOT_COVERED = 8
    RATE_HIGH = 16
    RATE_NOT_POSITIVE = 32
    NOT_A_NUMBER = 64
    CONTRAINDICATED = 128
    SKIN_TYPE_UNKNOWN = 256
    WAVELENGTH_UNKNOWN = 512
    TEST_SPOT_UNREAD = 1024  # the row asks for a read test spot, and the session has none


REASON_WORDS = {
    Reason.FLUENCE_HIGH: "fluence above the maximum",
    Reason.FLUENCE_LOW: "fluence below the minimum",
    Reason.PULSE_NOT_COVERED: "pulse width outside every limit row",
    Reason.SPOT_NOT_COVERED: "spot size outside every limit row",
    Reason.RATE_HIGH: "repetition rate above the maximum",
    Reason.RATE_NOT_POSITIVE: "repetition rate not above 0",
    Reason.NOT_A_NUMBER: "a setting is not a number",
    Reason.CONTRAINDICATED: "contraindicated for this skin type",
    Reason.SKIN_TYPE_UNKNOWN: "unknown skin type",
    Reason.WAVELENGTH_UNKNOWN: "no limit table for this wavelength",
    Reason.TEST_SPOT_UNREAD: "these settings need a read test spot, and the session has none",
}


def reason_words(bits: int) -> list[str]:
    """Plain words for a reasons bitmask, in bit order."""
    return [words for flag, words in REASON_WORDS.items() if bits & flag]


@dataclass(frozen=True)
class Violation:
    setting: str
    value: float
    limit: float
    bound: str  # "min" | "max" | "positive" | "number" | "covered" | "contraindicated" | "unknown"
    #             | "test_spot" (the row asks for a read test spot, and the session has none)
    source: str
    scope: str = ""  # the treatment the table was narrowed to: "legs, contact cooling"
    site: str = ""  # a contraindicated row's treatment site, when it is known: "periorbital"
    every_type: bool = False  # a contraindicated row that refuses every skin type there

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
        if self.bound == "contraindicated":
            if self.site and self.every_type:
                return (
                    f"contraindicated: this laser is not used at the {self.site} site, for any "
                    f"skin type (source: {self.source})"
                )
            where = f"at the {self.site} site" if self.site else "at this spot size and pulse width"
            return (
                f"contraindicated: this laser is not used on skin type {_type_name(self.value)} "
                f"{where} (source: {self.source})"
            )
        if self.bound == "test_spot":
            return (
                "at this spot size and pulse width the limit row asks for a read test spot "
                "first, and this session was admitted without one: settings needing a test "
                f"spot are refused until the patient has one (source: {self.source})"
            )
        if self.bound == "unknown":
            if self.setting == "skin_type":
                return f"skin type {self.value:g} is not one of I–VI"
            return f"no limit table for {label} {self.value:g} {unit}"
        if self.bound == "covered":
            where = f" ({self.scope})" if self.scope else ""
            return (
                f"{label} {self.value:g} {unit} is not covered by any limit row for this skin "
                f"type{where}"
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
        """JSON-safe: a number that is not finite (a contraindicated row has no limit, a NaN
        setting no value) is None, because the session log refuses NaN and infinity, and a
        refusal that cannot be recorded would end the session's log."""
        return {
            "setting": self.setting,
            "value": _finite_or_none(self.value),
            "limit": _finite_or_none(self.limit),
            "bound": self.bound,
            "margin": _finite_or_none(self.margin),
            "source": self.source,
            "scope": self.scope,
            "message": self.explain(),
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _type_name(rank: float) -> str:
    types = list(SkinType)
    return types[int(rank)].value if rank == rank and 0 <= rank < len(types) else f"{rank:g}"


@dataclass(frozen=True)
class GateResult:
    ok: bool
    violations: tuple[Violation, ...]
    cooling_required: bool = False  # some applying row asks for epidermal cooling
    test_spot_required: bool = False  # ... or for a test spot before treating

    def explain(self) -> str:
        return "within limits" if self.ok else "; ".join(v.explain() for v in self.violations)

    def notes(self) -> list[str]:
        """What a passing setting still asks of the operator."""
        out = []
        if self.cooling_required:
            out.append("epidermal cooling required")
        if self.test_spot_required:
            out.append("test spot required first")
        return out


class NoRowsForTreatment(ValueError):
    """A limit table with no row for the session's site and cooling method: nothing can be
    treated with it there."""


class LimitTable:
    """One laser family's settings limits as arrays: one column per limit row.

    ``evaluate`` is the hot path (pass/fail only); ``reasons`` gives the bitmask for a batch;
    ``check`` explains one setting in words.
    """

    def __init__(
        self,
        rows: Sequence[SettingsLimit],
        *,
        name: str = "limits",
        wavelength_nm: tuple[float, float] | None = None,
        scope: str = "",
        site: TreatmentSite | None = None,
        without_test_spot: bool = False,
    ) -> None:
        self.rows = list(rows)
        self.name = name
        self.wavelength_nm = wavelength_nm
        self.scope = scope  # the treatment the rows were narrowed to (``for_treatment``)
        self.site = site  # its site, named by a contraindicated row's refusal
        # The session has no read test spot: a row that asks for one refuses (``without_test_spot``).
        self.without_test_spot = without_test_spot
        r = self.rows
        if not r:
            raise NoRowsForTreatment(
                f"limit table {name} has no rows{f' for {scope}' if scope else ''}"
            )
        if len(r) > MAX_ROWS:
            raise ValueError(f"limit table {name} has {len(r)} rows; at most {MAX_ROWS}")
        self.type_mask = np.array(
            [[t in row.skin_types for row in r] for t in SkinType], dtype=np.bool_
        )  # (6, R)
        self.contra = np.array([row.contraindicated for row in r], dtype=np.bool_)
        self.unread = np.array(
            [without_test_spot and row.test_spot_required and not row.contraindicated for row in r],
            dtype=np.bool_,
        )
        self.spot_min = np.array([row.spot_mm.min for row in r])
        self.spot_max = np.array([row.spot_mm.max for row in r])
        self.pw_min = np.array([row.pulse_ms.min for row in r])
        self.pw_max = np.array([row.pulse_ms.max for row in r])
        # Contraindicated rows refuse through ``contra`` alone: their numeric limits are open.
        self.f_min = np.where(self.contra, -np.inf, [row.fluence_j_cm2.min for row in r])
        self.f_max = np.where(self.contra, np.inf, [row.fluence_j_cm2.max for row in r])
        self.rate_max = np.where(self.contra, np.inf, [row.rep_rate_hz_max for row in r])
        # The batch path works on sets of limit rows as bits of a uint64 (bit j = row j).
        bit = np.left_shift(np.uint64(1), np.arange(len(r), dtype=np.uint64))
        self._type_bits = np.array([np.bitwise_or.reduce(bit[m]) for m in self.type_mask],
                                   dtype=np.uint64)  # fmt: skip
        self._type_bits = np.append(self._type_bits, np.uint64(0))  # unknown skin type
        self._contra_bits = np.uint64(np.bitwise_or.reduce(bit[self.contra]))
        self._unread_bits = np.uint64(np.bitwise_or.reduce(bit[self.unread]))
        self._spot = _Cells(self.spot_min, self.spot_max, bit)
        self._pulse = _Cells(self.pw_min, self.pw_max, bit)
        self._f_high = _Beyond(self.f_max, bit, above=True)
        self._f_low = _Beyond(self.f_min, bit, above=False)
        self._rate_high = _Beyond(self.rate_max, bit, above=True)
        # The same rows as plain tuples, for a batch of a few (the interlock's every cycle).
        self._plain = [
            (frozenset(t.rank for t in row.skin_types), row.spot_mm.min, row.spot_mm.max,
             row.pulse_ms.min, row.pulse_ms.max, float(self.f_min[j]), float(self.f_max[j]),
             float(self.rate_max[j]), row.contraindicated, bool(self.unread[j]))
            for j, row in enumerate(r)
        ]  # fmt: skip

    # --- batch ---------------------------------------------------------------------------------

    def evaluate(
        self, fluence: ArrayLike, pulse: ArrayLike, spot: ArrayLike, rate: ArrayLike,
        skin_rank: ArrayLike,
    ) -> BoolA:  # fmt: skip
        """Pass/fail for each row of a batch of settings (NaN never passes)."""
        return np.asarray(self.reasons(fluence, pulse, spot, rate, skin_rank) == 0)

    def reasons(
        self, fluence: ArrayLike, pulse: ArrayLike, spot: ArrayLike, rate: ArrayLike,
        skin_rank: ArrayLike,
    ) -> U16:  # fmt: skip
        """The ``Reason`` bitmask for each row of a batch (0 = passes)."""
        f, pw, s, r = (
            np.asarray(a, dtype=np.float64).reshape(-1) for a in (fluence, pulse, spot, rate)
        )
        rank = np.asarray(skin_rank).reshape(-1)
        n = f.shape[0]
        if not (pw.shape[0] == s.shape[0] == r.shape[0] == rank.shape[0] == n):
            raise ValueError("batch arrays differ in length")
        out = np.empty(n, dtype=np.uint16)
        if n <= SMALL:
            for i in range(n):
                out[i] = self._reasons_one(
                    float(f[i]), float(pw[i]), float(s[i]), float(r[i]), int(rank[i])
                )
            return out
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            out[lo:hi] = self._reasons_chunk(f[lo:hi], pw[lo:hi], s[lo:hi], r[lo:hi], rank[lo:hi])
        return out

    def _reasons_one(self, f: float, pw: float, s: float, r: float, rank: int) -> int:
        """The same verdict as ``_reasons_chunk`` for one setting, in plain Python: NumPy's
        per-call cost dominates a batch of one. Property tests hold the two paths equal."""
        out = 0
        spot_covered = pulse_covered = False
        if not 0 <= rank < len(SkinType):
            out |= Reason.SKIN_TYPE_UNKNOWN
        for types, s_lo, s_hi, p_lo, p_hi, f_lo, f_hi, r_hi, contra, unread in self._plain:
            if rank not in types or not within(s_lo, s_hi, s):
                continue
            spot_covered = True
            if not within(p_lo, p_hi, pw):
                continue
            pulse_covered = True
            if contra:
                out |= Reason.CONTRAINDICATED
            if unread:
                out |= Reason.TEST_SPOT_UNREAD
            if f > f_hi:
                out |= Reason.FLUENCE_HIGH
            if f < f_lo:
                out |= Reason.FLUENCE_LOW
            if r > r_hi:
                out |= Reason.RATE_HIGH
        if not spot_covered and not out & Reason.SKIN_TYPE_UNKNOWN:
            out |= Reason.SPOT_NOT_COVERED
        if spot_covered and not pulse_covered:
            out |= Reason.PULSE_NOT_COVERED
        if math.isnan(f) or math.isnan(pw) or math.isnan(s) or math.isnan(r):
            out |= Reason.NOT_A_NUMBER
        if not r > 0.0 and not math.isnan(r):
            out |= Reason.RATE_NOT_POSITIVE
        return out

    def _reasons_chunk(self, f: F64, pw: F64, s: F64, r: F64, rank: npt.NDArray[np.generic]) -> U16:
        rk = np.asarray(rank, dtype=np.int64)
        unknown = (rk < 0) | (rk >= len(SkinType))
        types = self._type_bits[np.where(unknown, len(SkinType), rk)]
        at_spot = types & self._spot.rows(s)
        applies = at_spot & self._pulse.rows(pw)
        zero = np.uint64(0)
        out = unknown * np.uint16(Reason.SKIN_TYPE_UNKNOWN)
        out |= ((at_spot == zero) & ~unknown) * np.uint16(Reason.SPOT_NOT_COVERED)
        out |= ((applies == zero) & (at_spot != zero)) * np.uint16(Reason.PULSE_NOT_COVERED)
        out |= ((applies & self._f_high.rows(f)) != zero) * np.uint16(Reason.FLUENCE_HIGH)
        out |= ((applies & self._f_low.rows(f)) != zero) * np.uint16(Reason.FLUENCE_LOW)
        out |= ((applies & self._rate_high.rows(r)) != zero) * np.uint16(Reason.RATE_HIGH)
        out |= ((applies & self._contra_bits) != zero) * np.uint16(Reason.CONTRAINDICATED)
        out |= ((applies & self._unread_bits) != zero) * np.uint16(Reason.TEST_SPOT_UNREAD)
        out |= ~(r > 0.0) * np.uint16(Reason.RATE_NOT_POSITIVE)
        nan_f, nan_r = np.isnan(f), np.isnan(r)
        nan = nan_f | nan_r | np.isnan(pw) | np.isnan(s)
        out |= nan * np.uint16(Reason.NOT_A_NUMBER)
        # A NaN sorts as "beyond" in a binary search: say only that it is not a number.
        if nan_f.any():
            out[nan_f] &= np.uint16(~Reason.FLUENCE_HIGH & 0xFFFF)
        if nan_r.any():
            out[nan_r] &= np.uint16(~(Reason.RATE_HIGH | Reason.RATE_NOT_POSITIVE) & 0xFFFF)
        return np.asarray(out, dtype=np.uint16)

    # --- one setting, in words ----------------------------------------------------------------

    def check(self, skin_type: SkinType, settings: dict[str, float]) -> GateResult:
        """One setting, with every violated limit explained."""
        missing = [k for k in LASER_SETTINGS if k not in settings]
        if missing:
            raise ValueError(f"settings lack {missing}")
        vals = {k: float(settings[k]) for k in LASER_SETTINGS}
        ok = bool(
            self.evaluate(
                [vals["fluence_j_cm2"]], [vals["pulse_ms"]], [vals["spot_mm"]],
                [vals["rep_rate_hz"]], [skin_type.rank],
            )[0]
        )  # fmt: skip
        applying = self._applying(skin_type, vals["spot_mm"], vals["pulse_ms"])
        cooling = any(r.cooling_required for r in applying)
        test_spot = any(r.test_spot_required for r in applying)
        if ok:
            return GateResult(True, (), cooling, test_spot)
        return GateResult(False, tuple(self.violations(skin_type, vals)), cooling, test_spot)

    def _applying(self, skin_type: SkinType, spot: float, pulse: float) -> list[SettingsLimit]:
        return [r for r in self.rows if applies(r, skin_type, spot, pulse)]

    def violations(self, skin_type: SkinType, v: dict[str, float]) -> list[Violation]:
        """Every violated limit, once per setting and bound: the tightest applying row's.

        A pulse width no row covers is reported, and the other settings are judged against
        the rows whose pulse range lies nearest, so the operator sees everything to change.
        """
        found = self._violations(skin_type, v)
        if not self.scope:
            return found
        return [replace(x, scope=self.scope) if x.bound == "covered" else x for x in found]

    def _violations(self, skin_type: SkinType, v: dict[str, float]) -> list[Violation]:
        rows = [r for r in self.rows if skin_type in r.skin_types]
        spot, pulse = v["spot_mm"], v["pulse_ms"]
        if spot != spot:
            return [Violation("spot_mm", spot, float("nan"), "number", "limit table")]
        spot_rows = [r for r in rows if at_spot(r, skin_type, spot)]
        if not spot_rows:
            return [_outside("spot_mm", spot, [r.spot_mm for r in rows], rows)]
        found: list[Violation] = []
        judge = [r for r in spot_rows if applies(r, skin_type, spot, pulse)]
        if not judge:
            if pulse != pulse:
                found.append(Violation("pulse_ms", pulse, float("nan"), "number", "limit table"))
                judge = spot_rows
            else:
                found.append(
                    _outside("pulse_ms", pulse, [r.pulse_ms for r in spot_rows], spot_rows)
                )
                gap = [max(r.pulse_ms.min - pulse, pulse - r.pulse_ms.max) for r in spot_rows]
                judge = [r for r, g in zip(spot_rows, gap, strict=True) if g == min(gap)]
        worst: dict[tuple[str, str], Violation] = {}

        def keep(found: Violation) -> None:
            key = (found.setting, found.bound)
            if key not in worst or found.margin > worst[key].margin:
                worst[key] = found

        for r in judge:
            if r.contraindicated:
                keep(self._refusal(r, skin_type))
                continue
            if self.without_test_spot and r.test_spot_required:
                keep(Violation("test_spot", float("nan"), float("nan"), "test_spot", r.source))
            value = v["fluence_j_cm2"]
            rng = r.fluence_j_cm2
            if value != value:
                keep(Violation("fluence_j_cm2", value, float("nan"), "number", r.source))
            else:
                if value < rng.min:
                    keep(Violation("fluence_j_cm2", value, rng.min, "min", r.source))
                if value > rng.max:
                    keep(Violation("fluence_j_cm2", value, rng.max, "max", r.source))
            rate = v["rep_rate_hz"]
            if rate != rate:
                keep(Violation("rep_rate_hz", rate, float("nan"), "number", r.source))
            elif rate <= 0:
                keep(Violation("rep_rate_hz", rate, 0.0, "positive", r.source))
            elif rate > r.rep_rate_hz_max:
                keep(Violation("rep_rate_hz", rate, r.rep_rate_hz_max, "max", r.source))
        return found + list(worst.values())

    def _refusal(self, r: SettingsLimit, skin_type: SkinType) -> Violation:
        """A contraindicated row's refusal, naming the site: the treatment's when the table was
        narrowed to one, else the row's when it names only one. A row that refuses every skin
        type is a refusal of the site itself."""
        site = self.site or (r.sites[0] if len(r.sites) == 1 else None)
        return Violation(
            "skin_type", skin_type.rank, float("nan"), "contraindicated", r.source,
            site="" if site is None else str(site),
            every_type=set(r.skin_types) == set(SkinType),
        )  # fmt: skip

    # --- one treatment ---------------------------------------------------------------------------

    def for_treatment(
        self, site: TreatmentSite | None, cooling: CoolingMethod | None
    ) -> LimitTable:
        """The rows published for this site and cooling method (``None``: any). A table with
        none refuses to be built (``NoRowsForTreatment``): nothing can be treated there."""
        rows = [r for r in self.rows if fits(r, site, cooling)]
        parts = [p for p in (site and str(site), cooling and f"{cooling} cooling") if p]
        scope = ", ".join(parts)
        if not rows:
            raise NoRowsForTreatment(
                f"limit table {self.name} has no row for {scope}: nothing can be treated "
                "there with this laser and cooling (the rows name their sites and cooling "
                "methods: docs/limits.md)"
            )
        return LimitTable(
            rows, name=self.name, wavelength_nm=self.wavelength_nm, scope=scope, site=site,
            without_test_spot=self.without_test_spot,
        )  # fmt: skip

    def cooling_required_at(self, skin_type: SkinType, spot_mm: float, pulse_ms: float) -> bool:
        """Whether epidermal cooling is required for this setting: some applying row asks for
        it, or no row applies (a setting outside the table is judged the safe way)."""
        applying = self._applying(skin_type, spot_mm, pulse_ms)
        return not applying or any(r.cooling_required for r in applying)

    # --- tightening ----------------------------------------------------------------------------

    def restricted(self, restrictions: Restrictions, why: str = "risk assessment") -> LimitTable:
        """The same table, tightened: fluence ceilings scaled down, a lower rate ceiling, test
        spots required. Never widens anything; a ceiling pushed below its floor leaves a row
        that refuses every fluence. (The session enforces the test spots themselves: it counts
        the pulses and pauses the laser, ``monitor.core.spots``.)"""
        if not restrictions.any:
            return self
        parts = []
        if restrictions.fluence_factor < 1:
            parts.append(f"fluence ×{restrictions.fluence_factor:g}")
        if restrictions.max_rep_rate_hz is not None:
            parts.append(f"rate ≤ {restrictions.max_rep_rate_hz:g} Hz")
        if restrictions.test_spot_only:
            n = restrictions.test_spot_pulses
            parts.append(
                "test spots only"
                + ("" if n is None else f" ({n} pulses, then a pause until a clinician's review)")
            )
        note = f"; restricted by the {why}: {', '.join(parts)}"

        def tighten(r: SettingsLimit) -> SettingsLimit:
            rate = r.rep_rate_hz_max
            if restrictions.max_rep_rate_hz is not None:
                rate = min(rate, restrictions.max_rep_rate_hz)
            fluence = r.fluence_j_cm2.model_copy(
                update={"max": r.fluence_j_cm2.max * restrictions.fluence_factor}
            )
            return r.model_copy(
                update={
                    "fluence_j_cm2": fluence,
                    "rep_rate_hz_max": rate,
                    "test_spot_required": r.test_spot_required or restrictions.test_spot_only,
                    "source": r.source + note,
                }
            )

        return self._each_row(tighten, self.scope)

    def within_test_spot(self, cover: TestSpotCover) -> LimitTable:
        """The same table, narrowed to what a read test spot vouched for (``TestSpotCover``,
        the one statement of that rule): fluence ceilings at most the spot's fluence, pulse
        ranges from the spot's pulse width up, spot ranges up to the spot's size. A row left
        with no pulse width or spot size drops out (a setting there is then not covered); the
        reasons name the test spot. Contraindicated rows stay as they are: they only refuse.
        Never widens anything."""
        note = f"; narrowed to what the patient's {cover.spot} covered"

        def narrow(r: SettingsLimit) -> SettingsLimit | None:
            pulse_min = max(r.pulse_ms.min, cover.pulse_ms_min)
            spot_max = min(r.spot_mm.max, cover.spot_mm_max)
            if not (pulse_min <= r.pulse_ms.max and r.spot_mm.min <= spot_max):
                return None
            # model_copy skips validation: a fluence ceiling pushed below its floor leaves a
            # row that refuses every fluence, as ``restricted`` does.
            update = {
                "fluence_j_cm2": r.fluence_j_cm2.model_copy(
                    update={"max": min(r.fluence_j_cm2.max, cover.fluence_j_cm2_max)}
                ),
                "pulse_ms": r.pulse_ms.model_copy(update={"min": pulse_min}),
                "spot_mm": r.spot_mm.model_copy(update={"max": spot_max}),
                "source": r.source + note,
            }
            return r.model_copy(update=update)

        scope = "; ".join(p for p in (self.scope, f"within the patient's {cover.spot}") if p)
        return self._each_row(narrow, scope)

    def with_no_test_spot(self) -> LimitTable:
        """The same table for a session that has no read test spot: a row that asks for one
        (``test_spot_required``) refuses every setting it applies to, with a reason saying so
        (``Reason.TEST_SPOT_UNREAD``). The running checks judge a session admitted on settings
        that need no test spot by it, so a knob turned on the laser's panel into a row that
        asks for one halts: the gate would not have admitted it without a test spot.
        Never widens anything."""
        return LimitTable(
            self.rows, name=self.name, wavelength_nm=self.wavelength_nm, scope=self.scope,
            site=self.site, without_test_spot=True,
        )  # fmt: skip

    def _each_row(
        self, change: Callable[[SettingsLimit], SettingsLimit | None], scope: str
    ) -> LimitTable:
        """This table with ``change`` made to every row a setting can pass; a row it returns
        None for drops out. Contraindicated rows stay as they are: they only refuse."""
        rows = [r if r.contraindicated else change(r) for r in self.rows]
        return LimitTable(
            [r for r in rows if r is not None], name=self.name, wavelength_nm=self.wavelength_nm,
            scope=scope, site=self.site, without_test_spot=self.without_test_spot,
        )  # fmt: skip


class _Cells:
    """For closed ranges [lo, hi] (one per limit row): which rows contain a value, as bits.

    The sorted borders cut the line into cells: below the first border, each border itself,
    each open gap between borders, above the last. Every value in a cell is contained by the
    same rows, so one binary search and one lookup answer for a whole batch. NaN sorts past
    the last border: no row.
    """

    def __init__(self, lo: F64, hi: F64, bit: npt.NDArray[np.uint64]) -> None:
        self.edges = np.unique(np.concatenate([lo, hi]))
        m = len(self.edges)
        # cell 2k: strictly between edges k-1 and k; cell 2k+1: exactly edge k; 2m: above all.
        probe = np.empty(2 * m + 1)
        probe[1::2] = self.edges
        probe[0] = self.edges[0] - 1.0
        probe[2:-1:2] = (self.edges[:-1] + self.edges[1:]) / 2
        probe[-1] = self.edges[-1] + 1.0
        inside = within(lo[None, :], hi[None, :], probe[:, None])
        self.masks: npt.NDArray[np.uint64] = np.array(
            [np.bitwise_or.reduce(bit[row]) for row in inside], dtype=np.uint64
        )
        self._padded = np.append(self.edges, np.nan)

    def rows(self, x: F64) -> npt.NDArray[np.uint64]:
        k = np.searchsorted(self.edges, x, side="left")  # borders below x; NaN: all of them
        cell = 2 * k + (self._padded[k] == x)
        found: npt.NDArray[np.uint64] = self.masks[cell]
        return found


class _Beyond:
    """Which limit rows a value exceeds (above a ceiling, or below a floor), as bits."""

    def __init__(self, limits: F64, bit: npt.NDArray[np.uint64], *, above: bool) -> None:
        order = np.argsort(limits, kind="stable")
        self.sorted = limits[order]
        self.above = above
        acc = [np.uint64(0)]
        for j in order if above else order[::-1]:
            acc.append(acc[-1] | bit[j])
        # above: rows whose ceiling < x are the first searchsorted(left) in ascending order;
        # below: rows whose floor > x are the last (R - searchsorted(right)).
        self.masks: npt.NDArray[np.uint64] = np.array(acc, dtype=np.uint64)

    def rows(self, x: F64) -> npt.NDArray[np.uint64]:
        if self.above:
            return self.masks[np.searchsorted(self.sorted, x, side="left")]
        n = len(self.sorted)
        return self.masks[n - np.searchsorted(self.sorted, x, side="right")]


def _outside(name: str, value: float, ranges: list[Range], rows: list[SettingsLimit]) -> Violation:
    """A spot size or pulse width that no row covers: below, above, or in a gap."""
    if not ranges:
        return Violation(name, value, float("nan"), "covered", "limit table")
    lo = min(ranges, key=lambda x: x.min)
    hi = max(ranges, key=lambda x: x.max)
    if value < lo.min:
        return Violation(name, value, lo.min, "min", rows[ranges.index(lo)].source)
    if value > hi.max:
        return Violation(name, value, hi.max, "max", rows[ranges.index(hi)].source)
    return Violation(name, value, float("nan"), "covered", "limit table")


# --- several tables, chosen by wavelength -----------------------------------------------------


class BatchResult:
    """The verdicts of one batch: ``ok, reasons = gate_set.evaluate_batch(...)``."""

    def __init__(
        self, gates: GateSet, ok: BoolA, reasons: U16, inputs: tuple[F64, F64, F64, F64, F64],
        skin_rank: npt.NDArray[np.int64],
    ) -> None:  # fmt: skip
        self.gates = gates
        self.ok = ok
        self.reasons = reasons
        self._inputs = inputs
        self._rank = skin_rank

    def __iter__(self) -> Iterator[npt.NDArray[np.generic]]:
        yield self.ok
        yield self.reasons

    def __len__(self) -> int:
        return int(self.ok.shape[0])

    def explain_row(self, i: int) -> GateResult:
        """Every violated limit of batch row ``i`` with its value, limit and margin."""
        f, pw, s, r, wl = (float(x[i]) for x in self._inputs)
        rank = int(self._rank[i])
        if not 0 <= rank < len(SkinType):
            return GateResult(False, (Violation("skin_type", rank, float("nan"), "unknown", ""),))
        table = self.gates.table_for(wl)
        if table is None:
            return GateResult(
                False, (Violation("wavelength_nm", wl, float("nan"), "unknown", "limit tables"),)
            )
        settings = {"fluence_j_cm2": f, "pulse_ms": pw, "spot_mm": s, "rep_rate_hz": r}
        return table.check(list(SkinType)[rank], settings)


class GateSet:
    """Limit tables for several wavelengths; each batch row is judged by its own table."""

    def __init__(self, tables: Sequence[LimitTable]) -> None:
        spans = []
        for t in tables:
            if t.wavelength_nm is None:
                raise ValueError(f"limit table {t.name} has no wavelength")
            spans.append((t.wavelength_nm, t.name))
        spans.sort()
        for (a, an), (b, bn) in itertools.pairwise(spans):
            if b[0] <= a[1]:
                raise ValueError(f"limit tables {an} and {bn} overlap in wavelength")
        self.tables = list(tables)

    @classmethod
    def bundled(cls, site: TreatmentSite | None = None) -> GateSet:
        """Every bundled limit table; with a ``site``, only its rows for that site (a table
        with none is left out: its wavelength is then refused as unknown)."""
        from device_profiles.loader import bundled_table_names, load_table

        tables = []
        for name in bundled_table_names():
            table = table_from_file(load_table(name).table)
            try:
                tables.append(table if site is None else table.for_treatment(site, None))
            except NoRowsForTreatment:
                continue
        return cls(tables)

    def table_for(self, wavelength_nm: float) -> LimitTable | None:
        for t in self.tables:
            assert t.wavelength_nm is not None
            if t.wavelength_nm[0] <= wavelength_nm <= t.wavelength_nm[1]:
                return t
        return None

    def evaluate_batch(
        self, fluence: ArrayLike, pulse: ArrayLike, spot: ArrayLike, rate: ArrayLike,
        wavelength_nm: ArrayLike, skin_rank: ArrayLike,
    ) -> BatchResult:  # fmt: skip
        """Pass/fail and a ``Reason`` bitmask for every row; no Python loop over the rows."""
        f, pw, s, r, wl = (
            np.asarray(a, dtype=np.float64).reshape(-1)
            for a in (fluence, pulse, spot, rate, wavelength_nm)
        )
        rank = np.asarray(skin_rank, dtype=np.int64).reshape(-1)
        n = f.shape[0]
        if not (pw.shape[0] == s.shape[0] == r.shape[0] == wl.shape[0] == rank.shape[0] == n):
            raise ValueError("batch arrays differ in length")
        reasons = np.full(n, Reason.WAVELENGTH_UNKNOWN, dtype=np.uint16)
        for t in self.tables:
            assert t.wavelength_nm is not None
            sel = (wl >= t.wavelength_nm[0]) & (wl <= t.wavelength_nm[1])
            if sel.all():
                reasons = t.reasons(f, pw, s, r, rank)
            elif sel.any():
                idx = np.flatnonzero(sel)
                reasons[idx] = t.reasons(f[idx], pw[idx], s[idx], r[idx], rank[idx])
        ok = np.asarray(reasons == 0)
        return BatchResult(self, ok, reasons, (f, pw, s, r, wl), rank)


def table_from_file(table: LimitTableFile) -> LimitTable:
    return LimitTable(table.rows, name=table.name, wavelength_nm=table.wavelength_range)
