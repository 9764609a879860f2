"""The session's events for the channel, teed off its recorder without ever blocking.

The session writes every event through its ``Recorder`` (``monitor.core.recorder``), some of
them from the interlock loop's and the device workers' threads. ``TeeRecorder`` passes every
call to the real recorder unchanged and also appends the event to an ``EventFeed``: one
``deque.append`` (atomic under the GIL, no lock, no I/O), so the halt path is never slower for
the channel. The channel's own thread drains the feed and sends the events to its clients.

The feed is bounded: when nobody drains it (no client, a stalled channel thread), the oldest
events are dropped and counted; the session's log, not the feed, is the record.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from monitor.core.recorder import PulseGap, Recorder
from monitor.core.records import Payload, SessionStart

__all__ = ["EventFeed", "FedEvent", "TeeRecorder"]

#: Events kept for the channel between two drains (it drains at 20 Hz).
FEED_EVENTS = 4096


@dataclass(frozen=True)
class FedEvent:
    t_wall: float
    session_id: str
    kind: str
    payload: Payload


class EventFeed:
    """A bounded queue of events: ``put`` never blocks; the oldest are dropped when full."""

    def __init__(self, maxlen: int = FEED_EVENTS) -> None:
        self._events: deque[FedEvent] = deque(maxlen=maxlen)
        self._maxlen = maxlen
        self.dropped = 0

    def put(self, session_id: str, kind: str, payload: Payload) -> None:
        if len(self._events) == self._maxlen:
            self.dropped += 1  # counted, roughly: only the channel reads it
        self._events.append(FedEvent(time.time(), session_id, str(kind), payload))

    def drain(self, limit: int = 1024) -> list[FedEvent]:
        out: list[FedEvent] = []
        while len(out) < limit:
            try:
                out.append(self._events.popleft())
            except IndexError:
                break
        return out


class TeeRecorder:
    """A ``Recorder`` that records through ``inner`` and feeds each event to ``feed``."""

    def __init__(self, inner: Recorder, feed: EventFeed, close_inner: Callable[[], None]) -> None:
        self.inner = inner
        self.feed = feed
        self._close_inner = close_inner

    @property
    def failed(self) -> str | None:
        return self.inner.failed

    def start_session(self, start: SessionStart) -> str:
        return self.inner.start_session(start)

    def record(self, session_id: str, kind: str, payload: Payload) -> None:
        self.inner.record(session_id, kind, payload)
        self.feed.put(session_id, kind, payload)

    def start_writing(self, on_failure: Callable[[str], None]) -> None:
        self.inner.start_writing(on_failure)

    def event(self, session_id: str, kind: str, payload: Payload) -> None:
        self.inner.event(session_id, kind, payload)
        self.feed.put(session_id, kind, payload)

    def telemetry(self, session_id: str, t_s: float, channel: int, value: float) -> None:
        self.inner.telemetry(session_id, t_s, channel, value)  # the snapshots carry the values

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self.inner.flush(timeout_s)

    def pulse_gap(self, laser_id: str, session_id: str, counter_now: int | None) -> PulseGap | None:
        return self.inner.pulse_gap(laser_id, session_id, counter_now)

    def end_session(self, session_id: str, reason: str) -> None:
        self.inner.end_session(session_id, reason)
        self.feed.put(session_id, "session_end", {"reason": reason})

    def close(self) -> None:
        self._close_inner()
