"""Issue 12, item 5: the contraindications a review found missing, and a recent tan whose
weight depends on the laser's wavelength (melanin absorbs 532-755 nm far more than 1064 nm)."""

from __future__ import annotations

import json
import re

import pytest

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.loader import load_contraindications, load_table
from device_profiles.schema import SkinType
from monitor.core.gate import table_from_file
from monitor.core.risk import Attestation, assess

QUESTIONS = load_contraindications()
BY_ID = {q.id: q for q in QUESTIONS.questions}
ALL_NO = dict.fromkeys(BY_ID, False)

NEW_ABSOLUTE = ("active_herpes_lesion", "suspicious_pigmented_lesion", "self_tanner")
NEW_RELATIVE = ("cold_disorder", "vitiligo", "pih_or_melasma_history", "reduced_sensation")


def yes(*ids: str) -> dict[str, bool]:
    return {**ALL_NO, **dict.fromkeys(ids, True)}


def attest(*ids: str) -> Attestation:
    return Attestation("Dr. Vega", "reviewed with the patient", frozenset(ids))


@pytest.mark.parametrize("wavelength_nm", [532.0, 595.0, 755.0])
def test_item5_a_recent_tan_refuses_at_532_595_and_755_nm_even_attested(
    wavelength_nm: float,
) -> None:
    outcome = assess(yes("recent_tan"), attest("recent_tan"), wavelength_nm=wavelength_nm)
    assert not outcome.arming_allowed
    assert outcome.absolute == ("recent_tan",)
    assert f"contraindicated (recent_tan at {wavelength_nm:g} nm)" in outcome.reasons[0]


def test_item5_a_recent_tan_at_1064_nm_restricts_to_test_spots_with_an_attestation() -> None:
    refused = assess(yes("recent_tan"), wavelength_nm=1064.0)
    assert not refused.arming_allowed and refused.relative == ("recent_tan",)
    assert "needs a clinician's attestation (recent_tan)" in refused.reasons[0]
    allowed = assess(yes("recent_tan"), attest("recent_tan"), wavelength_nm=1064.0)
    assert allowed.arming_allowed
    assert allowed.restrictions.test_spot_only and allowed.restrictions.fluence_factor == 0.75


def test_item5_a_recent_tan_with_the_laser_unknown_takes_the_strictest_reading() -> None:
    outcome = assess(yes("recent_tan"), attest("recent_tan"))
    assert not outcome.arming_allowed
    assert "contraindicated (recent_tan (laser not stated))" in outcome.reasons[0]


@pytest.mark.parametrize("qid", NEW_ABSOLUTE)
def test_item5_the_new_absolute_contraindications_refuse_even_attested(qid: str) -> None:
    outcome = assess(yes(qid), attest(qid), wavelength_nm=1064.0, site=TreatmentSite.FACE)
    assert not outcome.arming_allowed
    assert outcome.absolute == (qid,)


@pytest.mark.parametrize("qid", NEW_RELATIVE)
def test_item5_the_new_relative_contraindications_need_an_attestation_then_test_spots(
    qid: str,
) -> None:
    assert not assess(yes(qid), wavelength_nm=1064.0).arming_allowed
    allowed = assess(yes(qid), attest(qid), wavelength_nm=1064.0)
    assert allowed.arming_allowed and allowed.relative == (qid,)
    assert allowed.restrictions.test_spot_only


def test_item5_an_active_herpes_lesion_is_absolute_while_the_history_stays_relative() -> None:
    assert BY_ID["active_herpes_lesion"].kind == "absolute"
    assert BY_ID["herpes_history"].kind == "relative"


def test_item5_cold_disorders_are_asked_by_name() -> None:
    words = BY_ID["cold_disorder"].question
    for disorder in ("Raynaud", "cold urticaria", "cryoglobulinaemia"):
        assert disorder in words


def test_item5_venous_reflux_refers_a_leg_treatment_and_not_a_face_treatment() -> None:
    legs = assess(yes("venous_reflux_signs"), site=TreatmentSite.LEGS, wavelength_nm=1064.0)
    assert not legs.arming_allowed and legs.absolute == ("venous_reflux_signs",)
    assert "Refer for a venous assessment" in legs.reasons[0]
    face = assess(yes("venous_reflux_signs"), site=TreatmentSite.FACE, wavelength_nm=1064.0)
    assert face.arming_allowed and face.not_applicable == ("venous_reflux_signs",)
    assert face.as_record()["not_applicable"] == ["venous_reflux_signs"]
    # The site not stated: the yes counts.
    assert not assess(yes("venous_reflux_signs")).arming_allowed


