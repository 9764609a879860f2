"""The shared latest values: unknown until stored, link state with its reason."""

from __future__ import annotations

import math

import pytest

from firmware_bridge.live import ANSWER_MIN, ANSWER_WINDOW, LASER_STATE_CODES, Ch, Dev, LiveState


def test_every_value_is_nan_until_stored() -> None:
    live = LiveState()
    assert all(math.isnan(live.value[ch]) for ch in Ch)
    live.store(Ch.SKIN_TEMP_C, 31.5)
    assert live.value[Ch.SKIN_TEMP_C] == 31.5
    assert math.isnan(live.value[Ch.PLATE_TEMP_C])


def test_no_device_is_fresh_or_linked_at_start() -> None:
    live = LiveState()
    assert all(live.fresh_ns[d] == 0 for d in Dev)
    assert not any(live.link_ok)
    assert live.link_error == [None] * len(Dev)


def test_mark_fresh_moves_forward() -> None:
    live = LiveState()
    live.mark_fresh(Dev.SENSOR)
    first = int(live.fresh_ns[Dev.SENSOR])
    live.mark_fresh(Dev.SENSOR)
    assert first > 0
    assert live.fresh_ns[Dev.SENSOR] >= first
    assert live.fresh_ns[Dev.COOLER] == 0


def test_link_down_keeps_the_reason_and_link_up_clears_it() -> None:
    live = LiveState()
    live.link_up(Dev.COOLER)
    assert live.link_ok[Dev.COOLER]
    live.link_down(Dev.COOLER, "no reply within 50 ms")
    assert not live.link_ok[Dev.COOLER]
    assert live.link_error[Dev.COOLER] == "no reply within 50 ms"
    assert live.link_error[Dev.SENSOR] is None
    live.link_up(Dev.COOLER)
    assert live.link_ok[Dev.COOLER]
    assert live.link_error[Dev.COOLER] is None


def test_a_device_fault_stays_with_its_nan_until_a_value_replaces_it() -> None:
    live = LiveState()
    live.store(Ch.SKIN_TEMP_C, math.nan, "sensor reports over-range (0x7FFF)")
    assert math.isnan(live.value[Ch.SKIN_TEMP_C])
    assert live.fault[Ch.SKIN_TEMP_C] == "sensor reports over-range (0x7FFF)"
    assert live.fault[Ch.PLATE_TEMP_C] is None
    live.store(Ch.SKIN_TEMP_C, 31.5)
    assert live.value[Ch.SKIN_TEMP_C] == 31.5
    assert live.fault[Ch.SKIN_TEMP_C] is None


@pytest.mark.parametrize("name", ["STANDBY", "READY", "FIRING", "FAULT"])
def test_laser_state_names_round_trip(name: str) -> None:
    live = LiveState()
    live.store(Ch.LASER_STATE, LASER_STATE_CODES[name])
    assert live.laser_state() == name


@pytest.mark.parametrize("code", [math.nan, 7.0, -1.0, 1.5])
def test_an_unknown_laser_state_is_unknown(code: float) -> None:
    live = LiveState()
    live.store(Ch.LASER_STATE, code)
    assert live.laser_state() == "UNKNOWN"


def test_laser_state_is_unknown_before_the_first_status() -> None:
    assert LiveState().laser_state() == "UNKNOWN"


def test_item6_answer_times_are_unknown_until_enough_answers() -> None:
    live = LiveState()
    for _ in range(ANSWER_MIN - 1):
        live.record_answer(Dev.SENSOR, 29.0)
    assert math.isnan(live.answer_worst_ms[Dev.SENSOR])
    assert math.isnan(live.answer_typical_ms[Dev.SENSOR])
    live.record_answer(Dev.SENSOR, 29.0)
    assert live.answer_worst_ms[Dev.SENSOR] == 29.0
    assert live.answer_typical_ms[Dev.SENSOR] == 29.0
    assert math.isnan(live.answer_worst_ms[Dev.COOLER])  # one ring per device


def test_item6_recent_worst_leaves_out_the_slowest_quarter_and_forgets_old_answers() -> None:
    live = LiveState()
    for ms in [1.0] * 24 + [40.0] * 8:  # a quarter of the answers are host hiccups
        live.record_answer(Dev.LASER, ms)
    assert live.answer_worst_ms[Dev.LASER] == 1.0
    assert live.answer_typical_ms[Dev.LASER] == 1.0
    live.record_answer(Dev.LASER, 30.0)  # one more slow answer than a quarter: it counts
    assert live.answer_worst_ms[Dev.LASER] == 30.0
    assert live.answer_typical_ms[Dev.LASER] == 1.0
    for _ in range(ANSWER_WINDOW):  # a whole window of prompt answers later
        live.record_answer(Dev.LASER, 2.0)
    assert live.answer_worst_ms[Dev.LASER] == 2.0
    assert live.answer_typical_ms[Dev.LASER] == 2.0


def test_item7_settings_are_read_back_by_name_from_their_own_channels() -> None:
    """The one settings-to-channel map: each setting from its channel, in the gate's order."""
    from device_profiles.schema import LASER_SETTINGS
    from firmware_bridge.live import SETTING_CHANNELS

    live = LiveState()
    assert all(math.isnan(v) for v in live.settings().values())
    live.store(Ch.FLUENCE_J_CM2, 120.0)
    live.store(Ch.PULSE_MS, 30.0)
    live.store(Ch.SPOT_MM, 3.0)
    live.store(Ch.REP_RATE_HZ, 1.5)
    live.store(Ch.LASER_PULSES, 99.0)  # next to the settings, not one of them
    assert live.settings() == {
        "fluence_j_cm2": 120.0,
        "pulse_ms": 30.0,
        "spot_mm": 3.0,
        "rep_rate_hz": 1.5,
    }
    assert tuple(live.settings()) == tuple(SETTING_CHANNELS) == LASER_SETTINGS
