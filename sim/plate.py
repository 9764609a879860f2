"""The cooling window's plate temperature: first order toward a target, exact at any time.

A working chiller pulls the plate to its setpoint with `CHILLER_TAU_S`; a failed one lets
it drift toward room temperature with the scenario's time constant. The state is kept as
(value at t0, target, tau), so `temp_at` is a closed form and needs no ticking.
"""

from __future__ import annotations

import math

#: How fast a working chiller follows a new setpoint. A demonstration value.
CHILLER_TAU_S = 4.0


class ContactPlate:
    def __init__(self, temp_c: float) -> None:
        self._t0 = 0.0
        self._c0 = temp_c
        self.target_c = temp_c
        self.tau_s = CHILLER_TAU_S
        self.setpoint_c = temp_c
        self.working = True

    def temp_at(self, t_s: float) -> float:
        dt = max(0.0, t_s - self._t0)
        return self.target_c + (self._c0 - self.target_c) * math.exp(-dt / self.tau_s)

    def _retarget(self, t_s: float, target_c: float, tau_s: float) -> None:
        self._c0 = self.temp_at(t_s)
        self._t0 = t_s
        self.target_c = target_c
        self.tau_s = tau_s

    def set_setpoint(self, t_s: float, setpoint_c: float) -> None:
        """A write to the chiller's setpoint; moves the plate only while the chiller works."""
        self.setpoint_c = setpoint_c
        if self.working:
            self._retarget(t_s, setpoint_c, CHILLER_TAU_S)

    def fail(self, t_s: float, to_c: float, tau_s: float) -> None:
        """The chiller stops cooling: the plate drifts toward ``to_c``."""
        self.working = False
        self._retarget(t_s, to_c, tau_s)


class FirstOrder:
    """A quantity that moves exponentially towards a target (a coolant flow that fails)."""

    def __init__(self, value: float) -> None:
        self._t0 = 0.0
        self._v0 = value
        self.target = value
        self.tau_s = 1.0

    def at(self, t_s: float) -> float:
        dt = max(0.0, t_s - self._t0)
        return self.target + (self._v0 - self.target) * math.exp(-dt / self.tau_s)

    def retarget(self, t_s: float, target: float, tau_s: float) -> None:
        self._v0 = self.at(t_s)
        self._t0 = t_s
        self.target = target
        self.tau_s = tau_s
