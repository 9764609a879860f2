"""A line-oriented device served on a pseudo-terminal: what every simulated serial device shares.

The device's model answers one line at a time (``handle_line``); this class puts it on the
slave side of a pty, so the code under test opens the port with pyserial exactly like a USB
serial adapter. Subclasses say how a line ends on their wire (``split_line``) and what the
device answers to line noise that never ends (``on_overflow``).
"""

from __future__ import annotations

import asyncio
import os
import pty
import tty
from typing import Protocol

#: Bytes without a terminator before the input buffer overflows, as a real device's would.
MAX_LINE = 256


class LineModel(Protocol):
    def handle_line(self, line: str) -> str | None: ...

    def record_dropped(self, reply: str) -> None: ...


class PtyPort:
    """The slave side of a pty for the bridge to open (``path``), read on an asyncio loop;
    subclasses frame what arrives (``_on_readable``: read ``_master``, keep ``_buffer``)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._master = -1
        self._slave = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self.path = ""

    def _on_readable(self) -> None:
        raise NotImplementedError

    def open(self, loop: asyncio.AbstractEventLoop) -> str:
        self._master, self._slave = pty.openpty()
        # Raw on both ends: no echo of our replies back to us, no line editing. The slave stays
        # open here too, so the master does not see EIO while the port is closed on the far side.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._loop = loop
        loop.add_reader(self._master, self._on_readable)
        return self.path

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1


class PtyLineDevice(PtyPort):
    """A ``LineModel`` on a pty; ``path`` is the slave device for the bridge to open."""

    def __init__(self, model: LineModel, terminator: str) -> None:
        super().__init__()
        self.model = model
        self.terminator = terminator.encode()

    def split_line(self) -> str | None:
        """The next complete line in the buffer (consumed), or None."""
        if self.terminator not in self._buffer:
            return None
        raw, self._buffer = self._buffer.split(self.terminator, 1)
        return raw.decode("ascii", errors="replace").strip()

    def on_overflow(self) -> str | None:
        """The answer to line noise that overflowed the input buffer (None: silence)."""
        return None

    def disconnected(self) -> bool:
        """True while the device's cable is out (a fault): what arrives is lost, nothing goes."""
        return False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        if self.disconnected():
            self._buffer = b""
            return
        self._buffer += data
        while (line := self.split_line()) is not None:
            if line.strip():
                reply = self.model.handle_line(line)
                if reply is not None:
                    self._write(reply)
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
            reply = self.on_overflow()
            if reply is not None:
                self._write(reply)

    def _write(self, reply: str) -> None:
        try:
            os.write(self._master, reply.encode("ascii") + self.terminator)
        except BlockingIOError:
            # Nobody reads the port and its buffer is full; a UART would drop it too.
            self.model.record_dropped(reply)
