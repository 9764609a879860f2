"""The laser's states: the words of its status reply and the codes LaserGuard carries.

A laser is in one of four states (21 CFR 1040.10 names the modes STANDBY and READY; emission
follows READY)::

    STANDBY ──arm──► READY ──footswitch──► FIRING
       ▲               │  ◄──released──────┘
       └──stop, standby, heartbeat lost, interlock open
    FAULT: the laser reports a fault of its own

The status reply names the state (``STATUS READY ...``); the live channel and the session
log's telemetry carry its ``code``. The codes are part of every recorded session: never
renumber one, give a new state a new code.

This is the one definition: the driver parses replies with it, the checks and the bridge
judge states with it, the simulated laser plays it.
"""

from __future__ import annotations

from enum import StrEnum


class LaserState(StrEnum):
    STANDBY = "STANDBY"
    READY = "READY"
    FIRING = "FIRING"
    FAULT = "FAULT"

    @property
    def code(self) -> float:
        """The number the live channel and the telemetry log hold for this state."""
        return _CODES[self]

    @property
    def can_emit(self) -> bool:
        """READY (a footswitch away from a pulse) or FIRING."""
        return self in CAN_EMIT

    @classmethod
    def from_code(cls, code: float) -> LaserState | None:
        """The state a channel code stands for; None for NaN or a code no state has."""
        return _BY_CODE.get(code)


_CODES: dict[LaserState, float] = {
    LaserState.STANDBY: 0.0,
    LaserState.READY: 1.0,
    LaserState.FIRING: 2.0,
    LaserState.FAULT: 3.0,
}
_BY_CODE = {code: state for state, code in _CODES.items()}
#: The states in which the laser emits or is one footswitch away from it.
CAN_EMIT = frozenset({LaserState.READY, LaserState.FIRING})
