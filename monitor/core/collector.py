"""Garbage collection in the interlock loop's own slack (issue 15: the tail).

CPython collects reference cycles when the count of new container objects passes a threshold,
in whichever thread allocated the one too many, holding the GIL for the whole collection.
That thread is often a device worker or a service thread at ordinary priority: the long run
found young collections of 4 ms on average and 11 ms at worst in the safety process, and 49 of
the 85 late loop cycles of an idle 10-minute session overlapped one. The loop waited on the
GIL behind a thread the scheduler had set aside (a priority inversion), not behind the work.

While a loop runs, the automatic collection is switched off and the loop itself collects, on
its own thread (the process's highest priority), right after a cycle's checks and only when
at least ``SLACK_FRACTION`` of a period is left before the next one. It keeps CPython's
thresholds and its order of generations, so memory is reclaimed as often as before. It never
lets the young generation grow past ``HARD_FACTOR`` times its threshold: past that it
collects with or without slack (bounded memory comes before a late cycle, which is measured
and reported anyway). A full collection takes milliseconds (3.3 ms in a long bench run): it
waits while emission is permitted, up to ``HARD_FACTOR`` times its own due count, and comes
when the laser is in STANDBY, where a late check cannot let a pulse through.

Several loops in one process (tests) share the switch: the automatic collection comes back
when the last of them stops, and only if it was on when the first started.
"""

from __future__ import annotations

import gc
import threading
import time

__all__ = ["HARD_FACTOR", "PACED", "SLACK_FRACTION", "SlackCollector"]

#: Collect only with at least this share of a period left before the next cycle.
SLACK_FRACTION = 0.5
#: Past this many times the young generation's threshold, collect without slack.
HARD_FACTOR = 4
#: Off: loops leave the collection to CPython (the long bench's ``--gc-automatic``, to weigh
#: this module's share).
PACED = True

_lock = threading.Lock()
_owners = 0
_was_enabled = False


class SlackCollector:
    """Owned by one loop: ``start`` on its thread, ``maybe`` after each cycle, ``stop``."""

    def __init__(self, period_ns: int) -> None:
        self.slack_ns = int(period_ns * SLACK_FRACTION)
        self.thresholds = gc.get_threshold()
        self.collections = [0, 0, 0]  # by generation
        self.forced = 0  # collected without the slack (the young generation too large)
        self.max_ns = 0
        self.total_ns = 0
        self._owning = False

    def start(self) -> None:
        global _owners, _was_enabled
        if self.thresholds[0] == 0 or not PACED:
            return  # collection switched off by its threshold, or left to CPython
        with _lock:
            if _owners == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _owners += 1
        self._owning = True

    def stop(self) -> None:
        global _owners
        if not self._owning:
            return
        self._owning = False
        with _lock:
            _owners -= 1
            if _owners == 0 and _was_enabled:
                gc.enable()

    def maybe(self, slack_ns: int, armed: bool = False) -> bool:
        """Collect if the young generation is due and ``slack_ns`` (the time left before the
        next cycle) allows it, or if it is far past due. A full collection (milliseconds: it
        scans everything made since start-up) waits until emission is not permitted
        (``armed`` False), or until its own count is ``HARD_FACTOR`` times past due. True when
        it collected."""
        if not self._owning:
            return False
        count0, count1, count2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if count0 < t0 or (slack_ns < self.slack_ns and count0 < HARD_FACTOR * t0):
            return False
        # CPython's order: the oldest generation whose own count passed its threshold.
        full = count2 >= (HARD_FACTOR * t2 if armed else t2)
        generation = 2 if full else 1 if count1 >= t1 else 0
        if slack_ns < self.slack_ns:
            self.forced += 1
        t = time.perf_counter_ns()
        gc.collect(generation)
        spent = time.perf_counter_ns() - t
        self.collections[generation] += 1
        self.total_ns += spent
        self.max_ns = max(self.max_ns, spent)
        return True
