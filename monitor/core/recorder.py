"""What a session needs from its record, and nothing more: the ``Recorder`` protocol.

The core never knows where or how the record is kept. ``monitor.record`` implements this
protocol over the hash-chained session log (``monitor.record.recorder.open_recorder``); a
test may implement it in memory. A session is given its recorder; whoever opened the
recorder closes it.

Two kinds of write, by what a failure means:

- **Synchronous** (``start_session``, ``record``, ``end_session``): what decides what arming
  may do (the risk assessment, test-spot mode) is on disk before the laser can arm. A
  failure raises, and the session does not start.
- **Queued** (``event``, ``telemetry``): called from the interlock loop and the device
  workers. They never block and never raise. The first failure to write, however it
  happens, calls ``on_failure(reason)`` once (given to ``start_writing``) and sets
  ``failed``; the session then halts: no unlogged pulses.

Reconciliation needs the record's memory of the laser, which the session does not have: the
session passes in the laser's id and its pulse counter as first read, and the recorder
answers with the event that accounts for a gap, if any (``PulseGap``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from monitor.core.records import EventKind, Payload, SessionStart

__all__ = ["PulseGap", "Recorder"]


@dataclass(frozen=True)
class PulseGap:
    """Pulses the laser counted that no session recorded (or a counter that went back)."""

    kind: EventKind  # PULSES_UNLOGGED, or PULSE_COUNTER_MISMATCH
    payload: Payload


class Recorder(Protocol):
    """Where a session's record goes (see the module docstring for the failure rules)."""

    @property
    def failed(self) -> str | None:
        """Why queued writing stopped, once it has; None while healthy."""
        ...

    def start_session(self, start: SessionStart) -> str:
        """Write the session's first record, synchronously; returns the session's id."""
        ...

    def record(self, session_id: str, kind: str, payload: Payload) -> None:
        """Append one event synchronously (before arming); raises if it cannot be written."""
        ...

    def start_writing(self, on_failure: Callable[[str], None]) -> None:
        """Start writing queued events; ``on_failure`` must not block (it halts the laser)."""
        ...

    def event(self, session_id: str, kind: str, payload: Payload) -> None:
        """Queue one event. Never blocks, never raises."""
        ...

    def telemetry(self, session_id: str, t_s: float, channel: int, value: float) -> None:
        """Queue one telemetry sample. Never blocks, never raises."""
        ...

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is written. False on timeout or failure."""
        ...

    def pulse_gap(self, laser_id: str, session_id: str, counter_now: int | None) -> PulseGap | None:
        """The gap between the laser's counter now and the last total recorded for it."""
        ...

    def end_session(self, session_id: str, reason: str) -> None:
        """Write what is queued, stop the queue, then the session's last record."""
        ...

    def close(self) -> None:
        """Release the record (a store this recorder opened). Safe to call twice."""
        ...
