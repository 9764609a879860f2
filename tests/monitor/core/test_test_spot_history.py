"""Issue 12, item 4: types IV-VI, and rows that ask for it, are treated only after a test spot
at the same site and wavelength was read at least the stated interval later and showed no
reaction, and only at settings no harsher than the test spot's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pydantic
import pytest

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.loader import load_contraindications
from device_profiles.schema import SkinType
from monitor.cli.risk_file import RiskFileError, parse_risk
from monitor.core.treatment import needs_read_test_spot, qualifying_test_spot

TODAY = date(2026, 3, 30)
SETTINGS = {"fluence_j_cm2": 100.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}


def spot(**change: object) -> TestSpotReading:
    fields: dict[str, object] = {
        "done_on": "2026-03-02",
        "read_on": "2026-03-16",
        "read_by": "Dr. Vega",
        "site": "legs",
        "wavelength_nm": 1064.0,
        "fluence_j_cm2": 100.0,
        "pulse_ms": 30.0,
        "spot_mm": 3.0,
        "result": "no_reaction",
        **change,
    }
    return TestSpotReading.model_validate(fields)


def verdict(*readings: TestSpotReading, **settings: float) -> tuple[bool, str]:
    v = qualifying_test_spot(
        readings,
        site=TreatmentSite.LEGS,
        wavelength_nm=1064.0,
        settings={**SETTINGS, **settings},
        read_after_days=14,
        today=TODAY,
    )
    return v.ok, v.why_not


@pytest.mark.parametrize(
    ("skin_type", "row_asks", "needed"),
    [(SkinType.III, False, False), (SkinType.III, True, True), (SkinType.IV, False, True),
     (SkinType.V, False, True), (SkinType.VI, False, True)],
)  # fmt: skip
def test_item4_types_iv_to_vi_and_rows_that_ask_need_a_read_test_spot(
    skin_type: SkinType, row_asks: bool, needed: bool
) -> None:
    assert needs_read_test_spot(skin_type, row_asks) is needed


def test_item4_a_test_spot_read_after_two_weeks_with_no_reaction_vouches() -> None:
    assert verdict(spot()) == (True, "")
    assert verdict(spot(), fluence_j_cm2=90.0, pulse_ms=40.0, spot_mm=2.0)[0]


@pytest.mark.parametrize(
    ("change", "settings", "why"),
    [
        ({}, {"fluence_j_cm2": 110.0}, "fluence 110 J/cm² is above its 100 J/cm²"),
        ({}, {"pulse_ms": 20.0}, "pulse 20 ms is shorter than its 30 ms"),
        ({}, {"spot_mm": 4.0}, "spot 4 mm is larger than its 3 mm"),
        ({"read_on": "2026-03-09"}, {}, "read after 7 days, at least 14 needed"),
        ({"read_on": None, "read_by": None, "result": None}, {}, "not read yet"),
        ({"result": "adverse"}, {}, "result adverse: not a basis for treatment"),
        ({"site": "face"}, {}, "done at the face, not the legs"),
        ({"wavelength_nm": 755.0}, {}, "at 755 nm, not 1064 nm"),
        ({"done_on": "2026-04-01", "read_on": "2026-04-20"}, {}, "dated in the future"),
    ],
    ids=["fluence", "pulse", "spot", "read too early", "not read", "adverse", "site",
         "wavelength", "future"],
)  # fmt: skip
def test_item4_a_test_spot_that_does_not_vouch_says_why(
    change: dict[str, object], settings: dict[str, float], why: str
) -> None:
    ok, why_not = verdict(spot(**change), **settings)
    assert not ok
    assert why in why_not and why_not.startswith("no test spot vouches for these settings")


def test_item4_no_test_spot_in_the_history_says_what_is_needed() -> None:
    ok, why_not = verdict()
    assert not ok
    assert why_not == (
        "no test spot in the patient's history (needed at the legs, 1064 nm, read at least "
        "14 days after it was done)"
    )


def test_item4_any_one_reading_that_vouches_is_enough() -> None:
    assert verdict(spot(result="adverse"), spot(fluence_j_cm2=110.0))[0]


@pytest.mark.parametrize(
    "change",
    [{"read_on": "2026-03-01"}, {"result": None}, {"read_by": None}, {"fluence_j_cm2": -1.0}],
    ids=["read before done", "read without result", "read by nobody", "negative fluence"],
)
def test_item4_a_reading_that_makes_no_sense_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        spot(**change)


def test_item4_the_risk_file_carries_the_test_spots_and_refuses_a_bad_one() -> None:
    form = load_contraindications()
    answers = "".join(f"  {q.id}: no\n" for q in form.questions)
    good = (
        f"answers:\n{answers}test_spots:\n"
        "  - {done_on: 2026-03-02, read_on: 2026-03-16, read_by: Dr. Vega, site: legs,\n"
        "     wavelength_nm: 1064, fluence_j_cm2: 100, pulse_ms: 30, spot_mm: 3,\n"
        "     result: no_reaction}\n"
    )
    path = Path("risk.yaml")
    outcome = parse_risk(good.encode(), path, form, wavelength_nm=1064.0, site=TreatmentSite.LEGS)
    assert outcome.test_spots == (spot(),)
    assert outcome.as_record()["test_spots"] == [spot().model_dump(mode="json")]
    bad = good.replace("result: no_reaction", "result: looked fine")
    with pytest.raises(RiskFileError, match=r"risk\.yaml: test_spots item 0: .*result"):
        parse_risk(bad.encode(), path, form)
