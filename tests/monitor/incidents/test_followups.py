"""Follow-ups (issue 10, item 3) and patient information sheets (item 4), with a controlled
clock: a follow-up falls due and overdue as the clock passes its window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.followups import FollowUpStatus
from monitor.incidents.photos import PhotoStore
from monitor.incidents.sheets import Which
from monitor.record.chain_log import ChainLog
from monitor.record.memory_store import MemoryStore
from tests.monitor.incidents.made_sessions import DAY_S, T0, Made, write_session
from tests.monitor.incidents.test_incidents import Clock

HOUR = 3600.0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + HOUR)


@pytest.fixture
def clinic(tmp_path: Path, clock: Clock) -> Iterator[ClinicRecords]:
    log = ChainLog(MemoryStore())
    try:
        yield ClinicRecords.over(log, photos=PhotoStore(tmp_path / "photos"), clock=clock)
    finally:
        log.close()


def test_item3_a_follow_up_falls_due_then_overdue_as_the_clock_passes(
    clinic: ClinicRecords, clock: Clock
) -> None:
    sid = write_session(clinic.log)
    f = clinic.followups.schedule(
        sid, due_from=clock.now + 24 * HOUR, due_by=clock.now + 48 * HOUR,
        by="nurse-a", method="phone call", reason="24-48 h call",
    )  # fmt: skip
    assert f.status(clock.now) is FollowUpStatus.SCHEDULED
    assert clinic.followups.due() == []
    clock.now += 30 * HOUR
    assert [x.followup_id for x in clinic.followups.due()] == [f.followup_id]
    assert clinic.followups.due()[0].status(clock.now) is FollowUpStatus.DUE
    clock.now += 20 * HOUR
    (late,) = clinic.followups.due()
    assert late.status(clock.now) is FollowUpStatus.OVERDUE
    done = clinic.followups.record(f.followup_id, outcome="improving", by="nurse-a", note="ok")
    assert done.status(clock.now) is FollowUpStatus.DONE
    assert done.outcome is not None and done.outcome["outcome"] == "improving"
    assert clinic.followups.due() == []
    with pytest.raises(IncidentRefused, match="has its outcome already"):
        clinic.followups.record(f.followup_id, outcome="resolved", by="nurse-a")


def test_item3_a_follow_up_in_the_past_is_refused_and_nothing_stored(
    clinic: ClinicRecords, clock: Clock
) -> None:
    sid = write_session(clinic.log)
    n = clinic.log.verify().n_events
    with pytest.raises(IncidentInputError, match="in the past"):
        clinic.followups.schedule(
            sid, due_by=clock.now - DAY_S, by="nurse-a", method="call", reason="late"
        )
    with pytest.raises(IncidentInputError, match="no session matching"):
        clinic.followups.schedule(
            "0123456789", due_by=clock.now + DAY_S, by="nurse-a", method="call", reason="x"
        )
    with pytest.raises(IncidentInputError, match="not one of"):
        f = clinic.followups.schedule(
            sid, due_by=clock.now + DAY_S, by="nurse-a", method="call", reason="x"
        )
        n += 1
        clinic.followups.record(f.followup_id, outcome="fine", by="nurse-a")
    assert clinic.log.verify().n_events == n


@pytest.mark.parametrize(
    ("made", "higher_risk"),
    [
        (Made(skin_type="II"), False),
        (Made(skin_type="V"), True),
        (Made(skin_type="II", relative=["anticoagulants"]), True),
        (Made(skin_type="II", trips=[("skin_temp_high", 10.0)]), True),
        (Made(skin_type="II", trips=[("sensor_link", 10.0)]), False),
    ],
)
def test_item3_the_session_policy_follows_up_higher_risk_patients(
    clinic: ClinicRecords, clock: Clock, made: Made, higher_risk: bool
) -> None:
    sid = write_session(clinic.log, made)
    planned = clinic.followups.for_session(sid, by="nurse-a")
    assert (planned is not None) is higher_risk
    if planned is not None:
        policy = clinic.book.book.follow_up.session
        assert planned.due_from == pytest.approx(clock.now + policy.due_after_h * HOUR)
        assert planned.due_by == pytest.approx(planned.due_from + policy.due_within_h * HOUR)
        assert "higher-risk" in planned.reason


def test_item4_sheets_are_rebuilt_from_the_record_byte_for_byte(clinic: ClinicRecords) -> None:
    sid = write_session(clinic.log, Made(skin_type="V", relative=["anticoagulants"]))
    before, given = clinic.sheet(sid, Which.BEFORE)
    assert given is None  # written through the record API: nobody recorded handing it over
    text = before.text
    assert "PAT-0001" in text and "Risks for your skin type (V)" in text
    assert "anticoagulant" in text and "Yes" in text
    again, _ = clinic.sheet(sid, Which.BEFORE)
    assert again.text_sha256 == before.text_sha256
    after, _ = clinic.sheet(sid, Which.AFTER)
    assert "Call: Test Clinic, +44 20 0000 0000" in after.text
    assert "Cool compress if warm; SPF 50." in after.text
    assert '<section class="call">' in after.html
    assert after.html.count("<li>") == len(after.sections[0][1]) + len(after.sections[1][1])


def test_item4_an_after_sheet_without_a_contact_says_so(clinic: ClinicRecords) -> None:
    sid = write_session(clinic.log, Made(clinic={"clinic": None, "emergency_contact": None}))
    after, _ = clinic.sheet(sid, Which.AFTER)
    assert "NO EMERGENCY CONTACT RECORDED" in after.text
