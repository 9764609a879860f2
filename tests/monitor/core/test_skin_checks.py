"""Issue 12, item 7: skin-temperature checks that fit real treatment.

A treatment is played into a real ``CheckEngine`` sample by sample (5 ms apart, as the
bundled sensor is polled): a pulse every second lifts the surface to its post-pulse peak,
contact cooling pulls it back down before the next. Feedback systems aim for 40-45 °C after a
pulse; 44 °C is a threshold for hours, not for a transient. So a normal treatment peaking at
43-45 °C goes on, while a baseline that creeps up, a peak past the hard ceiling, a thermal
dose past its limit, or skin frozen longer than a cryogen spurt halts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from device_profiles.clinical import CoolingMethod
from device_profiles.laser_state import LaserState
from device_profiles.loader import load
from device_profiles.schema import SettingsLimit, Setup, SkinTempBand, SkinType
from firmware_bridge.live import Ch, LiveState
from monitor.core.checks import HALT_MASK, INDEX, CheckEngine
from tests.monitor.core.live_values import healthy

SETUP: Setup = load("demo-ndyag-1064").setup
SAMPLE_NS = 5_000_000  # the demo sensor's poll period
SECOND_NS = 1_000_000_000
COOL_TAU_S = 0.15  # how fast the cooled surface falls back after a pulse (the shape only)


def names(engine: CheckEngine, active: np.ndarray) -> set[str]:
    return {engine.checks[i].name for i in np.flatnonzero(active)}


def treatment(
    peaks: list[float], troughs: list[float], rate_hz: float = 1.0
) -> Iterator[tuple[int, int, float]]:
    """(time, pulse count, skin °C) every 5 ms: pulse k lifts the skin to ``peaks[k]``, which
    then falls exponentially towards ``troughs[k]``, reached before the next pulse."""
    period = int(SECOND_NS / rate_hz)
    t0 = SECOND_NS
    for k, (peak, trough) in enumerate(zip(peaks, troughs, strict=True)):
        for t in range(0, period, SAMPLE_NS):
            fall = math.exp(-t / 1e9 / COOL_TAU_S)
            yield t0 + k * period + t, k + 1, trough + (peak - trough) * fall


def play(
    engine: CheckEngine,
    samples: Iterator[tuple[int, int, float]],
    *,
    rate_hz: float = 1.0,
    stop_at_halt: bool = True,
) -> tuple[list[tuple[int, int, set[str]]], LiveState]:
    """Feed the samples to the engine as a firing laser; every evaluation's active names."""
    live = healthy(0)
    live.store(Ch.LASER_STATE, LaserState.FIRING.code)
    live.store(Ch.REP_RATE_HZ, rate_hz)
    live.store(Ch.LASER_PULSES, 0.0)
    engine.evaluate(live, 0, emission_permitted=True)  # the counter as first read
    seen: list[tuple[int, int, set[str]]] = []
    for t, pulses, skin in samples:
        live.store(Ch.LASER_PULSES, float(pulses))
        live.store(Ch.SKIN_TEMP_C, skin)
        live.fresh_ns[:] = t
        active = engine.evaluate(live, t, emission_permitted=True)
        seen.append((t, pulses, names(engine, active)))
        if stop_at_halt and (active & HALT_MASK).any():
            break
    return seen, live


def engine_for(setup: Setup = SETUP) -> CheckEngine:
    return CheckEngine(setup, SkinType.III)


# --- (b) and the normal treatment -----------------------------------------------------------


def test_item7_a_normal_treatment_with_post_pulse_peaks_of_43_to_45_is_not_halted() -> None:
    peaks = [43.0, 44.0, 45.0, 44.5, 43.5, 45.0, 44.0, 43.0] * 4
    seen, _ = play(engine_for(), treatment(peaks, [20.0] * len(peaks)), stop_at_halt=False)
    assert max(skin for *_, skin in treatment(peaks, [20.0] * len(peaks))) == 45.0
    assert all(not active for *_, active in seen), {n for *_, a in seen for n in a}
    assert seen[-1][1] == len(peaks)  # every pulse fired


def test_item7_b_a_post_pulse_peak_above_the_hard_ceiling_halts_at_once() -> None:
    peaks = [44.0, 44.0, 48.6, 44.0]
    seen, _ = play(engine_for(), treatment(peaks, [20.0] * 4))
    t, pulse, active = seen[-1]
    assert active == {"skin_temp_high"}
    assert pulse == 3 and t == SECOND_NS + 2 * SECOND_NS  # the first sample of that peak


# --- (a) the pre-pulse baseline --------------------------------------------------------------


def test_item7_a_a_slowly_warming_baseline_halts_before_the_next_pulse() -> None:
    """Cooling failing: each trough warmer than the last; the peaks stay below the ceiling."""
    troughs = [20.0, 22.5, 25.0, 27.5, 30.5, 33.0, 35.5]
    peaks = [x + 12.0 for x in troughs]  # at most 47.5 °C: the hard ceiling never trips
    seen, _ = play(engine_for(), treatment(peaks, troughs))
    t, pulse, active = seen[-1]
    assert active == {"skin_baseline_high"}
    # Halted after pulse 5 (its trough 30.5 °C), before pulse 6 is due: the next pulse is
    # refused, the laser's reaction time plus one laser poll ahead of it.
    assert pulse == 5
    due = SECOND_NS + 5 * SECOND_NS
    lead = (SETUP.limits.required_reaction_ms + SETUP.laser.poll_period_ms) * 1e6
    assert due - lead <= t < due
    assert not any("skin_temp_high" in a for *_, a in seen)


