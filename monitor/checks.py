"""Every interlock check, evaluated for all channels at once into one boolean vector.

Each check lives here once. ``CheckEngine.evaluate`` is the hot path: it reads the live
arrays into preallocated buffers and writes ``active`` in place, without allocating. Words
for people (``reason``) are made only when a check becomes active, after the halt is sent.

Severity: HALT checks stop emission and latch; WARN checks block arming and are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from device_profiles.schema import Setup, SkinType
from firmware_bridge.live import LASER_STATE_CODES, Ch, Dev, LiveState
from monitor.gate import LimitTable


class Severity(IntEnum):
    WARN = 1
    HALT = 2


@dataclass(frozen=True)
class CheckSpec:
    name: str
    severity: Severity
    what: str


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("skin_temp_high", Severity.HALT, "skin temperature above its band"),
    CheckSpec("skin_temp_low", Severity.HALT, "skin temperature below its band"),
    CheckSpec("skin_temp_invalid", Severity.HALT, "skin temperature is not a number"),
    CheckSpec("sensor_stale", Severity.HALT, "no fresh skin-temperature sample"),
    CheckSpec("cooler_stale", Severity.HALT, "no fresh cooler sample"),
    CheckSpec("laser_stale", Severity.HALT, "no fresh laser status"),
    CheckSpec("sensor_link", Severity.HALT, "lost communication with the sensor"),
    CheckSpec("cooler_link", Severity.HALT, "lost communication with the cooler"),
    CheckSpec("laser_link", Severity.HALT, "lost communication with the laser"),
    CheckSpec("interlock_link", Severity.HALT, "lost communication with the interlock relay"),
    CheckSpec("device_fault", Severity.HALT, "a device reports a fault code"),
    CheckSpec("cooler_plate_trip", Severity.HALT, "cooling plate outside its safe band"),
    CheckSpec("cooler_flow_low", Severity.HALT, "coolant flow below its minimum"),
    CheckSpec(
        "settings_readback", Severity.HALT, "settings read back from the laser out of limits"
    ),
    CheckSpec("laser_fault", Severity.HALT, "the laser reports FAULT"),
    CheckSpec("unexpected_emission", Severity.HALT, "laser READY or firing without permission"),
    CheckSpec("cooler_plate_warn", Severity.WARN, "cooling plate outside its treatment band"),
)
INDEX = {c.name: i for i, c in enumerate(CHECKS)}
HALT_MASK = np.array([c.severity is Severity.HALT for c in CHECKS], dtype=np.bool_)


class CheckEngine:
    """The checks of one session (its setup, its patient's skin type)."""

    def __init__(self, setup: Setup, skin_type: SkinType) -> None:
        lim = setup.limits
        self.setup = setup
        self.skin_type = skin_type
        self.table = LimitTable(lim.settings)
        self.skin_low, self.skin_high = lim.skin_temp_c.low, lim.skin_temp_c.high
        self.plate_warn = (lim.cooler_plate_temp_c.low, lim.cooler_plate_temp_c.high)
        self.plate_trip = (lim.cooler_plate_trip_c.low, lim.cooler_plate_trip_c.high)
        self.flow_min = lim.cooler_flow_l_min_min
        self.hyst = lim.hysteresis_c
        self.stale_ns = (
            np.array([lim.stale_ms["sensor"], lim.stale_ms["cooler"], lim.stale_ms["laser"]]) * 1e6
        )
        self.active: npt.NDArray[np.bool_] = np.zeros(len(CHECKS), dtype=np.bool_)
        self._v = np.full(len(Ch), np.nan)
        self._age = np.zeros(3)
        self._stale = np.zeros(3, dtype=np.bool_)
        self._rank = np.array([skin_type.rank])
        self._s = np.zeros((4, 1))
        self._emitting = (LASER_STATE_CODES["READY"], LASER_STATE_CODES["FIRING"])

    def evaluate(
        self, live: LiveState, now_ns: int, emission_permitted: bool
    ) -> npt.NDArray[np.bool_]:
        """Fill and return ``active``. The hot path: no allocation beyond NumPy scalars."""
        a, v = self.active, self._v
        np.copyto(v, live.value)
        np.subtract(now_ns, live.fresh_ns[:3], out=self._age)
        np.greater(self._age, self.stale_ns, out=self._stale)
        skin = v[Ch.SKIN_TEMP_C]
        h = self.hyst  # an active temperature alarm clears only h back inside its band
        a[0] = skin > self.skin_high - (h if a[0] else 0.0)
        a[1] = skin < self.skin_low + (h if a[1] else 0.0)
        a[2] = skin != skin
        a[3:6] = self._stale
        a[6:10] = ~live.link_ok
        a[10] = (v[Ch.SENSOR_FAULT_CODE] != 0) | (v[Ch.COOLER_FAULT_CODE] != 0)
        plate = v[Ch.PLATE_TEMP_C]
        ht, hw = (h if a[11] else 0.0), (h if a[16] else 0.0)
        a[11] = not (self.plate_trip[0] + ht <= plate <= self.plate_trip[1] - ht)
        a[12] = not (v[Ch.FLOW_L_MIN] >= self.flow_min)
        self._s[0, 0] = v[Ch.FLUENCE_J_CM2]
        self._s[1, 0] = v[Ch.PULSE_MS]
        self._s[2, 0] = v[Ch.SPOT_MM]
        self._s[3, 0] = v[Ch.REP_RATE_HZ]
        a[13] = not self.table.evaluate(self._s[0], self._s[1], self._s[2], self._s[3], self._rank)[
            0
        ]
        state = v[Ch.LASER_STATE]
        a[14] = state == LASER_STATE_CODES["FAULT"]
        a[15] = (not emission_permitted) and (state in self._emitting)
        a[16] = not (self.plate_warn[0] + hw <= plate <= self.plate_warn[1] - hw)
        return a

    def reason(self, index: int, live: LiveState) -> str:
        """Plain words for a check that just became active (not on the hot path)."""
        v = live.value
        name = CHECKS[index].name
        if name.startswith("skin_temp"):
            return (
                f"skin temperature {v[Ch.SKIN_TEMP_C]:.2f} °C outside "
                f"{self.skin_low:g}–{self.skin_high:g} °C"
            )
        if name.endswith("_stale"):
            dev = Dev[name.removesuffix("_stale").upper()]
            limit_ms = self.stale_ns[dev] / 1e6
            return f"no fresh {dev.name.lower()} data for more than {limit_ms:g} ms"
        if name.endswith("_link"):
            dev = Dev[name.removesuffix("_link").upper()]
            return f"lost communication with the {dev.name.lower()}: {live.link_error[dev]}"
        if name == "device_fault":
            return (
                f"fault code sensor={v[Ch.SENSOR_FAULT_CODE]:g} cooler={v[Ch.COOLER_FAULT_CODE]:g}"
            )
        if name.startswith("cooler_plate"):
            lo, hi = self.plate_trip if name.endswith("trip") else self.plate_warn
            return f"cooling plate {v[Ch.PLATE_TEMP_C]:.2f} °C outside {lo:g}–{hi:g} °C"
        if name == "cooler_flow_low":
            return f"coolant flow {v[Ch.FLOW_L_MIN]:.2f} L/min below {self.flow_min:g} L/min"
        if name == "settings_readback":
            settings = {
                "fluence_j_cm2": float(v[Ch.FLUENCE_J_CM2]),
                "pulse_ms": float(v[Ch.PULSE_MS]),
                "spot_mm": float(v[Ch.SPOT_MM]),
                "rep_rate_hz": float(v[Ch.REP_RATE_HZ]),
            }
            return "laser reads back " + self.table.check(self.skin_type, settings).explain()
        return CHECKS[index].what
