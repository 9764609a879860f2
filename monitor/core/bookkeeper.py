"""The session's words for what happens on the bridge's threads, written on a thread of its own.

The bridge's workers (the relay's, the laser's) and the log writer tell the session about
halts and pauses. Writing them down (the state machine, the list of trips) takes the session's
lock; a worker that waited for that lock could not write the relay or send the next STOP
meanwhile. So such a worker halts first, through the bridge, and then *posts* the words here:
``post`` puts them on a queue and returns at once, and this thread writes them, in the order
posted, taking whatever lock they need.

A task that raises is handed to ``on_error`` (one sentence) and the next one runs: nothing is
swallowed, and the thread outlives a bug in one task. ``close()`` writes what is queued and
stops; a task posted after it runs on the caller's thread (by then the bridge's workers have
stopped, and only a late log failure can still post).
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from typing import ParamSpec

__all__ = ["Bookkeeper"]

P = ParamSpec("P")
_Task = Callable[[], object]


class Bookkeeper:
    """Runs posted tasks on its own daemon thread, in order; ``post`` never blocks."""

    def __init__(self, name: str, on_error: Callable[[str, str], None]) -> None:
        self._on_error = on_error
        # SimpleQueue.put never blocks and takes no lock a task could hold.
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        # Orders post() against close() only: held for one put, never across a task.
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def post(self, fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Run ``fn(*args, **kwargs)`` on the bookkeeper's thread, after what came before."""
        task = functools.partial(fn, *args, **kwargs)
        with self._closing:
            if not self._closed:
                self._queue.put(task)
                return
        self._call(task)

    def close(self, timeout_s: float = 5.0) -> None:
        """Run what is queued, then stop the thread. Safe to call twice."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            self._call(task)

    def _call(self, task: _Task) -> None:
        try:
            task()
        except Exception as e:  # reported, and the next task still runs
            fn = task.func if isinstance(task, functools.partial) else task
            name = getattr(fn, "__name__", repr(fn))
            self._on_error(name, f"{type(e).__name__}: {e}")
