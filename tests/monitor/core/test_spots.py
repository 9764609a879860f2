"""Test-spot mode as data and as a counter: how many pulses, then the pause, then a review."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device_profiles.loader import load_contraindications
from device_profiles.schema import Contraindication, Restrictions
from monitor.core.risk import Attestation, assess
from monitor.core.spots import UNSTATED_PULSES, Phase, TestSpotMode, Verdict

QUESTIONS = load_contraindications()


def test_item14_every_test_spot_restriction_states_how_many_pulses() -> None:
    spot = [q for q in QUESTIONS.questions if q.restrictions.test_spot_only]
    assert spot, "the bundled questions have test-spot restrictions"
    for q in spot:
        assert q.restrictions.test_spot_pulses == 3, q.id
        assert "clinic default, review" in q.source, q.id


def test_a_test_spot_question_without_a_count_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="test_spot_only and test_spot_pulses go together"):
        Contraindication(
            id="x",
            question="?",
            kind="relative",
            restrictions=Restrictions(test_spot_only=True),
            advice="a",
            source="s",
        )
    with pytest.raises(ValidationError, match="go together"):
        Contraindication(
            id="x",
            question="?",
            kind="relative",
            restrictions=Restrictions(fluence_factor=0.8, test_spot_pulses=2),
            advice="a",
            source="s",
        )


def test_restrictions_combine_to_the_fewest_test_spots() -> None:
    a = Restrictions(test_spot_only=True, test_spot_pulses=3)
    b = Restrictions(test_spot_only=True, test_spot_pulses=1)
    assert a.combine(b).test_spot_pulses == 1
    assert a.combine(Restrictions()).test_spot_pulses == 3


def test_the_risk_assessment_carries_the_count_into_the_session() -> None:
    answers = {q.id: q.id in ("anticoagulants", "herpes_history") for q in QUESTIONS.questions}
    outcome = assess(answers, Attestation("dr.b", "ok", frozenset(answers) - {"pregnancy"}))
    assert outcome.arming_allowed
    mode = TestSpotMode.from_restrictions(outcome.restrictions)
    assert mode is not None and mode.allowed == 3
    assert outcome.as_record()["restrictions"]["test_spot_pulses"] == 3  # type: ignore[index]


def test_no_test_spot_restriction_means_no_mode() -> None:
    assert TestSpotMode.from_restrictions(Restrictions()) is None
    assert TestSpotMode.from_restrictions(Restrictions(fluence_factor=0.5)) is None


def test_a_count_nobody_stated_is_the_strictest() -> None:
    mode = TestSpotMode.from_restrictions(Restrictions(test_spot_only=True))
    assert mode is not None and mode.allowed == UNSTATED_PULSES == 1


def test_the_last_test_spot_pauses_and_only_a_review_ends_the_pause() -> None:
    mode = TestSpotMode(allowed=3)
    assert [mode.count(1), mode.count(1)] == [Verdict.MORE_ALLOWED] * 2
    assert not mode.paused
    assert mode.count(1) is Verdict.PAUSE_NOW
    assert mode.paused and mode.limiting
    mode.end_pause("Dr. Vega")
    assert mode.phase is Phase.ENDED and not mode.limiting
    assert mode.count(40) is Verdict.MORE_ALLOWED  # the treatment goes on
    assert mode.as_record() == {
        "allowed": 3,
        "fired": 3,
        "phase": "ended",
        "ended_by": "Dr. Vega",
    }


@pytest.mark.parametrize("pulses", [[4], [2, 2], [3, 1]])
def test_more_pulses_than_allowed_is_a_fault_and_still_needs_the_review(
    pulses: list[int],
) -> None:
    mode = TestSpotMode(allowed=3)
    verdicts = [mode.count(n) for n in pulses]
    assert verdicts[-1] is Verdict.EXCEEDED
    assert mode.paused
