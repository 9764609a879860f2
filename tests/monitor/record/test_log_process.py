"""The session log written by a process of its own (monitor.record.writer_process).

Each test runs a real spawned log process over a real SQLite file; the hostile ones kill it,
stop it, give it a log it cannot open, or kill the session's process under it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor.core.records import EventKind
from monitor.record.anchor import anchor_for, checkpoint_path
from monitor.record.checkpoints import format_public_key, make_private_key
from monitor.record.recorder import KIND_WRITER_FAILED, LogRecorder
from monitor.record.sqlite_store import INTERRUPTED_REASON, SessionLog, open_recorder
from tests.monitor.record.test_recorder import start

pytestmark = pytest.mark.timeout(60)


class Failures:
    """What the recorder told the session, and when the first word came."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.heard = threading.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.heard.set()


def test_a_session_written_by_the_log_process_is_one_verified_chain(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    failures = Failures()
    with open_recorder(db, log_process=True) as recorder:
        sid = recorder.start_session(start())
        recorder.record(sid, EventKind.RISK_ASSESSMENT, {"arming_allowed": True})
        recorder.start_writing(failures)
        pid = recorder.log_pid
        assert pid is not None and pid != os.getpid()
        for i in range(500):
            recorder.telemetry(sid, i * 0.001, 0, 31.0 + i * 0.01)
        recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.1, "laser_state": "STANDBY"})
        assert recorder.flush()
        assert recorder.backlog == 0
        recorder.end_session(sid, "test finished")
    assert failures.reasons == []
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok
        kinds = [e.kind for e in log.events(sid)]
        assert kinds[:2] == ["session_start", "risk_assessment"]
        assert "connected" in kinds and kinds[-1] == "session_end"
        assert "telemetry_policy" in kinds  # the policy names itself, from the log's process
        _, channel, value = log.telemetry(sid)
        assert len(value) > 0 and set(channel.tolist()) == {0}


def test_the_log_process_keeps_the_anchor_numbered_on(tmp_path: Path) -> None:
    """Both processes checkpoint the head: the file's entries number on, never back."""
    db = tmp_path / "log.sqlite3"
    key = tmp_path / "anchor.key"
    public = format_public_key(make_private_key(key))
    anchor = anchor_for(db, public, key, period_s=0.05)
    with open_recorder(db, anchor=anchor, log_process=True) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(Failures())
        for i in range(5):
            recorder.event(sid, EventKind.CONNECTED, {"t_s": i, "laser_state": "STANDBY"})
            assert recorder.flush()
            time.sleep(0.06)
        recorder.end_session(sid, "done")
        assert recorder.failed is None
    entries = anchor.file.read()
    assert [e.n for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) >= 3  # the start, the process's periodic ones, the end
    assert entries[-1].why == "session_end"
    with SessionLog(db, read_only=True) as log, log.store.reading() as r:
        head = r.head()
        assert head is not None and entries[-1].seq == head[0]
    # A writer opening it again finds it anchored.
    with open_recorder(db, anchor=anchor_for(db, public, key)) as again:
        assert again.failed is None


def test_a_killed_log_process_halts_the_session_saying_so(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    failures = Failures()
    with open_recorder(db, log_process=True) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(failures)
        recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.1, "laser_state": "STANDBY"})
        assert recorder.flush()
        pid = recorder.log_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert failures.heard.wait(5.0), "nobody was told the log's process died"
        assert "session log's process ended" in failures.reasons[0]
        assert "exit code -9" in failures.reasons[0]
        assert recorder.failed is not None
        recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.2})  # never raises, never blocks
        assert not recorder.flush(timeout_s=1.0)
        recorder.end_session(sid, "halted: log lost")
    assert len(failures.reasons) == 1
    with SessionLog(db, read_only=True) as log:  # what it committed stays, and verifies
        assert log.verify().ok
        events = log.events(sid)
        assert "connected" in [e.kind for e in events]
        # The session's own process still writes: the chain says why the record has a gap.
        (gap,) = [e for e in events if e.kind == KIND_WRITER_FAILED]
        assert gap.payload["reason"] == failures.reasons[0]
        assert events[-1].kind == "session_end"
        assert events[-1].payload["reason"] == "halted: log lost"


