"""Binary frames of a laser's serial protocol, both ways (issue 14 item 4b).

The one codec for a ``binary_frames`` laser: the bridge's driver builds requests and checks
replies with it, the simulated laser reads requests and builds replies with it, so the two
sides cannot drift apart. A frame::

    start_byte | length | command | payload ... | checksum

``length`` counts command and payload; the checksum covers length, command and payload.
``crc16_modbus`` is CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first
as on a Modbus RTU line; ``xor8`` is the XOR of those bytes.

A frame that is not one (wrong start byte, a length that disagrees with the bytes, a bad
checksum) is a ``FrameError``, never data.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from device_profiles.schema import FIELD_BYTES, BinaryFrameProtocol, FrameField

_STRUCT = {"uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f"}
_INT_RANGE = {
    "uint8": (0, 0xFF),
    "int16": (-0x8000, 0x7FFF),
    "uint16": (0, 0xFFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
    "uint32": (0, 0xFFFF_FFFF),
}


class FrameError(ValueError):
    """Bytes that are not a frame of this protocol (garbage, cut short, bad checksum)."""


def crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def xor8(data: bytes) -> int:
    out = 0
    for byte in data:
        out ^= byte
    return out


def _checksum(proto: BinaryFrameProtocol, body: bytes) -> bytes:
    if proto.checksum == "crc16_modbus":
        return crc16_modbus(body).to_bytes(2, "little")
    return bytes([xor8(body)])


def build(proto: BinaryFrameProtocol, command: int, payload: bytes = b"") -> bytes:
    """The frame that carries ``command`` and ``payload``."""
    if len(payload) > 254:
        raise ValueError(f"a payload of {len(payload)} bytes does not fit a length byte")
    body = bytes([len(payload) + 1, command]) + payload
    return bytes([proto.start_byte]) + body + _checksum(proto, body)


def frame_length(proto: BinaryFrameProtocol, head: bytes) -> int:
    """The whole frame's length from its first two bytes (start, length)."""
    if len(head) < 2:
        raise ValueError("need the start and length bytes")
    if head[0] != proto.start_byte:
        raise FrameError(f"frame starts with 0x{head[0]:02X}, not 0x{proto.start_byte:02X}")
    if head[1] < 1:
        raise FrameError("frame length 0: no command byte")
    return 2 + head[1] + proto.checksum_bytes


def parse(proto: BinaryFrameProtocol, frame: bytes) -> tuple[int, bytes]:
    """(command, payload) of a whole frame; ``FrameError`` saying why it is not one."""
    if len(frame) < 3 + proto.checksum_bytes:
        raise FrameError(f"short frame: {len(frame)} bytes {frame[:16].hex(' ')}")
    expected = frame_length(proto, frame[:2])
    if len(frame) != expected:
        raise FrameError(f"frame of {len(frame)} bytes, its length byte says {expected}")
    body, check = frame[1 : -proto.checksum_bytes], frame[-proto.checksum_bytes :]
    if _checksum(proto, body) != check:
        raise FrameError(f"bad checksum {check.hex()} on {frame[:16].hex(' ')}")
    return body[1], bytes(body[2:])


def _fmt(proto: BinaryFrameProtocol, types: Sequence[str]) -> str:
    return (">" if proto.byte_order == "big" else "<") + "".join(_STRUCT[t] for t in types)


def pack(
    proto: BinaryFrameProtocol, fields: Sequence[FrameField], values: dict[str, float]
) -> bytes:
    """``values`` as the payload ``fields`` describe; ValueError for a value that does not fit."""
    raws: list[float | int] = []
    for f in fields:
        raws.append(encode_value(f.type, f.scale, values[f.name]))
    return struct.pack(_fmt(proto, [f.type for f in fields]), *raws)


def unpack(
    proto: BinaryFrameProtocol, fields: Sequence[FrameField], payload: bytes
) -> dict[str, float]:
    """The payload's values; ``FrameError`` for a payload of the wrong length or a NaN."""
    size = sum(FIELD_BYTES[f.type] for f in fields)
    if len(payload) != size:
        raise FrameError(f"payload of {len(payload)} bytes, expected {size}")
    raws = struct.unpack(_fmt(proto, [f.type for f in fields]), payload)
    out = {f.name: float(raw) * f.scale for f, raw in zip(fields, raws, strict=True)}
    for name, value in out.items():
        if not math.isfinite(value):
            raise FrameError(f"{name} is not a number in {payload.hex(' ')}")
    return out


def encode_value(type_: str, scale: float, value: float) -> float | int:
    """The raw number for ``value``: refused (ValueError), never clamped, if it does not fit."""
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be sent")
    steps = value / scale
    if type_ == "float32":
        if abs(steps) > 3.4e38:
            raise ValueError(f"{value} does not fit a float32")
        return steps
    whole = round(steps)
    lo, hi = _INT_RANGE[type_]
    if not lo <= whole <= hi:
        raise ValueError(f"{value} does not fit a {type_} at scale {scale:g}")
    return whole
