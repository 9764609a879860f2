"""Records chains (issue 11 item 4): calibration runs in the one hash chain, not sessions.

Contract tests on every store, and real processes on a real SQLite file for a run killed
mid-way: it is marked interrupted by the next writer, and the shots it fired are accounted
for in the next treatment session's pulse reconciliation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.record.chain_log import INTERRUPTED_REASON
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.reconcile import reconcile
from monitor.record.records import find_records, list_records, read_verified_records
from monitor.record.sqlite_store import SessionLog
from tests.monitor.record.stores import Backend, MemoryBackend, SqliteBackend

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "log.sqlite3")
    return MemoryBackend()


def _session(log: object) -> str:
    from monitor.record.chain_log import ChainLog

    assert isinstance(log, ChainLog)
    return log.start_session(
        operator="op", patient_id="P-1", skin_type="III", profile_name="p",
        profile_digest="d", mode="test", meta={"laser_id": "station-1"},
    )  # fmt: skip


def test_item4_a_records_chain_is_chained_with_the_sessions_but_is_no_session(
    backend: Backend,
) -> None:
    log = backend.open()
    sid = _session(log)
    log.end_session(sid, "done")
    rid = log.start_records("calibration", {"by": "B. Engineer", "meta": {"laser_id": "station-1"}})
    log.append(rid, "calibration_point", {"mean_j": 1.01})
    log.end_session(rid, "calibration pass")
    assert [s.session_id for s in log.sessions()] == [sid]  # not listed as a session
    (info,) = list_records(log, "calibration")
    assert (info.records_id, info.end_reason, info.start["by"]) == (
        rid,
        "calibration pass",
        "B. Engineer",
    )
    assert list_records(log, "incident") == []
    assert find_records(log, "calibration", rid[:6]).records_id == rid
    kinds = [e.kind for e in read_verified_records(log, rid)]
    assert kinds == ["records_start", "calibration_point", "session_end"]
    assert log.verify().ok and log.verify().n_events == 5
    with pytest.raises(SessionLogError, match="already ended"):
        log.append(rid, "calibration_point", {"mean_j": 2.0})
    with pytest.raises(SessionLogError, match="written by the log itself"):
        log.append(rid, "records_start", {})


def test_item4_an_edited_certificate_fails_verification(backend: Backend) -> None:
    log = backend.open()
    rid = log.start_records("calibration", {"by": "B. Engineer"})
    event = log.append(rid, "calibration_result", {"verdict": "fail", "reason": "+31 %"})
    log.end_session(rid, "calibration fail")
    backend.replace_event(
        event.seq,
        payload_text=backend.event(event.seq).payload_text.replace('"fail"', '"pass"'),
    )
    result = log.verify()
    assert not result.ok and result.first_bad_seq == event.seq
    with pytest.raises(SessionLogDamaged, match="fail verification"):
        read_verified_records(log, rid)


WRITER = textwrap.dedent(
    """
    import sys, time
    from monitor.record.sqlite_store import SessionLog

    log = SessionLog(sys.argv[1])
    rid = log.start_records("calibration", {"by": "eng", "meta": {"laser_id": "station-1"}})
    log.append(rid, "laser_pulse_counter", {"total": 10})
    for n in range(1, 8):
        log.append(rid, "pulses", {"n": 1, "total": 10 + n, "service_shot": True})
    print(rid, flush=True)
    time.sleep(600)  # a calibration in progress, until killed
    """
)


def test_item4_a_killed_run_is_marked_interrupted_and_its_shots_are_accounted_for(
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.sqlite3"
    with SessionLog(db) as log:  # an earlier session read the laser at 10
        sid = _session(log)
        log.append(sid, "laser_pulse_counter", {"total": 10})
        log.end_session(sid, "done")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    rid = child.stdout.readline().strip()
    child.stdout.close()
    try:
        with SessionLog(db) as log:  # alive: left alone
            assert log.interrupted == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=5)
    with SessionLog(db) as log:
        assert log.interrupted == [rid]
        (info,) = list_records(log, "calibration")
        assert info.end_reason == INTERRUPTED_REASON and info.interrupted
        # The 7 service shots are the calibration's, not pulses nobody logged ...
        assert reconcile(log, "station-1", "next-session", 17) is None
        # ... and 2 more fired after it died are named as following that run.
        kind, payload = reconcile(log, "station-1", "next-session", 19) or ("", {})
        assert kind == "pulses_unlogged" and payload["n"] == 2
        assert payload["last_logged_session"] == rid and payload["last_session_interrupted"]
        assert log.verify().ok
