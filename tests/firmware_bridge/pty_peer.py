"""A line device on the far side of a pseudo-terminal, answering on its own thread.

The bridge's ``SerialLineTransport`` opens the slave end as it opens a USB serial port; the
peer reads request lines from the master end and writes what ``answer`` returns.
"""

from __future__ import annotations

import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable

TERM = b"\r\n"

Reply = bytes | list[bytes | float] | None


class PtyPeer:
    """Answers each line written to the slave end with ``answer(line)`` (bytes, no terminator).

    ``answer`` may return ``None`` (stay silent), bytes (one write), or a list of byte strings
    written separately with pauses (floats, in seconds) between them, as a slow device would.
    """

    def __init__(self, answer: Callable[[bytes], Reply]) -> None:
        self.answer = answer
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.received: list[bytes] = []
        self._hangup = threading.Event()
        self._gone = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pty-peer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Only this thread touches the master fd, and it alone closes it: closing an fd that
        # another thread is blocked on neither wakes it nor is safe against fd reuse.
        buf = b""
        try:
            while not self._hangup.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.01)
                if not ready:
                    continue
                chunk = os.read(self.master, 1024)
                buf += chunk
                while TERM in buf:
                    line, buf = buf.split(TERM, 1)
                    self.received.append(line)
                    self._reply(self.answer(line))
        finally:
            os.close(self.master)
            self._gone.set()

    def _reply(self, reply: Reply) -> None:
        for part in [reply] if isinstance(reply, bytes) else reply or []:
            if isinstance(part, float):
                time.sleep(part)
            elif not self._hangup.is_set():
                os.write(self.master, part)

    def hang_up(self) -> None:
        """The device goes away: its end of the pty is closed."""
        self._hangup.set()
        if threading.current_thread() is not self._thread:
            assert self._gone.wait(2), "the pty peer did not hang up"

    def close(self) -> None:
        self.hang_up()
        self._thread.join(timeout=2)
        os.close(self.slave)
