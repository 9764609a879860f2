"""Each reported pulse is judged against the session's limit table (issue 7, item 3)."""

from __future__ import annotations

from device_profiles.loader import load
from device_profiles.schema import SkinType
from monitor.core.checks import CheckEngine
from monitor.core.pulse_limits import PulseJudge

SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}


def judge(skin_type: SkinType = SkinType.III) -> PulseJudge:
    engine = CheckEngine(load("demo-ndyag-1064").setup, skin_type)
    return PulseJudge(engine.table, skin_type)


def test_item3_a_pulse_at_out_of_limit_settings_is_a_record_with_its_settings() -> None:
    j = judge()
    assert j.judge(1, 4, SETTINGS) is None
    bad = j.judge(1, 5, {**SETTINGS, "fluence_j_cm2": 260.0})
    assert bad is not None
    record = bad.as_record()
    assert record["n"] == 1 and record["total"] == 5
    assert record["settings"]["fluence_j_cm2"] == 260.0
    (violation,) = record["violations"]
    assert violation["setting"] == "fluence_j_cm2" and violation["limit"] == 120.0
    assert "fluence 260 J/cm² is above the maximum of 120 J/cm²" in violation["message"]
    assert j.judge(2, 7, {**SETTINGS, "fluence_j_cm2": 260.0}) is not None  # judged again
    assert j.out_of_limits == 3
    assert j.judge(1, 8, SETTINGS) is None
    assert j.out_of_limits == 3


def test_item3_unreadable_settings_count_as_out_of_limits() -> None:
    """A status whose settings are not numbers: the pulse is not assumed to be fine."""
    j = judge()
    assert j.judge(1, 1, {**SETTINGS, "pulse_ms": float("nan")}) is not None
    assert j.judge(1, 2, {**SETTINGS, "pulse_ms": float("nan")}) is not None
    assert j.out_of_limits == 2


def test_item3_the_limits_are_those_of_the_patients_skin_type() -> None:
    fine_for_iii = {**SETTINGS, "fluence_j_cm2": 110.0}  # VI: at most 80 at 3 mm
    assert judge(SkinType.III).judge(1, 1, fine_for_iii) is None
    assert judge(SkinType.VI).judge(1, 1, fine_for_iii) is not None
