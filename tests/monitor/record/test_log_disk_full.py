"""Issue 13 item 1c / issue 16 item 4: a session log that runs out of room.

Without root there is no small file system to fill, so these unit tests give SQLite its
genuine SQLITE_FULL path through ``PRAGMA max_page_count`` on the log's own connection (the
fault matrix's ``log-disk-full`` row fills a real tmpfs). The log must say the disk is full,
keep everything committed before, and a session's end on it must not raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog, SessionLogError

START = {
    "operator": "nurse.a",
    "patient_id": "P-0042",
    "skin_type": "IV",
    "profile_name": "diode-940",
    "profile_digest": "cd" * 32,
    "mode": "treatment",
}


def cap_pages(log: SessionLog, spare_pages: int) -> None:
    """The file may grow by ``spare_pages`` pages more, then SQLite answers SQLITE_FULL."""
    conn = log._sqlite._conn  # the test's one reach inside: the cap is per connection
    assert conn is not None
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def fill(log: SessionLog, session_id: str) -> tuple[int, SessionLogError]:
    """Append events until the log is full, smaller ones last (as a disk fills: the last
    free bytes take a small write); (events written, the error that stopped it)."""
    written, error = 0, None
    for size in (2000, 200, 0):
        for _ in range(10_000):
            try:
                log.append(session_id, "note", {"text": "x" * size, "n": written})
            except SessionLogError as e:
                error = e
                break
            written += 1
    assert error is not None, "the capped log never filled up"
    return written, error


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SessionLog]:
    with SessionLog(tmp_path / "sessions.sqlite3") as store:
        yield store


def test_item1c_a_full_disk_is_reported_as_full_and_keeps_what_was_committed(
    log: SessionLog,
) -> None:
    """Before: SQLite had already rolled the transaction back, the log's own ROLLBACK failed,
    and the error said "rollback failed: no transaction is active" instead of "full"."""
    sid = log.start_session(**START)
    cap_pages(log, 6)
    written, error = fill(log, sid)
    assert written >= 1
    assert "full" in str(error) and "rollback" not in str(error)
    committed = log.events(sid)
    assert [e.payload.get("n") for e in committed[1:]] == list(range(written))
    assert log.verify().ok
    # Still full, and still no half-written event: the chain is exactly as before.
    with pytest.raises(SessionLogError, match="full"):
        log.append(sid, "note", {"text": "y" * 2000})
    assert [e.hash for e in log.events(sid)] == [e.hash for e in committed]


def test_item1c_a_session_ending_on_a_full_log_does_not_raise(log: SessionLog) -> None:
    """Before: the session's end raised SessionLogError out of ``Session.end`` (a traceback
    from ``laserguard bridge`` after the laser was already stopped). Now the end stays
    unwritten, the recorder says why, the failure handler hears it, and the next writer to
    open the log marks the session interrupted."""
    heard: list[str] = []
    recorder = LogRecorder(log)
    recorder.start_writing(heard.append)
    sid = log.start_session(**START)
    cap_pages(log, 6)
    fill(log, sid)
    recorder.end_session(sid, "treatment finished")  # must not raise
    assert recorder.failed is not None and "full" in recorder.failed
    assert heard and "could not be written" in heard[-1]
    assert log.session(sid).end_reason is None
    assert log.verify().ok
    recorder.close()
