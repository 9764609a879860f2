"""Simulated time: physics and scenario timelines run on it, protocol timeouts do not.

The simulator plays physical processes (skin heating, a chiller drifting) faster than real
time for tests, but the bridge on the other end of the wires is real: its heartbeats and
relay refreshes arrive on wall time. So laser heartbeat and relay watchdog timeouts use
``time.monotonic()`` directly, and everything on a scenario's timeline uses a `SimClock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated seconds since `start`, running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float = 1.0, *, wall: Callable[[], float] = time.monotonic):
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._wall = wall
        self._t0 = wall()

    def start(self) -> None:
        """Make simulated time zero now."""
        self._t0 = self._wall()

    def now_s(self) -> float:
        return (self._wall() - self._t0) * self.speed

    def wall_now(self) -> float:
        """The wall clock this one runs on (``time.monotonic()`` unless injected)."""
        return self._wall()
