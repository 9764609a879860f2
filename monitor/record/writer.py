"""The session log, off the interlock's hot path.

The interlock loop calls ``event()`` and ``telemetry()``; both only append to an in-memory
queue and return. A daemon thread drains the queue and writes consecutive events with
``SessionLog.append_many`` and consecutive telemetry samples as one
``SessionLog.append_telemetry`` batch, so the order of events and telemetry in the log is the
order they were enqueued, at the granularity of those runs. A whole drain is one transaction
(``SessionLog.batch``): one fsync, however many runs, all written or none.

When it drains: within ``flush_interval_s`` of an event (or a ``flush()``), and at least
every ``telemetry_flush_s`` otherwise. Telemetry alone waits for the longer period because
every batch costs a chained event: batches every 50 ms were a third of a session's bytes.

What is kept (``monitor.record.policy``): with a ``TelemetryPolicy``, status channels only on
change plus a keyframe; repeated failure events once, then counted; every string in an
event bounded to ``max_field_chars``.

"If the session cannot be logged, treatment stops": the first failed write, or a queue that
would grow past ``max_queue``, calls ``on_failure(reason)`` exactly once and sets ``failed``.
From then on enqueued items are dropped without a word, because the caller has already halted
the laser on ``on_failure``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from monitor.record.chain import KIND_END
from monitor.record.chain_log import ChainLog
from monitor.record.policy import (
    DEFAULT_REPEATS,
    DEVICE_FIELD_CHARS,
    KIND_TELEMETRY_POLICY,
    RepeatCoalescer,
    RepeatPolicy,
    TelemetryPolicy,
    TelemetryThinner,
)

__all__ = ["LogWriter"]

# Queue items. Tuples, not dataclasses: the producer side is the interlock's hot path.
_EventItem = tuple[str, str, dict[str, Any], float]  # session_id, kind, payload, t_wall
_TelemetryItem = tuple[str, float, int, float]  # session_id, t_s, channel, value
_EVENT = 0
_TELEMETRY = 1
_FLUSH = 2  # its object: a threading.Event to set once everything before it is committed


class LogWriter:
    """Writes events and telemetry to a session log (any store) from a background thread.

    The log stays the caller's: ``close()`` stops the thread but does not close it.
    ``on_failure`` runs on the writer thread (write failures) or on the caller's thread
    (queue overflow, use after close) and must not block.
    """

    def __init__(
        self,
        log: ChainLog,
        *,
        on_failure: Callable[[str], None],
        flush_interval_s: float = 0.05,
        telemetry_flush_s: float = 0.5,
        max_queue: int = 100_000,
        max_stall_s: float = 1.0,
        telemetry_policy: TelemetryPolicy | None = None,
        repeats: RepeatPolicy | None = DEFAULT_REPEATS,
        max_field_chars: int = DEVICE_FIELD_CHARS,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if telemetry_flush_s < flush_interval_s:
            raise ValueError(
                f"telemetry_flush_s ({telemetry_flush_s}) must be >= flush_interval_s"
                f" ({flush_interval_s})"
            )
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self._log = log
        self._on_failure = on_failure
        self._flush_interval_s = flush_interval_s
        self._telemetry_flush_s = telemetry_flush_s
        self._max_queue = max_queue
        self._thinner = None if telemetry_policy is None else TelemetryThinner(telemetry_policy)
        self._policy_logged: set[str] = set()
        self._repeats = None if repeats is None else RepeatCoalescer(repeats, max_field_chars)
        self._max_field_chars = max_field_chars
        # Set by a producer of an event (or a flush): drain at the next short wake.
        self._urgent = False
        # deque.append/popleft are atomic: producers never take a lock.
        self._queue: deque[tuple[int, Any]] = deque()
        self._in_flight = 0
        # Items taken on and then dropped (refused after a failure, or in a batch that was
        # never committed): counted where they are dropped, for the chain's gap record.
        self._lost = 0
        self._lost_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._fail_lock = threading.Lock()
        self._failed: str | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        # A write that hangs (a lock held by another process, a dying disk) must halt
        # treatment as surely as one that fails: pulses would otherwise go unlogged.
        self._max_stall_s = max_stall_s
        self._writing_since = 0.0

    # -- properties --------------------------------------------------------------------------

    @property
    def failed(self) -> str | None:
        """Why logging stopped, once a write failed; None while healthy."""
        return self._failed

    @property
    def backlog(self) -> int:
        """Items enqueued but not yet committed."""
        return len(self._queue) + self._in_flight

    @property
    def unwritten(self) -> int:
        """Items sent to this writer that the log has not confirmed: still queued or in a
        transaction, refused after a failure, or in a batch that was never committed. An
        upper bound (a batch committed by a log process that died before it answered is
        counted too): the chain holds what was written, and this says how much may be gone."""
        return self._lost + self.backlog

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("LogWriter already started")
        self._thread = threading.Thread(target=self._run, name="session-log-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything enqueued so far is committed. False on timeout or failure."""
        if self._failed is not None:
            return False
        if self._thread is None or not self._thread.is_alive():
            return not self._queue and self._in_flight == 0 and self._failed is None
        done = threading.Event()
        self._queue.append((_FLUSH, done))
        self._urgent = True
        self._wake.set()
        return done.wait(timeout_s) and self._failed is None

    def close(self) -> None:
        """Flush, then stop the thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        self.flush()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)

    # -- hot path ----------------------------------------------------------------------------

    def event(
        self, session_id: str, kind: str, payload: dict[str, Any], t_wall: float | None = None
    ) -> None:
        """Enqueue one event. Never blocks, never raises."""
        if self._admit():
            t = time.time() if t_wall is None else t_wall
            self._queue.append((_EVENT, (session_id, kind, payload, t)))
            self._urgent = True

    def telemetry(self, session_id: str, t_s: float, channel: int, value: float) -> None:
        """Enqueue one telemetry sample (unless the policy leaves it out). Never blocks."""
        if self._thinner is not None and not self._thinner.keep(session_id, t_s, channel, value):
            return
        if self._admit():
            self._queue.append((_TELEMETRY, (session_id, t_s, channel, value)))

    def _admit(self) -> bool:
        if self._failed is None:
            since = self._writing_since
            if self._closed:
                self._fail("log writer is closed: data would go unlogged")
            elif since and time.monotonic() - since > self._max_stall_s:
                self._fail(f"session log write stalled for more than {self._max_stall_s:g} s")
            elif len(self._queue) >= self._max_queue:
                self._fail(
                    f"session log queue full ({self._max_queue} items): writer not keeping up"
                )
            else:
                return True
        self._count_lost(1)
        return False

    def _count_lost(self, n: int) -> None:
        if n:
            with self._lost_lock:
                self._lost += n

    def _fail(self, reason: str) -> None:
        with self._fail_lock:
            if self._failed is not None:
                return
            self._failed = reason
        self._on_failure(reason)

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        last_drain = time.monotonic()
        # Drain early when the queue fills up, long before it could overflow.
        high_water = max(1, self._max_queue // 4)
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            now = time.monotonic()
            if (
                stopping
                or self._urgent
                or now - last_drain >= self._telemetry_flush_s
                or len(self._queue) >= high_water
            ):
                self._urgent = False
                last_drain = now
                self._drain(final=stopping)
            if stopping:
                return

    def _take(self) -> list[tuple[int, Any]]:
        """Everything queued so far, in order (the queue is left empty)."""
        items: list[tuple[int, Any]] = []
        while self._queue:
            items.append(self._queue.popleft())
        return items

    def _drain(self, final: bool = False) -> None:
        items = self._take()
        self._in_flight = len(items)
        self._writing_since = time.monotonic()
        written = False
        try:
            written = self.commit(items, final)
        finally:
            if not written:
                self._count_lost(sum(1 for tag, _ in items if tag != _FLUSH))
            self._writing_since = 0.0
            self._in_flight = 0
            # Waiters learn about a failure through `failed`; never leave them hanging.
            for tag, obj in items:
                if tag == _FLUSH:
                    obj.set()

    def commit(self, items: list[tuple[int, Any]], final: bool = False) -> bool:
        """Write ``items`` (as taken from a queue) now, on the caller's thread, in one
        transaction. A failure calls ``on_failure`` (once) instead of raising. The writer's
        own thread does this for each drain; a log writer's process does it for each batch
        it is sent (``monitor.record.writer_process``). ``final``: the last batch, so the
        repeat counts still open are written too. True if they were written (or there was
        nothing to write)."""
        try:
            kept = self._kept(items, final)
        except Exception as e:  # an unloggable payload halts treatment, like a failed write
            self._fail(f"session log write failed: {type(e).__name__}: {e}")
            return False
        return self._write(kept)

    def _kept(self, items: list[tuple[int, Any]], final: bool) -> list[tuple[int, Any]]:
        """The items as they go to the store: repeats counted, summaries and notes added."""
        out: list[tuple[int, Any]] = []
        now, t_wall = time.monotonic(), time.time()
        repeats = self._repeats
        for tag, obj in items:
            if tag == _EVENT and repeats is not None:
                if obj[1] == KIND_END:  # a session's counts go in before its end
                    out += [(_EVENT, e) for e in repeats.finish(obj[0], t_wall)]
                out += [(_EVENT, e) for e in repeats.admit(obj, now)]
                continue
            if (
                tag == _TELEMETRY
                and self._thinner is not None
                and obj[0] not in self._policy_logged
            ):
                # Say once per session how to read its telemetry (which are step series).
                self._policy_logged.add(obj[0])
                note = self._thinner.policy.as_record()
                out.append((_EVENT, (obj[0], KIND_TELEMETRY_POLICY, note, t_wall)))
            out.append((tag, obj))
        if repeats is not None:
            out += [(_EVENT, e) for e in repeats.due(now, t_wall)]
            if final:
                out += [(_EVENT, e) for e in repeats.finish(None, t_wall)]
        return out

    def _write(self, items: list[tuple[int, Any]]) -> bool:
        """Everything drained, in order, in one transaction: one commit (one fsync) per drain."""
        runs: list[tuple[int, list[Any]]] = []
        for tag, obj in items:
            if tag == _FLUSH:
                continue  # items before it are written before any waiter is released
            if (
                not runs
                or tag != runs[-1][0]
                or (tag == _TELEMETRY and obj[0] != runs[-1][1][0][0])
            ):
                runs.append((tag, []))
            runs[-1][1].append(obj)
        if self._failed is not None:
            return False
        if not runs:
            return True
        try:
            with self._log.batch():
                for tag, run in runs:
                    self._write_run(tag, run)
        except Exception as e:  # any failure to log halts treatment; the reason says what
            self._fail(f"session log write failed: {type(e).__name__}: {e}")
            return False
        return True

    def _write_run(self, tag: int, run: list[Any]) -> None:
        if tag == _EVENT:
            self._log.append_many(run, max_field_chars=self._max_field_chars)
        else:
            n = len(run)
            t_s = np.fromiter((r[1] for r in run), dtype=np.float64, count=n)
            channel = np.fromiter((r[2] for r in run), dtype=np.int32, count=n)
            value = np.fromiter((r[3] for r in run), dtype=np.float64, count=n)
            self._log.append_telemetry(run[0][0], t_s, channel, value)
