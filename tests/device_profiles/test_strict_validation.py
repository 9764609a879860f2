"""Issue 7 item 13: strict validation is strict.

A setup is YAML written by a person. YAML 1.1 reads ``yes`` as true and ``1:30`` as 90, and
``bool`` is an ``int`` in Python, so a lax schema loaded ``baudrate: yes`` as 1 baud. Each case
here is written as the text a person would type, loaded through the real loader.
"""

from __future__ import annotations

import pytest

from device_profiles.loader import ProfileError, bundled_dir, parse

DEMO_TEXT = (bundled_dir() / "demo-ndyag-1064.yaml").read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    """The bundled setup with one piece of text replaced (it must be there exactly once)."""
    assert DEMO_TEXT.count(old) == 1, old
    return DEMO_TEXT.replace(old, new)


def refusal(text: str) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(text, "clinic.yaml")
    return str(exc.value)


# --- strict types -----------------------------------------------------------------------------


def test_item13_baudrate_yes_is_refused_not_read_as_1_baud() -> None:
    message = refusal(edited("baudrate: 115200", "baudrate: yes"))
    assert "laser.transport.baudrate" in message


def test_item13_rate_hz_as_a_quoted_string_is_refused() -> None:
    message = refusal(edited("rate_hz: 1000", 'rate_hz: "1000"'))
    assert "loop.rate_hz" in message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        # YAML 1.1 would read each of these as a boolean, an int (sexagesimal, octal) or a
        # number from a string; a person meant something else, or made a typo.
        ("heartbeat_timeout_ms: 250", "heartbeat_timeout_ms: 4:10", "laser.heartbeat_timeout_ms"),
        ("coil: 0", "coil: on", "interlock_output.modbus_coil.coil"),
        ("watchdog_ms: 200", "watchdog_ms: true", "interlock_output.modbus_coil.watchdog_ms"),
        ("poll_period_ms: 5\n", "poll_period_ms: '5'\n", "sensor.poll_period_ms"),
        ("version: 4 ", "version: 4.0 ", "version"),
        ("writable: true,", "writable: yes,", "cooler.registers.setpoint_c.writable"),
        ("writable: true,", "writable: 1,", "cooler.registers.setpoint_c.writable"),
    ],
    ids=[
        "sexagesimal",
        "on-as-int",
        "true-as-number",
        "quoted-number",
        "float-version",
        "yes-as-bool",
        "one-as-bool",
    ],
)
def test_item13_yaml_1_1_coercions_are_refused(old: str, new: str, field: str) -> None:
    assert field in refusal(edited(old, new))


def test_item13_stopbits_yes_is_not_one_stop_bit() -> None:
    # Literal[1, 2] accepts True even in pydantic's strict mode (True == 1).
    text = edited("baudrate: 115200,", "baudrate: 115200, stopbits: true,")
    assert "laser.transport.stopbits" in refusal(text)


def test_item13_not_a_number_is_refused_where_no_range_would_catch_it() -> None:
    message = refusal(edited("stale_ms: {sensor: 40,", "stale_ms: {sensor: .nan,"))
    assert "limits.stale_ms.sensor" in message


def test_item13_a_key_given_twice_is_refused() -> None:
    # YAML loaders keep the last one silently: a second skin band would replace the first.
    text = edited(
        "  hysteresis_c: 0.5", "  skin_temp_c: {low: 2.0, high: 44.0}\n  hysteresis_c: 0.5"
    )
    message = refusal(text)
    assert "not valid YAML" in message and "skin_temp_c" in message and "twice" in message


def test_item13_yaml_1_2_numbers_still_load() -> None:
    text = edited("rate_hz: 1000", "rate_hz: 1e3").replace("hysteresis_c: 0.5", "hysteresis_c: .5")
    loaded = parse(text, "clinic.yaml")
    assert loaded.setup.loop.rate_hz == 1000.0
    assert loaded.setup.limits.hysteresis_c == 0.5


def test_item13_a_leading_zero_is_decimal_not_octal() -> None:
    loaded = parse(edited("device_id: 1, timeout_ms: 50}", "device_id: 010, timeout_ms: 50}"))
    assert loaded.setup.cooler.transport.device_id == 10


def test_item13_anchors_and_aliases_are_refused() -> None:
    # An alias bomb expands to billions of nodes when validated; setups never need aliases.
    text = edited("device_id: 1, timeout_ms: 50}", "device_id: &unit 1, timeout_ms: 50}")
    text = text.replace("port: 15021, device_id: 1,", "port: 15021, device_id: *unit,")
    assert "alias" in refusal(text)


# --- limits that cannot protect skin ----------------------------------------------------------


def test_item13_a_skin_limit_of_80_c_is_refused() -> None:
    message = refusal(edited("{low: 2.0, high: 44.0}", "{low: 2.0, high: 80.0}"))
    assert "limits.skin_temp_c" in message and "45" in message


def test_item13_a_skin_low_limit_below_freezing_is_refused() -> None:
    message = refusal(edited("{low: 2.0, high: 44.0}", "{low: -5.0, high: 44.0}"))
    assert "limits.skin_temp_c" in message and "-2" in message


@pytest.mark.parametrize(("low", "high"), [(-2.0, 45.0), (2.0, 44.0), (10.0, 40.0)])
def test_item13_a_skin_band_within_the_bounds_loads(low: float, high: float) -> None:
    loaded = parse(edited("{low: 2.0, high: 44.0}", f"{{low: {low}, high: {high}}}"))
    assert (loaded.setup.limits.skin_temp_c.low, loaded.setup.limits.skin_temp_c.high) == (
        low,
        high,
    )


def test_item13_a_flow_minimum_of_zero_never_trips_and_is_refused() -> None:
    message = refusal(edited("cooler_flow_l_min_min: 0.5", "cooler_flow_l_min_min: 0"))
    assert "limits.cooler_flow_l_min_min" in message


@pytest.mark.parametrize("value", ["0", "-40"])
def test_item13_a_stale_limit_that_is_not_positive_is_refused(value: str) -> None:
    message = refusal(edited("stale_ms: {sensor: 40,", f"stale_ms: {{sensor: {value},"))
    assert "limits.stale_ms.sensor" in message


def test_item13_sensor_data_older_than_the_required_reaction_is_refused() -> None:
    # A frozen sensor is noticed only after stale_ms.sensor: it cannot be above the reaction
    # time the setup promises.
    message = refusal(edited("stale_ms: {sensor: 40,", "stale_ms: {sensor: 3600000,"))
    assert "stale_ms" in message and "required_reaction_ms" in message


def test_item13_a_plate_trip_above_the_skin_limit_is_refused() -> None:
    # A plate allowed to run hotter than the skin ceiling heats the skin towards a burn.
    message = refusal(edited("{low: -15.0, high: 30.0}", "{low: -15.0, high: 60.0}"))
    assert "cooler_plate_trip_c" in message and "skin_temp_c" in message
