"""Issue 7 item 5 (profile side): a register states its sentinels, strictly, at load."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from device_profiles.loader import ProfileError, bundled_dir, load, parse

DEMO_FILE = bundled_dir() / "demo-ndyag-1064.yaml"


def with_register(path: tuple[str, str], **fields: Any) -> str:
    data: dict[str, Any] = yaml.safe_load(DEMO_FILE.read_bytes())
    data = copy.deepcopy(data)
    device, name = path
    data[device]["registers"][name] = {**data[device]["registers"][name], **fields}
    return yaml.safe_dump(data)


def refused(text: str) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(text, "clinic.yaml")
    return str(exc.value)


def test_item5_the_bundled_sensor_states_its_sentinels() -> None:
    reg = load("demo-ndyag-1064").setup.sensor.registers["skin_temp_c"]
    assert reg.sentinels is not None
    assert reg.sentinels.named() == {0x7FFF: "over-range", 0x8000: "under-range"}


def test_item5_sentinels_written_in_hex_in_yaml_load() -> None:
    text = DEMO_FILE.read_text(encoding="utf-8")
    assert "over_range: 0x7FFF" in text  # as a pyrometer's manual writes it
    setup = parse(with_register(("sensor", "fault_code"), sentinels={"over_range": 0xFFFF}), "x")
    sentinels = setup.setup.sensor.registers["fault_code"].sentinels
    assert sentinels is not None and sentinels.named() == {0xFFFF: "over-range"}


@pytest.mark.parametrize(
    ("sentinels", "message"),
    [
        ({"over_range": 0x10000}, "sentinel 0x10000 does not fit a int16"),
        ({"over_range": 0x1_0000_0000}, "sensor.registers.skin_temp_c.sentinels.over_range"),
        ({"over_range": -1}, "greater than or equal to 0"),
        ({"over_range": True}, "Input should be a valid integer"),
        ({"over_range": 327.67}, "Input should be a valid integer"),
        ({"over_range": "0x7FFF"}, "Input should be a valid integer"),
        ({"over_range": 0x7FFF, "under_range": 0x7FFF}, "must be different"),
        ({}, "give over_range, under_range or both"),
        ({"over_range": 0x7FFF, "nan": 0x7FFE}, "Extra inputs are not permitted"),
    ],
)
def test_item5_a_bad_sentinel_is_refused_naming_the_field(
    sentinels: dict[str, Any], message: str
) -> None:
    msg = refused(with_register(("sensor", "skin_temp_c"), sentinels=sentinels))
    assert "sensor.registers.skin_temp_c" in msg
    assert message in msg


def test_item5_a_writable_register_must_not_accept_its_own_sentinel() -> None:
    msg = refused(
        with_register(
            ("cooler", "setpoint_c"), min=-5.0, max=327.67, sentinels={"over_range": 0x7FFF}
        )
    )
    assert "over-range sentinel 0x7FFF (327.67 degC) lies inside the writable range" in msg
    ok = with_register(("cooler", "setpoint_c"), sentinels={"over_range": 0x7FFF})
    assert parse(ok, "x").setup.cooler.registers["setpoint_c"].max == 15.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min": 20.0, "max": 10.0}, "min 20 is above max 10"),
        ({"max": 400.0}, "max 400 does not fit a int16 at scale 0.01"),
    ],
)
def test_a_bad_write_range_is_refused(fields: dict[str, Any], message: str) -> None:
    assert message in refused(with_register(("cooler", "setpoint_c"), **fields))


def test_a_write_range_on_a_register_that_is_not_written_is_refused() -> None:
    msg = refused(with_register(("sensor", "skin_temp_c"), min=0.0, max=60.0))
    assert "min and max limit writes: give them only on a writable register" in msg
