"""Ctrl-C where it must not land: inside a lock that a device worker also takes.

A KeyboardInterrupt is raised in the main thread between any two bytecodes, including just
after a lock was acquired and before the ``with`` that releases it took hold. A lock left
held that way is one the laser's worker then waits on forever: no heartbeat, no STOP. So the
main thread's calls into the bridge hold a Ctrl-C until they are over, then raise it.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import ParamSpec, TypeVar

__all__ = ["ctrl_c_after", "ctrl_c_after_call", "sigint_deferred"]

P = ParamSpec("P")
R = TypeVar("R")


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


def ctrl_c_after_call(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with a Ctrl-C that comes during it raised once it returned (``ctrl_c_after``).

    For the bridge's methods that the main thread calls and a device worker shares a lock
    with (the halt state's, a worker's wake-up event). On any other thread, one comparison."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)
        with ctrl_c_after():
            return fn(*args, **kwargs)

    return call
