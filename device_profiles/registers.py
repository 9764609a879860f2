"""A holding register's raw 16-bit word and the value it stands for, both ways.

The one codec for a profile's register map: the bridge's drivers decode what a device sends
and encode what they write; the simulated devices serve their values and judge what they are
sent with the same functions, so the two sides cannot drift apart.

A register holds ``round(value / scale)`` as int16 (two's complement) or uint16. Two ways in:

- ``encode`` (a writer that must not be misunderstood): a value that does not fit the type,
  lies outside the register's ``min``..``max`` or lands on a sentinel is refused, never
  clamped;
- ``saturate`` (a device's converter): a measured value beyond the type is clamped to its
  end, as a real sensor's analogue front end does.

One way out, ``decode``: a sentinel (0x7FFF, 0x8000 on a pyrometer) is NaN plus its fault's
name, never a temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from device_profiles.schema import Register


@dataclass(frozen=True)
class Decoded:
    """A register's value, or NaN and the fault its device reported instead of a value."""

    value: float
    fault: str | None = None  # e.g. "over-range (0x7FFF)"


def decode(reg: Register, raw: int) -> Decoded:
    """A raw word as a value in the register's unit; a sentinel is NaN plus its fault's name.

    NaN is what every check already treats as unknown (a halt for the skin temperature);
    the name says why, so the operator reads "over-range", not "nan".
    """
    name = _sentinel(reg, raw)
    if name is not None:
        return Decoded(math.nan, f"{name} (0x{raw:04X})")
    return Decoded(reg.value_of(raw))


def encode(reg: Register, value: float) -> int:
    """The word to write for ``value``; ValueError, saying why, if a device could misread it."""
    if not math.isfinite(value):
        raise ValueError(f"{value} {reg.unit} cannot be written to a register")
    raw = round(value / reg.scale)
    lo, hi = reg.raw_range
    if not lo <= raw <= hi:
        raise ValueError(f"{value} {reg.unit} does not fit a {reg.type} register at {reg.scale}")
    word = raw & 0xFFFF
    if not reg.in_write_range(reg.value_of(word)):
        low = -math.inf if reg.min is None else reg.min
        high = math.inf if reg.max is None else reg.max
        raise ValueError(f"{value:g} {reg.unit} is outside the register's range {low:g}..{high:g}")
    if _sentinel(reg, word) is not None:
        raise ValueError(f"{value} {reg.unit} encodes to a sentinel, 0x{word:04X}")
    return word


def saturate(reg: Register, value: float) -> int:
    """The word a device's converter puts out for ``value``: clamped to the type's range."""
    lo, hi = reg.raw_range
    return max(lo, min(hi, round(value / reg.scale))) & 0xFFFF


def accepts(reg: Register, raw: int) -> bool:
    """Whether a device takes ``raw`` written to ``reg``: a word, not one of its sentinels,
    within the register's stated ``min``..``max`` (any word fits the type's own range).
    Every word ``encode`` returns is accepted."""
    if not 0 <= raw <= 0xFFFF or _sentinel(reg, raw) is not None:
        return False
    return reg.in_write_range(reg.value_of(raw))


def _sentinel(reg: Register, raw: int) -> str | None:
    return None if reg.sentinels is None else reg.sentinels.named().get(raw)
