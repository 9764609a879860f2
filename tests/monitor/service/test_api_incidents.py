"""Issue 10 items 1-3 and 5 in the console: the protocol's checklist, incidents, follow-ups and
reports over REST, against a real SQLite session log (sessions written through the record
API as a bridge leaves them; the draft opened as the bridge's incident recorder opens it).
Every refusal is its 4xx in one sentence and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.photos import MAX_PHOTO_BYTES, PhotoStore
from monitor.incidents.sheets import Which, given_note
from monitor.record.sqlite_store import SessionLog
from monitor.service.roles import Role
from tests.monitor.incidents.made_sessions import T0, Made, png_bytes, write_session
from tests.monitor.incidents.test_incidents import Clock
from tests.monitor.service.conftest import Console
from tests.monitor.service.endpoints import DETAILS

HOUR = 3600.0


class Clinic:
    """The console over a log with one session that halted on skin temperature, its draft."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.clock = Clock(T0 + 100)
        console.state.clock = self.clock
        with SessionLog(console.db) as log:
            self.sid = write_session(log, Made(trips=[("skin_temp_high", 12.0)]))
            records = ClinicRecords.over(log, photos=PhotoStore.beside(console.db))
            (trip,) = log.events(self.sid, ["trip"])
            self.draft = records.incidents.open_draft(
                self.sid, trip, by="laserguard (halt on skin_temp_high)"
            ).incident_id

    def post(self, role: Role, path: str, body: Any = None) -> Any:
        return self.console.client.post(path, json=body, headers=self.console.as_(role))

    def get(self, role: Role, path: str) -> Any:
        return self.console.client.get(path, headers=self.console.as_(role))

    def incident(self) -> dict[str, Any]:
        r = self.get(Role.AUDITOR, f"/api/incidents/{self.draft}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def n_records(self) -> int:
        with SessionLog(self.console.db, read_only=True) as log:
            return len(log.events_of_kind("incident_opened")) + sum(
                len(log.record_stream(e.session_id))
                for kind in ("incident_opened", "followup_scheduled")
                for e in log.events_of_kind(kind)
            )


@pytest.fixture
def clinic(console: Console) -> Iterator[Clinic]:
    yield Clinic(console)


def test_item2_checklist_ticks_are_logged_in_order_with_user_and_time(clinic: Clinic) -> None:
    listed = clinic.get(Role.OPERATOR, f"/api/incidents?session_id={clinic.sid}&status=draft")
    assert [i["incident_id"] for i in listed.json()] == [clinic.draft]
    shown = clinic.incident()
    assert shown["protocol"]["id"] == "burn_or_blister" and len(shown["checklist"]) >= 3
    for step in (2, 1, 3):  # the order done, not the order written
        r = clinic.post(Role.OPERATOR, f"/api/incidents/{clinic.draft}/ticks", {"step": step})
        assert r.status_code == 200, r.text
        clinic.clock.now += 30
    ticks = clinic.incident()["ticks"]
    assert [(t["step"], t["by"]) for t in ticks] == [
        (2, "operator1"),
        (1, "operator1"),
        (3, "operator1"),
    ]
    assert [t["at"] for t in ticks] == sorted(t["at"] for t in ticks)
    assert ticks[0]["text"] == shown["checklist"][1]
    before = clinic.n_records()
    again = clinic.post(Role.CLINICIAN, f"/api/incidents/{clinic.draft}/ticks", {"step": 2})
    assert again.status_code == 409 and "ticked already" in again.json()["detail"]
    off = clinic.post(Role.OPERATOR, f"/api/incidents/{clinic.draft}/ticks", {"step": 40})
    assert off.status_code == 422 and "steps 1 to" in off.json()["detail"]
    auditor = clinic.post(Role.AUDITOR, f"/api/incidents/{clinic.draft}/ticks", {"step": 4})
    assert auditor.status_code == 403
    assert clinic.n_records() == before


def test_item3_the_clinician_completes_a_draft_the_operator_may_not(clinic: Clinic) -> None:
    path = f"/api/incidents/{clinic.draft}/complete"
    before = clinic.n_records()
    assert clinic.post(Role.OPERATOR, path, DETAILS).status_code == 403
    assert clinic.post(Role.AUDITOR, path, DETAILS).status_code == 403
    assert clinic.n_records() == before
    r = clinic.post(Role.CLINICIAN, path, DETAILS)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "documented" and r.json()["details"]["severity"] == 2
    # The policy schedules its follow-up (grade 2: a visit).
    (planned,) = clinic.incident()["followups"]
    assert planned["incident_id"] == clinic.draft and planned["status"] == "scheduled"
    twice = clinic.post(Role.CLINICIAN, path, DETAILS)
    assert twice.status_code == 409 and "not a draft" in twice.json()["detail"]


def test_item3_a_draft_closes_as_no_injury_only(clinic: Clinic) -> None:
    path = f"/api/incidents/{clinic.draft}/close"
    wrong = clinic.post(Role.CLINICIAN, path, {"outcome": "resolved", "reason": "fine"})
    assert wrong.status_code == 409 and "no_injury" in wrong.json()["detail"]
    r = clinic.post(Role.CLINICIAN, path, {"outcome": "no_injury", "reason": "skin checked"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["closure"]["by"] == "clinician1"
    closed = clinic.get(Role.AUDITOR, "/api/incidents?status=closed").json()
    assert [i["incident_id"] for i in closed] == [clinic.draft]


def test_item3_a_correction_is_a_new_entry_and_both_versions_are_shown(clinic: Clinic) -> None:
    clinic.post(Role.CLINICIAN, f"/api/incidents/{clinic.draft}/complete", DETAILS)
    path = f"/api/incidents/{clinic.draft}/amend"
    no_why = clinic.post(Role.CLINICIAN, path, {"changes": {"severity": 3}})
    assert no_why.status_code == 422 and "why" in no_why.json()["detail"]
    r = clinic.post(Role.CLINICIAN, path, {"why": "blister at review", "changes": {"severity": 3}})
    assert r.status_code == 200, r.text
    history = clinic.incident()["history"]
    kinds = [h["kind"] for h in history]
    assert kinds.count("incident_completed") == 1 and kinds[-1] == "incident_amended"
    assert history[-1]["by"] == "clinician1" and "blister at review" in history[-1]["what"]
    assert "2 -> 3" in history[-1]["what"]
    same = clinic.post(Role.CLINICIAN, path, {"why": "again", "changes": {"severity": 3}})
    assert same.status_code == 409 and "changes nothing" in same.json()["detail"]


def test_item3_photos_by_content_hash_and_the_back_ends_checks_as_4xx(clinic: Clinic) -> None:
    path = f"/api/incidents/{clinic.draft}/photos"
    headers = {**clinic.console.as_(Role.OPERATOR), "content-type": "image/png"}
    post = clinic.console.client.post
    before = clinic.n_records()
    not_image = post(path, content=b"GIF89a not a photo", headers=headers)
    assert not_image.status_code == 415 and "not a PNG or JPEG" in not_image.json()["detail"]
    truncated = post(path, content=png_bytes()[:-12], headers=headers)
    assert truncated.status_code == 415 and "truncated" in truncated.json()["detail"]
    huge = post(path, content=b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_PHOTO_BYTES, headers=headers)
    assert huge.status_code == 413
    assert clinic.n_records() == before
    assert not PhotoStore.beside(clinic.console.db).folder.exists()  # nothing written

    photo = png_bytes()
    r = post(path + "?caption=day%200", content=photo, headers=headers)
    assert r.status_code == 201, r.text
    (attached,) = r.json()["photos"]
    assert attached["by"] == "operator1" and attached["caption"] == "day 0"
    got = clinic.get(Role.AUDITOR, f"{path}/{attached['sha256']}")
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/png"


def test_item3_unknown_records_are_404_and_store_nothing(clinic: Clinic) -> None:
    before = clinic.n_records()
    r = clinic.post(Role.OPERATOR, "/api/incidents/ffff0000/ticks", {"step": 1})
    assert r.status_code == 404 and "no incident" in r.json()["detail"]
    body = {"session_id": "ffff0000", "details": DETAILS}
    r = clinic.post(Role.OPERATOR, "/api/incidents", body)
    assert r.status_code == 404 and "no session" in r.json()["detail"]
    r = clinic.post(Role.OPERATOR, "/api/followups/ffff0000/outcome", {"outcome": "resolved"})
    assert r.status_code == 404
    assert clinic.get(Role.AUDITOR, "/api/reports/session/ffff0000").status_code == 404
    assert clinic.n_records() == before


MALFORMED = [
    ("complete", {**DETAILS, "severity": "2"}, "severity"),
    ("complete", {**DETAILS, "severity": 9}, "severity"),
    ("complete", {k: v for k, v in DETAILS.items() if k != "referral"}, "referral"),
    ("complete", {**DETAILS, "type": "Burn!"}, "type"),
    ("close", {"outcome": "fine", "reason": "x"}, "outcome"),
    ("close", {"outcome": "no_injury"}, "reason"),
    ("ticks", {"step": 0}, "step"),
    ("ticks", {"step": 1, "by": "someone else"}, "by"),
]


@pytest.mark.parametrize(("action", "body", "named"), MALFORMED, ids=lambda x: str(x)[:30])
def test_item3_a_malformed_payload_is_422_naming_the_field(
    clinic: Clinic, action: str, body: dict[str, object], named: str
) -> None:
    before = clinic.n_records()
    r = clinic.post(Role.CLINICIAN, f"/api/incidents/{clinic.draft}/{action}", body)
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"]
    assert clinic.n_records() == before


def test_item3_a_type_not_in_the_book_is_422_from_the_back_end(clinic: Clinic) -> None:
    r = clinic.post(
        Role.CLINICIAN, f"/api/incidents/{clinic.draft}/complete", {**DETAILS, "type": "sunburn"}
    )
    assert r.status_code == 422 and "is not a complication" in r.json()["detail"]


def test_item3_follow_ups_scheduled_fall_overdue_and_close_with_an_outcome(clinic: Clinic) -> None:
    past = {
        "session_id": clinic.sid,
        "due_by": "2026-05-01T12:00:00Z",
        "method": "phone call",
        "reason": "check the calf",
    }
    before = clinic.n_records()
    r = clinic.post(Role.OPERATOR, "/api/followups", past)
    assert r.status_code == 422 and "in the past" in r.json()["detail"]
    bad_date = clinic.post(Role.OPERATOR, "/api/followups", {**past, "due_by": "next tuesday"})
    assert bad_date.status_code == 422 and "due_by" in bad_date.json()["detail"]
    assert clinic.post(Role.AUDITOR, "/api/followups", past).status_code == 403
    assert clinic.n_records() == before

    body = {**past, "due_by": "2026-05-30T12:00:00Z", "incident_id": clinic.draft}
    r = clinic.post(Role.OPERATOR, "/api/followups", body)
    assert r.status_code == 201, r.text
    fid = r.json()["followup_id"]
    assert r.json()["status"] == "due" and r.json()["scheduled_by"] == "operator1"
    clinic.clock.now += 3 * 24 * HOUR
    due = clinic.get(Role.AUDITOR, "/api/followups?due=true").json()
    assert [(f["followup_id"], f["status"]) for f in due] == [(fid, "overdue")]
    ahead = clinic.get(Role.AUDITOR, "/api/followups?due=true&as_of=2026-05-28T00:00:00Z").json()
    assert ahead == []
    done = clinic.post(Role.OPERATOR, f"/api/followups/{fid}/outcome", {"outcome": "improving"})
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert done.json()["outcome"]["by"] == "operator1"
    again = clinic.post(Role.OPERATOR, f"/api/followups/{fid}/outcome", {"outcome": "resolved"})
    assert again.status_code == 409
    assert clinic.get(Role.AUDITOR, "/api/followups?due=true").json() == []


def test_item3_exports_as_csv_and_json(clinic: Clinic) -> None:
    csv_text = clinic.get(Role.AUDITOR, "/api/incidents?format=csv")
    assert csv_text.status_code == 200 and csv_text.headers["content-type"].startswith("text/csv")
    header, row = csv_text.text.splitlines()
    assert header.startswith("incident_id,session_id") and row.startswith(clinic.draft)
    followups = clinic.get(Role.AUDITOR, "/api/followups?format=csv")
    assert followups.status_code == 200
    assert clinic.get(Role.AUDITOR, "/api/incidents?format=xml").status_code == 422


def test_item5_session_report_and_clinic_summary_from_the_console(clinic: Clinic) -> None:
    r = clinic.get(Role.AUDITOR, f"/api/reports/session/{clinic.sid}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Chain verified" in r.text and "Thermal burn or blister" in r.text
    data = clinic.get(Role.AUDITOR, f"/api/reports/session/{clinic.sid}?format=json").json()
    assert (
        data["session"]["session_id"] == clinic.sid and data["session"]["patient_id"] == "PAT-0001"
    )
    path = "/api/reports/clinic?from=2026-05-01&to=2026-06-01"
    summary = clinic.get(Role.AUDITOR, path + "&format=json")
    assert summary.status_code == 200, summary.text
    assert summary.json()["sessions"] == 1
    assert (
        clinic.get(Role.AUDITOR, path + "&format=csv")
        .headers["content-type"]
        .startswith("text/csv")
    )
    page = clinic.get(Role.AUDITOR, path)
    assert page.status_code == 200 and "Clinic summary" in page.text
    backwards = clinic.get(Role.AUDITOR, "/api/reports/clinic?from=2026-06-01&to=2026-05-01")
    assert backwards.status_code == 422 and "not after" in backwards.json()["detail"]


def test_item2_the_protocols_for_the_page(console: Console, tmp_path: Path) -> None:
    r = console.client.get("/api/protocols", headers=console.as_(Role.OPERATOR))
    book = r.json()
    assert book["halt_causes"]["cooler_plate_high"]["protocol"] == "burn_or_blister"
    burn = next(p for p in book["protocols"] if p["id"] == "burn_or_blister")
    assert burn["immediate_steps"] and burn["source"]
    assert [g["grade"] for g in book["severity_scale"]] == [1, 2, 3, 4, 5]


def test_item4_the_patient_sheets_from_the_console_say_whether_they_are_the_ones_given(
    clinic: Clinic,
) -> None:
    # The made session records no sheet as given: the staff's note says so.
    for which in ("before", "after"):
        r = clinic.get(Role.AUDITOR, f"/api/reports/session/{clinic.sid}/sheet/{which}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "PAT-0001" in r.text and "Patient information v" in r.text
        assert "@media print{.staff-note{display:none}}" in r.text
        assert "For staff, not printed: no sheet of this kind is recorded as given" in r.text
        assert r.headers["x-sheet-given"] == "no"
    unknown = clinic.get(Role.AUDITOR, "/api/reports/session/ffffffff/sheet/before")
    assert unknown.status_code == 404
    wrong = clinic.get(Role.AUDITOR, f"/api/reports/session/{clinic.sid}/sheet/during")
    assert wrong.status_code == 422 and "which" in wrong.text


def test_item4_the_staff_note_tells_the_given_text_from_a_changed_file(clinic: Clinic) -> None:
    with SessionLog(clinic.console.db) as log:
        records = ClinicRecords.over(log, photos=PhotoStore.beside(clinic.console.db))
        sheet, _ = records.sheet(clinic.sid, Which.BEFORE)
    given = {"text_sha256": sheet.text_sha256, "given_to": "PAT-0001", "given_by": "op.jo"}
    assert given_note(sheet, given) == "the same text as given to PAT-0001 by op.jo"
    older = {**given, "text_sha256": "a" * 64, "version": 0}
    assert given_note(sheet, older).startswith(
        f"DIFFERS from the text given (version 0 given; the file is now version {sheet.version})"
    )
