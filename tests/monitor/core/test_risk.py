"""Pre-treatment risk assessment: absolute refuses, relative restricts with an attestation,
unanswered refuses, and the outcome is a JSON-safe record."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from device_profiles.loader import load_contraindications
from monitor.core.risk import Attestation, assess

QUESTIONS = load_contraindications()
IDS = [q.id for q in QUESTIONS.questions]
ABSOLUTE = [q.id for q in QUESTIONS.questions if q.kind == "absolute"]
RELATIVE = [q.id for q in QUESTIONS.questions if q.kind == "relative"]
ALL_NO = dict.fromkeys(IDS, False)


def attest(*ids: str) -> Attestation:
    return Attestation("dr.b", "reviewed; test spots first", frozenset(ids))


def test_domain_list_is_covered() -> None:
    for qid in ("isotretinoin_6_months", "anticoagulants", "pregnancy", "recent_tan",
                "active_infection", "herpes_history", "keloid_history", "tattoo_in_area",
                "immunosuppression", "photosensitising_drugs", "light_triggered_seizures"):  # fmt: skip
        assert qid in IDS
    assert ABSOLUTE and RELATIVE


def test_all_answered_no_arms_without_restrictions() -> None:
    outcome = assess(ALL_NO)
    assert outcome.arming_allowed
    assert not outcome.restrictions.any
    assert outcome.reasons == ()


def test_an_unanswered_question_refuses() -> None:
    answers = {k: v for k, v in ALL_NO.items() if k != "pregnancy"}
    outcome = assess(answers, attest(*RELATIVE))
    assert not outcome.arming_allowed
    assert outcome.unanswered == ("pregnancy",)
    assert any(r.startswith("not answered: Is the patient pregnant") for r in outcome.reasons)


def test_an_unknown_answer_refuses() -> None:
    outcome = assess({**ALL_NO, "pregnant": False})
    assert not outcome.arming_allowed
    assert "unknown questions ['pregnant']" in outcome.reasons[0]


def test_a_relative_contraindication_needs_an_attestation() -> None:
    answers = {**ALL_NO, "keloid_history": True}
    refused = assess(answers)
    assert not refused.arming_allowed
    assert any("needs a clinician's attestation (keloid_history)" in r for r in refused.reasons)
    allowed = assess(answers, attest("keloid_history"))
    assert allowed.arming_allowed
    r = allowed.restrictions
    assert r.test_spot_only and r.fluence_factor == 0.75 and r.max_rep_rate_hz == 0.5
    assert any(x.startswith("restricted (keloid_history)") for x in allowed.reasons)


def test_an_attestation_for_another_condition_does_not_count() -> None:
    outcome = assess({**ALL_NO, "keloid_history": True}, attest("recent_tan"))
    assert not outcome.arming_allowed


def test_several_relatives_combine_to_the_strictest() -> None:
    answers = {**ALL_NO, "anticoagulants": True, "recent_tan": True}
    # A recent tan is relative at 1064 nm only (absolute at 532-980 nm).
    outcome = assess(answers, attest("anticoagulants", "recent_tan"), wavelength_nm=1064.0)
    assert outcome.arming_allowed
    assert outcome.restrictions.fluence_factor == 0.75  # tan 0.75 beats anticoagulants 0.85


def test_the_record_is_json_safe_and_complete() -> None:
    outcome = assess({**ALL_NO, "herpes_history": True}, attest("herpes_history"))
    record = json.loads(json.dumps(outcome.as_record()))
    assert record["arming_allowed"] is True
    assert record["attestation"] == {
        "clinician": "dr.b",
        "statement": "reviewed; test spots first",
        "covers": ["herpes_history"],
    }
    assert record["answers"]["herpes_history"] is True
    assert record["restrictions"]["test_spot_only"] is True
    assert record["questions_version"] == QUESTIONS.version


@given(
    absolute=st.sampled_from(ABSOLUTE),
    others=st.dictionaries(st.sampled_from(IDS), st.booleans()),
    covers=st.sets(st.sampled_from(IDS)),
)
def test_an_absolute_contraindication_always_refuses_arming(
    absolute: str, others: dict[str, bool], covers: set[str]
) -> None:
    answers = {**ALL_NO, **others, absolute: True}
    attestation = Attestation("dr.b", "I attest everything", frozenset(covers))
    outcome = assess(answers, attestation)
    assert not outcome.arming_allowed
    assert absolute in outcome.absolute
    assert any(r.startswith(f"contraindicated ({absolute})") for r in outcome.reasons)
