"""The reaction-time budget: wire physics from the profile, and refusal when too slow."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.loader import ProfileError, bundled_dir, load, parse
from device_profiles.schema import ModbusRtuTransport, SerialLineOutput
from device_profiles.timing import (
    DEVICES,
    LiveBudget,
    assumed_answer_ms,
    poll_wait_ms,
    pulse_to_standby_ms,
    reaction_budget,
    rtu_silence_ms,
    serial_ms,
)


def rtu(baud: int) -> ModbusRtuTransport:
    return ModbusRtuTransport(kind="modbus_rtu", port="/dev/ttyUSB1", baudrate=baud)


@pytest.mark.parametrize(
    ("baud", "frame_ms", "silence_ms"),
    [(9600, 9.17, 4.01), (19200, 4.58, 2.01), (115200, 0.76, 1.75)],
)
def test_wire_times_match_the_modbus_serial_line_table(
    baud: int, frame_ms: float, silence_ms: float
) -> None:
    assert serial_ms(8, rtu(baud)) == pytest.approx(frame_ms, abs=0.01)
    assert rtu_silence_ms(rtu(baud)) == pytest.approx(silence_ms, abs=0.01)


def test_bundled_setup_meets_its_required_reaction_time() -> None:
    budget = reaction_budget(load("demo-ndyag-1064").setup)
    assert budget.ok
    assert budget.total_ms == pytest.approx(
        budget.detection_ms + max(budget.stop_route_ms, budget.relay_route_ms)
    )
    text = budget.format()
    assert "poll period" in text and "stop command" in text and "OK" in text


def bundled() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((bundled_dir() / "demo-ndyag-1064.yaml").read_text())
    return data


def test_slow_rtu_sensor_is_refused_at_load_with_the_numbers() -> None:
    data = bundled()
    data["sensor"]["transport"] = {"kind": "modbus_rtu", "port": "/dev/ttyUSB1", "baudrate": 9600}
    data["sensor"]["poll_period_ms"] = 40
    with pytest.raises(ProfileError) as err:
        parse(yaml.safe_dump(data))
    message = str(err.value)
    assert "required_reaction_ms cannot be met" in message
    assert "sensor read" in message and "EXCEEDS" in message


def test_faster_baud_makes_the_same_setup_acceptable() -> None:
    data = bundled()
    data["sensor"]["transport"] = {"kind": "modbus_rtu", "port": "/dev/ttyUSB1", "baudrate": 115200}
    data["sensor"]["poll_period_ms"] = 10
    assert reaction_budget(parse(yaml.safe_dump(data)).setup).ok


SETUP = load("demo-ndyag-1064").setup


def test_item6_a_slow_measured_sensor_breaks_a_budget_the_profile_meets() -> None:
    """The issue's case: a sensor answering in 29 ms, inside its 30 ms timeout."""
    assert reaction_budget(SETUP).ok
    budget = reaction_budget(SETUP, {"sensor": 29.0})
    assert not budget.ok
    # The next read waits a period after the slow one ends: 2 + (29 + 5) + 29 + 1 + 22.3.
    assert budget.total_ms == pytest.approx(2 + 34 + 29 + 1 + budget.stop_route_ms)
    text = budget.format()
    assert "with the measured answer times" in text
    assert "measured 29.00 ms (assumed 2.50 ms)" in text and "EXCEEDS" in text
    assert budget.slower_than_assumed() == [
        "sensor answers in up to 29.0 ms, the budget assumes 2.5 ms"
    ]


def test_a_faster_measurement_never_improves_the_budget() -> None:
    prompt = {"sensor": 0.3, "cooler": 0.3, "laser": 0.2, "interlock": 0.3}
    assert reaction_budget(SETUP, prompt).total_ms == reaction_budget(SETUP).total_ms
    nan = {d: float("nan") for d in DEVICES}
    assert reaction_budget(SETUP, nan).total_ms == reaction_budget(SETUP).total_ms


def test_a_read_that_outlasts_its_period_waits_a_period_after_it() -> None:
    assert poll_wait_ms(5.0, 2.5) == 5.0
    assert poll_wait_ms(5.0, 5.0) == 10.0
    assert poll_wait_ms(5.0, 12.0) == 17.0


def test_timing_shows_the_answer_time_assumed_per_device() -> None:
    text = reaction_budget(SETUP).format()
    assumed = assumed_answer_ms(SETUP)
    assert set(assumed) == set(DEVICES)
    assert assumed["sensor"] == pytest.approx(2.5)  # TCP: 0.5 ms network + 2 ms answer
    for dev, ms in assumed.items():
        assert f"{dev:<20} {ms:8.2f} ms" in text


answer = st.one_of(st.just(float("nan")), st.floats(0.0, 200.0))


@settings(max_examples=300, deadline=None)
@given(sensor=answer, laser=answer, interlock=answer, line=st.booleans())
def test_the_loops_arithmetic_equals_the_budget_in_words(
    sensor: float, laser: float, interlock: float, line: bool
) -> None:
    setup = SETUP
    if line:
        out = SerialLineOutput(kind="serial_line", line="DTR")
        setup = SETUP.model_copy(update={"interlock_output": out})
    measured = {"sensor": sensor, "laser": laser, "interlock": interlock}
    words = reaction_budget(setup, measured).total_ms
    assert LiveBudget(setup).total_ms(sensor, laser, interlock) == pytest.approx(words)


def test_item14_pulse_to_standby_covers_a_poll_a_late_poll_and_three_transactions() -> None:
    laser = SETUP.laser
    base = pulse_to_standby_ms(SETUP)
    # 20 ms poll + a worker period late + heartbeat, status and standby at 115200 baud.
    assert base == pytest.approx(laser.poll_period_ms + 20 + 10.85 + 11.29 + 11.29, abs=0.05)
    assert pulse_to_standby_ms(SETUP, 100.0) == pytest.approx(20 + 20 + 300)