def test_item7_a_a_pulse_fired_on_a_warm_baseline_halts() -> None:
    engine = engine_for()
    live = healthy(0)
    live.store(Ch.LASER_STATE, LaserState.FIRING.code)
    live.store(Ch.LASER_PULSES, 4.0)
    live.store(Ch.SKIN_TEMP_C, 31.0)  # never cooler than this since pulse 4
    engine.evaluate(live, 0, emission_permitted=True)
    live.fresh_ns[:] = 100_000_000
    engine.evaluate(live, 100_000_000, emission_permitted=True)
    live.store(Ch.LASER_PULSES, 5.0)  # the next pulse fired (a rate the check did not expect)
    live.store(Ch.SKIN_TEMP_C, 44.0)
    live.fresh_ns[:] = 200_000_000
    active = engine.evaluate(live, 200_000_000, emission_permitted=True)
    assert names(engine, active) == {"skin_baseline_high"}
    words = engine.reason(INDEX["skin_baseline_high"], live)
    assert "31.0 °C before the last pulse" in words and "30 °C baseline limit" in words


def test_item7_a_a_pause_in_firing_is_no_baseline_halt_but_blocks_arming_while_warm() -> None:
    engine = engine_for()
    troughs = [25.0, 28.0]
    seen, live = play(engine, treatment([40.0, 43.0], troughs), stop_at_halt=False)
    assert all(not a for *_, a in seen)
    # The footswitch released, the skin still at 31 °C: nothing to halt, but no arming.
    live.store(Ch.LASER_STATE, LaserState.READY.code)
    live.store(Ch.SKIN_TEMP_C, 31.0)
    t = seen[-1][0] + 5 * SECOND_NS
    live.fresh_ns[:] = t
    assert names(engine, engine.evaluate(live, t, emission_permitted=True)) == set()
    live.store(Ch.LASER_STATE, LaserState.STANDBY.code)
    assert names(engine, engine.evaluate(live, t, emission_permitted=False)) == {
        "skin_too_warm_to_arm"
    }
    assert not HALT_MASK[INDEX["skin_too_warm_to_arm"]]
    live.store(Ch.SKIN_TEMP_C, 29.8)  # back inside, but within the 0.5 °C hysteresis
    assert "skin_too_warm_to_arm" in names(engine, engine.evaluate(live, t, False))
    live.store(Ch.SKIN_TEMP_C, 25.0)
    assert names(engine, engine.evaluate(live, t, emission_permitted=False)) == set()


# --- (c) the thermal dose: monitor.core.dose_meter, tested in test_dose_meter.py and by the
# slow-burn row of the fault matrix (a dose limit halts while the surface stays under 44 °C).


# --- (d) the low limit by cooling method -----------------------------------------------------


def cryogen_setup() -> Setup:
    rows: list[SettingsLimit] = [
        r.model_copy(update={"cooling": [CoolingMethod.CRYOGEN]}) for r in SETUP.limits.settings
    ]
    return SETUP.model_copy(
        update={
            "cooler": SETUP.cooler.model_copy(update={"method": CoolingMethod.CRYOGEN}),
            "limits": SETUP.limits.model_copy(
                update={"skin_temp_c": SkinTempBand(low=-10.0, high=48.0), "settings": rows}
            ),
        }
    )


def cold_for(engine: CheckEngine, skin_c: float, ms: float) -> set[str]:
    live = healthy(0)
    live.store(Ch.SKIN_TEMP_C, skin_c)
    engine.evaluate(live, 0, emission_permitted=True)
    live.fresh_ns[:] = int(ms * 1e6)
    return names(engine, engine.evaluate(live, int(ms * 1e6), emission_permitted=True))


def test_item7_d_a_cryogen_spurt_takes_the_surface_to_minus_9_without_a_halt() -> None:
    assert cold_for(engine_for(cryogen_setup()), -9.0, 60.0) == set()


def test_item7_d_skin_below_freezing_longer_than_a_spurt_halts() -> None:
    engine = engine_for(cryogen_setup())
    assert cold_for(engine, -5.0, 150.0) == {"skin_frozen"}
    assert "for more than 100 ms with cryogen cooling" in engine.reason(
        INDEX["skin_frozen"], healthy(0)
    )


def test_item7_d_below_the_cryogen_floor_halts_at_once() -> None:
    assert cold_for(engine_for(cryogen_setup()), -10.5, 0.0) == {"skin_temp_low"}


def test_item7_d_contact_cooling_halts_above_freezing() -> None:
    # The demo's contact plate: its low limit is 2 °C; freezing is never reached.
    assert cold_for(engine_for(), 1.5, 0.0) == {"skin_temp_low"}


# --- cooling required: a plate above its treatment band halts --------------------------------


def test_item7_with_cooling_required_a_plate_above_its_band_halts() -> None:
    engine = engine_for()
    live = healthy(0)
    live.store(Ch.PLATE_TEMP_C, 16.0)  # above the 15 °C treatment band, below the 30 °C trip
    assert names(engine, engine.evaluate(live, 0, emission_permitted=True)) == {"cooler_plate_high"}
    assert "while the settings require epidermal cooling" in engine.reason(
        INDEX["cooler_plate_high"], live
    )
    # Not firing: a warning that refuses arming, as before.
    assert names(engine, engine.evaluate(live, 0, emission_permitted=False)) == {
        "cooler_plate_warn"
    }


def test_item7_without_cooling_required_a_warm_plate_only_warns() -> None:
    rows = [r.model_copy(update={"cooling_required": False}) for r in SETUP.limits.settings]
    engine = engine_for(
        SETUP.model_copy(update={"limits": SETUP.limits.model_copy(update={"settings": rows})})
    )
    live = healthy(0)
    live.store(Ch.PLATE_TEMP_C, 16.0)
    assert names(engine, engine.evaluate(live, 0, emission_permitted=True)) == {"cooler_plate_warn"}
