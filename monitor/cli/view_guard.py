"""Views and ticks run beside a session; none of them may end it.

A terminal view that raises (a bug, a value it did not expect) must not take the bridge down
while a hazard is still there: the session outlives its views. ``ViewGuard`` wraps such a
callback. An exception there goes to ``Session.view_failed`` (a logged ``view_failed`` event
with the view's name and a bounded message, and a halt while the laser may emit, because
nobody can see the alarms any more). A view that keeps failing is logged once, then counted:
one ``view_failures`` record with the count when it works again or when the guard closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.core.session import Session

#: A message from a failing view is cut here: the log holds what failed, not a dump.
MAX_ERROR_CHARS = 200

Tick = Callable[["Session", float], None]


def describe(error: BaseException) -> str:
    """``Type: message``, at most ``MAX_ERROR_CHARS`` characters, on one line."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class ViewGuard:
    """Calls ``fn(session, t_s)``; an exception there is logged and counted, never raised."""

    def __init__(self, name: str, fn: Tick) -> None:
        self.name = name
        self.fn = fn
        self.failures = 0  # in the current run of failures
        self.total_failures = 0
        self.last_error: str | None = None

    def __call__(self, session: Session, t_s: float) -> None:
        try:
            self.fn(session, t_s)
        except Exception as e:  # any failure of a view: logged, counted, the session goes on
            self.failures += 1
            self.total_failures += 1
            self.last_error = describe(e)
            if self.failures == 1:
                session.view_failed(self.name, self.last_error)
            return
        self._end_run(session, "the view works again")

    def close(self, session: Session) -> None:
        """Log the count of a run of failures still going on (call before the session ends)."""
        self._end_run(session, "the session ended")

    def _end_run(self, session: Session, why: str) -> None:
        if self.failures > 1:
            session.view_failures(self.name, self.failures, self.last_error or "", why)
        self.failures = 0
