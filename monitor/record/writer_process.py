"""The session log written by a process of its own: no hashing and no SQLite in the session's.

``ProcessLogWriter`` is a ``LogWriter`` to its callers (``event``, ``telemetry``, ``flush``,
``close``, ``failed``, ``backlog``): the interlock loop and the device workers still only
append to an in-memory queue. What it does with the queue differs. A forwarding thread in the
session's process takes what is queued, every ``flush_interval_s`` (at once for an event),
and sends it over a pipe as one batch. The log's process opens the log itself (``opener``: a
picklable callable, as ``sqlite_store.open_recorder`` makes it), and commits each batch it
receives with a plain ``LogWriter.commit``: the chain's hashing, the canonical JSON, the
repeat counts and the SQLite transaction all run there, under a GIL the interlock never
waits for. It answers each batch once it is committed.

"If the session cannot be logged, treatment stops" holds across the two processes. Each of
these calls ``on_failure(reason)`` once, in the session's process, and the session halts:

- a batch the log's process could not write (it says why: a full disk, a payload refused);
- the log's process ended (killed, crashed): its pipe closes, and its exit code is said;
- no answer to a batch for ``max_stall_s`` (a process stopped, or a write that hangs);
- the log's process not ready within ``START_S``, or unable to open the log.

What was sent but not answered when the process died is lost, and the session was halted
on it: no pulse after it goes unlogged. The log's process is spawned, never forked from the
threaded session's process; it ignores Ctrl-C (the session's process ends the session, then
it), and it ends by itself when the session's process dies (its pipe closes): what it had
received is committed, the session stays open in the log, and the next writer to open the
log marks it interrupted, as for any process that died mid-session.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.process
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

from firmware_bridge.realtime import BACKGROUND_PRIORITY, try_realtime
from monitor.record.chain_log import ChainLog
from monitor.record.policy import DEFAULT_REPEATS, DEVICE_FIELD_CHARS, RepeatPolicy, TelemetryPolicy
from monitor.record.writer import _FLUSH, LogWriter

__all__ = ["START_S", "ProcessLogWriter"]

#: How long the log's process may take to start and open the log (a spawned interpreter
#: importing NumPy takes about half a second on a small machine).
START_S = 30.0
_READY, _DONE, _FAILED = "ready", "done", "failed"
_LOCK = -1  # in place of a batch number: a session's lock descriptor follows


class ProcessLogWriter(LogWriter):
    """A ``LogWriter`` whose writing is done by a process of its own (module docstring)."""

    def __init__(
        self,
        opener: Callable[[], ChainLog],
        *,
        on_failure: Callable[[str], None],
        flush_interval_s: float = 0.05,
        telemetry_flush_s: float = 0.5,
        max_queue: int = 100_000,
        max_stall_s: float = 1.0,
        telemetry_policy: TelemetryPolicy | None = None,
        repeats: RepeatPolicy | None = DEFAULT_REPEATS,
        max_field_chars: int = DEVICE_FIELD_CHARS,
        realtime: bool = False,
    ) -> None:
        # The log itself is opened by the log's process: this side never writes to it.
        super().__init__(
            _NOT_HERE,
            on_failure=on_failure,
            flush_interval_s=flush_interval_s,
            telemetry_flush_s=telemetry_flush_s,
            max_queue=max_queue,
            max_stall_s=max_stall_s,
            telemetry_policy=telemetry_policy,
            repeats=repeats,
            max_field_chars=max_field_chars,
        )
        self._opener = opener
        # A real-time session's log: its process at the priority of the safety process's own
        # background threads (``firmware_bridge.realtime``), or a CPU hog starves it past its
        # stall limit and the session halts on a log that is merely late.
        self._realtime = realtime
        #: The log process's scheduling, as it reported it once ready.
        self.scheduling = "not started"
        # What the log's process builds its own LogWriter with (it thins nothing: the
        # telemetry policy thins here, on the way in, and names itself in the log there).
        self._options: dict[str, Any] = {
            "telemetry_policy": telemetry_policy,
            "repeats": repeats,
            "max_field_chars": max_field_chars,
        }
        self._conn: Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._batch_no = itertools.count(1)
        # Sent, not yet answered, oldest first: (batch no, items, flush waiters, sent at).
        self._unanswered: deque[tuple[int, int, list[threading.Event], float]] = deque()
        self._answers_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._spawned_at = 0.0

    @property
    def pid(self) -> int | None:
        """The log's process (for tests that kill it); None before ``spawn``."""
        return None if self._proc is None else self._proc.pid

    # -- lifecycle ---------------------------------------------------------------------------

    def spawn(self) -> None:
        """Start the log's process (it opens the log by itself) without waiting for it: a
        recorder does this as its session starts, so the interpreter's start overlaps the
        devices' connection. Safe to call twice."""
        if self._proc is not None:
            return
        ctx = multiprocessing.get_context("spawn")  # never fork a process with live threads
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_serve, args=(theirs, self._opener, self._options, self._realtime),
            name="laserguard-log", daemon=True,
        )  # fmt: skip
        proc.start()
        theirs.close()
        self._conn, self._proc = ours, proc
        self._spawned_at = time.monotonic()
        self._reader = threading.Thread(
            target=self._read_answers, name="session-log-answers", daemon=True
        )
        self._reader.start()

    def share_lock(self, fd: int) -> None:
        """Hand the session's lock (its descriptor, ``SessionLocks``) to the log's process,
        which holds it too until it ends: if the session's process dies, the session stays
        live (not marked interrupted by the next writer) while the log's process may still
        commit to it."""
        self.spawn()
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None
        try:
            conn.send((_LOCK, None, False))
            reduction.send_handle(conn, fd, proc.pid)  # the same open file, duplicated there
        except OSError as e:
            self._fail(f"the session's lock could not be handed to the log's process: {e}")

    def start(self) -> None:
        """Start sending what is queued (spawning the log's process if not yet). It does not
        wait: batches wait in the queue until the process has opened the log. A process that
        cannot open it is a failure (``on_failure``), and so is one not ready within
        ``START_S``; ``flush`` tells a caller when the log has taken what it was given."""
        self.spawn()
        super().start()  # the forwarding thread: LogWriter's drain loop, sending batches

    def close(self) -> None:
        """Send what is queued, let the log's process write its last batch and end; stop the
        threads. Safe to call twice."""
        if self._closed:
            return
        never_started = self._thread is None
        super().close()  # flush, then the forwarding thread's final drain ends it
        conn, proc = self._conn, self._proc
        if proc is None or conn is None:
            return
        if never_started:  # spawned for a session that never wrote: nothing to write
            with contextlib.suppress(OSError):
                conn.send((0, [], True))
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        if self._reader is not None:
            self._reader.join(1.0)
        conn.close()

    # -- the forwarding thread ---------------------------------------------------------------

    def _drain(self, final: bool = False) -> None:
        if not self._ready.is_set() and self._failed is None:
            if time.monotonic() - self._spawned_at > START_S:
                self._fail(f"the session log's process did not start within {START_S:g} s")
            elif not final:
                return  # still starting: what is queued waits for it
        items = self._take()
        waiters = [obj for tag, obj in items if tag == _FLUSH]
        batch = [(tag, obj) for tag, obj in items if tag != _FLUSH]
        conn = self._conn
        if self._failed is not None or conn is None or not self._ready.is_set():
            self._count_lost(len(batch))
            for w in waiters:  # they learn about the failure through `failed`
                w.set()
            if final and conn is not None:  # nothing more to write: the process may end
                with contextlib.suppress(Exception):
                    conn.send((0, [], True))
            return
        if not batch and not waiters and not final:
            return
        no = next(self._batch_no)
        now = time.monotonic()
        with self._answers_lock:
            self._unanswered.append((no, len(batch), waiters, now))
            self._in_flight += len(batch)
            if not self._writing_since:
                self._writing_since = now
        try:
            conn.send((no, batch, final))
        except Exception as e:  # an unpicklable payload, or the process gone
            self._fail(f"session log write failed: {type(e).__name__}: {e}")
            self._release_all()

    # -- the answers' thread -----------------------------------------------------------------

    def _read_answers(self) -> None:
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None
        while True:
            try:
                kind, value = conn.recv()
            except (EOFError, OSError):
                break
            if kind == _READY:
                self.scheduling = str(value)
                self._ready.set()
                self._urgent = True  # what waited for it goes now
                self._wake.set()
            elif kind == _FAILED:
                self._fail(str(value))
                self._release_waiters()  # nothing more will be written: nobody waits for it
            elif kind == _DONE:
                self._answered(int(value))
        # The pipe closed: the log's process ended. After a final batch that is its way out;
        # before it, whatever it was sent and did not answer is lost, so the session halts.
        proc.join(1.0)
        if not self._stop.is_set() or self._unanswered:
            self._fail(
                f"the session log's process ended (exit code {proc.exitcode}): what the"
                " session sends it would go unlogged"
            )
        self._ready.set()  # nobody waits for a start that will not come
        self._release_all()

    def _answered(self, no: int) -> None:
        with self._answers_lock:
            while self._unanswered and self._unanswered[0][0] <= no:
                _, n, waiters, _ = self._unanswered.popleft()
                self._in_flight -= n
                for w in waiters:
                    w.set()
            self._writing_since = self._unanswered[0][3] if self._unanswered else 0.0

    def _release_waiters(self) -> None:
        """Wake every flush waiting on a batch not yet answered; the batches stay counted as
        in flight until the process has ended (then as lost: ``_release_all``)."""
        with self._answers_lock:
            for _, _, waiters, _ in self._unanswered:
                for w in waiters:
                    w.set()

    def _release_all(self) -> None:
        """The log's process is gone: what it was sent and did not answer is lost."""
        with self._answers_lock:
            while self._unanswered:
                _, n, waiters, _ = self._unanswered.popleft()
                self._count_lost(n)
                for w in waiters:
                    w.set()
            self._in_flight = 0
            self._writing_since = 0.0


