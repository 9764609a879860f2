"""Requests as a strict Modbus device reads them: a malformed one is exception 03, never obeyed.

pymodbus' own request classes are lenient where a real device is not. It reads a coil write
of 0x1234 as "on" (only 0xFF00 and 0x0000 are valid). A read count of 0, 126 or 2000
registers, or a request cut short, fails in its decoder, and its server then answers
exception 01 (illegal function) on function code 0x80 instead of exception 03 (illegal data
value) on the request's own code. The classes here replace pymodbus' for the codes a
simulated device serves (``custom_pdu`` of the server): each checks the request's length,
count and byte count, and a coil write's value, as the Modbus specification (V1.1b3, §6)
lists them, and answers 03 when one is wrong. Addresses (02) and register values (03) are
checked against the profile by the device's ``action`` hook.

Over RTU framing a request cut short fails its CRC and gets no answer at all, as on a real
serial line; only Modbus TCP (with its MBAP length) can deliver a truncated request.
"""

from __future__ import annotations

from pymodbus.constants import ExcCodes, ModbusStatus
from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

# Quantity limits of the Modbus specification (V1.1b3, §6.1-6.12).
MAX_READ_COILS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_COILS = 1968
MAX_WRITE_REGISTERS = 123
COIL_VALUES = (int(ModbusStatus.ON), int(ModbusStatus.OFF))  # 0xFF00, 0x0000


def _word(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def read_problem(data: bytes, max_count: int) -> str | None:
    if len(data) != 4:
        return f"{len(data)} bytes after the function code, a read has 4"
    if not 1 <= (count := _word(data, 2)) <= max_count:
        return f"count {count} outside 1..{max_count}"
    return None


def single_write_problem(data: bytes) -> str | None:
    if len(data) != 4:
        return f"{len(data)} bytes after the function code, a single write has 4"
    return None


def coil_write_problem(data: bytes) -> str | None:
    if (problem := single_write_problem(data)) is not None:
        return problem
    if (value := _word(data, 2)) not in COIL_VALUES:
        return f"coil value 0x{value:04X}, only 0xFF00 (on) and 0x0000 (off) are valid"
    return None


def multiple_write_problem(data: bytes, max_count: int, bytes_per: int | None) -> str | None:
    """``bytes_per`` 2 for registers, None for coils (eight to a byte)."""
    if len(data) < 5:
        return f"{len(data)} bytes after the function code, a multiple write has at least 5"
    count, byte_count = _word(data, 2), data[4]
    if not 1 <= count <= max_count:
        return f"count {count} outside 1..{max_count}"
    expected = count * bytes_per if bytes_per is not None else (count + 7) // 8
    if byte_count != expected or len(data) != 5 + byte_count:
        return f"byte count {byte_count} with {len(data) - 5} bytes, expected {expected}"
    return None


class _Refusing(ModbusPDU):
    """Checks a request before pymodbus decodes it; a malformed one is answered with 03."""

    problem: str | None = None

    def find_problem(self, data: bytes) -> str | None:
        raise NotImplementedError

    def decode(self, data: bytes) -> None:
        self.problem = self.find_problem(data)
        if self.problem is None:
            super().decode(data)

    async def datastore_update(self, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        if self.problem is not None:
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_VALUE)
        return await super().datastore_update(context, device_id)


class StrictReadCoils(_Refusing, ReadCoilsRequest):
    def find_problem(self, data: bytes) -> str | None:
        return read_problem(data, MAX_READ_COILS)


class StrictReadHoldingRegisters(_Refusing, ReadHoldingRegistersRequest):
    def find_problem(self, data: bytes) -> str | None:
        return read_problem(data, MAX_READ_REGISTERS)


class StrictReadInputRegisters(_Refusing, ReadInputRegistersRequest):
    def find_problem(self, data: bytes) -> str | None:
        return read_problem(data, MAX_READ_REGISTERS)


class StrictWriteSingleCoil(_Refusing, WriteSingleCoilRequest):
    def find_problem(self, data: bytes) -> str | None:
        return coil_write_problem(data)


class StrictWriteSingleRegister(_Refusing, WriteSingleRegisterRequest):
    def find_problem(self, data: bytes) -> str | None:
        return single_write_problem(data)


class StrictWriteMultipleCoils(_Refusing, WriteMultipleCoilsRequest):
    def find_problem(self, data: bytes) -> str | None:
        return multiple_write_problem(data, MAX_WRITE_COILS, None)


class StrictWriteMultipleRegisters(_Refusing, WriteMultipleRegistersRequest):
    def find_problem(self, data: bytes) -> str | None:
        return multiple_write_problem(data, MAX_WRITE_REGISTERS, 2)


#: The server's ``custom_pdu``: replaces pymodbus' request class for each of these codes.
STRICT_REQUESTS: list[type[ModbusPDU]] = [
    StrictReadCoils,
    StrictReadHoldingRegisters,
    StrictReadInputRegisters,
    StrictWriteSingleCoil,
    StrictWriteSingleRegister,
    StrictWriteMultipleCoils,
    StrictWriteMultipleRegisters,
]
