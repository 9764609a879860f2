"""The halt state of one bridge: the latch, the pending stop and the relay's permit, one owner.

What it holds:

- the **latch**: a halt is latched until a person's acknowledgement releases it;
- the **permit**: whether the relay in the laser's remote-interlock loop should be energised;
  its **generation**, bumped by every request to energise it; and the generation the last
  energising write carried (``closed_generation``, what ``Bridge.wait_relay_closed`` waits for);
- the **stop requests**: a number bumped by every halt (and by every re-stop of a laser that
  came back up while halted) and the last one the laser confirmed. A STOP is pending while
  the requested number is ahead of the confirmed one;
- **when** (``perf_counter_ns``) the latched halt began, the laser confirmed STOP for it, and the
  relay was first written open after it. The first two are mirrored into ``LiveState``
  (``halt_ns``, ``stop_confirmed_ns``), where the interlock loop's ``laser_did_not_stop``
  check reads them; nothing else writes those two fields.
- how many **opening writes** the relay worker has made, and when the last one was: the
  relay's proof test at standby (``Bridge.open_relay``/``wait_relay_opened``) waits for one
  made after it withdrew the permit, with no halt latched.

Concurrency rule
----------------
Every change is a method of this class, and every such method runs under ``self._lock``: a
lock that only this object owns, held for a few attribute reads and writes, never across I/O,
a wait, a callback or a log record (no method here calls out). So each transition is atomic,
whichever thread makes it, and none can be delayed by anything but another transition:

==========================  ==============================================================
method                      called from
==========================  ==============================================================
``halt``                    any thread: the interlock loop, the operator's, the relay
                            worker (its supervisor), the laser worker, the log writer
``release``                 the operator's (an acknowledgement)
``set_permit``              the operator's; the laser worker (a test-spot pause)
``relay_wanted``,           the relay worker only
``relay_written``
``stop_to_send``,           the laser worker only
``stop_confirmed``,
``restop``
==========================  ==============================================================

A read of one attribute (``latched``, ``permit``, a generation, a timestamp) takes no lock: it
is atomic under the GIL, and the invariants below hold between transitions, so a reader sees
the state before a transition or after it, never half of one:

- ``permit`` is never True while ``latched``: ``halt`` clears it in the transition that
  latches, and ``set_permit(True)`` grants it only while not latched. After ``halt()``
  returns, no thread sees a permit until ``release()`` and a new ``set_permit(True)``.
- The permit generation never decreases; each ``set_permit(True)`` gets a new one.
- A stop request is never lost: confirming request *n* leaves request *n + 1* (a halt that
  came while STOP *n* was on the wire) pending.
- An energising write that a halt overtook (the relay worker read the permit, then the halt
  latched, then the write went out) never counts as closed; the halt has woken the relay
  worker, whose next write opens the relay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from firmware_bridge.live import LiveState

__all__ = ["HaltState"]


class HaltState:
    """The latch, the permit and its generation, the stop requests, and their times."""

    def __init__(
        self, live: LiveState, *, clock_ns: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        self._live = live
        self._clock_ns = clock_ns
        self._lock = threading.Lock()  # see the module docstring: never held across a call out
        self._latched = False
        self._permit = False
        self._permit_generation = 0
        self._closed_generation = 0
        self._stop_requested = 0
        self._stop_done = 0
        self._halt_first_request = 0  # the stop request the latched halt made first
        self._halt_ns: int | None = None
        self._stop_confirmed_ns: int | None = None
        self._relay_opened_ns: int | None = None
        self._open_writes = 0  # de-energising writes made, and when the last one was
        self._last_open_ns = 0

    # --- reads (no lock: one attribute each) -----------------------------------------------

    @property
    def latched(self) -> bool:
        return self._latched

    @property
    def permit(self) -> bool:
        """Whether the relay should be energised now (never while latched)."""
        return self._permit

    @property
    def permit_generation(self) -> int:
        return self._permit_generation

    @property
    def closed_generation(self) -> int:
        """The generation of the last energising write made while no halt was latched."""
        return self._closed_generation

    @property
    def halt_ns(self) -> int | None:
        """When the latest halt latched (it stays after its release), or None."""
        return self._halt_ns

    @property
    def stop_confirmed_ns(self) -> int | None:
        """When the laser last confirmed a STOP the latest halt asked for, or None."""
        return self._stop_confirmed_ns

    @property
    def relay_opened_ns(self) -> int | None:
        """When the relay was first written open after the latest halt latched, or None."""
        return self._relay_opened_ns

    @property
    def open_writes(self) -> int:
        """How many de-energising writes the relay worker has made (a proof test waits for
        one made after it withdrew the permit)."""
        return self._open_writes

    @property
    def last_open_ns(self) -> int:
        """When the last de-energising write was made (0: never)."""
        return self._last_open_ns

    @property
    def stop_pending(self) -> bool:
        with self._lock:  # two numbers: read them together
            return self._stop_requested > self._stop_done

    # --- transitions ----------------------------------------------------------------------

    def halt(self) -> bool:
        """Latch, withdraw the permit, request a STOP. True if this call latched the halt."""
        with self._lock:
            first = not self._latched
            self._latched = True
            self._permit = False
            self._stop_requested += 1
            if first:
                now_ns = self._clock_ns()
                self._halt_ns = now_ns
                self._halt_first_request = self._stop_requested
                self._stop_confirmed_ns = None
                self._relay_opened_ns = None
                # No confirmation first, then the new halt: the loop, reading halt_ns and then
                # stop_confirmed_ns without a lock, never sees the old confirmation as this one's.
                self._live.stop_confirmed_ns = 0
                self._live.halt_ns = now_ns
            return first

    def release(self) -> None:
        """A person acknowledged: unlatch. The permit stays withdrawn until asked for again,
        and a STOP the laser has not confirmed stays pending."""
        with self._lock:
            self._latched = False
            self._live.halt_ns = 0

    def set_permit(self, permit: bool) -> int:
        """Ask for the relay energised (granted only while no halt is latched) or open.
        Returns the permit generation a closing write must reach."""
        with self._lock:
            if permit:
                self._permit_generation += 1
            self._permit = permit and not self._latched
            return self._permit_generation

    def relay_wanted(self) -> tuple[bool, int]:
        """(energise?, the generation that decision belongs to), for the relay worker's write."""
        with self._lock:
            return self._permit, self._permit_generation

    def relay_written(self, energised: bool, generation: int) -> None:
        """The relay worker wrote the relay as ``relay_wanted`` said (``generation``)."""
        with self._lock:
            if energised:
                if not self._latched:  # a write a halt overtook closes nothing
                    self._closed_generation = max(self._closed_generation, generation)
            else:
                now_ns = self._clock_ns()
                self._open_writes += 1
                self._last_open_ns = now_ns
                if self._latched and self._relay_opened_ns is None:
                    self._relay_opened_ns = now_ns

    def stop_to_send(self) -> int | None:
        """The stop request the laser worker should serve now, or None."""
        with self._lock:
            return self._stop_requested if self._stop_requested > self._stop_done else None

    def stop_confirmed(self, request: int) -> None:
        """The laser confirmed the STOP sent for ``request`` (and every one before it)."""
        with self._lock:
            self._stop_done = max(self._stop_done, request)
            if request >= self._halt_first_request:  # not a STOP older than this halt
                now_ns = self._clock_ns()
                self._stop_confirmed_ns = now_ns
                self._live.stop_confirmed_ns = now_ns

    def restop(self) -> bool:
        """The laser reports READY or FIRING: while halted, and no STOP is pending, request
        another. True if it did (the laser came back up, from its panel, or it lied)."""
        with self._lock:
            if not self._latched or self._stop_requested > self._stop_done:
                return False
            self._stop_requested += 1
            return True
