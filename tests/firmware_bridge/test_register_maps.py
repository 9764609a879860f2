"""Issue 14 item 1: register maps as real devices have them, over every contract backend.

Input registers, coils and discrete inputs next to holding registers; int32, uint32 and
float32 in the word and byte order the device states; scale and offset; several blocks read
in as few requests as the map allows; a status word whose masked bits are faults; writes
only where marked writable, in one transaction, read back. Each runs over the virtual
transport and over a real pymodbus client on a Modbus TCP socket (``registers_to``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from device_profiles.registers import WordLayout, decode, encode, join, split
from device_profiles.schema import ModbusDevice, ModbusTcpTransport, Register, RegisterTable
from firmware_bridge.drivers import RegisterDevice
from firmware_bridge.errors import DeviceRejected, ProtocolError
from firmware_bridge.transport import ModbusRegisterTransport
from firmware_bridge.virtual import RegisterMap
from tests.firmware_bridge.backends import RegisterBackend
from tests.firmware_bridge.modbus_peer import ModbusPeer, registers_pdu

# 25.5 as IEEE 754 float32 is 0x41CC0000: bytes A B C D = 41 CC 00 00.
FLOAT_25_5 = 0x41CC0000
ORDERS = {
    ("big", "big"): [0x41CC, 0x0000],  # ABCD, the Modbus convention
    ("big", "little"): [0x0000, 0x41CC],  # CDAB, "word-swapped"
    ("little", "big"): [0xCC41, 0x0000],  # BADC, bytes swapped in each word
    ("little", "little"): [0x0000, 0xCC41],  # DCBA
}


def reg(**fields: Any) -> Register:
    return Register.model_validate({"address": 0, "unit": "degC", **fields})


@pytest.mark.parametrize(
    ("order", "words"), list(ORDERS.items()), ids=["ABCD", "CDAB", "BADC", "DCBA"]
)
def test_item1_float32_in_each_word_and_byte_order(
    order: tuple[str, str], words: list[int]
) -> None:
    layout = WordLayout(*order)  # type: ignore[arg-type]
    temp = reg(type="float32")
    assert join(temp, words, layout) == FLOAT_25_5
    assert decode(temp, FLOAT_25_5).value == 25.5
    assert split(temp, FLOAT_25_5, layout) == words


@pytest.mark.parametrize(
    ("fields", "words", "value"),
    [
        ({"type": "int32"}, [0xFFFF, 0xFFFE], -2.0),
        ({"type": "uint32"}, [0x0001, 0x0000], 65536.0),
        ({"type": "int32", "scale": 0.001}, [0x0000, 0x7530], 30.0),
        ({"type": "uint16", "scale": 0.1, "offset": -50.0}, [750], 25.0),  # 0.1 K steps from -50
    ],
)
def test_item1_32_bit_types_scale_and_offset(
    fields: dict[str, Any], words: list[int], value: float
) -> None:
    r = reg(**fields)
    raw = join(r, words)
    assert decode(r, raw).value == pytest.approx(value)
    writable = reg(**fields, writable=True)
    assert split(writable, encode(writable, value)) == words


def test_item1_a_float32_nan_or_infinity_is_a_fault_not_a_value() -> None:
    temp = reg(type="float32")
    for raw in (0x7FC00000, 0x7F800000, 0xFF800000):
        d = decode(temp, raw)
        assert math.isnan(d.value) and d.fault is not None and "not a number" in d.fault


def test_item1_a_32_bit_sentinel_is_a_fault() -> None:
    temp = reg(type="float32", sentinels={"over_range": 0x7F7FFFFF})
    d = decode(temp, 0x7F7FFFFF)
    assert math.isnan(d.value) and d.fault == "over-range (0x7F7FFFFF)"


def test_item1_a_status_word_counts_only_its_fault_bits() -> None:
    status = reg(type="uint16", unit="bits", fault_mask=0x000C)
    assert decode(status, 0x0003).value == 0  # measuring, laser pointer on: no fault
    assert decode(status, 0x0007).value == 4  # detector fault
    assert decode(status, 0x0008).value == 8  # ambient out of range


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"table": "input", "writable": True}, "read-only in Modbus"),
        ({"table": "discrete_input", "type": "bool", "writable": True}, "read-only in Modbus"),
        ({"table": "coil"}, "coils and discrete inputs are type bool"),
        ({"type": "bool"}, "coils and discrete inputs are type bool"),
        ({"type": "float32", "fault_mask": 1}, "unsigned status word"),
        ({"type": "uint16", "fault_mask": 0x10000}, "must name bits"),
        ({"type": "int16", "sentinels": {"over_range": 0x7FFFFFFF}}, "does not fit a int16"),
        ({"type": "uint32", "address": 65535}, "runs past address 65535"),
    ],
)
def test_item1_a_map_a_device_could_not_have_is_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        reg(**fields)


# --- a device with several tables, over every backend -----------------------------------------

PYROMETER = {
    "model": "pyrometer with input registers, a holding block and discrete inputs",
    "transport": {"kind": "modbus_tcp", "host": "127.0.0.1"},
    "poll_period_ms": 10,
    "word_order": "little",
    "freshness": {"method": "stuck_value", "watch": "skin_temp_c", "frozen_after_ms": 30},
    "registers": {
        "skin_temp_c": {"address": 0, "table": "input", "type": "float32", "unit": "degC"},
        "fault_code": {"address": 2, "table": "input", "type": "uint16", "unit": "bits",
                       "fault_mask": 0x000C},
        "hours": {"address": 10, "table": "input", "type": "uint32", "unit": "h"},
        "emissivity": {"address": 0, "type": "float32", "unit": "1", "writable": True,
                       "min": 0.1, "max": 1.0},
        "target_spot_mm": {"address": 2, "type": "uint16", "scale": 0.1, "unit": "mm"},
        "pointer_on": {"address": 5, "table": "discrete_input", "type": "bool", "unit": "on"},
        "head_hot": {"address": 6, "table": "discrete_input", "type": "bool", "unit": "on"},
        "pointer": {"address": 0, "table": "coil", "type": "bool", "unit": "on",
                    "writable": True},
    },
}  # fmt: skip


def device_map() -> RegisterMap:
    return RegisterMap(
        {0: 0x0000, 1: 0x3F73, 2: 40},  # emissivity 0.94921875 (CDAB), spot 4.0 mm
        coils=[0],
        inputs={0: 0x0000, 1: 0x41CC, 2: 0x0005, 10: 0x86A0, 11: 0x0001},
        discrete_inputs={5: True, 6: False},
    )


def test_item1_several_blocks_in_as_few_requests_as_the_map_allows(
    registers_to: RegisterBackend,
) -> None:
    profile = ModbusDevice.model_validate(PYROMETER)
    assert [(b.table, b.first, b.count) for b in profile.read_blocks] == [
        ("coil", 0, 1),
        ("discrete_input", 5, 2),
        ("holding", 0, 3),
        ("input", 0, 3),
        ("input", 10, 2),  # a gap of unmapped addresses: a strict device refuses them
    ]
    pyrometer = device_map()
    reading = RegisterDevice(profile, registers_to(pyrometer)).read()
    assert reading.values == pytest.approx(
        {
            "skin_temp_c": 25.5,
            "fault_code": 4.0,  # bit 0 "measuring" is not a fault; bit 2 is
            "hours": 100_000.0,  # low word first: 0x0001_86A0
            "emissivity": 0.94921875,
            "target_spot_mm": 4.0,
            "pointer_on": 1.0,
            "head_hot": 0.0,
            "pointer": 0.0,
        }
    )
    assert reading.faults == {}
    assert pyrometer.table_reads == [
        ("coil", 0, 1),
        ("discrete_input", 5, 2),
        ("holding", 0, 3),
        ("input", 0, 3),
        ("input", 10, 2),
    ]


def test_item1_a_32_bit_write_is_one_transaction_in_device_order_and_read_back(
    registers_to: RegisterBackend,
) -> None:
    profile = ModbusDevice.model_validate(PYROMETER)
    pyrometer = device_map()
    RegisterDevice(profile, registers_to(pyrometer)).write("emissivity", 0.5)
    assert pyrometer.writes == [(0, 0x0000), (1, 0x3F00)]  # 0x3F000000, word-swapped
    assert pyrometer.table_reads[-1] == ("holding", 0, 2)  # the read-back


def test_item1_a_write_outside_the_range_or_to_a_read_only_register_never_reaches_the_wire(
    registers_to: RegisterBackend,
) -> None:
    profile = ModbusDevice.model_validate(PYROMETER)
    pyrometer = device_map()
    device = RegisterDevice(profile, registers_to(pyrometer))
    with pytest.raises(ValueError, match="outside the register's range"):
        device.write("emissivity", 1.5)
    with pytest.raises(ValueError, match="not writable"):
        device.write("target_spot_mm", 5.0)
    assert pyrometer.writes == [] and pyrometer.table_reads == []


class Forgetful(RegisterMap):
    """Acknowledges every register write, and keeps the old value (a lying device)."""

    def write_registers(self, address: int, words: list[int]) -> None:
        self.writes += [(address + i, w) for i, w in enumerate(words)]


def test_item1_a_write_the_device_acknowledged_but_did_not_keep_is_a_protocol_error(
    registers_to: RegisterBackend,
) -> None:
    profile = ModbusDevice.model_validate(PYROMETER)
    liar = Forgetful(device_map().registers, coils=[0])
    with pytest.raises(ProtocolError, match="read back"):
        RegisterDevice(profile, registers_to(liar)).write("emissivity", 0.5)


def test_item1_a_device_without_an_input_table_refuses_with_its_exception(
    registers_to: RegisterBackend,
) -> None:
    profile = ModbusDevice.model_validate(PYROMETER)
    no_inputs = RegisterMap(device_map().registers, coils=[0], discrete_inputs={5: 1, 6: 0})
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        RegisterDevice(profile, registers_to(no_inputs)).read()


# --- hostile replies to the new function codes, on a real pymodbus client --------------------


def _hostile(pdu_for: dict[int, bytes]) -> tuple[ModbusPeer, ModbusRegisterTransport]:
    peer: ModbusPeer
    peer = ModbusPeer(lambda r: peer.reply(r, pdu_for[r.function_code]), "tcp")
    cfg = ModbusTcpTransport(kind="modbus_tcp", host="127.0.0.1", port=peer.port, timeout_ms=100)
    return peer, ModbusRegisterTransport(cfg)


@pytest.mark.parametrize(
    ("table", "reply", "message"),
    [
        ("discrete_input", bytes([2, 1, 0b0000_1101]), "padding bits set"),  # 3 bits asked
        ("coil", bytes([1, 2, 0b0000_0001, 0]), "byte count 2"),
        ("input", registers_pdu(3, [1, 2, 3]), "function code 3"),  # FC3 answer to FC4
        ("input", registers_pdu(4, [1, 2]), "expected 6 for 3 registers"),
    ],
)
def test_item1_a_reply_that_does_not_fit_the_new_requests_is_a_protocol_error(
    table: RegisterTable, reply: bytes, message: str
) -> None:
    fc = {"coil": 1, "discrete_input": 2, "input": 4}[table]
    peer, link = _hostile({fc: reply})
    try:
        with pytest.raises(ProtocolError, match=message):
            link.read_table(table, 0, 3 if table != "coil" else 8)
    finally:
        link.close()
        peer.close()


def test_item1_a_multiple_write_echo_with_another_count_is_a_protocol_error() -> None:
    peer, link = _hostile({16: bytes([16, 0, 0, 0, 1])})  # echoes one register, two sent
    try:
        with pytest.raises(ProtocolError, match="count 1"):
            link.write_registers(0, [0x3F00, 0])
    finally:
        link.close()
        peer.close()
