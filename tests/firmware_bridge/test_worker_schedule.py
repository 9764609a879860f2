"""A device worker keeps its schedule however often it is woken early."""

from __future__ import annotations

import time

from firmware_bridge.bridge import _Worker


class CountingWorker(_Worker):
    def __init__(self, period_s: float) -> None:
        super().__init__("test-worker", period_s)
        self.steps: list[float] = []

    def step(self) -> None:
        self.steps.append(time.perf_counter())


def test_early_wakes_do_not_push_the_schedule_later() -> None:
    """Heartbeats and polls must keep coming after many halts and operator commands."""
    worker = CountingWorker(period_s=0.02)
    worker.start()
    try:
        for _ in range(200):  # two hundred early wakes within ~0.2 s
            worker.wake.set()
            time.sleep(0.001)
        woken = len(worker.steps)
        time.sleep(0.5)
        scheduled = len(worker.steps) - woken
    finally:
        worker.stop()
    # 0.5 s at a 20 ms period is 25 steps; before the fix the schedule had drifted seconds ahead.
    assert scheduled >= 15


def test_a_slow_step_does_not_cause_a_burst() -> None:
    worker = CountingWorker(period_s=0.01)
    slow = [True]

    def step() -> None:
        worker.steps.append(time.perf_counter())
        if slow[0]:
            slow[0] = False
            time.sleep(0.2)  # twenty periods late

    worker.step = step  # type: ignore[method-assign]
    worker.start()
    try:
        time.sleep(0.3)
    finally:
        worker.stop()
    gaps = [b - a for a, b in zip(worker.steps[1:], worker.steps[2:], strict=False)]
    assert gaps and min(gaps) > 0.005  # evenly spaced again, not twenty steps at once
