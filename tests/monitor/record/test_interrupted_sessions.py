"""Sessions whose process died are marked interrupted, in the chain; live ones are left alone.

Writers here are real processes on a real SQLite file: one killed with SIGKILL mid-session,
one kept alive while another process opens the log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.record.reconcile import last_logged_total, reconcile
from monitor.record.sqlite_store import INTERRUPTED_REASON, SessionLog

REPO_ROOT = Path(__file__).resolve().parents[3]

WRITER = textwrap.dedent(
    """
    import sys, time
    from monitor.record.sqlite_store import SessionLog

    log = SessionLog(sys.argv[1])
    sid = log.start_session(operator="op", patient_id="P-1", skin_type="II",
                            profile_name="p", profile_digest="d", mode="test",
                            meta={"laser_id": "station-1"})
    log.append(sid, "laser_pulse_counter", {"total": 40})
    for n in range(1, 4):
        log.append(sid, "pulses", {"n": 1, "total": 40 + n})
    print(sid, flush=True)
    time.sleep(600)  # a session in progress, until killed
    """
)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """A live writer process with one open session (its id) on ``log.sqlite3``."""
    db = tmp_path / "log.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    sid = child.stdout.readline().strip()
    assert len(sid) == 32, "the writer did not start its session"
    try:
        yield child, sid, db
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def kill9(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=5)
    assert child.returncode == -signal.SIGKILL


def test_item9_killed_session_is_marked_interrupted_in_the_chain(
    writer: tuple[subprocess.Popen[str], str, Path],
) -> None:
    child, sid, db = writer
    kill9(child)
    with SessionLog(db, read_only=True) as log:
        assert log.session(sid).end_reason is None  # looking never changes the file

    with SessionLog(db) as log:  # the next start of a bridge
        assert log.interrupted == [sid]
        info = log.session(sid)
        assert info.end_reason == INTERRUPTED_REASON
        kinds = [e.kind for e in log.events(sid)]
        assert kinds[-2:] == ["session_interrupted", "session_end"]
        (note,) = log.events(sid, kinds=["session_interrupted"])
        last_pulse = log.events(sid, kinds=["pulses"])[-1]
        assert note.payload["last_event_seq"] == last_pulse.seq
        assert note.payload["last_event_t_wall"] == last_pulse.t_wall
        assert log.verify().ok
    with SessionLog(db) as log:  # marked once, not again
        assert log.interrupted == []
        assert [e.kind for e in log.events(sid)].count("session_end") == 1


def test_a_session_another_process_is_writing_is_not_interrupted(
    writer: tuple[subprocess.Popen[str], str, Path],
) -> None:
    child, sid, db = writer
    with SessionLog(db) as log:
        assert log.interrupted == []
        assert log.session(sid).end_reason is None
        mine = log.start_session(
            operator="op", patient_id="P-2", skin_type="II", profile_name="p",
            profile_digest="d", mode="test",
        )  # fmt: skip
        log.end_session(mine, "completed")
    kill9(child)
    with SessionLog(db) as log:
        assert log.interrupted == [sid]
        assert log.session(mine).end_reason == "completed"
        assert log.verify().ok


def test_an_ended_session_leaves_no_lock_file(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    with SessionLog(db) as log:
        sid = log.start_session(
            operator="op", patient_id="P-2", skin_type="II", profile_name="p",
            profile_digest="d", mode="test",
        )  # fmt: skip
        assert [p.name for p in Path(f"{db}-open").iterdir()] == [f"{sid}.lock"]
        log.end_session(sid, "completed")
        assert list(Path(f"{db}-open").iterdir()) == []


def test_pulses_fired_after_the_last_logged_total_are_reconciled(
    writer: tuple[subprocess.Popen[str], str, Path],
) -> None:
    child, sid, db = writer
    kill9(child)
    with SessionLog(db) as log:
        last = last_logged_total(log, "station-1", exclude="")
        assert last is not None and (last.session_id, last.total) == (sid, 43)
        assert last.session_interrupted
        # The laser fired 5 more before its watchdog stopped it.
        kind, payload = reconcile(log, "station-1", "new-session", 48) or ("", {})
        assert kind == "pulses_unlogged"
        assert payload["n"] == 5 and payload["last_logged_session"] == sid
        assert payload["last_session_interrupted"] is True
        assert reconcile(log, "station-1", "new-session", 43) is None  # nothing missed
        kind, payload = reconcile(log, "station-1", "new-session", 7) or ("", {})
        assert kind == "pulse_counter_mismatch" and "reset" in payload["reason"]
        assert reconcile(log, "another-laser", "new-session", 48) is None  # never seen
