"""Skin-temperature checks that fit real treatment, beyond the hard band.

A pulse heats the epidermis for milliseconds: feedback systems aim for a post-pulse surface
of 40–45 °C (CoolTouch), and 44 °C is a threshold for hours (Henriques & Moritz 1947), not
for a transient. So one instantaneous band cannot tell a normal treatment from a failing
one. The checks (``monitor.core.checks`` wires them by name; docs/limits.md, "Skin
temperature"):

(a) the pre-pulse **baseline** (``PulseBaseline``): the lowest skin temperature between two
    pulses. With working cooling the surface cools back down before the next pulse; a
    baseline that creeps up means heat is building up or the cooling is lost. A pulse fired
    on a baseline above the limit halts, and so does a series whose next pulse is due while
    the skin has not cooled below the limit since the last one: the next pulse is refused.
(b) the post-pulse **peak** against a hard ceiling: the band's ``high``, any reading above it
    halts at once (a band slot in ``checks``).
(c) the accumulated **thermal dose** at the treatment area: ``monitor.core.dose_meter.DoseMeter``
    (``thermal_dose_warn`` at ``limits.thermal_dose.cem43_warn_min``; ``thermal_dose_high``
    only when the profile sets ``cem43_halt_min``).
(d) the **low limit** set by the cooling method: the band's ``low`` (bounded by the method
    at load) and, for cryogen, no more than a spurt's time below freezing (``FreezeTimer``).

Each tracker keeps a few floats and allocates nothing: it runs in the interlock loop.
"""

from __future__ import annotations

import math

from device_profiles.clinical import SKIN_FREEZES_C


class PulseBaseline:
    """(a) The pre-pulse baseline, from the laser's pulse counter and the skin temperature.

    The window of a pulse runs from one move of the counter to the next; its lowest skin
    temperature is the baseline before the pulse that ends it. ``lead_ns``: how long before
    the next pulse is due LaserGuard must decide (the reaction time, plus the laser's poll
    period by which the counter's move is seen late).
    """

    def __init__(self, limit_c: float, lead_ns: int) -> None:
        self.limit_c = limit_c
        self.lead_ns = lead_ns
        self.pulses = math.nan
        self.window_min = math.inf  # lowest skin temperature since the last pulse
        self.last_baseline = math.nan  # the baseline before the last pulse
        self.last_pulse_ns = 0
        self.in_series = False  # pulses follow each other at the set rate
        self.fired_warm = False  # the last pulse fired on a baseline above the limit
        self.warm_before_next = False  # the next pulse is due and the skin is still too warm

    def update(
        self, now_ns: int, pulses: float, skin_c: float, firing: bool, rate_hz: float
    ) -> bool:
        """True while the check is active. NaN skin or counter is never judged here (the
        invalid-sample and staleness checks own it)."""
        moved = pulses != self.pulses and pulses == pulses
        self.fired_warm = False
        if moved:
            if self.pulses == self.pulses:  # a pulse, not the first reading of the counter
                self.last_baseline = self.window_min
                self.fired_warm = self.window_min > self.limit_c
                self.in_series = True
            self.pulses = pulses
            self.window_min = math.inf
            self.last_pulse_ns = now_ns
        if skin_c < self.window_min:
            self.window_min = skin_c
        period_ns = 1e9 / rate_hz if rate_hz > 0 else math.inf  # NaN rate: never due
        since_ns = now_ns - self.last_pulse_ns
        if not since_ns <= 2 * period_ns + self.lead_ns:
            self.in_series = False  # a pause in firing: the next pulse starts a new series
        due = firing and self.in_series and since_ns >= period_ns - self.lead_ns
        self.warm_before_next = due and self.window_min > self.limit_c
        return self.fired_warm or self.warm_before_next


class FreezeTimer:
    """(d) How long the skin has been below freezing; active beyond ``hold_ms`` (None: never,
    for a cooling method whose low limit already lies at or above freezing)."""

    def __init__(self, hold_ms: float | None) -> None:
        self.hold_ns = math.inf if hold_ms is None else hold_ms * 1e6
        self.since_ns = -1  # when the skin went below freezing; -1: it is not below

    def update(self, now_ns: int, skin_c: float) -> bool:
        if skin_c < SKIN_FREEZES_C:
            if self.since_ns < 0:
                self.since_ns = now_ns
            return now_ns - self.since_ns > self.hold_ns
        self.since_ns = -1
        return False

    def frozen_ms(self, now_ns: int) -> float:
        return 0.0 if self.since_ns < 0 else (now_ns - self.since_ns) / 1e6
