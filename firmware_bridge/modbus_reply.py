"""What a Modbus reply must be before any of it is used: the checks pymodbus does not make.

pymodbus 3.16 decodes whatever function code comes back: an FC4 (input registers) reply to an
FC3 (holding registers) request is handed over as data. It also trusts a reply's byte count
and drops the bytes of a frame that lie past it, and reduces a coil echo to a bool (0x1234
reads as "on"). Here every reply is checked against the request it answers:

- the unit id is the device's (pymodbus' framer already drops other units' frames; this is
  the same rule once more, so a change in pymodbus cannot let one through);
- the function code is the request's, or the request's with the exception bit (0x80);
- a register read (FC3, FC4) carries a byte count of exactly two bytes per register asked
  for, a bit read (FC1, FC2) one byte per eight bits, and the frame holds exactly that many
  bytes; the padding bits of a bit read's last byte are zero, as the specification says;
- a write is echoed back with the address and the value (FC5, FC6) or the count (FC16) that
  were sent.

Anything else raises ``ProtocolError``: the device answered, but not with an answer to this
request. It is never data; the worker treats it as a lost link (a trip).
"""

from __future__ import annotations

from pymodbus.constants import ModbusStatus
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    WriteSingleCoilResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterResponse,
)

from firmware_bridge.errors import ProtocolError

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_COIL = 5
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_REGISTERS = 16
EXCEPTION_BIT = 0x80

COIL_ON = int(ModbusStatus.ON)  # 0xFF00, the only value that means "on" on the wire
COIL_OFF = int(ModbusStatus.OFF)  # 0x0000


class _KeepsByteCount:
    """Decodes a read reply's byte count and length instead of trusting them."""

    byte_count: int = -1
    data_bytes: int = -1
    data: bytes = b""

    def _keep(self, data: bytes) -> bytes:
        # Never raise here: a malformed reply must reach `check_read`, which names the fault.
        self.byte_count = data[0] if data else -1
        body = data[1:]
        self.data_bytes = len(body)
        self.data = body[: max(self.byte_count, 0)]
        return self.data


def _words(usable: bytes) -> list[int]:
    return [int.from_bytes(usable[i : i + 2], "big") for i in range(0, len(usable) - 1, 2)]


class ReadRegistersReply(_KeepsByteCount, ReadHoldingRegistersResponse):
    """An FC3 reply that keeps its byte count and its length instead of trusting them."""

    def decode(self, data: bytes) -> None:
        self.registers = _words(self._keep(data))


class ReadInputsReply(_KeepsByteCount, ReadInputRegistersResponse):
    """An FC4 reply, kept as `ReadRegistersReply` keeps an FC3 one."""

    def decode(self, data: bytes) -> None:
        self.registers = _words(self._keep(data))


class ReadCoilsReply(_KeepsByteCount, ReadCoilsResponse):
    """An FC1 reply: its bytes kept, bits unpacked by `check_bits`."""

    def decode(self, data: bytes) -> None:
        self._keep(data)


class ReadDiscreteInputsReply(_KeepsByteCount, ReadDiscreteInputsResponse):
    """An FC2 reply: its bytes kept, bits unpacked by `check_bits`."""

    def decode(self, data: bytes) -> None:
        self._keep(data)


class WriteRegistersReply(WriteMultipleRegistersResponse):
    """An FC16 echo (address and count); one of the wrong length is kept as unusable."""

    def decode(self, data: bytes) -> None:
        if len(data) != 4:
            self.address, self.count = -1, -1
            return
        self.address = int.from_bytes(data[0:2], "big")
        self.count = int.from_bytes(data[2:4], "big")


class WriteCoilReply(WriteSingleCoilResponse):
    """An FC5 echo that keeps the raw value written back, not just its truth."""

    raw_value: int = -1

    def decode(self, data: bytes) -> None:
        if len(data) != 4:
            self.address, self.raw_value = -1, -1
            return
        self.address = int.from_bytes(data[0:2], "big")
        self.raw_value = int.from_bytes(data[2:4], "big")
        self.bits = [self.raw_value == COIL_ON]