def test_a_stopped_log_process_halts_the_session_after_its_stall_limit(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    failures = Failures()
    with open_recorder(db, log_process=True) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(failures)
        assert recorder.flush()  # as a session's start waits for it
        pid = recorder.log_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.1})
            deadline = time.monotonic() + 5.0
            while not failures.heard.is_set() and time.monotonic() < deadline:
                recorder.telemetry(sid, time.monotonic(), 0, 32.0)  # the loop goes on
                time.sleep(0.01)
            assert failures.reasons, "a log process that answers nothing went unnoticed"
            assert "stalled" in failures.reasons[0]
        finally:
            os.kill(pid, signal.SIGCONT)
        recorder.end_session(sid, "halted")


def _a_folder_not_a_log() -> SessionLog:
    return SessionLog(Path(__file__).parent)  # run in the log's process


def test_a_log_the_process_cannot_open_is_a_failure_before_arming(tmp_path: Path) -> None:
    failures = Failures()
    with SessionLog(tmp_path / "log.sqlite3") as log:
        recorder = LogRecorder(log, log_process=_a_folder_not_a_log)
        sid = recorder.start_session(start())
        recorder.start_writing(failures)
        # A session's start waits for its log to take its first events: refused, saying why.
        assert not recorder.flush(30.0)
        reason = recorder.failed
        assert reason is not None
        assert reason.startswith("the session log's process could not open the log")
        assert "SessionLogError" in reason
        recorder.end_session(sid, "refused: the log cannot be written")
        recorder.close()
        assert len(failures.reasons) <= 1  # told at most once (if it was writing by then)
        assert log.session(sid).end_reason == "refused: the log cannot be written"


_PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from monitor.core.records import EventKind
    from monitor.record.sqlite_store import open_recorder
    from tests.monitor.record.test_recorder import start

    recorder = open_recorder(Path(sys.argv[1]), log_process=True)
    sid = recorder.start_session(start())
    recorder.start_writing(lambda why: print("failed", why, flush=True))
    recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.1, "laser_state": "STANDBY"})
    assert recorder.flush()
    print(sid, recorder.log_pid, flush=True)
    time.sleep(60)
    """
)


def _session_process(db: Path) -> subprocess.Popen[str]:
    """A session's process writing ``db`` through a log process; it prints the session's id
    and the log process's pid, then waits to be killed."""
    return subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )


