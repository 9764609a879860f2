"""What a shorter skin-sensor poll costs and what it gains (issue 15, item 3).

For each poll period, the bundled setup with only ``sensor.poll_period_ms`` changed runs as
``halt`` runs it (the simulator in its own process, a READY session, the sensor on Modbus TCP):

1. **cost**, over a quiet armed window (no trials): the CPU time of the bridge's sensor
   worker thread (``/proc/self/task/<tid>/schedstat``, nanoseconds on a CPU), of the whole
   bridge process (``getrusage``), and of the simulator's process (the device's side: on real
   hardware its own processor, here a share of the same cores); the reads a second the
   sensor answered and the share of time a read was in flight (reads/s × mean answer time),
   the load on the sensor's line;
2. **gain**: halt trials timed from the forced crossing (which includes the wait for the next
   poll) next to the same trials timed from the served over-limit reply (the floor: no wait
   for a poll). The difference is what the poll period costs the patient.

``laserguard bench --only poll_cost``; ``python -m benchmarks.poll_cost`` alone.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.halt import IDLE_SCENARIO, SETUP, HaltRig, Trials
from benchmarks.stats import Result, latency_stats
from device_profiles.loader import LoadedSetup, parse, resolve
from firmware_bridge.live import ANSWER_WINDOW, Dev
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl, SimSpec

__all__ = ["POLLS_MS", "PollFigures", "poll_cost", "poll_results"]

#: The bundled sensor's 5 ms, and what a shorter or a longer one does.
POLLS_MS = (1.0, 2.0, 5.0, 10.0)
SENSOR_THREAD = "laserguard-sensor"
_CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass
class PollFigures:
    poll_ms: float
    window_s: float
    reads_per_s: float
    answer_ms_mean: float
    sensor_thread_cpu_pct: float  # of one core
    bridge_process_cpu_pct: float
    simulator_cpu_pct: float
    trials: Trials

    @property
    def read_in_flight_pct(self) -> float:
        return round(min(100.0, self.reads_per_s * self.answer_ms_mean / 10.0), 1)

    def as_notes(self) -> dict[str, Any]:
        return {
            "poll_ms": self.poll_ms,
            "window_s": self.window_s,
            "reads_per_s": round(self.reads_per_s, 1),
            "answer_ms_mean": round(self.answer_ms_mean, 3),
            "read_in_flight_pct": self.read_in_flight_pct,
            "sensor_thread_cpu_pct": round(self.sensor_thread_cpu_pct, 2),
            "bridge_process_cpu_pct": round(self.bridge_process_cpu_pct, 2),
            "simulator_cpu_pct": round(self.simulator_cpu_pct, 2),
            "other_trips": self.trials.other_trips,
        }


def poll_variant(poll_ms: float) -> LoadedSetup:
    """The bundled setup with its sensor polled every ``poll_ms``, validated like any file."""
    data = yaml.safe_load(resolve(SETUP).read_bytes())
    data["sensor"]["poll_period_ms"] = poll_ms
    return parse(yaml.safe_dump(data, sort_keys=False), f"{SETUP} (sensor poll {poll_ms:g} ms)")


def _thread_cpu_ns(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0])


def _process_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _other_process_cpu_s(pid: int) -> float:
    """utime + stime of every thread of ``pid`` (``/proc/<pid>/stat``, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _CLOCK_TICK_S


def _sensor_thread() -> threading.Thread:
    for t in threading.enumerate():
        if t.name == SENSOR_THREAD and t.native_id is not None:
            return t
    raise RuntimeError(f"no thread {SENSOR_THREAD!r}: did the session start?")


def _measure(poll_ms: float, trials: int, window_s: float) -> PollFigures:
    with tempfile.TemporaryDirectory(prefix="laserguard-poll-") as tmp:
        base = Path(tmp)
        scenario = base / "bench-idle.yaml"
        scenario.write_text(IDLE_SCENARIO, encoding="utf-8")
        spec = SimSpec(
            run_dir=str(base / "sim"),
            setup=SETUP,
            scenario=str(scenario),
            realtime=True,
            log_file=str(base / "sim" / "sim.log"),
        )
        with SimControl(spec) as sim, SessionLog(base / "bench-poll.sqlite3") as log:
            rig = HaltRig(sim, poll_variant(poll_ms), log)
            try:
                rig.start()
                time.sleep(0.5)  # past the start's first reads and connections
                tid = _sensor_thread().native_id
                assert tid is not None
                sim_pid = sim.pid
                if sim_pid is None:
                    raise RuntimeError("the simulator has no process")
                live = rig.session.bridge.live
                reads0 = int(live.answers[Dev.SENSOR])
                thread0, proc0 = _thread_cpu_ns(tid), _process_cpu_s()
                sim0 = _other_process_cpu_s(sim_pid)
                t0 = time.perf_counter()
                time.sleep(window_s)
                dt = time.perf_counter() - t0
                thread_s = (_thread_cpu_ns(tid) - thread0) / 1e9
                proc_s = _process_cpu_s() - proc0
                sim_s = _other_process_cpu_s(sim_pid) - sim0
                answered = int(live.answers[Dev.SENSOR])
                reads = answered - reads0
                # The ring of the last answers' times (filled from the start until it wraps).
                answer_ms = float(
                    np.mean(live.answer_ms[Dev.SENSOR, : min(answered, ANSWER_WINDOW)])
                )
                out = rig.run(trials)
            finally:
                rig.close()
    return PollFigures(
        poll_ms=poll_ms,
        window_s=round(dt, 2),
        reads_per_s=reads / dt,
        answer_ms_mean=answer_ms,
        sensor_thread_cpu_pct=100.0 * thread_s / dt,
        bridge_process_cpu_pct=100.0 * proc_s / dt,
        simulator_cpu_pct=100.0 * sim_s / dt,
        trials=out,
    )


def poll_cost(
    polls_ms: tuple[float, ...] = POLLS_MS, trials: int = 200, window_s: float = 10.0
) -> list[PollFigures]:
    return [_measure(p, trials, window_s) for p in polls_ms]


def poll_results(figures: list[PollFigures]) -> list[Result]:
    """One result per poll period: the halt from the crossing next to the halt from the
    served reply (same trials), with the cost in its notes. Information, not a target: the
    budget (``laserguard profiles timing``) decides which period a setup needs."""
    return [
        Result(
            f"halt_from_crossing_poll_{f.poll_ms:g}ms",
            "ms",
            latency_stats(f.trials.crossing_ms),
            "halt_from_served_reply (same trials)",
            latency_stats(f.trials.served_ms),
            [],
            f.as_notes(),
        )
        for f in figures
    ]


def _run(quick: bool) -> list[Result]:
    if quick:
        return poll_results(poll_cost((2.0, 5.0), trials=10, window_s=2.0))
    return poll_results(poll_cost())


def main(argv: list[str] | None = None) -> int:
    from benchmarks.run import standalone_main  # here: benchmarks.run imports this module

    return standalone_main("python -m benchmarks.poll_cost", __doc__, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
