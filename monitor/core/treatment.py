"""The treatment a session gives: where on the body, and whether the patient's test spots allow
these settings there.

Test spots (issue 12, item 4). Types IV–VI, and any limit row that asks for it
(``test_spot_required``), are treated only after a test spot at the same site and wavelength
was done, read at least ``limits.test_spot_read_after_days`` later (vendor guidance: 1–2 weeks;
14 days, clinic default, review) and showed no reaction. The test spot vouches for settings
no harsher than its own: a fluence at most its fluence, a pulse at least as long, a spot at
most as large. Without such a reading the session may only *do* the test spot: a few single
pulses (``UNREAD_TEST_SPOT_PULSES``), then the laser stays in STANDBY for the rest of the
session, because a test spot is read days later, not in the same visit.

The readings come with the patient's risk assessment (``RiskOutcome.test_spots``), recorded
with it in the session's log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from device_profiles.clinical import TestSpotReading, TestSpotResult, TreatmentSite
from device_profiles.schema import SkinType

#: The site a demo or test session treats when it states none; a clinical session must state
#: it (the bundled scenarios are leg treatments).
DEMO_SITE = TreatmentSite.LEGS
#: A test spot is a few single pulses. Clinic default, review (the same count the relative
#: contraindications' test-spot restrictions state).
UNREAD_TEST_SPOT_PULSES = 3
#: From this type on a read test spot is required whatever the row says (vendor rule:
#: "types IV-VI test spot first").
TEST_SPOT_FROM_TYPE = SkinType.IV
#: A test spot at another wavelength says nothing about this laser.
WAVELENGTH_MATCH_NM = 1.0


def needs_read_test_spot(skin_type: SkinType, row_requires: bool) -> bool:
    """Whether treatment needs a read test spot: types IV-VI, or a row that asks for one."""
    return row_requires or skin_type.rank >= TEST_SPOT_FROM_TYPE.rank


@dataclass(frozen=True)
class TestSpotVerdict:
    """Which reading vouches for these settings, or why none does."""

    __test__ = False  # a clinical term, not a pytest test class

    reading: TestSpotReading | None
    why_not: str  # empty when a reading vouches

    @property
    def ok(self) -> bool:
        return self.reading is not None


def qualifying_test_spot(
    readings: Sequence[TestSpotReading],
    *,
    site: TreatmentSite,
    wavelength_nm: float,
    settings: Mapping[str, float],
    read_after_days: int,
    today: date,
) -> TestSpotVerdict:
    """The first reading that vouches for ``settings`` at ``site``, or why none does."""
    reasons: list[str] = []
    for r in readings:
        problem = _problem(r, site, wavelength_nm, settings, read_after_days, today)
        if problem is None:
            return TestSpotVerdict(r, "")
        reasons.append(f"{r.describe()}: {problem}")
    if not reasons:
        return TestSpotVerdict(
            None,
            f"no test spot in the patient's history (needed at the {site}, "
            f"{wavelength_nm:g} nm, read at least {read_after_days} days after it was done)",
        )
    return TestSpotVerdict(None, "no test spot vouches for these settings: " + "; ".join(reasons))


def _problem(
    r: TestSpotReading,
    site: TreatmentSite,
    wavelength_nm: float,
    settings: Mapping[str, float],
    read_after_days: int,
    today: date,
) -> str | None:
    if r.site is not site:
        return f"done at the {r.site}, not the {site}"
    if abs(r.wavelength_nm - wavelength_nm) > WAVELENGTH_MATCH_NM:
        return f"at {r.wavelength_nm:g} nm, not {wavelength_nm:g} nm"
    if r.done_on > today or (r.read_on is not None and r.read_on > today):
        return "dated in the future"
    days = r.days_before_reading
    if days is None:
        return "not read yet"
    if days < read_after_days:
        return f"read after {days} days, at least {read_after_days} needed"
    if r.result is not TestSpotResult.NO_REACTION:
        return f"result {r.result}: not a basis for treatment"
    return TestSpotCover.of(r).problem(settings)


@dataclass(frozen=True)
class TestSpotCover:
    """The settings a read test spot vouches for: no harsher than its own. The one statement
    of that rule: ``qualifying_test_spot`` admits settings with ``problem``, and the running
    checks (the read-back judgement and each reported pulse's) judge the laser against a limit
    table narrowed to these bounds (``LimitTable.within_test_spot``), so a knob turned on the
    laser's panel beyond the test spot halts as a knob turned beyond the table does."""

    __test__ = False  # a clinical term, not a pytest test class

    fluence_j_cm2_max: float
    pulse_ms_min: float
    spot_mm_max: float
    spot: str  # the reading, in words: the running checks' reasons name it

    @classmethod
    def of(cls, r: TestSpotReading) -> TestSpotCover:
        return cls(r.fluence_j_cm2, r.pulse_ms, r.spot_mm, r.describe())

    def problem(self, settings: Mapping[str, float]) -> str | None:
        """Why ``settings`` are harsher than the test spot, or None (borders included; NaN
        is never covered)."""
        fluence, pulse, spot = (
            float(settings[k]) for k in ("fluence_j_cm2", "pulse_ms", "spot_mm")
        )
        if not fluence <= self.fluence_j_cm2_max:
            return f"fluence {fluence:g} J/cm² is above its {self.fluence_j_cm2_max:g} J/cm²"
        if not pulse >= self.pulse_ms_min:
            return f"pulse {pulse:g} ms is shorter than its {self.pulse_ms_min:g} ms"
        if not spot <= self.spot_mm_max:
            return f"spot {spot:g} mm is larger than its {self.spot_mm_max:g} mm"
        return None
