"""Device answer times as the bridge measures them, and what each summary of a window of
them makes of the reaction-time budget.

While the halt benchmark runs, a sampler thread copies every answer time the bridge's device
workers record (read from ``LiveState``'s rings by their counters; it only reads). For the
sensor, the one device on the detection path, every run of ``ANSWER_WINDOW`` consecutive
answers is then summed up three ways: its slowest answer, its fourth slowest, and what the
bridge uses (the 75th percentile). The share of windows whose recomputed budget (the sensor
measured, the other devices as assumed) exceeds the required reaction time says how often
each summary would have refused arming, or halted, a setup with nothing wrong but the host.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from device_profiles.schema import Setup
from device_profiles.timing import LiveBudget
from firmware_bridge.live import ANSWER_WINDOW, Dev, LiveState

SUMMARIES = ("slowest", "fourth_slowest", "p75_as_used")


class AnswerSampler(threading.Thread):
    """Copies the answer times the workers record, until stopped."""

    def __init__(self, live: LiveState, period_s: float = 0.02) -> None:
        super().__init__(name="bench-answer-sampler", daemon=True)
        self.live = live
        self.period_s = period_s
        self.seen = [int(n) for n in live.answers]
        self.times: dict[Dev, list[float]] = {d: [] for d in Dev}
        self.missed = 0  # answers overwritten in a ring before the sampler saw them
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.wait(self.period_s):
            self.collect()

    def collect(self) -> None:
        for dev in Dev:
            n = int(self.live.answers[dev])
            new = n - self.seen[dev]
            if new > ANSWER_WINDOW:
                self.missed += new - ANSWER_WINDOW
            for k in range(max(self.seen[dev], n - ANSWER_WINDOW), n):
                self.times[dev].append(float(self.live.answer_ms[dev, k % ANSWER_WINDOW]))
            self.seen[dev] = n

    def stop(self) -> None:
        self._finished.set()
        self.join(timeout=2)
        self.collect()


def summarize(sampler: AnswerSampler, setup: Setup) -> dict[str, Any]:
    """Per device: how many answers, p50 / p75 / p99 / max; for the sensor, the share of its
    windows each summary would have put over the required reaction time."""
    budget = LiveBudget(setup)
    out: dict[str, Any] = {"missed": sampler.missed, "assumed_ms": budget.assumed}
    for dev in Dev:
        ms = np.asarray(sampler.times[dev])
        if ms.size:
            p50, p75, p99 = np.percentile(ms, [50, 75, 99])
            out[dev.name.lower()] = {
                "n": int(ms.size),
                "p50": round(float(p50), 3),
                "p75": round(float(p75), 3),
                "p99": round(float(p99), 3),
                "max": round(float(ms.max()), 3),
            }
    sensor = np.asarray(sampler.times[Dev.SENSOR])
    if sensor.size >= ANSWER_WINDOW:
        windows = np.sort(np.lib.stride_tricks.sliding_window_view(sensor, ANSWER_WINDOW))
        picks = {
            "slowest": windows[:, -1],
            "fourth_slowest": windows[:, -4],
            "p75_as_used": windows[:, ANSWER_WINDOW - 1 - ANSWER_WINDOW // 4],
        }
        nan = float("nan")
        out["sensor_windows"] = int(windows.shape[0])
        out["share_of_windows_over_budget"] = {
            name: round(
                float(np.mean([budget.total_ms(x, nan, nan) > budget.required_ms for x in v])), 4
            )
            for name, v in picks.items()
        }
    return out
