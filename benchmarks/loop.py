"""Interlock loop lateness at its rate, with the bridge doing real I/O, next to a bare sleep.

The figure: a session READY against the simulator child (sensor polled every 5 ms, laser
every 20 ms, relay refreshed every 50 ms, telemetry logged), for ``duration_s``; the loop's own
lateness record (`InterlockLoop.lateness`). The floor: a thread in the same process pacing
itself to absolute deadlines at the same rate for the same time, doing nothing else.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from benchmarks.halt import halt_rig
from benchmarks.stats import lateness_stats


def loop_lateness(duration_s: float) -> tuple[dict[str, float], str, float]:
    """(lateness stats, scheduling, period in ms) of the interlock loop of a READY session."""
    with halt_rig("tcp") as rig:
        loop = rig.session.loop
        start = loop.cycles
        time.sleep(duration_s)
        end = loop.cycles
        period_ms = loop.period_ns / 1e6
        ring = loop.lateness_ms
        if end - start > len(ring):
            raise RuntimeError("the lateness ring is shorter than the run; shorten duration")
        idx = np.arange(start, end) % len(ring)
        window = ring[idx].copy()  # only the READY window, not the connect phase
        stats = lateness_stats(window, period_ms)
        realtime = loop.realtime
    return stats, realtime, period_ms


def sleep_lateness(duration_s: float, period_ms: float) -> dict[str, float]:
    """A bare thread sleeping to absolute deadlines: what the OS and CPython give anyone."""
    period_ns = int(period_ms * 1e6)
    n = int(duration_s * 1000.0 / period_ms)
    late = np.zeros(n)
    out: dict[str, Any] = {}

    def run() -> None:
        due = time.perf_counter_ns()
        for k in range(n):
            now = time.perf_counter_ns()
            late[k] = (now - due) / 1e6
            due += period_ns
            sleep_ns = due - time.perf_counter_ns()
            if sleep_ns > 0:
                time.sleep(sleep_ns / 1e9)
        out["done"] = True

    thread = threading.Thread(target=run, name="bench-sleep-floor", daemon=True)
    thread.start()
    thread.join()
    return lateness_stats(late, period_ms)
