"""Test-spot mode: a stated number of single pulses, then a pause that a clinician ends.

A relative contraindication may restrict a session to test spots (``test_spot_only``): the
laser fires ``test_spot_pulses`` pulses, LaserGuard then puts it in STANDBY (a stop, not a
fault: no alarm, nothing to acknowledge) and refuses to arm until a clinician, named and with
a reason (the test sites reviewed after the wait), ends the pause. The treatment then goes on
under the same tightened limits. More pulses than allowed, before the pause took hold or
during it, are a fault: the session halts.

States::

    COUNTING ──the allowed number of pulses──► PAUSED ──a clinician ends it──► ENDED
        └──── more pulses than allowed (before ENDED) ──► halt, and PAUSED

This module only counts and decides; the session stops the laser and writes the log.
The laser's worker counts and the operator's thread ends the pause: each method takes the
counter's own lock (held for a few assignments, never across a call out), so counting never
waits for the session's lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum

from device_profiles.schema import Restrictions

#: A restriction built in code that asks for test spots without saying how many: one spot,
#: the strictest reading (bundled data always states the number; the loader insists on it).
UNSTATED_PULSES = 1


class Phase(StrEnum):
    COUNTING = "counting"
    PAUSED = "paused"
    ENDED = "ended"


class Verdict(StrEnum):
    MORE_ALLOWED = "more_allowed"
    PAUSE_NOW = "pause_now"  # this pulse was the last test spot
    EXCEEDED = "exceeded"  # more pulses than allowed: a fault


@dataclass(frozen=True)
class TestSpots:
    """Test-spot mode at one moment: pulses allowed and fired, the phase, who ended it."""

    __test__ = False  # a clinical term, not a pytest test class

    allowed: int
    fired: int
    phase: Phase
    ended_by: str | None

    def as_record(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "fired": self.fired,
            "phase": str(self.phase),
            "ended_by": self.ended_by,
        }


@dataclass
class TestSpotMode:
    """How many test spots are allowed and fired, and whether the pause is on."""

    __test__ = False  # a clinical term, not a pytest test class

    allowed: int
    fired: int = 0
    phase: Phase = Phase.COUNTING
    ended_by: str | None = None
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @classmethod
    def from_restrictions(cls, restrictions: Restrictions) -> TestSpotMode | None:
        """The mode a risk assessment's restrictions ask for, or None (no test spots)."""
        if not restrictions.test_spot_only:
            return None
        return cls(allowed=restrictions.test_spot_pulses or UNSTATED_PULSES)

    @property
    def paused(self) -> bool:
        return self.phase is Phase.PAUSED

    @property
    def limiting(self) -> bool:
        """Whether pulses are still counted against the allowance."""
        return self.phase is not Phase.ENDED

    def count(self, pulses: int) -> Verdict:
        """``pulses`` more pulses were seen on the laser."""
        with self._lock:
            if not self.limiting:
                return Verdict.MORE_ALLOWED
            self.fired += pulses
            if self.fired > self.allowed:
                self.phase = Phase.PAUSED  # after the halt, still a clinician's review first
                return Verdict.EXCEEDED
            if self.fired == self.allowed and self.phase is Phase.COUNTING:
                self.phase = Phase.PAUSED
                return Verdict.PAUSE_NOW
            return Verdict.MORE_ALLOWED

    def end_pause(self, who: str) -> None:
        """A clinician reviewed the test sites: the treatment may go on (the caller checks
        that the mode is paused)."""
        with self._lock:
            self.phase = Phase.ENDED
            self.ended_by = who

    def frozen(self) -> TestSpots:
        """This moment's counts, for a snapshot or the record."""
        return TestSpots(self.allowed, self.fired, self.phase, self.ended_by)

    def as_record(self) -> dict[str, object]:
        return self.frozen().as_record()
