"""Real-time scheduling for the threads of the interlock path, when the OS allows it."""

from __future__ import annotations

import os

LOOP_PRIORITY = 50  # the interlock loop
IO_PRIORITY = 40  # device workers: below the loop, above everything else


def try_realtime(priority: int) -> str:
    """Ask for SCHED_FIFO on the calling thread; say what we got (never raises)."""
    if not hasattr(os, "sched_setscheduler"):
        return "SCHED_OTHER (no SCHED_FIFO on this platform)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as e:
        return f"SCHED_OTHER (SCHED_FIFO refused: {e.strerror})"
    return f"SCHED_FIFO priority {priority}"
