"""A Modbus RTU line on a pseudo-terminal, at the speed of a real serial line.

The bridge opens the slave side of a pty with pyserial, exactly as a USB-RS485 adapter; the
simulator carries each byte between the pty's master side and a simulated device's RTU-framed
socket (`sim.modbus_devices`, ``framing="rtu"``). A pty has no baud timing (ENGINEERING.md),
so the line adds it: every chunk of bytes is delivered only after its time on the wire at
the line's baud rate (11-bit characters for 8E1 or 8N2, 10 for 8N1), one direction at a
time after another, as on a half-duplex RS-485 pair. A request and its reply thus cost at
least what the reaction-time budget computes for them (``device_profiles.timing``), and a
bridge that reads slower than the wire shows up in ``laserguard bench``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import tty


class PtyRtuLine:
    """Bytes between a pty (``path``, for the bridge) and ``host:port`` (the device)."""

    def __init__(self, baudrate: int, char_bits: int = 11) -> None:
        if baudrate <= 0:
            raise ValueError(f"baud rate must be positive, not {baudrate}")
        self.byte_s = char_bits / baudrate
        self.path = ""
        self._master = self._slave = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._line_free = 0.0  # loop time when the wire is next idle

    async def open(self, host: str, port: int) -> str:
        loop = asyncio.get_running_loop()
        reader, self._writer = await asyncio.open_connection(host, port)
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._loop = loop
        loop.add_reader(self._master, self._from_bridge)
        self._pump = asyncio.create_task(self._from_device(reader))
        return self.path

    def _wire_delay(self, n_bytes: int) -> float:
        """Seconds from now until ``n_bytes`` sent after what is on the wire have arrived."""
        assert self._loop is not None
        now = self._loop.time()
        self._line_free = max(now, self._line_free) + n_bytes * self.byte_s
        return self._line_free - now

    def _from_bridge(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the bridge closed the port and the pty has no reader
            return
        writer, loop = self._writer, self._loop
        if writer is None or loop is None or not data:
            return
        loop.call_later(self._wire_delay(len(data)), writer.write, data)

    async def _from_device(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(4096):
            await asyncio.sleep(self._wire_delay(len(data)))
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._master, data)  # nobody reading: a UART would drop it too

    async def close(self) -> None:
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._writer is not None:
            self._writer.close()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
