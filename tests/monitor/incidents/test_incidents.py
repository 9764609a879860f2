"""Incident records (issue 10, item 2) in a real SQLite session log: drafts, checklists,
completion, corrections that keep both versions, photos by content hash, refusals that
store nothing, and tampering that verification finds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.incidents import IncidentStatus
from monitor.incidents.photos import PhotoStore, sniff
from monitor.incidents.trace import trace_around
from monitor.record.sqlite_store import SessionLog
from tests.monitor.incidents.made_sessions import T0, Made, png_bytes, write_png, write_session

DETAILS = {
    "type": "burn_or_blister",
    "severity": 2,
    "body_site": "left calf, medial",
    "noticed_at": "2026-05-28T20:30:00Z",
    "noticed_by": "nurse-a",
    "actions_taken": "cooled 15 min, non-adherent dressing",
    "referral": "none",
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite3"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 3600)


@pytest.fixture
def clinic(db: Path, clock: Clock) -> Iterator[ClinicRecords]:
    log = SessionLog(db)
    try:
        yield ClinicRecords.over(log, photos=PhotoStore.beside(db), clock=clock)
    finally:
        log.close()


def halted_session(clinic: ClinicRecords) -> tuple[str, object]:
    sid = write_session(clinic.log, Made(trips=[("skin_temp_high", 12.0)]))
    trip = clinic.log.events(sid, ["trip"])[0]
    return sid, trip


def test_item2_a_skin_temperature_halt_opens_a_draft_with_its_protocol_and_trip(
    clinic: ClinicRecords,
) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    assert draft.status is IncidentStatus.DRAFT
    assert draft.protocol is not None and draft.protocol["id"] == "burn_or_blister"
    assert draft.protocol["book_sha256"] == clinic.book.digest
    assert draft.trigger is not None
    assert draft.trigger["seq"] == trip.seq and draft.trigger["hash"] == trip.hash  # type: ignore[attr-defined]
    assert draft.trigger["check"] == "skin_temp_high"
    assert draft.session_id == sid and draft.patient_id == "PAT-0001"


def test_item2_checklist_ticks_are_logged_in_order_with_who_and_when(
    clinic: ClinicRecords, clock: Clock
) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    for step, who in ((1, "nurse-a"), (3, "nurse-b"), (2, "nurse-a")):
        clock.now += 30
        clinic.incidents.tick(draft.incident_id, step, by=who)
    incident = clinic.incidents.get(draft.incident_id)
    assert [(t.step, t.by) for t in incident.ticks] == [
        (1, "nurse-a"),
        (3, "nurse-b"),
        (2, "nurse-a"),
    ]
    assert [t.t_wall for t in incident.ticks] == sorted(t.t_wall for t in incident.ticks)
    steps = clinic.book.protocol("burn_or_blister").immediate_steps
    assert incident.ticks[0].text == steps[0]
    with pytest.raises(IncidentRefused, match="ticked already"):
        clinic.incidents.tick(draft.incident_id, 1, by="nurse-a")
    with pytest.raises(IncidentInputError, match="steps 1 to"):
        clinic.incidents.tick(draft.incident_id, 99, by="nurse-a")


def test_item2_a_draft_must_be_closed_as_no_injury_or_completed(clinic: ClinicRecords) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    with pytest.raises(IncidentRefused, match="is a draft"):
        clinic.incidents.close(draft.incident_id, by="dr-b", outcome="resolved", reason="x")
    with pytest.raises(IncidentRefused, match="complete it"):
        clinic.incidents.amend(draft.incident_id, by="dr-b", why="x", changes={"severity": 1})
    closed = clinic.incidents.close(
        draft.incident_id, by="dr-b", outcome="no_injury", reason="skin intact after cooling"
    )
    assert closed.status is IncidentStatus.CLOSED
    assert closed.closure is not None and closed.closure["outcome"] == "no_injury"
    with pytest.raises(IncidentRefused, match="closed already"):
        clinic.incidents.close(draft.incident_id, by="dr-b", outcome="no_injury", reason="again")


def test_item2_completing_a_draft_records_details_and_schedules_its_follow_up(
    clinic: ClinicRecords, clock: Clock
) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    done = clinic.incidents.complete(draft.incident_id, by="dr-b", details=DETAILS)
    assert done.status is IncidentStatus.DOCUMENTED
    assert done.details["severity"] == 2 and done.details["body_site"] == "left calf, medial"
    followups = clinic.followups.select(incident_id=done.incident_id)
    assert len(followups) == 1
    rule = clinic.book.book.follow_up.for_grade(2)
    assert rule is not None
    assert followups[0].due_from == pytest.approx(clock.now + rule.due_after_h * 3600)


def test_item2_an_amended_incident_keeps_both_versions_and_the_log_still_verifies(
    clinic: ClinicRecords, db: Path
) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    clinic.incidents.complete(draft.incident_id, by="dr-b", details=DETAILS)
    amended = clinic.incidents.amend(
        draft.incident_id,
        by="dr-c",
        why="blister seen at the 24 h review",
        changes={"severity": 3, "referral": "burns clinic"},
    )
    assert amended.details["severity"] == 3 and amended.amended
    kinds = [e.kind for e in amended.history]
    assert kinds == ["incident_opened", "incident_completed", "incident_amended"]
    completed = amended.history[1].payload["details"]
    assert completed["severity"] == 2  # the earlier version is still there, unchanged
    change = amended.history[2].payload
    assert change["by"] == "dr-c" and change["why"] == "blister seen at the 24 h review"
    assert change["changes"]["severity"] == {"from": 2, "to": 3}
    with pytest.raises(IncidentRefused, match="changes nothing"):
        clinic.incidents.amend(draft.incident_id, by="dr-c", why="again", changes={"severity": 3})
    assert clinic.log.verify().ok


def test_item2_a_changed_byte_in_an_incident_is_detected(clinic: ClinicRecords, db: Path) -> None:
    sid, trip = halted_session(clinic)
    draft = clinic.incidents.open_draft(sid, trip, by="laserguard")  # type: ignore[arg-type]
    done = clinic.incidents.complete(draft.incident_id, by="dr-b", details=DETAILS)
    seq = done.history[1].seq
    clinic.log.close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    (text,) = conn.execute("SELECT payload FROM events WHERE seq = ?", (seq,)).fetchone()
    assert '"severity":2' in text
    conn.execute(
        "UPDATE events SET payload = ? WHERE seq = ?",
        (text.replace('"severity":2', '"severity":1'), seq),
    )
    conn.commit()
    conn.close()
    with SessionLog(db, read_only=True) as log:
        result = log.verify()
        assert not result.ok and result.first_bad_seq == seq
        with pytest.raises(Exception, match="fails verification"):
            log.read_verified_stream(done.stream)


def test_item2_an_incident_for_an_unknown_session_is_refused_and_nothing_stored(
    clinic: ClinicRecords,
) -> None:
    write_session(clinic.log)
    before = clinic.log.verify().n_events
    with pytest.raises(IncidentInputError, match="no session matching"):
        clinic.incidents.open("feedfacefeed", by="dr-b", details=DETAILS)
    assert clinic.log.verify().n_events == before
    assert clinic.incidents.select() == []


def test_item2_photos_are_stored_by_content_hash_and_checked(
    clinic: ClinicRecords, tmp_path: Path
) -> None:
    sid = write_session(clinic.log)
    incident = clinic.incidents.open(sid, by="dr-b", details=DETAILS)
    photo = write_png(tmp_path / "calf.png")
    done = clinic.incidents.attach(incident.incident_id, str(photo), by="dr-b", caption="day 0")
    (attached,) = done.photos
    stored = clinic.incidents.photos.path_of(attached.photo)
    assert stored.name == f"{attached.photo.sha256}.png"
    assert stored.read_bytes() == png_bytes()
    assert clinic.incidents.photos.check(attached.photo) is None
    stored.write_bytes(png_bytes(5, 3))
    assert "has changed" in str(clinic.incidents.photos.check(attached.photo))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"GIF89a" + b"\x00" * 64, "not a PNG or JPEG"),
        (b"%PDF-1.7\n", "not a PNG or JPEG"),
        (png_bytes()[:-12], "truncated"),  # a PNG cut off before its end
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "truncated"),  # a JPEG without its end
        (b"", "empty"),
    ],
)
def test_item2_a_photo_that_is_not_a_whole_png_or_jpeg_is_refused_and_nothing_stored(
    clinic: ClinicRecords, tmp_path: Path, content: bytes, why: str
) -> None:
    sid = write_session(clinic.log)
    incident = clinic.incidents.open(sid, by="dr-b", details=DETAILS)
    bad = tmp_path / "photo.png"  # the name says PNG; the bytes decide
    bad.write_bytes(content)
    with pytest.raises(IncidentInputError, match=why):
        clinic.incidents.attach(incident.incident_id, str(bad), by="dr-b")
    assert clinic.incidents.get(incident.incident_id).photos == ()
    folder = clinic.incidents.photos.folder
    assert not folder.exists() or list(folder.iterdir()) == []


def test_item2_an_oversized_photo_is_refused_before_a_byte_is_stored(
    clinic: ClinicRecords, tmp_path: Path
) -> None:
    sid = write_session(clinic.log)
    incident = clinic.incidents.open(sid, by="dr-b", details=DETAILS)
    big = tmp_path / "big.jpg"
    with big.open("wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(clinic.incidents.photos.max_bytes + 10)
    with pytest.raises(IncidentInputError, match="above the"):
        clinic.incidents.attach(incident.incident_id, str(big), by="dr-b")
    assert not clinic.incidents.photos.folder.exists()


def test_item2_sniffing_goes_by_bytes_not_by_name() -> None:
    assert sniff(png_bytes()) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0" + b"x" * 10 + b"\xff\xd9") == "image/jpeg"


def test_item2_details_are_checked_against_the_book(clinic: ClinicRecords) -> None:
    sid = write_session(clinic.log)
    with pytest.raises(IncidentInputError, match="not a grade of the scale"):
        clinic.incidents.open(sid, by="dr-b", details={**DETAILS, "severity": 7})
    with pytest.raises(IncidentInputError, match="not a complication"):
        clinic.incidents.open(sid, by="dr-b", details={**DETAILS, "type": "sunburn"})
    with pytest.raises(IncidentInputError, match="need"):
        clinic.incidents.open(sid, by="dr-b", details={"type": "burn_or_blister"})
    with pytest.raises(IncidentInputError, match="in the future"):
        clinic.incidents.open(sid, by="dr-b", details={**DETAILS, "noticed_at": "2099-01-01"})
    with pytest.raises(IncidentInputError, match="must be named"):
        clinic.incidents.open(sid, by="  ", details=DETAILS)
    assert clinic.incidents.select() == []


def test_item2_an_incident_noticed_at_a_follow_up_links_to_no_halt(clinic: ClinicRecords) -> None:
    sid = write_session(clinic.log)
    incident = clinic.incidents.open(
        sid, by="dr-b", details={**DETAILS, "type": "hyperpigmentation", "severity": 1}
    )
    assert incident.trigger is None and incident.origin == "manual"
    assert incident.protocol is not None and incident.protocol["id"] == "hyperpigmentation"


def test_item2_the_trace_around_the_halt_comes_from_the_log(clinic: ClinicRecords) -> None:
    sid, _trip = halted_session(clinic)
    record = clinic.log.read_verified(sid)
    trace = trace_around(record, 12.0)
    assert trace.approved is not None and trace.approved["fluence_j_cm2"] == 120.0
    assert trace.read_back["fluence_j_cm2"] == 120.0
    assert trace.t_s[0] >= 0.0 and trace.t_s[-1] <= 42.0
    assert trace.max_skin_temp_c is not None and trace.max_skin_temp_c > 40.0
    assert len(trace.plate) > 10


def test_item2_two_people_changing_one_incident_at_once_cannot_both_build_on_it(
    clinic: ClinicRecords,
) -> None:
    from monitor.record.chain_log import StaleRecord

    sid = write_session(clinic.log)
    incident = clinic.incidents.open(sid, by="dr-b", details=DETAILS)
    clinic.log.append_record(
        incident.stream, "incident_amended",
        {"by": "dr-x", "why": "w", "changes": {"severity": {"from": 2, "to": 3}}},
        expect_last_seq=incident.last_seq,
    )  # fmt: skip
    with pytest.raises(StaleRecord):
        clinic.log.append_record(
            incident.stream, "incident_amended", {"by": "dr-y"}, expect_last_seq=incident.last_seq
        )
