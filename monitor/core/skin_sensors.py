"""The skin reading the checks judge, from one skin sensor or two redundant ones.

With one sensor the checked reading is its value. With two (a setup's ``sensor2``, both on
the same spot) each limit is judged on the reading on its unsafe side: the **hotter** against
the high limit, the colder against the low one (freezing), and the hotter feeds the trend and
the thermal dose. A reading that is not a number on either sensor makes both NaN: unknown is
unsafe (``skin_temp_invalid``).

Two checks of the sensors themselves live here too:

- ``sensor_disagreement``: the two readings further apart than ``tolerance_c`` for longer than
  ``max_ms`` (``limits.sensor_disagreement``). One of them is wrong (a drifting, fogged or
  misaimed sensor) and nobody can tell which: halt. The time allows for a pulse landing between
  the two sensors' polls, which makes them differ for up to one poll period.
- ``sensor_stuck``: a reading bit-identical over ``limits.sensor_stuck_ms`` of fresh samples (its
  sample counter moving). A sensor's own noise makes consecutive raw readings differ; one that
  does not is a stuck converter serving an old value (Engineering notes: "a value that stays
  bit-identical on a noisy sensor is frozen"). Judged per sensor, on fresh samples only: a
  sensor whose counter stops is ``sensor_stale``'s.

``update`` runs on the interlock loop's thread every cycle: plain float arithmetic, no arrays.
"""

from __future__ import annotations

import math

from device_profiles.schema import Setup
from firmware_bridge.live import Ch, Dev, LiveState

__all__ = ["SkinSensors"]

_NAN = math.nan


class _StuckWatch:
    """How long one sensor's fresh readings have been bit-identical."""

    def __init__(self, dev: Dev, ch: Ch) -> None:
        self.dev = dev
        self.ch = ch
        self.fresh_ns = 0
        self.value = _NAN
        self.since_ns = 0

    def update(self, live: LiveState) -> bool:
        """Judge a new sample if there is one; True if there was."""
        fresh = int(live.fresh_ns[self.dev])
        if fresh == self.fresh_ns:
            return False
        self.fresh_ns = fresh
        value = float(live.value[self.ch])
        if value != self.value:  # NaN never equals itself: NaN is skin_temp_invalid's
            self.value = value
            self.since_ns = fresh
        return True

    def stuck_for_ns(self) -> int:
        return self.fresh_ns - self.since_ns


class SkinSensors:
    """The checked skin reading (``hot``, ``cold``) and the sensors' own checks."""

    def __init__(self, setup: Setup) -> None:
        lim = setup.limits
        self.dual = setup.sensor2 is not None
        dis = lim.sensor_disagreement
        self.tolerance_c = dis.tolerance_c if dis is not None else math.inf
        self.disagree_max_ns = dis.max_ms * 1e6 if dis is not None else math.inf
        self.stuck_limit_ns = lim.sensor_stuck_ms * 1e6 if lim.sensor_stuck_ms else math.inf
        self.watches = [_StuckWatch(Dev.SENSOR, Ch.SKIN_TEMP_C)]
        if self.dual:
            self.watches.append(_StuckWatch(Dev.SENSOR2, Ch.SKIN_TEMP_2_C))
        self.hot = _NAN
        self.cold = _NAN
        self.last_sample_ns = 0  # when the newest fresh sample (of either sensor) was taken
        # Time spent disagreeing, counted up while the sensors are apart and down (to 0) while
        # they agree: an up-down counter. A single agreeing sample does not reset it, so a
        # sensor that reads off but crosses the other's reading now and then (pulsed heating
        # sampled at different moments by the two sensors) still accumulates to a halt, while
        # brief transients of healthy sensors (apart less than half the time) never do.
        self.disagree_ns = 0.0
        self._judged_ns = 0  # when the counter was last updated
        self.disagreement = False
        self.stuck = False
        self.widest_c = 0.0  # the widest disagreement since they last agreed, for the words

    def update(self, live: LiveState, now_ns: int) -> bool:
        """Judge the readings now; True if a new sample arrived since the last call."""
        v = live.value
        first = float(v[Ch.SKIN_TEMP_C])
        new = self.watches[0].update(live)
        stuck = self.watches[0].stuck_for_ns() > self.stuck_limit_ns
        if not self.dual:
            self.hot = self.cold = first
        else:
            second = float(v[Ch.SKIN_TEMP_2_C])
            new = self.watches[1].update(live) or new
            stuck = stuck or self.watches[1].stuck_for_ns() > self.stuck_limit_ns
            dt_ns = now_ns - self._judged_ns if self._judged_ns else 0
            self._judged_ns = now_ns
            if first != first or second != second:
                self.hot = self.cold = _NAN  # skin_temp_invalid halts on it
            else:
                self.hot, self.cold = (first, second) if first >= second else (second, first)
                apart = self.hot - self.cold
                if apart > self.tolerance_c:
                    if self.disagree_ns == 0.0 or apart > self.widest_c:
                        self.widest_c = apart
                    self.disagree_ns += dt_ns
                elif self.disagree_ns > dt_ns:
                    self.disagree_ns -= dt_ns
                else:
                    self.disagree_ns = 0.0
            self.disagreement = self.disagree_ns > self.disagree_max_ns
        self.stuck = stuck
        if new:
            fresh = self.watches[0].fresh_ns
            if self.dual and self.watches[1].fresh_ns > fresh:
                fresh = self.watches[1].fresh_ns
            self.last_sample_ns = fresh
        return new

    # --- words (not on the hot path) ----------------------------------------------------------

    def readings(self, live: LiveState) -> str:
        first = float(live.value[Ch.SKIN_TEMP_C])
        if not self.dual:
            return f"{first:.2f} °C"
        second = float(live.value[Ch.SKIN_TEMP_2_C])
        return f"{first:.2f} °C (sensor) and {second:.2f} °C (sensor2)"

    def disagreement_reason(self, live: LiveState) -> str:
        return (
            f"the two skin sensors read {self.readings(live)}, up to {self.widest_c:.2f} °C "
            f"apart, beyond the {self.tolerance_c:g} °C tolerance for {self.disagree_max_ns / 1e6:g} ms "
            "more than they agreed: one of them is wrong; check both sensors' "
            "windows and aim"
        )

    def stuck_reason(self, live: LiveState) -> str:
        which = [
            f"{w.dev.name.lower()} at {w.value:.2f} °C for {w.stuck_for_ns() / 1e6:.0f} ms"
            for w in self.watches
            if w.stuck_for_ns() > self.stuck_limit_ns
        ]
        return (
            f"skin reading bit-identical while new samples arrive ({'; '.join(which)}; limit "
            f"{self.stuck_limit_ns / 1e6:g} ms): a stuck sensor serving an old value"
        )
