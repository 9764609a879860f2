"""A register's raw value, its words on the wire and the value it stands for, all ways.

The one codec for a profile's register map: the bridge's drivers decode what a device sends
and encode what they write; the simulated devices serve their values and judge what they are
sent with the same functions, so the two sides cannot drift apart.

A register holds ``round((value - offset) / scale)`` as int16, uint16, int32 or uint32 (two's
complement for the signed ones), or ``(value - offset) / scale`` as an IEEE float32, or a bit
(a coil or discrete input). A 32-bit value takes two words, joined in the device's
``word_order`` with each word's bytes in its ``byte_order`` (`join`, `split`). Two ways in:

- ``encode`` (a writer that must not be misunderstood): a value that does not fit the type,
  lies outside the register's ``min``..``max`` or lands on a sentinel is refused, never
  clamped;
- ``saturate`` (a device's converter): a measured value beyond the type is clamped to its
  end, as a real sensor's analogue front end does.

One way out, ``decode``: a sentinel (0x7FFF, 0x8000 on a pyrometer), or a float32 that is
NaN or infinite, is NaN plus its fault's name, never a temperature. A status word with a
``fault_mask`` decodes to its fault bits only.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from device_profiles.schema import ModbusDevice, Register

Order = Literal["big", "little"]
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class WordLayout:
    """How a device lays out a multi-word value: the order of its words and of their bytes."""

    byte_order: Order = "big"
    word_order: Order = "big"

    @classmethod
    def of(cls, device: ModbusDevice) -> WordLayout:
        return cls(device.byte_order, device.word_order)


BIG_ENDIAN = WordLayout()


@dataclass(frozen=True)
class Decoded:
    """A register's value, or NaN and the fault its device reported instead of a value."""

    value: float
    fault: str | None = None  # e.g. "over-range (0x7FFF)"


def _swap(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def join(reg: Register, words: Sequence[int], layout: WordLayout = BIG_ENDIAN) -> int:
    """The raw value (unsigned, 16 or 32 bits; 0/1 for a bit) of ``reg`` from its words."""
    if len(words) != reg.words:
        raise ValueError(f"a {reg.type} takes {reg.words} words, not {len(words)}")
    if reg.is_bit:
        return 1 if words[0] else 0
    ws = [_swap(w) if layout.byte_order == "little" else w for w in words]
    if layout.word_order == "little":
        ws.reverse()
    raw = 0
    for w in ws:
        raw = (raw << 16) | w
    return raw


def split(reg: Register, raw: int, layout: WordLayout = BIG_ENDIAN) -> list[int]:
    """The words on the wire, in address order, for ``reg``'s raw value (inverse of `join`)."""
    if reg.is_bit:
        return [1 if raw else 0]
    ws = [(raw >> (16 * i)) & 0xFFFF for i in reversed(range(reg.words))]
    if layout.word_order == "little":
        ws.reverse()
    return [_swap(w) if layout.byte_order == "little" else w for w in ws]


def decode(reg: Register, raw: int) -> Decoded:
    """A raw value as a value in the register's unit; a sentinel is NaN plus its fault's name.

    NaN is what every check already treats as unknown (a halt for the skin temperature);
    the name says why, so the operator reads "over-range", not "nan".
    """
    name = _sentinel(reg, raw)
    if name is not None:
        return Decoded(math.nan, f"{name} (0x{raw:0{reg.bits // 4}X})")
    if reg.fault_mask is not None:
        return Decoded(float(raw & reg.fault_mask))
    value = reg.value_of(raw)
    if not math.isfinite(value):
        return Decoded(math.nan, f"not a number (0x{raw:08X})")
    return Decoded(value)


def _float_raw(x: float) -> int:
    return int.from_bytes(struct.pack(">f", x), "big")


def encode(reg: Register, value: float) -> int:
    """The raw value to write for ``value``; ValueError, saying why, if a device could misread it."""
    if not math.isfinite(value):
        raise ValueError(f"{value} {reg.unit} cannot be written to a register")
    steps = (value - reg.offset) / reg.scale
    if reg.type == "float32":
        if abs(steps) > FLOAT32_MAX:
            raise ValueError(f"{value} {reg.unit} does not fit a float32 at {reg.scale}")
        raw = _float_raw(steps)
    else:
        whole = round(steps)
        lo, hi = reg.raw_range
        if not lo <= whole <= hi:
            raise ValueError(
                f"{value} {reg.unit} does not fit a {reg.type} register at {reg.scale}"
            )
        raw = whole & ((1 << reg.bits) - 1)
    if not reg.in_write_range(reg.value_of(raw)):
        low = -math.inf if reg.min is None else reg.min
        high = math.inf if reg.max is None else reg.max
        raise ValueError(f"{value:g} {reg.unit} is outside the register's range {low:g}..{high:g}")
    if _sentinel(reg, raw) is not None:
        raise ValueError(f"{value} {reg.unit} encodes to a sentinel, 0x{raw:04X}")
    return raw


def saturate(reg: Register, value: float) -> int:
    """The raw value a device's converter puts out for ``value``: clamped to the type's range."""
    steps = (value - reg.offset) / reg.scale
    if reg.type == "float32":
        return _float_raw(max(-FLOAT32_MAX, min(FLOAT32_MAX, steps)))
    lo, hi = reg.raw_range
    return max(lo, min(hi, round(steps))) & ((1 << reg.bits) - 1)


def accepts(reg: Register, raw: int) -> bool:
    """Whether a device takes ``raw`` written to ``reg``: a value of its width, not one of its
    sentinels, a finite number within the register's stated ``min``..``max`` (any value fits
    the type's own range). Every value ``encode`` returns is accepted."""
    if not 0 <= raw < 1 << reg.bits or _sentinel(reg, raw) is not None:
        return False
    value = reg.value_of(raw)
    return math.isfinite(value) and reg.in_write_range(value)


def _sentinel(reg: Register, raw: int) -> str | None:
    return None if reg.sentinels is None else reg.sentinels.named().get(raw)
