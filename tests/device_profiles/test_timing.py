"""The reaction-time budget: wire physics from the profile, and refusal when too slow."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from device_profiles.loader import ProfileError, bundled_dir, load, parse
from device_profiles.schema import ModbusRtuTransport
from device_profiles.timing import reaction_budget, rtu_silence_ms, serial_ms


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
