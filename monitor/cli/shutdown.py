"""Shutting a session down in order, whatever the terminal does meanwhile.

Ctrl-C in a terminal sends SIGINT to every process of the foreground process group. The
session's own shutdown (laser to STANDBY, relay open, log closed) must then run to its end:
a second Ctrl-C during it is noted, not raised half-way through the standby.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigint_deferred() -> Iterator[list[int]]:
    """Within this block SIGINT is recorded in the yielded list instead of raising.

    Only the main thread receives signals; elsewhere this does nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        del frame
        received.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)
