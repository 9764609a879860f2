"""Alarms as a console shows them, and the reset of one latched condition at a time.

The core latches one halt for the whole session and releases it (``Session.acknowledge``)
only once no halt condition is active. A console shows each condition on its own, as IEC
60601-1-8 and IEC 62682 ask: a halt stays *latched* after its cause has cleared
(returned to normal, unacknowledged) until a person resets it by name with a reason.

Rules (``AlarmBook``):

- Each halt the session recorded (``Session.trips``: the loop's trips, an emergency halt, a
  console lost...) is an occurrence of its condition (``check``). A condition is latched while
  it has an occurrence nobody reset. The book reads the session's tally of them
  (``TripTally``: per condition, how many and the last), so its cost does not grow with the
  session's halts.
- ``reset(check)`` resets that condition's occurrences so far, and nothing else: acknowledging
  one alarm never acknowledges another behind it. Refused while its cause is active.
- A condition that comes back is a new occurrence: it needs a new reset.
- Only when every latched condition is reset is the core asked to release the halt, with the
  reason of the last reset; the core checks every condition again and may still refuse, and
  then the last reset is undone. A release puts the session in STANDBY: a reset never arms.

Priorities: every halt is ``high`` (red, flashing), a warning ``medium`` (yellow), a notice
``low`` (cyan, steady): ``monitor.core.checks.Severity``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.core.checks import CHECKS, Severity
from monitor.core.records import Trip, TripCount

__all__ = ["PRIORITY", "Alarm", "AlarmBook"]

PRIORITY = {Severity.HALT: "high", Severity.WARN: "medium", Severity.NOTICE: "low"}
_ORDER = {"high": 0, "medium": 1, "low": 2}
_SPEC = {c.name: c for c in CHECKS}
#: Halts decided beside the loop, in words for the page (the loop's checks say their own).
_OTHER_HALTS = {
    "emergency_halt": "emergency halt",
    "console_lost": "the console was lost: nobody could see the alarms",
    "view_failed": "a view beside the session failed",
    "session_log": "the session log cannot be written",
    "interlock_loop": "the interlock loop failed or stalled",
    "laser_standby": "the laser did not go to STANDBY",
    "test_spots_exceeded": "the laser fired after the test spots",
    "test_spot_pause": "the laser did not pause after the test spots",
}
#: Latched in the engine itself: active until the core resets it, so its reset is not
#: refused as "still active" here; the core judges it (the laser must report STANDBY).
SELF_LATCHING = frozenset({"laser_did_not_stop"})


@dataclass(frozen=True)
class Alarm:
    check: str
    priority: str  # high / medium / low
    what: str
    reason: str
    since_t_s: float | None
    active: bool
    latched: bool  # a halt not yet reset
    occurrences: int  # halts of this condition not yet reset (or 1 for an active warning)

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "priority": self.priority,
            "what": self.what,
            "reason": self.reason,
            "since_t_s": self.since_t_s,
            "active": self.active,
            "latched": self.latched,
            "occurrences": self.occurrences,
        }


def _what(check: str) -> str:
    spec = _SPEC.get(check)
    if spec is not None:
        return spec.what
    return _OTHER_HALTS.get(check, check.replace("_", " "))


class ResetRefused(Exception):
    """A reset that cannot be done; the message says why in one sentence."""


class AlarmBook:
    """Which halts are latched, and which of them a person has reset (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the book's own: never held by the halt path
        self._reset_upto: dict[str, int] = {}  # check -> occurrences reset so far
        self._pending: dict[str, int] = {}  # resets made since the core's last release

    def latched(self, trips: Mapping[str, TripCount]) -> dict[str, TripCount]:
        """Each latched condition: its occurrences not yet reset, and the last of them."""
        with self._lock:
            done = dict(self._reset_upto)
        return {
            c: TripCount(k.n - done.get(c, 0), k.last)
            for c, k in trips.items()
            if k.n > done.get(c, 0)
        }

    def view(
        self,
        trips: Mapping[str, TripCount],
        warnings: Mapping[str, TripCount],
        active: Iterable[str],
        reasons: Mapping[str, str],
    ) -> list[Alarm]:
        """Every latched or active condition, high priority first, newest first within.
        ``trips`` and ``warnings``: the session's tallies (``Snapshot.trip_counts``)."""
        latched = self.latched(trips)
        active_set = set(active)
        alarms: list[Alarm] = []
        for check in sorted(set(latched) | active_set):
            spec = _SPEC.get(check)
            priority = PRIORITY[spec.severity] if spec is not None else "high"
            occ = latched.get(check)
            warned = warnings.get(check)
            last: Trip | None = occ.last if occ else warned.last if warned else None
            reason = reasons.get(check) or (last.reason if last is not None else "")
            alarms.append(
                Alarm(
                    check=check,
                    priority=priority,
                    what=_what(check),
                    reason=reason,
                    since_t_s=None if last is None else round(last.t_s, 3),
                    active=check in active_set,
                    latched=occ is not None,
                    occurrences=occ.n if occ else 1,
                )
            )
        alarms.sort(key=lambda a: (_ORDER[a.priority], -(a.since_t_s or 0.0)))
        return alarms

    def reset(self, check: str, trips: Mapping[str, TripCount], active: Iterable[str]) -> list[str]:
        """Mark ``check`` reset; returns the conditions still latched after it.
        ``ResetRefused`` if it is not latched or its cause is still active."""
        latched = self.latched(trips)
        if check not in latched:
            others = ", ".join(sorted(latched)) or "none"
            raise ResetRefused(f"{check} is not a latched alarm (latched: {others})")
        if check in set(active) and check not in SELF_LATCHING:
            raise ResetRefused(
                f"the cause is still present: {check} ({latched[check].last.reason})"
            )
        total = trips[check].n
        with self._lock:
            self._pending[check] = self._reset_upto.get(check, 0)
            self._reset_upto[check] = total
        return sorted(c for c in latched if c != check)

    def undo(self, check: str) -> None:
        """Undo the last reset of ``check`` (the core refused to release the halt)."""
        with self._lock:
            if check in self._pending:
                self._reset_upto[check] = self._pending.pop(check)

    def released(self) -> frozenset[str]:
        """The core released the halt: forget the undo records; returns what was reset."""
        with self._lock:
            done = frozenset(self._pending)
            self._pending.clear()
            return done

    def reset_since_release(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._pending)
