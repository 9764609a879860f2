"""Ctrl-C where it must not land: inside a lock that a device worker also takes.

A KeyboardInterrupt is raised in the main thread between any two bytecodes, including just
after a lock was acquired and before the ``with`` that releases it took hold. A lock left
held that way is one the laser's worker then waits on forever: no heartbeat, no STOP. So the
main thread's calls into the bridge hold a Ctrl-C until they are over, then raise it.
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


@contextmanager
def ctrl_c_after() -> Iterator[None]:
    """A Ctrl-C that comes within this block is raised (KeyboardInterrupt) once it is over.

    Only where Ctrl-C raises at all (the main thread, Python's own SIGINT handler): under a
    handler of the program's own (``sigint_deferred``, a shutdown's) nothing changes.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    with sigint_deferred() as received:
        yield
    if received:
        raise KeyboardInterrupt
