"""The session log as a session's ``Recorder``: a chained log, its ``LogWriter`` and policy.

The core's session writes through ``monitor.core.recorder.Recorder`` and imports nothing of
this package; this module assembles the pieces that implement it::

    with open_recorder("runs/laserguard.sqlite3") as recorder:
        session = Session(loaded, recorder, params)
        ...

``open_recorder(path)`` (in ``sqlite_store``: the store-neutral modules name no database)
opens the SQLite log and closes it with the recorder. ``LogRecorder(log)``
writes into a log the caller holds (and reads afterwards: a report, a test) and leaves it
open. One recorder serves one session: its writer thread starts with the session and stops
at the session's end.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from types import TracebackType
from typing import Self

from monitor.core.recorder import PulseGap
from monitor.core.records import EventKind, Payload, SessionStart
from monitor.record.chain_log import ChainLog
from monitor.record.errors import SessionLogError
from monitor.record.policy import (
    DEFAULT_REPEATS,
    DEVICE_FIELD_CHARS,
    RepeatPolicy,
    TelemetryPolicy,
)
from monitor.record.reconcile import reconcile
from monitor.record.writer import LogWriter
from monitor.record.writer_process import ProcessLogWriter

__all__ = ["KIND_WRITER_FAILED", "LogRecorder"]

#: Written at the session's end, when it can be, if queued events could not all be written:
#: the chain then says why the session's record has a gap, and from when (its reason).
KIND_WRITER_FAILED = "log_writer_failed"


class LogRecorder:
    """Implements ``Recorder`` over a hash-chained ``SessionLog`` (see the module docstring).

    The writer's options are the ``LogWriter``'s; the default keeps status channels on change
    (``TelemetryPolicy()``), as every session has since the log was bounded. With
    ``log_process`` (how to open the same log in another process: ``sqlite_store`` makes it),
    the queued events and telemetry are written by a process of its own
    (``ProcessLogWriter``), started with the recorder; the synchronous records are still
    written here. Close the recorder (or end its session) to end that process. With
    ``log_process_realtime`` (a real-time session's), that process runs at the priority of the
    safety process's background threads.
    """

    def __init__(
        self,
        log: ChainLog,
        *,
        owns_log: bool = False,
        telemetry_policy: TelemetryPolicy | None = None,
        repeats: RepeatPolicy | None = DEFAULT_REPEATS,
        telemetry_flush_s: float = 0.5,
        max_field_chars: int = DEVICE_FIELD_CHARS,
        log_process: Callable[[], ChainLog] | None = None,
        log_process_realtime: bool = False,
    ) -> None:
        self.log = log
        self._owns_log = owns_log
        self._on_failure: Callable[[str], None] | None = None
        policy = telemetry_policy if telemetry_policy is not None else TelemetryPolicy()
        make: Callable[..., LogWriter] = (
            functools.partial(LogWriter, log)
            if log_process is None
            else functools.partial(ProcessLogWriter, log_process, realtime=log_process_realtime)
        )
        self._writer = make(
            on_failure=self._failed,
            telemetry_flush_s=telemetry_flush_s,
            telemetry_policy=policy,
            repeats=repeats,
            max_field_chars=max_field_chars,
        )
        if isinstance(self._writer, ProcessLogWriter):
            # Started now, so that its interpreter's start overlaps what comes before the
            # session writes (the devices' start, the session's own): ``close`` ends it.
            self._writer.spawn()
        self._closed = False
        self._end_failed: str | None = None
        self._session_id: str | None = None

    def _failed(self, reason: str) -> None:
        # The writer reports a failure once; before the session started writing nobody halts
        # on it, but ``failed`` keeps it and the session refuses to arm.
        handler = self._on_failure
        if handler is not None:
            handler(reason)

    @property
    def failed(self) -> str | None:
        """Why the log could not be written (during the session, or its end); None: it was."""
        return self._writer.failed or self._end_failed

    @property
    def log_pid(self) -> int | None:
        """The process writing the queued log, if it has one of its own (tests kill it)."""
        return self._writer.pid if isinstance(self._writer, ProcessLogWriter) else None

    @property
    def log_scheduling(self) -> str | None:
        """How the log's own process is scheduled, once it is ready; None without one."""
        return self._writer.scheduling if isinstance(self._writer, ProcessLogWriter) else None

    @property
    def backlog(self) -> int:
        """Events and samples queued but not yet written (for benchmarks and tests)."""
        return self._writer.backlog

    def start_session(self, start: SessionStart) -> str:
        self._session_id = self.log.start_session(
            operator=start.operator,
            patient_id=start.patient_id,
            skin_type=start.skin_type.value,
            profile_name=start.profile_name,
            profile_digest=start.profile_digest,
            mode=start.mode.value,
            meta=dict(start.meta),
        )
        return self._session_id

    def record(self, session_id: str, kind: str, payload: Payload) -> None:
        self.log.append(session_id, str(kind), payload)

    def start_writing(self, on_failure: Callable[[str], None]) -> None:
        self._on_failure = on_failure
        if isinstance(self._writer, ProcessLogWriter) and self._session_id is not None:
            # The log's process holds the session's lock with this one: if this process
            # dies, the session stays live (not marked interrupted by the next writer) until
            # the log's process has written what it was sent and ended too.
            fd = self.log.lock_descriptor(self._session_id)
            if fd is not None:
                self._writer.share_lock(fd)
        self._writer.start()

    def event(self, session_id: str, kind: str, payload: Payload) -> None:
        self._writer.event(session_id, str(kind), payload)

    def telemetry(self, session_id: str, t_s: float, channel: int, value: float) -> None:
        self._writer.telemetry(session_id, t_s, channel, value)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self._writer.flush(timeout_s)

    def pulse_gap(self, laser_id: str, session_id: str, counter_now: int | None) -> PulseGap | None:
        gap = reconcile(self.log, laser_id, session_id, counter_now)
        return None if gap is None else PulseGap(EventKind(gap[0]), gap[1])

    def end_session(self, session_id: str, reason: str) -> None:
        """Write what is queued, then the session's end. A log that cannot be written (a full
        or read-only disk) does not raise here, at the end of a session whose laser is already
        stopped: the end stays unwritten, ``failed`` says why, the failure handler hears it,
        and the next writer to open the log marks the session interrupted."""
        self._writer.flush()
        self._writer.close()
        lost = self._writer.unwritten  # after close: what a failed writer dropped at the end too
        try:
            failed = self._writer.failed
            if failed is not None:
                # Say in the chain why the record has a gap. A log this process can still
                # write (the log's own process died) takes it; a full disk refuses it too.
                with contextlib.suppress(SessionLogError):
                    self.log.append(
                        session_id, KIND_WRITER_FAILED, {"reason": failed, "unwritten": lost}
                    )
            self.log.end_session(session_id, reason)
        except SessionLogError as e:
            self._end_failed = f"the session's end could not be written: {e}"
            self._failed(self._end_failed)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        if self._owns_log:
            self.log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
