"""CPU hogs: one busy process per core, bounded in time, stopped when done."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _burn(until_monotonic: float) -> None:
    x = 0
    while time.monotonic() < until_monotonic:
        for _ in range(10_000):
            x += 1


@contextmanager
def cpu_hogs(max_s: float, n: int | None = None) -> Iterator[int]:
    """Load every core with a busy loop for at most ``max_s``; yields how many run."""
    ctx = multiprocessing.get_context("spawn")
    count = n or os.cpu_count() or 1
    until = time.monotonic() + max_s
    procs = [ctx.Process(target=_burn, args=(until,), name=f"bench-hog-{i}") for i in range(count)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)  # let them start spinning
        yield count
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5.0)