#: A concrete reference: an author and year ("Jacques 2013", "Das et al., J Cutan Aesthet
#: Surg 2016", "Scovell, UpToDate: ..., 2016"), a standard, or a registered trial.
CONCRETE = re.compile(
    r"\b[A-Z][a-z]+(?: et al\.)?,?(?: [A-Z][A-Za-z]*\.?| &| and| [A-Z][a-z]+)*[^;()]{0,120}?"
    r"\b(?:19|20)\d\d\b"
    r"|\b(?:IEC|ISO|21 CFR) ?\d|\bNCT\d{8}\b"
)


def test_item5_every_question_cites_a_concrete_source_or_says_it_is_a_clinic_default() -> None:
    """Issue 12 audit: "published guidance", "dermatology guidance" or "vendor ... verify"
    alone is not a source a clinic can check. Each source names a reference (author and
    year, a standard, a registered trial) or carries the exact flag."""
    for q in QUESTIONS.questions:
        texts = [q.source, *(r.source for r in q.by_wavelength)]
        for text in texts:
            concrete = CONCRETE.search(text) is not None
            assert concrete or "clinic default, review" in text, (q.id, text)


@pytest.mark.parametrize(
    "text",
    [
        "active infection (published guidance)",
        "vitiligo: Koebner phenomenon after skin injury (dermatology guidance; verify)",
        "self-tanner: remove or postpone (vendor pre-treatment instructions; verify)",
        "isotretinoin within 6 months (published guidance)",
    ],
)
def test_item5_vague_guidance_is_neither_a_reference_nor_the_flag(text: str) -> None:
    assert CONCRETE.search(text) is None and "clinic default, review" not in text


@pytest.mark.parametrize(
    "text",
    ["Jacques 2013", "Das et al., J Cutan Aesthet Surg 2016; verify", "NCT01362192",
     "Scovell, UpToDate: laser and light therapy of lower extremity telangiectasias, 2016"],
)  # fmt: skip
def test_item5_a_concrete_reference_is_recognised(text: str) -> None:
    assert CONCRETE.search(text) is not None


def test_item5_an_assessment_for_another_laser_or_site_does_not_fit_this_session() -> None:
    outcome = assess(ALL_NO, wavelength_nm=532.0, site=TreatmentSite.FACE)
    assert "made for a 532 nm laser" in str(outcome.treatment_problem(1064.0, TreatmentSite.FACE))
    assert "made for the face" in str(outcome.treatment_problem(532.0, TreatmentSite.LEGS))
    assert outcome.treatment_problem(532.0, TreatmentSite.FACE) is None
    assert assess(ALL_NO).treatment_problem(1064.0, TreatmentSite.LEGS) is None


def test_item3_the_periorbital_refusal_names_the_site() -> None:
    """Before: "not used on skin type III at this spot size and pulse width", as if another
    spot or pulse would do; the row refuses the site itself, for every skin type."""
    table = table_from_file(load_table("nd-yag-1064").table).for_treatment(
        TreatmentSite.PERIORBITAL, CoolingMethod.CONTACT
    )
    settings = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    words = table.check(SkinType.III, settings).explain()
    assert "not used at the periorbital site, for any skin type" in words
    assert "spot size and pulse width" not in words
    assert "orbital rim" in words  # the row's source


def test_item3_a_refusal_by_skin_type_names_the_treatments_site() -> None:
    ktp = table_from_file(load_table("ktp-532").table).for_treatment(TreatmentSite.FACE, None)
    settings = {"fluence_j_cm2": 6.0, "pulse_ms": 10.0, "spot_mm": 2.0, "rep_rate_hz": 0.5}
    words = ktp.check(SkinType.V, settings).explain()
    assert "not used on skin type V at the face site" in words


def test_item3_a_contraindicated_refusal_is_a_record_the_session_log_takes() -> None:
    """A refusal by a contraindicated row has no limit (NaN) and no margin (inf): its record
    must still be JSON the session log accepts, or the refusal ends the session's log."""
    table = table_from_file(load_table("nd-yag-1064").table).for_treatment(
        TreatmentSite.PERIORBITAL, CoolingMethod.CONTACT
    )
    settings = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    (v,) = table.check(SkinType.III, settings).violations
    assert v.bound == "contraindicated"
    record = json.loads(json.dumps(v.as_dict(), allow_nan=False))
    assert record["limit"] is None and record["margin"] is None
    assert record["message"].startswith("contraindicated")
