"""The typed words of a session: its states, modes, the kinds of record it writes, its trips.

A session's record is a sequence of events, each a kind and a JSON-safe payload. The kinds
the session writes are ``EventKind`` members (a ``StrEnum``: each is the string stored); the
bridge's own events (``halt_requested``, ``link_lost``...) pass through under the bridge's
names. What a record store does with them is ``monitor.record``'s business, not the core's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from device_profiles.schema import SkinType
from monitor.core.checks import Severity

__all__ = [
    "EventKind", "Payload", "SessionMode", "SessionStart", "State", "Trip", "TripCount",
    "TripTally",
]  # fmt: skip

#: An event's payload: JSON-safe values (numbers, strings, booleans, None, lists, dicts).
Payload = dict[str, object]


class State(StrEnum):
    """The session's state machine (drawn in ``monitor.core.session``)."""

    CONNECTING = "CONNECTING"
    STANDBY = "STANDBY"
    READY = "READY"
    HALTED = "HALTED"
    FAILED = "FAILED"
    ENDED = "ENDED"


class SessionMode(StrEnum):
    """What the session's data is: simulated data is never mistaken for real."""

    DEMO = "demo"  # a simulated treatment shown to people
    TEST = "test"  # tests and benchmarks against the simulator
    CLINICAL = "clinical"  # a patient: needs a recorded, valid risk assessment


class EventKind(StrEnum):
    """Every kind of event the session writes (and ``PULSES``, which it reads from the bridge)."""

    # Written synchronously at the start, before anything may arm.
    RISK_ASSESSMENT = "risk_assessment"
    TEST_SPOT_MODE = "test_spot_mode"
    SKIN_TYPING = "skin_typing"
    PATIENT_INFORMATION = "patient_information"
    # Connection and the laser's pulse counter.
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    LASER_PULSE_COUNTER = "laser_pulse_counter"
    PULSES_UNLOGGED = "pulses_unlogged"  # the laser counted pulses no session recorded
    PULSE_COUNTER_MISMATCH = "pulse_counter_mismatch"  # its counter is below the record's
    PULSES = "pulses"  # the bridge's report of new pulses (n, total, settings)
    PULSE_OUT_OF_LIMITS = "pulse_out_of_limits"
    DELIVERED_ENERGY_DRIFT = "delivered_energy_drift"  # a pulse outside the output tolerance
    # Conditions found by the interlock loop and halts.
    TRIP = "trip"
    WARNING = "warning"
    CONDITION_CLEARED = "condition_cleared"
    ALARM_RESET = "alarm_reset"
    BOOKKEEPING_FAILED = "bookkeeping_failed"  # the session's own record-keeping raised
    # Operator commands and their answers.
    SETTINGS_REFUSED = "settings_refused"
    SETTINGS_FAILED = "settings_failed"
    SETTINGS_APPLIED = "settings_applied"
    ARM_REFUSED = "arm_refused"
    ARM_FAILED = "arm_failed"
    ARMED = "armed"
    STANDBY = "standby"
    ACKNOWLEDGE_REFUSED = "acknowledge_refused"
    ACKNOWLEDGED = "acknowledged"
    # Test-spot mode, and the treatment's own confirmations.
    EYE_SHIELDS_CONFIRMED = "eye_shields_confirmed"
    TEST_SPOTS_DONE = "test_spots_done"
    TEST_SPOT_PAUSE = "test_spot_pause"
    TEST_SPOT_PAUSE_ENDED = "test_spot_pause_ended"
    # Views beside the session, and its end.
    VIEW_FAILED = "view_failed"
    VIEW_FAILURES = "view_failures"
    END_STANDBY_FAILED = "end_standby_failed"
    LOOP_LATENESS = "loop_lateness"
    # The live thermal dose (monitor.core.dose_meter): every few seconds and at the end.
    THERMAL_DOSE = "thermal_dose"
    TREATMENT_AREA = "treatment_area"  # the handpiece moved to another treatment area


@dataclass(frozen=True)
class SessionStart:
    """What a session's first record says: who, whom, with which profile, in which mode."""

    operator: str
    patient_id: str
    skin_type: SkinType
    profile_name: str
    profile_digest: str
    mode: SessionMode
    meta: Mapping[str, object]


@dataclass(frozen=True)
class Trip:
    """A check that became active: a halt (``Session.trips``) or a warning or notice."""

    check: str
    reason: str
    t_s: float
    severity: Severity

    def as_dict(self) -> Payload:
        return {
            "check": self.check,
            "reason": self.reason,
            "t_s": round(self.t_s, 4),
            "severity": self.severity.name,
        }


@dataclass(frozen=True)
class TripCount:
    """One check's occurrences so far, and the last of them."""

    n: int
    last: Trip


class TripTally:
    """Each check's occurrences and its last one, kept as trips are recorded: what a view and
    the console's alarm book need of a session's trips, at a cost that does not grow with
    them (a snapshot that walked every trip cost the safety process more with each halt,
    20 times a second: ``docs/performance.md``, "The tail"). Added to on the session's lock;
    ``frozen`` is a copy a reader may keep."""

    def __init__(self) -> None:
        self._by_check: dict[str, TripCount] = {}
        self.total = 0

    def add(self, trip: Trip) -> None:
        prev = self._by_check.get(trip.check)
        self._by_check[trip.check] = TripCount(1 if prev is None else prev.n + 1, trip)
        self.total += 1

    def frozen(self) -> Mapping[str, TripCount]:
        return dict(self._by_check)  # a copy (a plain dict: a snapshot is pickled to a view)

    @classmethod
    def of(cls, trips: Iterable[Trip]) -> TripTally:
        tally = cls()
        for t in trips:
            tally.add(t)
        return tally
