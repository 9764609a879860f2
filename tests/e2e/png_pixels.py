"""The pixels of a PNG a browser wrote, for tests that check a page was really drawn.

Enough of PNG (RFC 2083) for headless Chromium's screenshots: 8-bit RGB or RGBA, not
interlaced, every row filter. No imaging library is a dependency of the project; a file this
reader does not handle is a test failure with the reason, never a guess.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["colour_count", "read_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    i = len(SIGNATURE)
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return out


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, row: bytes, prev: NDArray[np.uint8], bpp: int) -> NDArray[np.uint8]:
    raw = np.frombuffer(row, dtype=np.uint8)
    if kind == 0:
        return raw.copy()
    if kind == 1:  # Sub: a running sum along the row, per channel, modulo 256
        return np.cumsum(raw.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:  # Up
        return raw + prev
    if kind not in (3, 4):
        raise ValueError(f"unknown PNG row filter {kind}")
    out = bytearray(len(row))
    up = prev.tolist()
    for i, x in enumerate(row):
        a = out[i - bpp] if i >= bpp else 0
        if kind == 3:  # Average
            out[i] = (x + (a + up[i]) // 2) & 0xFF
        else:  # Paeth
            c = up[i - bpp] if i >= bpp else 0
            out[i] = (x + _paeth(a, up[i], c)) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def read_png(path: Path) -> NDArray[np.uint8]:
    """The image as an array of shape (height, width, 3): RGB, alpha dropped."""
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError(f"{path} has no IHDR first")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or colour not in CHANNELS or interlace != 0:
        raise ValueError(f"{path}: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = CHANNELS[colour]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + width * bpp
    if len(raw) != height * stride:
        raise ValueError(f"{path}: {len(raw)} bytes of pixels, not {height} rows of {stride}")
    rows = np.empty((height, width * bpp), dtype=np.uint8)
    prev = np.zeros(width * bpp, dtype=np.uint8)
    for r in range(height):
        line = raw[r * stride : (r + 1) * stride]
        prev = rows[r] = _unfilter(line[0], line[1:], prev, bpp)
    return rows.reshape(height, width, bpp)[:, :, :3]


def colour_count(pixels: NDArray[np.uint8], hex_colour: str) -> int:
    """How many pixels are exactly this colour ("#1e7b34")."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int(np.all(pixels == np.array(rgb, dtype=np.uint8), axis=2).sum())
