"""The latest value of every channel, shared by the device workers and the interlock loop.

Each channel has exactly one writer (its device's worker). A worker stores the value first
and the time it was fresh second, so a reader that races a write sees a new value with an
older time: it looks staler than it is, never fresher (the safe side).

Each worker also times its own transactions (request out, answer in, in the worker's thread)
and keeps two figures per device over its last ``ANSWER_WINDOW`` answers, for the interlock
loop to hold against the reaction-time budget:

- ``answer_worst_ms``, the recent worst: the slowest answer once the slowest quarter is left
  out (the 75th percentile). The time is taken in this process, so it includes the host's
  own hiccups (a descheduled thread, a wait for the GIL), which come alone or in short
  bursts; the slowest answer of a window would refuse arming, or halt, a healthy setup on a
  loaded machine (``laserguard bench`` reports, for the sensor, the share of windows each
  summary puts over the budget). A device slow in more than a quarter of its answers is
  counted at that speed within nine answers.
- ``answer_typical_ms``, the median: what the device usually takes.

Both stay NaN until ``ANSWER_MIN`` answers were timed. A connection's first transaction
(opening the port or the socket included) is not an answer time: the workers do not record it.
"""

from __future__ import annotations

import threading
import time
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from device_profiles.laser_state import LaserState
from device_profiles.schema import LASER_SETTINGS


class Dev(IntEnum):
    SENSOR = 0
    COOLER = 1
    LASER = 2
    INTERLOCK = 3
    SENSOR2 = 4  # a second, redundant skin sensor; absent from most setups (``present``)


class Ch(IntEnum):
    SKIN_TEMP_C = 0
    PLATE_TEMP_C = 1
    FLOW_L_MIN = 2
    COOLER_SETPOINT_C = 3
    SENSOR_FAULT_CODE = 4
    COOLER_FAULT_CODE = 5
    FLUENCE_J_CM2 = 6
    PULSE_MS = 7
    SPOT_MM = 8
    REP_RATE_HZ = 9
    LASER_STATE = 10
    LASER_PULSES = 11
    SKIN_TEMP_2_C = 12  # the second skin sensor's reading (NaN without one)
    SENSOR2_FAULT_CODE = 13


# Register names in a profile that feed a checked channel. Other registers are only logged.
SENSOR_CHANNELS = {"skin_temp_c": Ch.SKIN_TEMP_C, "fault_code": Ch.SENSOR_FAULT_CODE}
#: The second skin sensor's registers (the same names as the first's) and their channels.
SENSOR2_CHANNELS = {"skin_temp_c": Ch.SKIN_TEMP_2_C, "fault_code": Ch.SENSOR2_FAULT_CODE}
COOLER_CHANNELS = {
    "plate_temp_c": Ch.PLATE_TEMP_C,
    "flow_l_min": Ch.FLOW_L_MIN,
    "setpoint_c": Ch.COOLER_SETPOINT_C,
    "fault_code": Ch.COOLER_FAULT_CODE,
}
#: The laser's settings and the channels their read-back lands in, in ``LASER_SETTINGS``
#: order (the gate's argument order). The one settings-to-channel map: everything that turns
#: the live values into settings (the checks, the session, the log policy) goes through it
#: or through ``LiveState.settings``.
SETTING_CHANNELS: dict[str, Ch] = {name: Ch[name.upper()] for name in LASER_SETTINGS}
#: State name -> channel code, derived from ``LaserState`` (where the codes are defined).
LASER_STATE_CODES: dict[str, float] = {s.value: s.code for s in LaserState}

ANSWER_WINDOW = 32  # answers kept per device
ANSWER_MIN = 8  # answers timed before the figures mean anything


class LiveState:
    """Latest values (NaN until first read), freshness per device, link state per device."""

    def __init__(self) -> None:
        self.value: npt.NDArray[np.float64] = np.full(len(Ch), np.nan)
        self.fresh_ns: npt.NDArray[np.int64] = np.zeros(len(Dev), dtype=np.int64)
        self.link_ok: npt.NDArray[np.bool_] = np.zeros(len(Dev), dtype=np.bool_)
        # Which devices the setup has (the bridge says, once, before its workers start): an
        # absent device (no second skin sensor) is never stale and never a lost link.
        self.present: npt.NDArray[np.bool_] = np.ones(len(Dev), dtype=np.bool_)
        self.link_error: list[str | None] = [None] * len(Dev)
        # Why a channel holds NaN when its device said so (a sentinel): "sensor reports
        # over-range (0x7FFF)". None when the value is a value.
        self.fault: list[str | None] = [None] * len(Ch)
        # Set by a worker after it stored new samples; the interlock loop waits on it.
        self.new_data = threading.Event()
        # Transaction times in ms: one ring per device, written only by that device's worker.
        self.answer_ms: npt.NDArray[np.float64] = np.zeros((len(Dev), ANSWER_WINDOW))
        self.answers: npt.NDArray[np.int64] = np.zeros(len(Dev), dtype=np.int64)
        # NaN until the device has answered once.
        self.answer_worst_ms: npt.NDArray[np.float64] = np.full(len(Dev), np.nan)
        self.answer_typical_ms: npt.NDArray[np.float64] = np.full(len(Dev), np.nan)
        self._sorted = np.zeros((len(Dev), ANSWER_WINDOW))
        # The halt path's progress (perf_counter_ns; 0 = none), written only by the bridge's
        # HaltState: when the latched halt began, and when the laser last confirmed STOP.
        self.halt_ns = 0
        self.stop_confirmed_ns = 0

    def store(self, ch: Ch, value: float, fault: str | None = None) -> None:
        """A new value, or NaN with the device's reason. The reason is in place before the
        NaN and stays until a real value has replaced it, so NaN is never seen without it."""
        if fault is not None:
            self.fault[ch] = fault
            self.value[ch] = value
        else:
            self.value[ch] = value
            self.fault[ch] = None

    def mark_fresh(self, dev: Dev) -> None:
        self.fresh_ns[dev] = time.perf_counter_ns()

    def record_answer(self, dev: Dev, ms: float) -> None:
        """One transaction of ``dev`` took ``ms``. Only its worker calls this (not the loop)."""
        count = int(self.answers[dev])
        self.answer_ms[dev, count % ANSWER_WINDOW] = ms
        self.answers[dev] = count + 1
        n = min(count + 1, ANSWER_WINDOW)
        if n < ANSWER_MIN:
            return
        ordered = self._sorted[dev, :n]
        np.copyto(ordered, self.answer_ms[dev, :n])
        ordered.sort()
        self.answer_worst_ms[dev] = ordered[n - 1 - n // 4]
        self.answer_typical_ms[dev] = ordered[n // 2]

    def link_up(self, dev: Dev) -> None:
        self.link_error[dev] = None
        self.link_ok[dev] = True

    def link_down(self, dev: Dev, why: str) -> None:
        self.link_ok[dev] = False
        self.link_error[dev] = why

    def laser_state(self) -> str:
        state = LaserState.from_code(float(self.value[Ch.LASER_STATE]))
        return "UNKNOWN" if state is None else state.value

    def settings(self) -> dict[str, float]:
        """The laser's settings as last read back (NaN until read), by setting name."""
        return {name: float(self.value[ch]) for name, ch in SETTING_CHANNELS.items()}