class WriteRegisterReply(WriteSingleRegisterResponse):
    """An FC6 echo; a reply of the wrong length is kept as unusable, not decoded."""

    def decode(self, data: bytes) -> None:
        if len(data) != 4:
            self.address, self.registers = -1, []
            return
        self.address = int.from_bytes(data[0:2], "big")
        self.registers = [int.from_bytes(data[2:4], "big")]


#: Registered with each client's decoder, replacing pymodbus' own classes for these codes.
REPLY_CLASSES: tuple[type[ModbusPDU], ...] = (
    ReadRegistersReply,
    ReadInputsReply,
    ReadCoilsReply,
    ReadDiscreteInputsReply,
    WriteCoilReply,
    WriteRegisterReply,
    WriteRegistersReply,
)


def check_header(what: str, reply: ModbusPDU, function_code: int, device_id: int) -> None:
    """The reply answers this request at all: right unit, right function (or its exception)."""
    if reply.dev_id != device_id:
        raise ProtocolError(f"{what}: reply from unit {reply.dev_id}, expected unit {device_id}")
    if reply.function_code not in (function_code, function_code | EXCEPTION_BIT):
        raise ProtocolError(
            f"{what}: reply has function code {reply.function_code}, "
            f"the request was function code {function_code}"
        )


def check_read(what: str, reply: ModbusPDU, count: int) -> list[int]:
    """The registers of an FC3 or FC4 reply, or ``ProtocolError`` when its byte count is not
    right."""
    if not isinstance(reply, ReadRegistersReply | ReadInputsReply):
        raise ProtocolError(f"{what}: not a register read reply: {type(reply).__name__}")
    expected = 2 * count
    if reply.byte_count != expected or reply.data_bytes != expected:
        raise ProtocolError(
            f"{what}: reply byte count {reply.byte_count} with {reply.data_bytes} data bytes, "
            f"expected {expected} for {count} registers"
        )
    return list(reply.registers)


def check_bits(what: str, reply: ModbusPDU, count: int) -> list[int]:
    """The bits (0 or 1, LSB of the first byte first) of an FC1 or FC2 reply, or
    ``ProtocolError`` when its byte count is not right or its padding bits are set."""
    if not isinstance(reply, ReadCoilsReply | ReadDiscreteInputsReply):
        raise ProtocolError(f"{what}: not a bit read reply: {type(reply).__name__}")
    expected = (count + 7) // 8
    if reply.byte_count != expected or reply.data_bytes != expected:
        raise ProtocolError(
            f"{what}: reply byte count {reply.byte_count} with {reply.data_bytes} data bytes, "
            f"expected {expected} for {count} bits"
        )
    value = int.from_bytes(reply.data, "little")
    if value >> count:
        raise ProtocolError(f"{what}: padding bits set past bit {count}: {reply.data.hex()}")
    return [(value >> i) & 1 for i in range(count)]


def check_registers_echo(what: str, reply: ModbusPDU, address: int, count: int) -> None:
    if not isinstance(reply, WriteRegistersReply):
        raise ProtocolError(f"{what}: not a multiple-register write reply: {type(reply).__name__}")
    if reply.address != address or reply.count != count:
        raise ProtocolError(
            f"{what}: echo says address {reply.address} count {reply.count}, "
            f"sent address {address} count {count}"
        )


def check_register_echo(what: str, reply: ModbusPDU, address: int, raw: int) -> None:
    if not isinstance(reply, WriteRegisterReply):
        raise ProtocolError(f"{what}: not a register write reply: {type(reply).__name__}")
    if reply.address != address or list(reply.registers) != [raw]:
        echoed = reply.registers[0] if reply.registers else None
        raise ProtocolError(
            f"{what}: echo says address {reply.address} value {echoed}, "
            f"sent address {address} value {raw}"
        )


def check_coil_echo(what: str, reply: ModbusPDU, address: int, value: bool) -> None:
    if not isinstance(reply, WriteCoilReply):
        raise ProtocolError(f"{what}: not a coil write reply: {type(reply).__name__}")
    sent = COIL_ON if value else COIL_OFF
    if reply.address != address or reply.raw_value != sent:
        echoed = f"0x{reply.raw_value:04X}" if reply.raw_value >= 0 else "none"
        raise ProtocolError(
            f"{what}: echo says address {reply.address} value {echoed}, "
            f"sent address {address} value 0x{sent:04X}"
        )