def test_the_log_process_ends_when_the_sessions_process_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    with _session_process(db) as parent:
        try:
            assert parent.stdout is not None
            sid, log_pid = parent.stdout.readline().split()
            parent.kill()
            parent.wait(5.0)
            deadline = time.monotonic() + 10.0
            while _alive(int(log_pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(int(log_pid)), "the log's process outlived its session's"
        finally:
            parent.kill()
    # The next writer marks the session interrupted; what was flushed is there.
    with SessionLog(db) as log:
        assert sid in log.interrupted
        kinds = [e.kind for e in log.events(sid)]
        assert "connected" in kinds and kinds[-1] == "session_end"
        assert log.session(sid).end_reason == INTERRUPTED_REASON
        assert log.verify().ok
    assert not checkpoint_path(db).exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_session_stays_live_while_its_log_process_still_writes_it(tmp_path: Path) -> None:
    """The session's process is killed while its log's process is stopped mid-work. A writer
    that opens the log meanwhile must not mark the session interrupted (and seal it) while
    that process may still commit to it: the log's process holds the session's lock too."""
    db = tmp_path / "log.sqlite3"
    with _session_process(db) as parent:
        log_pid = ""
        try:
            assert parent.stdout is not None
            sid, log_pid = parent.stdout.readline().split()
            os.kill(int(log_pid), signal.SIGSTOP)
            parent.kill()
            parent.wait(5.0)
            with SessionLog(db) as log:
                assert log.interrupted == []  # its writer is alive: left alone
                assert log.session(sid).end_reason is None
            os.kill(int(log_pid), signal.SIGCONT)
            deadline = time.monotonic() + 10.0
            while _alive(int(log_pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(int(log_pid))
        finally:
            parent.kill()
            if log_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(log_pid), signal.SIGCONT)
    with SessionLog(db) as log:
        assert log.interrupted == [sid]
        assert log.verify().ok


def test_a_real_time_sessions_log_process_runs_at_the_background_priority(tmp_path: Path) -> None:
    """With two CPU hogs an ordinary log process was starved past its stall limit (the long
    bench: 20 halts on session_log): a real-time session's runs at SCHED_RR 1, as the safety
    process's own background threads do."""
    with open_recorder(tmp_path / "log.sqlite3", log_process=True, realtime=True) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(Failures())
        assert recorder.flush()
        pid = recorder.log_pid
        assert pid is not None
        scheduling = recorder.log_scheduling
        assert scheduling is not None
        if scheduling.startswith("SCHED_OTHER"):
            pytest.skip(f"no real-time scheduling here: {scheduling}")
        assert scheduling == "SCHED_RR priority 1"
        assert os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
        assert os.sched_getparam(pid).sched_priority == 1
        recorder.end_session(sid, "done")
    with open_recorder(tmp_path / "other.sqlite3", log_process=True) as ordinary:
        ordinary.start_session(start())
        ordinary.start_writing(Failures())
        assert ordinary.flush()
        assert ordinary.log_scheduling == "SCHED_OTHER"


@pytest.mark.parametrize("kill_after_ms", [0, 7, 23, 61, 140])
def test_a_log_process_killed_mid_commit_leaves_a_whole_prefix(
    tmp_path: Path, kill_after_ms: int
) -> None:
    """Killed (SIGKILL) while it commits a flood of events, at five moments: what it committed
    verifies, is the events in the order they were sent with none missing between them, and
    whatever it did not commit is counted in the chain's gap record (nothing vanishes)."""
    db = tmp_path / "log.sqlite3"
    failures = Failures()
    sent = 3000
    with open_recorder(db, log_process=True) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(failures)
        assert recorder.flush()
        pid = recorder.log_pid
        assert pid is not None
        for i in range(sent):  # each event is sent at once: a stream of small commits
            recorder.event(sid, EventKind.CONNECTED, {"t_s": float(i)})
        time.sleep(kill_after_ms / 1000)
        os.kill(pid, signal.SIGKILL)
        assert failures.heard.wait(5.0), "nobody was told the log's process died"
        assert "exit code -9" in failures.reasons[0]  # the kill, not another failure first
        recorder.end_session(sid, "halted: log lost")
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok
        events = log.events(sid)
        numbers = [int(e.payload["t_s"]) for e in events if e.kind == "connected"]
        assert numbers == list(range(len(numbers)))  # a prefix: in order, no holes
        (gap,) = [e for e in events if e.kind == KIND_WRITER_FAILED]
        assert len(numbers) + gap.payload["unwritten"] >= sent  # every lost one counted
        assert events[-1].kind == "session_end"


@pytest.mark.parametrize("log_process", [False, True], ids=["thread", "process"])
def test_a_failed_writer_counts_in_the_chain_everything_it_did_not_write(
    tmp_path: Path, log_process: bool
) -> None:
    """An event that cannot be logged fails the writer (either kind); everything sent with it
    or after it is counted in the chain's gap record. Before, the count was the backlog at
    the session's end, which a failed writer had already dropped: it said 0."""
    db = tmp_path / "log.sqlite3"
    failures = Failures()
    with open_recorder(db, log_process=log_process) as recorder:
        sid = recorder.start_session(start())
        recorder.start_writing(failures)
        recorder.event(sid, EventKind.CONNECTED, {"t_s": 0.0})
        assert recorder.flush()
        recorder.event(sid, EventKind.CONNECTED, {"t_s": float("nan"), "bad": {1, 2}})
        for i in range(10):
            recorder.event(sid, EventKind.CONNECTED, {"t_s": float(i + 1)})
        t0 = time.monotonic()
        assert not recorder.flush(20.0)  # the batch is never written: said at once
        assert time.monotonic() - t0 < 5.0
        assert failures.heard.wait(5.0), "an unloggable event went unnoticed"
        for i in range(5):  # refused: the writer has failed
            recorder.event(sid, EventKind.CONNECTED, {"t_s": float(i + 11)})
        recorder.end_session(sid, "halted: log failed")
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok
        events = log.events(sid)
        numbers = [e.payload["t_s"] for e in events if e.kind == "connected"]
        assert numbers == [0.0]
        (gap,) = [e for e in events if e.kind == KIND_WRITER_FAILED]
        assert gap.payload["unwritten"] == 16  # the bad one, the ten with it, the five after
        assert events[-1].kind == "session_end"
