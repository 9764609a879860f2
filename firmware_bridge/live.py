"""The latest value of every channel, shared by the device workers and the interlock loop.

Each channel has exactly one writer (its device's worker). A worker stores the value first
and the time it was fresh second, so a reader that races a write sees a new value with an
older time: it looks staler than it is, never fresher (the safe side).
"""

from __future__ import annotations

import threading
import time
from enum import IntEnum

import numpy as np
import numpy.typing as npt


class Dev(IntEnum):
    SENSOR = 0
    COOLER = 1
    LASER = 2
    INTERLOCK = 3


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


# Register names in a profile that feed a checked channel. Other registers are only logged.
SENSOR_CHANNELS = {"skin_temp_c": Ch.SKIN_TEMP_C, "fault_code": Ch.SENSOR_FAULT_CODE}
COOLER_CHANNELS = {
    "plate_temp_c": Ch.PLATE_TEMP_C,
    "flow_l_min": Ch.FLOW_L_MIN,
    "setpoint_c": Ch.COOLER_SETPOINT_C,
    "fault_code": Ch.COOLER_FAULT_CODE,
}
SETTING_CHANNELS = {
    "fluence_j_cm2": Ch.FLUENCE_J_CM2,
    "pulse_ms": Ch.PULSE_MS,
    "spot_mm": Ch.SPOT_MM,
    "rep_rate_hz": Ch.REP_RATE_HZ,
}
LASER_STATE_CODES = {"STANDBY": 0.0, "READY": 1.0, "FIRING": 2.0, "FAULT": 3.0}
LASER_STATE_NAMES = {v: k for k, v in LASER_STATE_CODES.items()}


class LiveState:
    """Latest values (NaN until first read), freshness per device, link state per device."""

    def __init__(self) -> None:
        self.value: npt.NDArray[np.float64] = np.full(len(Ch), np.nan)
        self.fresh_ns: npt.NDArray[np.int64] = np.zeros(len(Dev), dtype=np.int64)
        self.link_ok: npt.NDArray[np.bool_] = np.zeros(len(Dev), dtype=np.bool_)
        self.link_error: list[str | None] = [None] * len(Dev)
        # Set by a worker after it stored new samples; the interlock loop waits on it.
        self.new_data = threading.Event()
        # The halt path's progress (perf_counter_ns; 0 = none), written by the bridge: when
        # the latched halt began, and when the laser last confirmed STOP.
        self.halt_ns = 0
        self.stop_confirmed_ns = 0

    def store(self, ch: Ch, value: float) -> None:
        self.value[ch] = value

    def mark_fresh(self, dev: Dev) -> None:
        self.fresh_ns[dev] = time.perf_counter_ns()

    def link_up(self, dev: Dev) -> None:
        self.link_error[dev] = None
        self.link_ok[dev] = True

    def link_down(self, dev: Dev, why: str) -> None:
        self.link_ok[dev] = False
        self.link_error[dev] = why

    def laser_state(self) -> str:
        code = self.value[Ch.LASER_STATE]
        return "UNKNOWN" if np.isnan(code) else LASER_STATE_NAMES.get(float(code), "UNKNOWN")
