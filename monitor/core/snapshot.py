"""What a session shows at one moment: a frozen, typed ``Snapshot`` for views and reports.

Views read attributes, not string keys: a renamed field is a type error, not a blank cell.
A value the devices have not given (or gave as NaN) is ``None``, never 0. ``as_dict()`` is
the JSON-safe form (the same keys a snapshot had when it was a dict), for a report or a
service; building it never raises on a missing reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from device_profiles.schema import SkinType
from monitor.core.dose_meter import ThermalDose
from monitor.core.records import Payload, State, Trip, TripCount
from monitor.core.spots import TestSpots

#: Trips and warnings a snapshot lists (the newest); its counts cover every one.
RECENT_TRIPS = 20

__all__ = [
    "RECENT_TRIPS",
    "AnswerTimes",
    "ReactionTimes",
    "SettingsReading",
    "Snapshot",
]


@dataclass(frozen=True)
class SettingsReading:
    """The laser's settings as last read back from it (None: not read yet)."""

    fluence_j_cm2: float | None
    pulse_ms: float | None
    spot_mm: float | None
    rep_rate_hz: float | None

    def as_dict(self) -> Payload:
        return {
            "fluence_j_cm2": self.fluence_j_cm2,
            "pulse_ms": self.pulse_ms,
            "spot_mm": self.spot_mm,
            "rep_rate_hz": self.rep_rate_hz,
        }


@dataclass(frozen=True)
class AnswerTimes:
    """One device's answer times against what the reaction-time budget assumes."""

    assumed_ms: float
    typical_ms: float | None
    recent_worst_ms: float | None

    def as_dict(self) -> Payload:
        return {
            "assumed": self.assumed_ms,
            "typical": self.typical_ms,
            "recent_worst": self.recent_worst_ms,
        }


@dataclass(frozen=True)
class ReactionTimes:
    """The required reaction time and the worst case measured from the answer times."""

    required_ms: float
    measured_worst_case_ms: float | None
    answer_ms: Mapping[str, AnswerTimes]  # by device: sensor, cooler, laser, interlock

    def as_dict(self) -> Payload:
        return {
            "required": self.required_ms,
            "measured_worst_case": self.measured_worst_case_ms,
            "answer_ms": {dev: t.as_dict() for dev, t in self.answer_ms.items()},
        }


@dataclass(frozen=True)
class Snapshot:
    """The session, the devices and the alarms at ``t_s`` seconds into the session."""

    session_id: str
    t_s: float
    state: State
    laser_state: str
    skin_type: SkinType
    skin_temp_c: float | None
    plate_temp_c: float | None
    flow_l_min: float | None
    settings: SettingsReading
    pulses: float | None
    pulses_out_of_limits: int
    links: Mapping[str, bool]  # by device: sensor, cooler, laser, interlock
    permit: bool  # the relay is asked to be energised (emission permitted)
    active_conditions: tuple[str, ...]
    trips: tuple[Trip, ...]  # the newest RECENT_TRIPS halts (``trip_counts``: all, by check)
    warnings: tuple[Trip, ...]  # the newest RECENT_TRIPS warnings and notices
    test_spots: TestSpots | None
    reaction_time: ReactionTimes
    skin_temp_band_c: tuple[float, float]  # the session's skin-temperature limits, low/high
    # The laser's calibration for the operator: why it blocks arming, or a warning that it
    # is due soon (monitor.core.calibration_status); None when there is nothing to say.
    calibration_note: str | None = None
    # Whether the calibration (or the laser's drift in treatment) refuses arming now: the
    # machine-readable side of ``calibration_note`` (a warning before expiry is False).
    calibration_blocks_arming: bool = False
    # Issue 13: the live thermal dose, and the second skin sensor's reading (None without one).
    thermal_dose: ThermalDose | None = None
    skin_temp_2_c: float | None = None
    # Every halt and warning so far, by check: how many, and the last (``TripTally``).
    trip_counts: Mapping[str, TripCount] = field(default_factory=dict)
    warning_counts: Mapping[str, TripCount] = field(default_factory=dict)

    @property
    def trips_total(self) -> int:
        return sum(c.n for c in self.trip_counts.values())

    @property
    def warnings_total(self) -> int:
        return sum(c.n for c in self.warning_counts.values())

    def as_dict(self) -> Payload:
        """JSON-safe, with the keys a snapshot has always had."""
        return {
            "session_id": self.session_id,
            "t_s": self.t_s,
            "state": str(self.state),
            "laser_state": self.laser_state,
            "skin_type": self.skin_type.value,
            "skin_temp_c": self.skin_temp_c,
            "plate_temp_c": self.plate_temp_c,
            "flow_l_min": self.flow_l_min,
            "settings": self.settings.as_dict(),
            "pulses": self.pulses,
            "pulses_out_of_limits": self.pulses_out_of_limits,
            "links": dict(self.links),
            "permit": self.permit,
            "active_conditions": list(self.active_conditions),
            "trips": [t.as_dict() for t in self.trips],
            "warnings": [t.as_dict() for t in self.warnings],
            "test_spots": None if self.test_spots is None else self.test_spots.as_record(),
            "reaction_time_ms": self.reaction_time.as_dict(),
            "limits": {"skin_temp_c": list(self.skin_temp_band_c)},
            "calibration_note": self.calibration_note,
            "calibration_blocks_arming": self.calibration_blocks_arming,
            "thermal_dose": None if self.thermal_dose is None else self.thermal_dose.as_dict(),
            "skin_temp_2_c": self.skin_temp_2_c,
        }
