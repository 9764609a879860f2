"""The recorder that adds the clinic's records to a session (issue 10, items 2 and 4), on an
in-memory log: drafts on halts off the caller's thread, sheets in the session's chain, and a
draft that cannot be opened said in the record, never raised into the session."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from device_profiles.schema import SkinType
from monitor.core.records import EventKind, SessionMode, SessionStart
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.hook import KIND_DRAFT_FAILED, KIND_DRAFT_OPENED, IncidentRecorder
from monitor.incidents.incidents import IncidentStatus
from monitor.incidents.photos import PhotoStore
from monitor.incidents.sheets import KIND_SHEET_GIVEN
from monitor.record.chain_log import ChainLog
from monitor.record.memory_store import MemoryStore
from monitor.record.recorder import LogRecorder

START = SessionStart("nurse-a", "PAT-7", SkinType.V, "demo v1", "ab" * 32, SessionMode.TEST, {})


def started(tmp_path: Path) -> tuple[IncidentRecorder, str]:
    log = ChainLog(MemoryStore())
    rec = IncidentRecorder(LogRecorder(log), ClinicRecords.over(log, photos=PhotoStore(tmp_path)))
    sid = rec.start_session(START)
    rec.record(sid, EventKind.RISK_ASSESSMENT, {"answers": {}, "relative": [], "source": "form"})
    rec.record(sid, EventKind.PATIENT_INFORMATION, {"emergency_contact": "+1 555 0100"})
    rec.start_writing(lambda why: None)
    return rec, sid


def test_item2_a_trip_opens_a_draft_off_the_callers_thread(tmp_path: Path) -> None:
    rec, sid = started(tmp_path)
    trip = {"t_s": 3.0, "check": "skin_temp_high", "reason": "44.1 °C", "severity": "HALT"}
    t0 = time.perf_counter()
    rec.event(sid, EventKind.TRIP, trip)
    assert time.perf_counter() - t0 < 0.05  # posted, not written, on the caller's thread
    rec.event(sid, EventKind.TRIP, {**trip, "check": "sensor_link", "t_s": 4.0})  # no draft
    rec.end_session(sid, "done")
    (draft_id,) = rec.drafts
    draft = rec.clinic.incidents.get(draft_id)
    assert draft.status is IncidentStatus.DRAFT and draft.trigger is not None
    logged_trip = rec.log.events(sid, ["trip"])[0]
    assert draft.trigger["seq"] == logged_trip.seq
    kinds = [e.kind for e in rec.log.events(sid)]
    assert kinds.count(KIND_DRAFT_OPENED) == 1
    assert [e.payload["sheet"] for e in rec.log.events(sid, [KIND_SHEET_GIVEN])] == [
        "before",
        "after",
    ]
    # Skin type V and a halt on skin temperature: a higher-risk patient, a follow-up.
    assert rec.followup is not None
    assert rec.log.verify().ok
    rec.close()


def test_item2_a_draft_that_cannot_be_opened_is_said_in_the_record_not_raised(
    tmp_path: Path,
) -> None:
    rec, sid = started(tmp_path)
    broken = threading.Event()

    def refuse(*args: object, **kwargs: object) -> None:
        broken.set()
        raise OSError("disk full")

    rec.clinic.incidents.open_draft = refuse  # type: ignore[method-assign]
    rec.event(sid, EventKind.TRIP, {"t_s": 3.0, "check": "skin_temp_high", "reason": "hot"})
    rec.end_session(sid, "done")
    assert broken.is_set() and rec.drafts == []
    assert any("disk full" in p for p in rec.problems)
    (failed,) = rec.log.events(sid, [KIND_DRAFT_FAILED])
    assert "disk full" in failed.payload["error"]
    rec.close()
