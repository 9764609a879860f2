"""Garbage collection in the interlock loop's slack: an experiment of issue 15, off by
default (``PACED``), measured by ``laserguard bench --long --gc-in-loop``.

CPython collects reference cycles when the count of new container objects passes a threshold,
in whichever thread allocated the one too many, holding the GIL for the whole collection. In
the long run's idle armed window young collections took 4 ms on average and 11.3 ms at worst,
and 49 of 85 late loop cycles overlapped one; the short runs showed the channel link's
publisher doing most of them, at ordinary priority. The hypothesis was a priority inversion:
a collecting thread set aside by the scheduler while the loop waits for the GIL.

With ``PACED`` on, while a loop runs the automatic collection is off and the loop itself
collects, on its own thread (the process's highest priority), right after a cycle's checks and
only with at least ``SLACK_FRACTION`` of a period left before the next one. It keeps CPython's
thresholds and its order of generations; it never lets the young generation grow past
``HARD_FACTOR`` times its threshold (past that it collects with or without slack), and a full
collection waits while emission is permitted, up to ``HARD_FACTOR`` times its own due count.

What the long run said (docs/performance.md, "Garbage collection in the loop's slack"): every
collection ran on the loop's thread, yet in the armed window they still took 3.6 ms on
average and 8.1 ms at worst, at SCHED_FIFO 50. So the slow collections are their own work
(what is young at the time), not a thread set aside, and moving them gains nothing one can
measure; it would also run every finalizer on the loop's thread. What made them slow was
found later: the bench's own probe, whose full rings of tuples kept CPython's young count
from rising while the young generation grew (with NumPy rings the window's collections take
tenths of a millisecond). CPython's collection stays the default; this stays as the bench's
experiment.

Several loops in one process share the switch: the automatic collection comes back when the
last of them stops, and only if it was on when the first started.
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
#: On: loops collect in their slack (the long bench's ``--gc-in-loop``). Off by default.
PACED = False

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

    @property
    def owning(self) -> bool:
        """Whether this loop does the collection now (between ``start`` and ``stop``)."""
        return self._owning

    def start(self) -> None:
        global _owners, _was_enabled
        if self.thresholds[0] == 0 or not PACED:
            return  # left to CPython (the default), or switched off by its threshold
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
