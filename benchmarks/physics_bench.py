"""Skin physics cost: a 10-minute layered-skin session, and thermal dose per sample.

``python -m benchmarks.physics_bench`` (``--quick`` for a smoke run, ``--json`` for one JSON
object). Each figure is printed next to its floor measured in the same run:

- ``layered_session_10min_s``: wall time to simulate a 10-minute treatment (1064 nm,
  120 J/cm², 30 ms, 1 Hz, type III, 5 °C contact cooling) on the simulated clock, with every
  sample feeding the IR sensor and the damage integrals. Floor: the same number of bare
  solver steps (the exact modal update alone), i.e. what the physics costs before anything
  is observed. Target: well under 10 s.
- ``dose_cem43_ns_per_sample`` / ``dose_arrhenius_ns_per_sample``: one `add` of the
  standalone dose accumulators (what the monitor will call per sample). Floor: a Python
  loop doing one ``math.exp`` per sample. Target: ≤ 5 µs, 0.5 % of a 1 kHz cycle.

- ``dose_meter_ns_per_sample``: one ``monitor.core.dose_meter.DoseMeter.add`` (CEM43 and Ω
  for the current treatment area and the session), what the interlock loop pays per new
  skin sample. Floor: the same one ``math.exp`` loop. Target: ≤ 20 µs, 2 % of a 1 kHz cycle.

Also ``laserguard bench --only physics`` (``benchmarks.run``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from benchmarks.run import standalone_main
from benchmarks.stats import Check, Result, progress
from device_profiles.schema import SkinType, ThermalDoseLimits
from monitor.core.dose_meter import DoseMeter
from sim.physics import ContactCooling, LayeredSkin, LayeredSkinConfig
from thermal_dose import ArrheniusDose, Cem43Dose

SESSION_S = 600.0
SESSION_RATE_HZ = 1.0


def session_config() -> LayeredSkinConfig:
    return LayeredSkinConfig(SkinType.III, 1064, cooling=ContactCooling(plate_c=5.0), seed=1)


def layered_session(session_s: float) -> tuple[float, float, int, dict[str, float]]:
    """(wall s to simulate, wall s to build the model, samples, final reading figures)."""
    t0 = time.perf_counter()
    skin = LayeredSkin(session_config())
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pulses = int(session_s * SESSION_RATE_HZ)
    for k in range(pulses):
        skin.fire(1.0 + k / SESSION_RATE_HZ, 120.0, 30.0)
    skin.advance_to(session_s + 1.0)
    wall_s = time.perf_counter() - t0
    reading = skin.reading()
    final = {
        "pulses": float(skin.pulses),
        "peak_surface_c": round(skin.peaks.surface_c, 2),
        "log_basal_omega": round(reading.log_basal_omega, 3),
    }
    return wall_s, build_s, skin.samples, final


def bare_steps(samples: int) -> float:
    """Wall s for ``samples`` solver steps of the same model, nothing observed."""
    skin = LayeredSkin(session_config())
    solver = skin.solver
    t0 = time.perf_counter()
    for k in range(samples):
        solver.step(0.001 + (k % 7) * 0.003, 5.0, 4000.0 if k % 50 < 20 else 0.0)
    return time.perf_counter() - t0


def per_sample_ns(n: int) -> tuple[float, float, float]:
    """(CEM43 ns/sample, Arrhenius ns/sample, floor: one math.exp per sample)."""
    temps = [36.0 + (i % 97) * 0.1 for i in range(1000)]

    def best_of(run: Callable[[], float]) -> float:
        return min(run() for _ in range(3)) / n * 1e9

    def cem() -> float:
        dose = Cem43Dose()
        t0 = time.perf_counter()
        for i in range(n):
            dose.add(temps[i % 1000], 0.001)
        return time.perf_counter() - t0

    def arrhenius() -> float:
        dose = ArrheniusDose()
        t0 = time.perf_counter()
        for i in range(n):
            dose.add(temps[i % 1000], 0.001)
        return time.perf_counter() - t0

    def floor() -> float:
        acc = 0.0
        exp = math.exp
        t0 = time.perf_counter()
        for i in range(n):
            acc += exp(-temps[i % 1000])
        return time.perf_counter() - t0

    return best_of(cem), best_of(arrhenius), best_of(floor)


def dose_meter_ns(n: int) -> float:
    """ns per ``DoseMeter.add``: one sample every millisecond, as the loop gives them."""
    temps = [36.0 + (i % 97) * 0.1 for i in range(1000)]
    best = math.inf
    for _ in range(3):
        meter = DoseMeter(ThermalDoseLimits(), gap_ns=50e6)
        t0 = time.perf_counter()
        for i in range(n):
            meter.add(temps[i % 1000], 1_000_000 * (i + 1))
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


def run(quick: bool) -> list[Result]:
    session_s = 60.0 if quick else SESSION_S
    progress(f"layered skin: a {session_s:g} s session at {SESSION_RATE_HZ:g} Hz")
    wall_s, build_s, samples, final = layered_session(session_s)
    progress(f"bare solver steps: {samples}")
    floor_s = bare_steps(samples)
    scale = SESSION_S / session_s  # a quick run is scaled to the 10-minute figure
    n = 50_000 if quick else 1_000_000
    progress(f"thermal dose: {n} samples per accumulator")
    cem_ns, arr_ns, exp_ns = per_sample_ns(n)
    meter_ns = dose_meter_ns(n)
    return [
        Result(
            "layered_session_10min_s",
            "s",
            {"wall_s": round(wall_s * scale, 3), "n": samples},
            "floor_bare_solver_steps_s",
            {"wall_s": round(floor_s * scale, 3), "n": samples},
            [Check("wall_s", "≤ 10 s", round(wall_s * scale, 3), 10.0)],
            {
                "simulated_s": session_s,
                "scaled_to_s": SESSION_S,
                "speedup_over_real_time": round(session_s / wall_s, 1),
                "model_build_s": round(build_s, 3),
                "grid_cells": LayeredSkin(session_config()).grid.n,
                "final": final,
            },
        ),
        Result(
            "dose_cem43_ns_per_sample",
            "ns",
            {"per_sample": round(cem_ns, 1), "n": n},
            "floor_python_math_exp_ns",
            {"per_sample": round(exp_ns, 1), "n": n},
            [Check("per_sample", "≤ 5 µs", round(cem_ns, 1), 5000.0)],
        ),
        Result(
            "dose_arrhenius_ns_per_sample",
            "ns",
            {"per_sample": round(arr_ns, 1), "n": n},
            "floor_python_math_exp_ns",
            {"per_sample": round(exp_ns, 1), "n": n},
            [Check("per_sample", "≤ 5 µs", round(arr_ns, 1), 5000.0)],
        ),
        Result(
            "dose_meter_ns_per_sample",
            "ns",
            {"per_sample": round(meter_ns, 1), "n": n},
            "floor_python_math_exp_ns",
            {"per_sample": round(exp_ns, 1), "n": n},
            [Check("per_sample", "≤ 20 µs", round(meter_ns, 1), 20000.0)],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return standalone_main("python -m benchmarks.physics_bench", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
