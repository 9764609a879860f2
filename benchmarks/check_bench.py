"""What one evaluation of every interlock check costs, on the loop's own thread.

``python -m benchmarks.check_bench`` (``--quick`` for a smoke run, ``--json`` for one JSON
object). Figures, each next to its floor measured in the same run:

- ``check_eval_us``: one ``CheckEngine.evaluate`` of the bundled setup on a healthy live state
  (read-back settings unchanged, as on almost every cycle). CPU time of the calling thread,
  best of several rounds: a loaded machine deschedules the thread, which is not the cost of
  the checks.
- ``check_eval_settings_moving_us``: the same with the read-back fluence changing on every
  call, so the settings gate runs every time (a knob turned on the laser's panel).

Floor: one bare NumPy ufunc call on an 8-element vector into a preallocated buffer (the
smallest step the vectorised evaluation is made of); the ratio says how many such calls one
evaluation costs. Target: ≤ 100 µs, a tenth of a 1 kHz cycle.

Not yet part of ``laserguard bench``; the lead wires it in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from benchmarks.run import standalone_main
from benchmarks.stats import Check, Result, progress
from device_profiles.laser_state import LaserState
from device_profiles.loader import load
from device_profiles.schema import SkinType
from firmware_bridge.live import Ch, Dev, LiveState
from monitor.core.checks import CheckEngine

TARGET_US = 100.0
HEALTHY = {
    Ch.SKIN_TEMP_C: 32.0,
    Ch.PLATE_TEMP_C: 5.0,
    Ch.FLOW_L_MIN: 1.2,
    Ch.COOLER_SETPOINT_C: 5.0,
    Ch.SENSOR_FAULT_CODE: 0.0,
    Ch.COOLER_FAULT_CODE: 0.0,
    Ch.FLUENCE_J_CM2: 150.0,
    Ch.PULSE_MS: 20.0,
    Ch.SPOT_MM: 2.0,
    Ch.REP_RATE_HZ: 1.0,
    Ch.LASER_STATE: LaserState.STANDBY.code,
    Ch.LASER_PULSES: 0.0,
}


def cpu_us_per_call(call: Callable[[], object], n: int, rounds: int) -> float:
    """Thread CPU µs per call, best of ``rounds`` rounds of ``n`` calls."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        for _ in range(n):
            call()
        best = min(best, (time.thread_time_ns() - t0) / n / 1e3)
    return best


def healthy_engine() -> tuple[CheckEngine, LiveState, int]:
    now = time.perf_counter_ns()
    live = LiveState()
    for ch, value in HEALTHY.items():
        live.store(ch, value)
    for dev in Dev:
        live.link_up(dev)
    live.fresh_ns[:] = now
    return CheckEngine(load("demo-ndyag-1064").setup, SkinType.III), live, now


def measure(n: int, rounds: int) -> tuple[float, float, float]:
    """(steady µs, settings-moving µs, floor µs)."""
    engine, live, now = healthy_engine()
    if engine.evaluate(live, now, emission_permitted=True).any():
        raise RuntimeError("the healthy state raised a check: the figure would not be steady")
    steady = cpu_us_per_call(lambda: engine.evaluate(live, now, True), n, rounds)
    fluences = (150.0, 151.0)
    turn = [0]

    def knob() -> None:
        turn[0] ^= 1
        live.value[Ch.FLUENCE_J_CM2] = fluences[turn[0]]
        engine.evaluate(live, now, True)

    moving = cpu_us_per_call(knob, max(n // 2, 1), rounds)
    x, y, out = np.zeros(8), np.ones(8), np.zeros(8, dtype=np.bool_)
    floor = cpu_us_per_call(lambda: np.greater(x, y, out=out), n, rounds)
    return steady, moving, floor


def run(quick: bool) -> list[Result]:
    n, rounds = (500, 3) if quick else (5000, 15)
    progress(f"check engine: {rounds} rounds of {n} evaluations")
    steady, moving, floor = measure(n, rounds)
    notes = {"checks": len(CheckEngine(load("demo-ndyag-1064").setup, SkinType.III).checks)}
    return [
        Result(
            name,
            "µs",
            {"per_call": round(value, 2), "n": n * rounds},
            "floor_numpy_ufunc_call_us",
            {"per_call": round(floor, 3), "n": n * rounds},
            [Check("per_call", f"≤ {TARGET_US:g} µs", round(value, 2), TARGET_US)],
            notes,
        )
        for name, value in (("check_eval_us", steady), ("check_eval_settings_moving_us", moving))
    ]


def main(argv: list[str] | None = None) -> int:
    return standalone_main("python -m benchmarks.check_bench", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
