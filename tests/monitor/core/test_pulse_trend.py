"""The trend warning: one pulse ahead of the skin-temperature halt, silent when cooling works."""

from __future__ import annotations

import math
from collections.abc import Callable

from monitor.core.checks import PulseTrend

LIMIT_C = 44.0
RISE_PER_PULSE_C = 9.6  # what one 120 J/cm² pulse adds at 1064 nm on type III in the simulator


def replay(
    plate_c: Callable[[float], float], seconds: float = 30.0
) -> tuple[int | None, int | None]:
    """Pulses at 1 Hz from 2 s on a skin relaxing toward the plate (tau 1.5 s).

    Returns the pulse count when the warning first fired and when the skin first crossed.
    """
    trend, temp, t, dt, pulses = PulseTrend(), 10.8, 0.0, 0.005, 0
    warned = crossed = None
    trend.update(0, 0.0, temp)
    while t < seconds:
        t += dt
        target = 0.8 * plate_c(t) + 0.2 * 34.0
        temp = target + (temp - target) * math.exp(-dt / 1.5)
        if t >= 2 and abs((t - 2) - round(t - 2)) < dt / 2:
            temp += RISE_PER_PULSE_C
            pulses += 1
        predicted = trend.update(int(t * 1e9), float(pulses), temp)
        if warned is None and predicted > LIMIT_C:
            warned = pulses
        if crossed is None and temp > LIMIT_C:
            crossed = pulses
    return warned, crossed


def failing_chiller(t: float) -> float:
    return 5.0 if t < 5 else 26.0 - 21.0 * math.exp(-(t - 5) / 3.0)


def test_no_warning_while_the_cooling_works() -> None:
    assert replay(lambda t: 5.0) == (None, None)


def test_a_failing_chiller_is_warned_about_one_pulse_before_the_crossing() -> None:
    warned, crossed = replay(failing_chiller)
    assert crossed is not None and warned is not None
    assert warned == crossed - 1


def test_a_pause_in_firing_forgets_the_trend() -> None:
    trend = PulseTrend()
    for k, peak in enumerate([30.0, 34.0, 37.0, 39.0, 41.0, 42.0], start=1):
        trend.update(k * 1_000_000_000, float(k), peak)
    assert trend.predicted > 42.0  # peaks 37 → 39 → 41, now 42: still climbing
    trend.update(10_000_000_000, 6.0, 20.0)  # four seconds later, no pulse
    assert trend.predicted == float("-inf")


def test_an_unknown_pulse_count_is_never_a_pulse() -> None:
    trend = PulseTrend()
    for k in range(10):
        trend.update(k * 1_000_000, float("nan"), 50.0 + k)
    assert trend.predicted == float("-inf")


def test_the_warning_says_where_the_next_pulse_goes() -> None:
    from device_profiles.loader import load
    from device_profiles.schema import SkinType
    from firmware_bridge.live import LASER_STATE_CODES, Ch
    from monitor.core.checks import INDEX, CheckEngine
    from tests.monitor.core.live_values import healthy

    engine = CheckEngine(load("demo-ndyag-1064").setup, SkinType.III)
    live = healthy(0)
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["FIRING"])
    for k, peak in enumerate([34.0, 38.0, 41.0, 44.0, 46.0, 47.5], start=1):
        live.store(Ch.LASER_PULSES, float(k))
        live.store(Ch.SKIN_TEMP_C, peak)
        live.fresh_ns[:] = k * 1_000_000_000
        active = engine.evaluate(live, k * 1_000_000_000, emission_permitted=True)
    assert active[INDEX["skin_temp_trend"]]
    words = engine.reason(INDEX["skin_temp_trend"], live)
    assert words.startswith("next pulse predicted to reach") and "limit 48 °C" in words
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["READY"])  # footswitch released
    assert not engine.evaluate(live, 6_000_000_000, emission_permitted=True)[
        INDEX["skin_temp_trend"]
    ]
