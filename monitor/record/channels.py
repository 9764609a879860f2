"""Which telemetry channel a number in the record stands for, recorded with each session.

A telemetry row stores its channel as a small integer: the channel's position in
``firmware_bridge.live.Ch`` when the row was written. That order is code, and code changes;
if the record relied on it, inserting a channel into the enum would relabel every old log
(a plate temperature shown as the skin's). So each session's chained ``session_start``
record carries its channel map, code → name and unit::

    "channels": [{"code": 0, "name": "skin_temp_c", "unit": "degC"}, ...]

and every reader (``sessions show``, ``plot``, ``verify``) labels a session's rows with that
session's own map, never with today's enum. The writer refuses a row whose channel is not
in its session's map, and ``verify`` reports one.

Sessions written before maps were recorded have none. They are read with
``LEGACY_CHANNEL_MAP``, a frozen copy of ``Ch`` as it stood then (its order never changed
before maps were recorded), and the readers say that they did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from firmware_bridge import live
from monitor.record.errors import SessionLogError

__all__ = [
    "CHANNEL_UNITS",
    "LEGACY_CHANNEL_MAP",
    "START_FIELD",
    "Channel",
    "ChannelMap",
    "channel_map_of",
    "current_channel_map",
]

#: The field of the ``session_start`` payload that holds the map.
START_FIELD = "channels"
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_LUT_MAX = 1023  # channel codes are small: the enum's positions

#: The unit of every channel, by its name. ASCII, so any terminal prints it. A channel added
#: to ``Ch`` without a unit here cannot be recorded: sessions refuse to start.
CHANNEL_UNITS: Mapping[str, str] = {
    "skin_temp_c": "degC",
    "plate_temp_c": "degC",
    "flow_l_min": "L/min",
    "cooler_setpoint_c": "degC",
    "sensor_fault_code": "code",
    "cooler_fault_code": "code",
    "fluence_j_cm2": "J/cm2",
    "pulse_ms": "ms",
    "spot_mm": "mm",
    "rep_rate_hz": "Hz",
    "laser_state": "code",  # firmware_bridge.live.LASER_STATE_CODES
    "laser_pulses": "count",  # the laser's own pulse counter
    "skin_temp_2_c": "degC",  # a second, redundant skin sensor
    "sensor2_fault_code": "code",
}


@dataclass(frozen=True)
class Channel:
    code: int
    name: str  # carries its unit, as every name in LaserGuard does: "skin_temp_c"
    unit: str

    def as_record(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "unit": self.unit}


@dataclass(frozen=True)
class ChannelMap:
    """One session's channels. ``legacy``: the session recorded none; this is the old map."""

    channels: tuple[Channel, ...]
    legacy: bool = False
    _by_code: dict[int, Channel] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, Channel] = field(init=False, repr=False, compare=False)
    # code -> named?, for codes 0.._LUT_MAX: one gather checks a whole telemetry batch.
    _named: npt.NDArray[np.bool_] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code = {c.code: c for c in self.channels}
        by_name = {c.name: c for c in self.channels}
        if len(by_code) != len(self.channels):
            raise ValueError(
                f"a channel code appears twice: {sorted(c.code for c in self.channels)}"
            )
        if len(by_name) != len(self.channels):
            raise ValueError(
                f"a channel name appears twice: {sorted(c.name for c in self.channels)}"
            )
        named = np.zeros(_LUT_MAX + 1, np.bool_)
        named[[c for c in by_code if 0 <= c <= _LUT_MAX]] = True
        # Frozen: the lookups are built once, here.
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_named", named)

    def name(self, code: int) -> str:
        """The channel's name, or ``channel N`` for a code the map does not have."""
        found = self._by_code.get(int(code))
        return f"channel {code}" if found is None else found.name

    def code(self, name: str) -> int | None:
        found = self._by_name.get(name)
        return None if found is None else found.code

    def codes(self) -> frozenset[int]:
        return frozenset(c.code for c in self.channels)

    def first_unnamed(self, channel: npt.NDArray[np.integer[Any]]) -> int | None:
        """The first code in ``channel`` that the map does not name, or None if all are named.

        On the log writer's path (every telemetry batch): a gather, not a set operation.
        """
        if channel.size == 0:
            return None
        lo, hi = int(channel.min()), int(channel.max())
        if lo >= 0 and hi <= _LUT_MAX:
            named = self._named[channel]
            if named.all():
                return None
            return int(channel[~named][0])
        for code in channel.tolist():  # codes far outside any map: rare, and refused anyway
            if code not in self._by_code:
                return int(code)
        return None

    def as_record(self) -> list[dict[str, Any]]:
        return [c.as_record() for c in self.channels]

    @classmethod
    def from_record(cls, record: object) -> ChannelMap:
        """The map a start record holds; ValueError naming what is wrong with it."""
        if not isinstance(record, list) or not record:
            raise ValueError("the channel map is not a non-empty list")
        channels = []
        for i, entry in enumerate(record):
            if not isinstance(entry, dict):
                raise ValueError(f"channel map entry {i} is not an object")
            code, name, unit = entry.get("code"), entry.get("name"), entry.get("unit")
            if isinstance(code, bool) or not isinstance(code, int):
                raise ValueError(f"channel map entry {i} has no integer code")
            if not _I32_MIN <= code <= _I32_MAX:
                raise ValueError(f"channel map entry {i}: code {code} does not fit in int32")
            if not isinstance(name, str) or not name:
                raise ValueError(f"channel map entry {i} has no name")
            if not isinstance(unit, str) or not unit:
                raise ValueError(f"channel map entry {i} ({name}) has no unit")
            channels.append(Channel(code, name, unit))
        return cls(tuple(channels))


def _map_of(members: Iterable[tuple[str, int]], *, legacy: bool = False) -> ChannelMap:
    channels = []
    for member_name, code in members:
        name = member_name.lower()
        unit = CHANNEL_UNITS.get(name)
        if unit is None:
            raise SessionLogError(
                f"telemetry channel {name} has no unit in monitor.record.channels.CHANNEL_UNITS;"
                " a session cannot record a channel it cannot label"
            )
        channels.append(Channel(int(code), name, unit))
    return ChannelMap(tuple(channels), legacy=legacy)


def current_channel_map() -> ChannelMap:
    """The map of the channels this code writes: ``firmware_bridge.live.Ch`` as it is now."""
    return _map_of((m.name, int(m)) for m in live.Ch)


#: ``Ch`` as it stood when logs had no map (unchanged from the first release to issue 8).
_LEGACY_ORDER = (
    "SKIN_TEMP_C",
    "PLATE_TEMP_C",
    "FLOW_L_MIN",
    "COOLER_SETPOINT_C",
    "SENSOR_FAULT_CODE",
    "COOLER_FAULT_CODE",
    "FLUENCE_J_CM2",
    "PULSE_MS",
    "SPOT_MM",
    "REP_RATE_HZ",
    "LASER_STATE",
    "LASER_PULSES",
)
LEGACY_CHANNEL_MAP = _map_of(((name, code) for code, name in enumerate(_LEGACY_ORDER)), legacy=True)


def channel_map_of(start_payload: Mapping[str, Any]) -> ChannelMap:
    """The map a ``session_start`` payload carries, or the legacy map if it has none.

    Raises ValueError if the payload has a map that cannot be read.
    """
    if START_FIELD not in start_payload:
        return LEGACY_CHANNEL_MAP
    return ChannelMap.from_record(start_payload[START_FIELD])
