"""Issue 14 item 4: a Modbus laser and a binary-framed laser are data, checked at load like
the rest of a setup: a map without its STOP coil, a protocol on the wrong transport, two
commands on one byte, a relay on a control line the laser does not have are refused,
naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_profiles.loader import ProfileError, bundled_dir, load

Data = dict[str, Any]


def _data(name: str) -> Data:
    text = (bundled_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    data: Data = yaml.safe_load(text)
    return data


def _refusal(data: Data, tmp_path: Path) -> str:
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProfileError) as e:
        load(path)
    return str(e.value)


def _no_stop_coil(d: Data) -> None:
    del d["laser"]["protocol"]["registers"]["stop"]


def _stop_in_holding(d: Data) -> None:
    d["laser"]["protocol"]["registers"]["stop"] = {
        "address": 9, "type": "uint16", "unit": "command", "writable": True
    }  # fmt: skip


def _modbus_laser_on_serial(d: Data) -> None:
    d["laser"]["transport"] = {"kind": "serial", "port": "/dev/ttyUSB0"}


def _a_state_unnamed(d: Data) -> None:
    del d["laser"]["protocol"]["states"][3]


def _relay_on_a_control_line(d: Data) -> None:
    d["interlock_output"] = {"kind": "serial_line", "line": "DTR"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_no_stop_coil, "laser.protocol: Value error, registers lack ['stop']"),
        (_stop_in_holding, "stop must be a writable coil"),
        (_modbus_laser_on_serial, "a modbus_registers laser needs a Modbus transport"),
        (_a_state_unnamed, "states must name a code for each of"),
        (_relay_on_a_control_line, "a modbus_registers laser has none here"),
    ],
    ids=["no stop coil", "stop not a coil", "on a serial port", "FAULT unnamed", "DTR relay"],
)
def test_item4_a_broken_modbus_laser_is_refused_at_load(
    tmp_path: Path, mutate: Callable[[Data], None], expected: str
) -> None:
    data = _data("demo-ndyag-1064-modbus-laser")
    mutate(data)
    assert expected in _refusal(data, tmp_path)


def _shared_byte(d: Data) -> None:
    d["laser"]["protocol"]["stop"]["code"] = d["laser"]["protocol"]["arm"]["code"]


def _no_pulses_field(d: Data) -> None:
    fields = d["laser"]["protocol"]["status_fields"]
    d["laser"]["protocol"]["status_fields"] = [f for f in fields if f["name"] != "pulses"]


def _identity_without_question(d: Data) -> None:
    del d["laser"]["protocol"]["identify"]


def _binary_on_modbus(d: Data) -> None:
    d["laser"]["transport"] = {"kind": "modbus_tcp", "host": "127.0.0.1"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_shared_byte, "two commands share a command byte"),
        (_no_pulses_field, "status_fields lack ['pulses']"),
        (_identity_without_question, "identify and identity go together"),
        (_binary_on_modbus, "a binary_frames laser needs a serial transport"),
    ],
    ids=["shared byte", "no pulses", "identity alone", "on Modbus"],
)
def test_item4_a_broken_binary_laser_is_refused_at_load(
    tmp_path: Path, mutate: Callable[[Data], None], expected: str
) -> None:
    data = _data("demo-ndyag-1064-binary-laser")
    mutate(data)
    assert expected in _refusal(data, tmp_path)
