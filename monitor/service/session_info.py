"""``GET /api/session``'s answer, asked of the bridge once per change, not once per request.

What a session is (who, whom, its typing, risk and limits) changes only when the session does,
and each such change is a command this service sent (``changed()``) or an event the bridge
recorded. The bridge builds the answer on its control thread, inside the safety process: a
page that polls it, or a flood of requests, must not become work there. A request that finds
nothing new since the last answer gets that answer; one that finds a change, or an answer
older than ``MAX_AGE_S`` (a change nobody announced shows within that), asks the bridge, and
requests that come meanwhile wait for that one question instead of asking again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from monitor.control.client import ControlError
from monitor.control.protocol import SessionInfoCmd
from monitor.service.port import ControlPort

__all__ = ["MAX_AGE_S", "SessionInfoCache"]

MAX_AGE_S = 1.0


class SessionInfoCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0
        self._last_event = 0
        # (generation, last event seq, when asked, the answer or the bridge's refusal)
        self._held: tuple[int, int, float, dict[str, Any] | ControlError] | None = None

    def changed(self) -> None:
        """A command went to the bridge: the next request asks again."""
        with self._lock:
            self._generation += 1

    def get(self, port: ControlPort) -> dict[str, Any]:
        """The session's description, or the bridge's ``ControlError`` (``no_session``...)."""
        with self._lock:
            for ev in port.events_since(self._last_event):
                self._last_event = ev.seq
            key = (self._generation, self._last_event)
            held = self._held
            if held is None or held[:2] != key or self._clock() - held[2] > MAX_AGE_S:
                asked_at = self._clock()
                try:
                    answer: dict[str, Any] | ControlError = port.call(SessionInfoCmd())
                except ControlError as e:
                    if e.kind == "unavailable":  # the channel, not the session: ask anew
                        raise
                    answer = e
                held = self._held = (*key, asked_at, answer)
        answer = held[3]
        if isinstance(answer, ControlError):
            raise answer
        return answer
