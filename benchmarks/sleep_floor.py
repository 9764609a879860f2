"""The loop's floor, run beside it: a bare thread sleeping to the same 1 kHz deadlines.

In a process of its own (its own GIL), started with the same scheduling the interlock loop
asks for, for the same window: so it sees the same machine, the same load and the same
moments as the loop, but none of the safety process's Python threads. What the loop misses
beyond what this misses is LaserGuard's; what both miss is the machine's.

Imports only the standard library, NumPy and ``firmware_bridge.realtime`` (the child starts
quickly under ``spawn``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
from typing import Any

import numpy as np

from firmware_bridge.realtime import LOOP_PRIORITY, try_realtime


def _run(conn: multiprocessing.connection.Connection, period_ns: int, seconds: float) -> None:
    scheduling = try_realtime(LOOP_PRIORITY)
    n = int(seconds * 1e9 / period_ns)
    late = np.zeros(n)  # allocated (and touched) before the first deadline
    conn.send(("ready", scheduling))
    conn.recv()  # go
    due = time.perf_counter_ns()
    for k in range(n):
        now = time.perf_counter_ns()
        late[k] = (now - due) / 1e6
        due += period_ns
        sleep_ns = due - time.perf_counter_ns()
        if sleep_ns > 0:
            time.sleep(sleep_ns / 1e9)
    conn.send(("done", late))
    conn.close()


class SleepFloor:
    """Start the child, then ``go()`` at the window's start and ``result()`` at its end."""

    def __init__(self, period_ns: int, seconds: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_run, args=(child, period_ns, seconds), name="bench-sleep-floor", daemon=True
        )
        self._proc.start()
        child.close()
        if not self._conn.poll(60.0):
            self.close()
            raise RuntimeError("the sleep floor's process did not start within 60 s")
        _, self.scheduling = self._conn.recv()
        self.seconds = seconds

    def go(self) -> None:
        self._conn.send("go")

    def result(self) -> Any:
        """The lateness of every deadline (ms); waits for the window to end."""
        if not self._conn.poll(self.seconds + 60.0):
            raise RuntimeError("the sleep floor's process did not finish its window")
        _, late = self._conn.recv()
        return late

    def close(self) -> None:
        """Stop the child if it still runs. Safe to call twice."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(5.0)
        self._conn.close()