class _NotHere:
    """The log as the session's side of a ``ProcessLogWriter`` sees it: not here."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("the session log is written by its own process, not this one")


_NOT_HERE: Any = _NotHere()


def _serve(
    conn: Connection, opener: Callable[[], ChainLog], options: dict[str, Any], realtime: bool
) -> None:
    """The log's process: open the log, commit each batch, answer it; end on the final batch
    or when the session's process is gone. A session's lock handed over is held (its
    descriptor kept open) until this process ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole terminal group
    # As the safety process's own background threads are while a real-time session runs.
    scheduling = try_realtime(BACKGROUND_PRIORITY, round_robin=True) if realtime else "SCHED_OTHER"

    def report(reason: str) -> None:
        with contextlib.suppress(OSError):
            conn.send((_FAILED, reason))

    try:
        log = opener()
    except Exception as e:  # a log that cannot be opened: the session refuses to arm
        report(f"the session log's process could not open the log: {type(e).__name__}: {e}")
        return
    try:
        writer = LogWriter(log, on_failure=report, **options)  # its thread is never started
        held: list[int] = []  # session locks: held by staying open until this process ends
        conn.send((_READY, scheduling))
        while True:
            try:
                no, batch, final = conn.recv()
                if no == _LOCK:
                    held.append(reduction.recv_handle(conn))
                    continue
            except (EOFError, OSError):
                # The session's process is gone: what arrived is committed; the session is
                # left open, for the next writer to mark interrupted once this process ends.
                return
            # A batch that was not written is never answered: the session's side counts it
            # (with everything after it) as unwritten once this process has ended.
            if writer.commit(batch, final):
                conn.send((_DONE, no))
            if final:
                return
    finally:
        log.close()
