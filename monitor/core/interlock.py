"""The real-time interlock loop: a thread at a fixed rate on absolute deadlines.

Each cycle reads the live arrays, evaluates every check at once, and on a new HALT
condition calls ``halt`` *before* anything else (words and logging come after). It keeps the
recent skin temperature and its own lateness in preallocated NumPy rings; it does not log,
format or allocate per cycle.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge.live import LiveState
from firmware_bridge.realtime import LOOP_PRIORITY, try_realtime
from monitor.core.checks import CheckEngine
from monitor.core.collector import SlackCollector


@dataclass(frozen=True)
class LatenessStats:
    cycles: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    missed: int
    realtime: str

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "cycles": self.cycles,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "missed": self.missed,
            "realtime": self.realtime,
        }


class InterlockLoop(threading.Thread):
    def __init__(
        self,
        engine: CheckEngine,
        live: LiveState,
        *,
        rate_hz: float,
        halt: Callable[[str], None],
        on_condition: Callable[[int, bool], None],
        ring_samples: int = 4096,
        realtime: bool = False,
        on_failure: Callable[[str], None] = lambda why: None,
        period_s: float = 0.0,
        on_period: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="laserguard-interlock-loop", daemon=True)
        self.engine = engine
        self.live = live
        self.halt = halt
        self.on_condition = on_condition
        self.on_failure = on_failure
        # Called from the loop every ``period_s`` (0: never), after the cycle's checks: it must
        # not block (it hands its work to another thread). The session's dose records.
        self.period_ns = int(1e9 / rate_hz)
        self._every_ns = int(period_s * 1e9)
        self.on_period = on_period
        self.want_realtime = realtime
        self.realtime = "not started"
        self.emission_permitted = False
        self.halted = False
        self._stopping = threading.Event()
        # Garbage collection in the loop's slack: an experiment, off unless the bench turns it
        # on (monitor.core.collector).
        self.collector = SlackCollector(self.period_ns)
        n = ring_samples
        self.skin_t_ns: npt.NDArray[np.int64] = np.zeros(n, dtype=np.int64)
        self.skin_c: npt.NDArray[np.float64] = np.full(n, np.nan)
        self.lateness_ms: npt.NDArray[np.float64] = np.zeros(max(n, 65536))
        # When each scheduled cycle ran (perf_counter_ns), beside its lateness: a late cycle
        # can be laid against what else the process did meanwhile (benchmarks.tail).
        self.cycle_ns: npt.NDArray[np.int64] = np.zeros(len(self.lateness_ms), dtype=np.int64)
        self.cycles = 0  # scheduled cycles (lateness is measured on these)
        self.evaluations = 0  # every evaluation: scheduled ones and those woken by new data
        self.missed = 0
        self.last_cycle_ns = 0
        self.failure: str | None = None
        self._prev = np.zeros_like(engine.active)
        self._new = np.zeros_like(engine.active)
        self._cleared = np.zeros_like(engine.active)

    def run(self) -> None:
        self.realtime = (
            try_realtime(LOOP_PRIORITY) if self.want_realtime else "SCHED_OTHER (not requested)"
        )
        gc.freeze()  # what exists now is never scanned again: fewer, shorter collections
        self.collector.start()  # the bench's experiment only: collection in the loop's slack
        try:
            self._run()
        except Exception as e:  # a dead loop checks nothing: halt, say why, and stop
            self.failure = f"{type(e).__name__}: {e}"
            self.halted = True
            self.halt(f"interlock loop failed: {self.failure}")
            self.on_failure(self.failure)
        finally:
            self.collector.stop()
            gc.unfreeze()

    def alive(self, now_ns: int, stall_ns: int) -> bool:
        """The alarm system's own heartbeat: the loop runs and its last cycle is recent."""
        return self.is_alive() and self.failure is None and now_ns - self.last_cycle_ns < stall_ns

    def _run(self) -> None:
        due = time.perf_counter_ns()
        period_due = due + self._every_ns
        ring, late = len(self.skin_c), len(self.lateness_ms)
        data = self.live.new_data
        # The experiment's collector, looked at only when it runs (off by default: no call).
        collect = self.collector.maybe if self.collector.owning else None
        while not self._stopping.is_set():
            now = time.perf_counter_ns()
            # While a halt is latched the bridge itself re-stops a laser that comes back up.
            active = self.engine.evaluate(self.live, now, self.emission_permitted or self.halted)
            np.greater(active, self._prev, out=self._new)
            if self._new.any():
                if not self.halted and (self._new & self.engine.halt_mask).any():
                    self.halted = True
                    self.halt("interlock trip")  # first: stop emission
                for i in np.flatnonzero(self._new):
                    self.on_condition(int(i), True)
            np.greater(self._prev, active, out=self._cleared)
            if self._cleared.any():
                for i in np.flatnonzero(self._cleared):
                    self.on_condition(int(i), False)
            np.copyto(self._prev, active)
            e = self.evaluations
            self.last_cycle_ns = now
            self.skin_t_ns[e % ring] = now
            self.skin_c[e % ring] = self.engine.sensors.hot  # the checked reading
            self.evaluations = e + 1
            if self._every_ns and now >= period_due:
                period_due = now + self._every_ns
                self.on_period()
            if now >= due:  # a scheduled cycle (not one woken early by a new sample)
                lateness = now - due
                k = self.cycles
                self.cycle_ns[k % late] = now
                self.lateness_ms[k % late] = lateness / 1e6
                if lateness > self.period_ns:
                    self.missed += 1
                self.cycles = k + 1
                due += self.period_ns
                if due <= now - 10 * self.period_ns:
                    due = now + self.period_ns  # far behind (suspended?): no burst to catch up
            sleep_ns = due - time.perf_counter_ns()
            if collect is not None and collect(sleep_ns, self.emission_permitted):
                sleep_ns = due - time.perf_counter_ns()
            if sleep_ns > 0:
                # A device worker that stores a sample wakes the loop at once: a crossing is
                # judged when it arrives, not up to a period later.
                data.wait(sleep_ns / 1e9)
                data.clear()

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=2)

    def active_names(self) -> list[str]:
        checks = self.engine.checks
        return [checks[i].name for i in np.flatnonzero(self._prev)]

    def halt_conditions_active(self) -> bool:
        return bool((self._prev & self.engine.halt_mask).any())

    def lateness(self) -> LatenessStats:
        n = min(self.cycles, len(self.lateness_ms))
        data = self.lateness_ms[:n] if n else np.zeros(1)
        p50, p99, p999 = np.percentile(data, [50, 99, 99.9])
        return LatenessStats(
            cycles=self.cycles,
            p50_ms=float(p50),
            p99_ms=float(p99),
            p999_ms=float(p999),
            max_ms=float(data.max()),
            missed=self.missed,
            realtime=self.realtime,
        )

    def recent_skin(
        self, seconds: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(age in s, skin °C) of the last ``seconds``, oldest first, for views and reports."""
        done = self.evaluations
        n = min(done, len(self.skin_c))
        if n == 0:
            return np.zeros(0), np.zeros(0)
        idx = (np.arange(done - n, done)) % len(self.skin_c)
        t = self.skin_t_ns[idx]
        keep = t >= t[-1] - int(seconds * 1e9)
        return (t[keep] - t[-1]) / 1e9, self.skin_c[idx][keep]
