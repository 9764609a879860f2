"""The session log as a session's ``Recorder`` (monitor.record.recorder), on real SQLite files."""

from __future__ import annotations

import threading
from pathlib import Path

from device_profiles.schema import SkinType
from monitor.core.records import EventKind, SessionMode, SessionStart
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog, open_recorder


def start(laser_id: str = "laser-1", mode: SessionMode = SessionMode.TEST) -> SessionStart:
    return SessionStart(
        operator="nurse.a",
        patient_id="P-0042",
        skin_type=SkinType.IV,
        profile_name="demo v1",
        profile_digest="cd" * 32,
        mode=mode,
        meta={"laser_id": laser_id},
    )


def test_item1_a_session_recorded_through_the_recorder_is_a_verified_chain(
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.sqlite3"
    failures: list[str] = []
    with open_recorder(db) as recorder:
        sid = recorder.start_session(start(mode=SessionMode.CLINICAL))
        recorder.record(sid, EventKind.RISK_ASSESSMENT, {"arming_allowed": True})
        recorder.start_writing(failures.append)
        recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.1, "laser_state": "STANDBY"})
        recorder.telemetry(sid, 0.2, 0, 31.5)
        assert recorder.flush()
        recorder.end_session(sid, "test finished")
    assert failures == []
    with SessionLog(db, read_only=True) as log:
        assert log.verify(sid).ok
        kinds = [e.kind for e in log.events(sid)]
        assert kinds[0] == "session_start" and kinds[1] == "risk_assessment"
        assert "connected" in kinds and kinds[-1] == "session_end"
        assert log.session(sid).mode == "clinical"  # the enum is stored as its word
        _, channel, value = log.telemetry(sid)
        assert channel.tolist() == [0] and value.tolist() == [31.5]


def test_item1_the_recorder_answers_for_pulses_no_session_recorded(tmp_path: Path) -> None:
    with SessionLog(tmp_path / "log.sqlite3") as log:
        recorder = LogRecorder(log)
        first = recorder.start_session(start())
        recorder.start_writing(lambda why: None)
        recorder.event(first, EventKind.PULSES, {"n": 3, "total": 10, "settings": {}})
        recorder.end_session(first, "done")
        recorder.close()

        again = LogRecorder(log)
        second = again.start_session(start())
        gap = again.pulse_gap("laser-1", second, 15)
        assert gap is not None and gap.kind == "pulses_unlogged"
        assert gap.payload["n"] == 5 and gap.payload["last_logged_session"] == first
        assert again.pulse_gap("laser-1", second, 10) is None
        assert again.pulse_gap("another-laser", second, 15) is None
        again.close()
        assert (
            log.verify().ok
        )  # the borrowed log is still open: the recorder leaves it to its owner


def test_item1_a_failed_write_reaches_the_session_once_through_the_recorder(
    tmp_path: Path,
) -> None:
    log = SessionLog(tmp_path / "log.sqlite3")
    recorder = LogRecorder(log)
    sid = recorder.start_session(start())
    reasons: list[str] = []
    called = threading.Event()

    def halt(why: str) -> None:
        reasons.append(why)
        called.set()

    recorder.start_writing(halt)
    log.close()  # the store is gone underneath the session
    recorder.event(sid, EventKind.ARMED, {"t_s": 1.0})
    recorder.event(sid, EventKind.STANDBY, {"t_s": 2.0})
    assert called.wait(5.0)
    recorder.close()
    assert len(reasons) == 1 and recorder.failed == reasons[0]
