"""What happened in the safety process during each halt trial: the tail's attribution.

A ``TailProbe`` is attached to a running session for a benchmark (never in a clinic: it
wraps a few of the process's functions to timestamp them, and restores them on ``close``):

- **garbage collections**: ``gc.callbacks``, start and stop of each, and its generation;
- **the log writer**: each drain's transaction (``LogWriter._write``: hashing, SQLite inserts
  and the commit with its fsync), and the hashing inside it (``event_hash``,
  ``telemetry_digest``), start and end; with the log in a process of its own
  (``ProcessLogWriter``), each batch sent to it instead (taken from the queue and pickled);
- **the laser worker**: each laser transaction (stop, status, heartbeat, ...), start and end,
  so a STOP that waited behind a status poll already on the wire shows as such;
- **the sensor worker**: when each sample was stored, and the skin temperature it held;
- **page faults and the scheduler**: per thread of the halt path (``/proc/self/task/TID``:
  minor and major faults, involuntary context switches) and for the whole process
  (``getrusage``), read before and after each trial.

Each trial is split into the steps of the halt path (``STEPS``) on one clock (the simulator's
wall-clock events are converted to ``perf_counter_ns`` with the offset read at the trial's
end), and every event above that overlapped the trial is counted against it. ``summarize``
then says, over the trials slower than a threshold, which step took the time and which
events were there, next to how often the same events were there in all trials (a cause that
is as common in fast trials as in slow ones explains nothing).
"""

from __future__ import annotations

import gc
import os
import re
import resource
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.live import Ch, Dev
from monitor.record import chain_log
from monitor.record.writer import LogWriter
from monitor.record.writer_process import ProcessLogWriter

#: The steps of the halt path, in order; their sum is the trial's latency.
STEPS = (
    "served -> stored",  # the reply on the wire, read and stored by the sensor worker
    "stored -> halt()",  # the loop wakes (GIL hand-over) and evaluates
    "halt() -> STOP written",  # the laser worker wakes; may wait for a transaction in flight
    "STOP written -> received",  # the pty and the simulator's read
)
#: Threads on the halt path (by name), and the others worth naming in the context.
PATH_THREADS = ("laserguard-interlock-loop", "laserguard-sensor", "laserguard-laser")
OTHER_THREADS = ("session-log-writer", "laserguard-interlock", "laserguard-cooler")
_EVENTS_KEPT = 65_536  # per kind: far more than one trial or one reporting interval needs


@dataclass(frozen=True)
class ThreadCounters:
    minflt: int
    majflt: int
    nvcsw: int  # voluntary context switches (it slept)
    nivcsw: int  # involuntary: the scheduler took the CPU away
    cpu_ticks: int = 0  # user + system time, in clock ticks (a thread's CPU holds the GIL)


def _thread_counters(tid: int) -> ThreadCounters | None:
    """Faults and context switches of one thread of this process (None: it has gone)."""
    try:
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
            stat = f.read()
        with open(f"/proc/self/task/{tid}/status", encoding="ascii") as f:
            status = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    switches = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            switches[key] = int(value)
    return ThreadCounters(
        minflt=int(fields[7]),
        majflt=int(fields[9]),
        nvcsw=switches.get("voluntary_ctxt_switches", 0),
        nivcsw=switches.get("nonvoluntary_ctxt_switches", 0),
        cpu_ticks=int(fields[11]) + int(fields[12]),
    )


@dataclass(frozen=True)
class Mark:
    """Counters at one moment: per named thread and for the whole process."""

    t_ns: int
    threads: dict[str, ThreadCounters]
    process: tuple[int, int, int]  # minflt, majflt, nivcsw


#: A span that started this long before a trial is not looked for (none lasts that long).
_LOOKBACK_NS = 2_000_000_000


class Ring:
    """A bounded record of one kind of event, in NumPy columns: no object per event.

    The probe's rings were deques of tuples (65,536 each). Once one is full, each append
    makes a tuple and frees the oldest: CPython 3.11 counts a collection due by allocations
    minus deallocations of container objects, so the count stands still while the young
    generation fills with the new tuples, and the collection that comes at last scans them
    all (13,000-15,000 tuples, 2-8 ms, in the 5,000-trial run; ``docs/performance.md``).
    Here an append writes numbers into preallocated arrays; the few objects it makes are
    freed before it returns. Text fields (a thread's name, a laser call's kind) are kept as
    codes into a small table.

    Appends come from several threads (and from a collection's callback, which can run inside
    any of them): each row is written under a re-entrant lock that nothing inside it can
    block on; a reader copies under the same lock, so no row is read half-written."""

    def __init__(self, kinds: str, capacity: int = _EVENTS_KEPT) -> None:
        """``kinds``: one letter per field, ``i`` an integer (nanoseconds), ``f`` a float,
        ``s`` a short text (coded)."""
        self.kinds = kinds
        self.capacity = capacity
        dtypes = {"i": np.int64, "f": np.float64, "s": np.int32}
        self._cols = [np.zeros(capacity, dtype=dtypes[k]) for k in kinds]
        self._n = 0  # rows appended so far
        self._lock = threading.RLock()
        self._codes: dict[str, int] = {}
        self._names: list[str] = []

    def _code(self, text: str) -> int:
        code = self._codes.get(text)
        if code is None:  # a new name: rare (a thread, a kind of call), kept for the run
            self._names.append(text)
            code = self._codes[text] = len(self._names) - 1
        return code

    def append(self, *values: Any) -> None:
        with self._lock:  # nothing inside makes a container object: no collection starts here
            slot = self._n % self.capacity
            for j in range(len(self._cols)):
                v = values[j]
                self._cols[j][slot] = self._code(v) if self.kinds[j] == "s" else v
            self._n += 1

    def rows(self) -> list[tuple[Any, ...]]:
        """Every row still kept, oldest first, text fields decoded."""
        with self._lock:
            n = self._n
            slots = np.arange(max(0, n - self.capacity), n) % self.capacity
            cols: list[list[Any]] = [col[slots].tolist() for col in self._cols]
            names = list(self._names)
        for j, kind in enumerate(self.kinds):
            if kind == "s":
                cols[j] = [names[c] for c in cols[j]]
        return list(zip(*cols, strict=True))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows())

    def __len__(self) -> int:
        return min(self._n, self.capacity)


def _recent(spans: Ring | deque[Any], since_ns: int, start: int) -> list[Any]:
    """The entries after the newest one whose field ``start`` is before ``since_ns``, oldest
    first (the entries come in order of that field, or nearly)."""
    rows = spans.rows() if isinstance(spans, Ring) else list(spans)  # one copy, under the GIL
    first = len(rows)
    while first > 0 and rows[first - 1][start] >= since_ns:
        first -= 1
    return rows[first:]


def _overlap_ms(spans: Iterable[tuple[int, int]], lo: int, hi: int) -> tuple[int, float]:
    """How many of ``spans`` overlap [lo, hi], and for how long in all (ms)."""
    n, total = 0, 0
    for start, end in spans:
        a, b = max(start, lo), min(end, hi)
        if a < b or (start <= lo <= end):
            n += 1
            total += max(0, b - a)
    return n, total / 1e6


@dataclass
class TrialRecord:
    """One timed trial: its latency, its steps and what overlapped it."""

    latency_ms: float
    steps_ms: dict[str, float]
    context: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": round(self.latency_ms, 4),
            "steps_ms": {k: round(v, 4) for k, v in self.steps_ms.items()},
            "context": {k: round(v, 4) for k, v in self.context.items()},
        }


class TailProbe:
    """Timestamps from inside the safety process, for one benchmark run (see the module)."""

    def __init__(self, session: Any, *, gc_census: bool = False) -> None:
        self.session = session
        # Before each collection: how many objects it is about to scan, and of which types
        # (``gc.get_objects`` of the generations collected; costs the run a little, so asked).
        self.gc_census = gc_census
        self.gc_scans: deque[tuple[int, int, list[tuple[str, int]]]] = deque(maxlen=_EVENTS_KEPT)
        self.bridge = session.bridge
        self.limit_c = float(session.setup.limits.skin_temp_c.high)
        # (start, end, generation, the thread that collected)
        self.gc_spans = Ring("iiis")
        self.writer_spans = Ring("ii")  # (start, end)
        self.hash_spans = Ring("ii")
        self.laser_spans = Ring("sii")  # (the call, start, end)
        self.sensor_stores = Ring("if")  # (stored at, skin temperature in °C)
        # Other Python work in the process, timed by whoever runs it (the live view's frames).
        self.view_spans = Ring("ii")
        self._gc_start = 0
        self._restore: list[Callable[[], None]] = []
        self._attach()

    # --- attaching and detaching ------------------------------------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            if self.gc_census:  # counted before the clock starts: the span is the collection's
                scanned = [o for g in range(info["generation"] + 1) for o in gc.get_objects(g)]
                kinds = Counter(type(o).__name__ for o in scanned).most_common(6)
                self.gc_scans.append((time.perf_counter_ns(), len(scanned), kinds))
                del scanned
            self._gc_start = time.perf_counter_ns()
        else:
            end, thread = time.perf_counter_ns(), threading.current_thread().name
            self.gc_spans.append(self._gc_start, end, info["generation"], thread)

    def _patch(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        own = name in vars(owner)  # a class's or module's own function, or an instance's
        old = vars(owner).get(name)
        setattr(owner, name, wrapper)
        if own:
            self._restore.append(lambda: setattr(owner, name, old))
        else:  # the instance used its class's method: drop the shadowing attribute
            self._restore.append(lambda: delattr(owner, name))

    def _attach(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._restore.append(lambda: gc.callbacks.remove(self._on_gc))

        def spans(fn: Callable[..., Any], sink: Ring) -> Callable[..., Any]:
            def timed(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter_ns()
                try:
                    return fn(*args, **kwargs)
                finally:
                    sink.append(t0, time.perf_counter_ns())

            return timed

        self._patch(LogWriter, "_write", spans(LogWriter._write, self.writer_spans))
        # With the log in a process of its own, what is left here is each batch taken from
        # the queue and sent down its pipe (pickled): counted as the writer's work here.
        self._patch(ProcessLogWriter, "_drain", spans(ProcessLogWriter._drain, self.writer_spans))
        for name in ("event_hash", "telemetry_digest"):
            self._patch(chain_log, name, spans(getattr(chain_log, name), self.hash_spans))

        laser = self.bridge.laser
        for name in ("stop", "status", "heartbeat", "arm", "standby", "set"):
            self._patch(laser, name, self._laser_span(name, getattr(laser, name)))

        live = self.bridge.live
        mark_fresh = live.mark_fresh
        stores = self.sensor_stores

        def marked(dev: Dev) -> None:
            mark_fresh(dev)
            if dev == Dev.SENSOR:
                stores.append(live.fresh_ns[dev], live.value[Ch.SKIN_TEMP_C])

        self._patch(live, "mark_fresh", marked)

    def _laser_span(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        sink = self.laser_spans

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                sink.append(kind, t0, time.perf_counter_ns())

        return timed

    def close(self) -> None:
        while self._restore:
            self._restore.pop()()

    # --- counters ----------------------------------------------------------------------------

    def _tids(self, every: bool) -> dict[str, int]:
        """Native ids of the named threads (``every``: of every Python thread, by name and
        id, for the window's CPU shares)."""
        wanted = set(PATH_THREADS + OTHER_THREADS)
        return {
            (t.name if t.name in wanted else f"{t.name}#{t.native_id}"): t.native_id
            for t in threading.enumerate()
            if (every or t.name in wanted) and t.native_id is not None
        }

    def mark(self, every: bool = False) -> Mark:
        threads = {}
        for name, tid in self._tids(every).items():
            c = _thread_counters(tid)
            if c is not None:
                threads[name] = c
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return Mark(time.perf_counter_ns(), threads, (ru.ru_minflt, ru.ru_majflt, ru.ru_nivcsw))

    # --- one trial ---------------------------------------------------------------------------

    def attribute(
        self, before: Mark, after: Mark, served_wall: float, stop_wall: float
    ) -> TrialRecord | None:
        """Split one trial into its steps and count what overlapped it (None: its bridge-side
        timestamps were not found, e.g. a halt for another cause raced it)."""
        offset_ns = time.time_ns() - time.perf_counter_ns()
        served = int(served_wall * 1e9) - offset_ns
        received = int(stop_wall * 1e9) - offset_ns
        lookback = before.t_ns - _LOOKBACK_NS
        stored = next(
            (t for t, c in _recent(self.sensor_stores, before.t_ns, 0) if c > self.limit_c), None
        )
        halt_ns = self.bridge.halt_t_ns
        laser = _recent(self.laser_spans, lookback, 1)
        stop_tx = next((s for k, s, _ in laser if k == "stop" and halt_ns and s >= halt_ns), None)
        if stored is None or halt_ns is None or stop_tx is None:
            return None
        points = (served, stored, halt_ns, stop_tx, received)
        steps = {
            STEPS[i]: (points[i + 1] - points[i]) / 1e6 for i in range(len(STEPS))
        }  # a clock offset error shows as a negative first or last step, not hidden
        ctx: dict[str, float] = {}
        in_flight = [(k, s, e) for k, s, e in laser if s < halt_ns < e and k != "stop"]
        ctx["laser_tx_in_flight_ms"] = max(
            ((e - halt_ns) / 1e6 for _, _, e in in_flight), default=0
        )
        gcs = [(s, e, g) for s, e, g, _ in _recent(self.gc_spans, lookback, 0)
               if s <= received and e >= served]  # fmt: skip
        ctx["gc_n"] = len(gcs)
        ctx["gc_ms"] = sum((min(e, received) - max(s, served)) / 1e6 for s, e, _ in gcs)
        ctx["gc_max_gen"] = max((g for _, _, g in gcs), default=-1)
        n, ms = _overlap_ms(_recent(self.writer_spans, lookback, 0), served, received)
        ctx["writer_tx_n"], ctx["writer_tx_ms"] = n, ms
        n, ms = _overlap_ms(_recent(self.hash_spans, lookback, 0), served, received)
        ctx["hash_n"], ctx["hash_ms"] = n, ms
        n, ms = _overlap_ms(_recent(self.view_spans, lookback, 0), served, received)
        ctx["view_n"], ctx["view_ms"] = n, ms
        for key, attr in (("minflt", "minflt"), ("majflt", "majflt"), ("nivcsw", "nivcsw")):
            total = 0
            for name in PATH_THREADS:
                a, b = before.threads.get(name), after.threads.get(name)
                if a is not None and b is not None:
                    total += getattr(b, attr) - getattr(a, attr)
            ctx[f"path_{key}"] = total
        ctx["process_minflt"] = after.process[0] - before.process[0]
        ctx["process_majflt"] = after.process[1] - before.process[1]
        ctx["process_nivcsw"] = after.process[2] - before.process[2]
        return TrialRecord((received - served) / 1e6, steps, ctx)

    # --- a window of a session (no trials) ---------------------------------------------------

    def window(self, before: Mark, after: Mark) -> dict[str, Any]:
        """What happened between two marks: collections, writer work, faults, switches."""
        lo, hi = before.t_ns, after.t_ns
        gcs = [(s, e, g, t) for s, e, g, t in _recent(self.gc_spans, lo, 0) if s <= hi]
        gc_ms = [(e - s) / 1e6 for s, e, *_ in gcs]
        by_thread = Counter(re.sub(r"[#-]?\d+$", "", t) for *_, t in gcs)
        writer = [(e - s) / 1e6 for s, e in _recent(self.writer_spans, lo, 0) if s <= hi]
        threads: dict[str, dict[str, float]] = {}
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        seconds = max(1e-9, (hi - lo) / 1e9)
        for name, b in after.threads.items():
            a = before.threads.get(name)
            if a is None:
                continue
            threads[name] = {
                "minflt": b.minflt - a.minflt,
                "majflt": b.majflt - a.majflt,
                "nivcsw": b.nivcsw - a.nivcsw,
                # The share of one core this thread used: Python code running holds the GIL.
                "cpu_share": round((b.cpu_ticks - a.cpu_ticks) * tick_s / seconds, 4),
            }
        scans = [x for x in _recent(self.gc_scans, lo, 0) if x[0] <= hi]

        def census_of(st: int, e: int, g: int) -> dict[str, Any]:
            _, n, kinds = next((x for x in reversed(scans) if x[0] <= st), (0, -1, []))
            return {"ms": round((e - st) / 1e6, 3), "generation": g, "scanned": n, "kinds": kinds}

        slowest = sorted(gcs, key=lambda x: x[0] - x[1])[:8]  # the longest first
        census = [census_of(st, e, g) for st, e, g, _ in slowest]
        return {
            "seconds": round((hi - lo) / 1e9, 1),
            "gc_census": census if self.gc_census else "not asked (--gc-census)",
            "gc": {f"gen{g}": sum(1 for _, _, gg, _ in gcs if gg == g) for g in (0, 1, 2)}
            | {
                "max_ms": round(max(gc_ms, default=0.0), 3),
                "total_ms": round(sum(gc_ms), 3),
                "by_thread": dict(by_thread.most_common()),
            },
            "writer_transactions": {
                "n": len(writer),
                "max_ms": round(max(writer, default=0.0), 3),
                "p99_ms": round(float(np.percentile(writer, 99)), 3) if writer else 0.0,
            },
            "threads": threads,
            "process": {
                "minflt": after.process[0] - before.process[0],
                "majflt": after.process[1] - before.process[1],
                "nivcsw": after.process[2] - before.process[2],
            },
        }

    # --- the loop's late cycles --------------------------------------------------------------

    def stall_kinds(self, lo: int) -> dict[str, list[tuple[int, int]]]:
        """The timed work since ``lo`` that can hold the GIL, by kind (``stall_summary``)."""
        return {
            "garbage collection": [(a, b) for a, b, *_ in _recent(self.gc_spans, lo, 0)],
            "log writer transaction (SQLite, commit)": _recent(self.writer_spans, lo, 0),
            "hashing (the chain)": _recent(self.hash_spans, lo, 0),
            "live view tick": _recent(self.view_spans, lo, 0),
        }


def _overlapping(spans: list[tuple[int, int]], stalls: np.ndarray[Any, Any]) -> Any:
    """For each stall (row: deadline, ran), whether any span (start, end) overlaps it."""
    if not spans or not len(stalls):
        return np.zeros(len(stalls), dtype=bool)
    arr = np.array(sorted(spans), dtype=np.int64)
    reach = np.maximum.accumulate(arr[:, 1])  # the latest end among spans started so far
    before = np.searchsorted(arr[:, 0], stalls[:, 1], side="left")  # spans started < ran
    return (before > 0) & (reach[np.maximum(before - 1, 0)] > stalls[:, 0])


def stall_summary(
    kinds: dict[str, list[tuple[int, int]]], stalls: list[tuple[int, int]], lo: int, hi: int
) -> list[dict[str, Any]]:
    """For each kind of work, how many of the loop's late cycles (each the span from its
    deadline to when it ran) it overlapped, next to the share of the window [lo, hi] it
    covered: work that covers 5 % of the time but overlaps 80 % of the late cycles is a
    cause; work that overlaps them as often as it covers the time is not."""
    late = np.array(stalls, dtype=np.int64).reshape(-1, 2)
    length_ms = (late[:, 1] - late[:, 0]) / 1e6
    n = len(late)
    span_ns = max(1, hi - lo)
    explained = np.zeros(n, dtype=bool)
    out = []

    def row(name: str, hit: Any, share_of_time: float) -> dict[str, Any]:
        count = int(hit.sum())
        return {
            "cause": name,
            "late_cycles": count,
            "share_of_late": round(count / n, 3) if n else 0.0,
            "share_of_time": share_of_time,
            "worst_ms": round(float(length_ms[hit].max()), 3) if count else 0.0,
        }

    for name, spans in kinds.items():
        spans = [(a, b) for a, b in spans if a <= hi and b >= lo]
        hit = _overlapping(spans, late)
        explained |= hit
        covered = sum(min(b, hi) - max(a, lo) for a, b in spans)
        out.append(row(name, hit, round(covered / span_ns, 4)))
    none = "none of the above (other threads holding the GIL, the kernel)"
    out.append(row(none, ~explained, float("nan")))
    return out


def stall_table(rows: list[dict[str, Any]], title: str, late: int) -> str:
    lines = [
        f"{title}: {late} cycles later than one period",
        f"  {'overlapping the late cycle':<62}{'late':>6}{'share':>7}{'of time':>9}  worst ms",
    ]
    for r in rows:
        time_share = r["share_of_time"]
        shown = "-" if time_share != time_share else f"{time_share:.1%}"
        lines.append(
            f"  {r['cause']:<62}{r['late_cycles']:>6}{r['share_of_late']:>7.0%}{shown:>9}"
            f"  {r['worst_ms']:g}"
        )
    return "\n".join(lines)


#: A cause, as a test on a trial's context, and the magnitude shown as its worst.
CAUSES: tuple[tuple[str, Callable[[dict[str, float]], bool], str], ...] = (
    ("laser transaction in flight at halt()", lambda c: c["laser_tx_in_flight_ms"] > 0,
     "laser_tx_in_flight_ms"),
    ("garbage collection", lambda c: c["gc_n"] > 0, "gc_ms"),
    ("garbage collection, gen 2", lambda c: c["gc_max_gen"] >= 2, "gc_ms"),
    ("log writer transaction (SQLite, commit)", lambda c: c["writer_tx_n"] > 0, "writer_tx_ms"),
    ("hashing (the chain)", lambda c: c["hash_n"] > 0, "hash_ms"),
    ("live view tick", lambda c: c["view_n"] > 0, "view_ms"),
    ("page faults on the halt path's threads", lambda c: c["path_minflt"] + c["path_majflt"] > 0,
     "path_minflt"),
    ("major page faults (process)", lambda c: c["process_majflt"] > 0, "process_majflt"),
    ("scheduler: involuntary switches on the halt path", lambda c: c["path_nivcsw"] > 0,
     "path_nivcsw"),
)  # fmt: skip


def summarize(records: list[TrialRecord], slow_ms: float) -> dict[str, Any]:
    """Over the trials slower than ``slow_ms``: which step took the time, what was there."""
    slow = [r for r in records if r.latency_ms > slow_ms]
    n_all, n_slow = len(records), len(slow)
    medians = {s: float(np.median([r.steps_ms[s] for r in records])) if records else 0.0
               for s in STEPS}  # fmt: skip
    dominant: dict[str, list[float]] = {s: [] for s in STEPS}
    for r in slow:
        # The step furthest above its own median took the trial's extra time.
        step = max(STEPS, key=lambda s: r.steps_ms[s] - medians[s])
        dominant[step].append(r.steps_ms[step])
    steps = [
        {
            "step": s,
            "median_ms": round(medians[s], 4),
            "dominant_in": len(v),
            "share": round(len(v) / n_slow, 3) if n_slow else 0.0,
            "worst_ms": round(max(v), 4) if v else 0.0,
        }
        for s, v in dominant.items()
    ]
    causes = []
    for name, present, magnitude in CAUSES:
        hits = [r for r in slow if present(r.context)]
        base = sum(1 for r in records if present(r.context))
        causes.append(
            {
                "cause": name,
                "slow_trials": len(hits),
                "share_of_slow": round(len(hits) / n_slow, 3) if n_slow else 0.0,
                "share_of_all": round(base / n_all, 3) if n_all else 0.0,
                "worst": round(max((r.context[magnitude] for r in hits), default=0.0), 4),
                "worst_of": magnitude,
            }
        )
    slowest = sorted(records, key=lambda r: r.latency_ms, reverse=True)[:10]
    return {
        "slow_ms": slow_ms,
        "trials": n_all,
        "slow_trials": n_slow,
        "steps": steps,
        "causes": causes,
        "slowest": [r.as_dict() for r in slowest],
    }


def attribution_table(summary: dict[str, Any], title: str) -> str:
    """The summary as two small text tables (steps, then causes)."""
    lines = [
        f"{title}: {summary['slow_trials']} of {summary['trials']} trials slower than "
        f"{summary['slow_ms']:g} ms",
        f"  {'step that took the extra time':<44}{'median ms':>10}{'slow':>6}{'share':>7}"
        f"{'worst ms':>10}",
    ]
    for s in summary["steps"]:
        lines.append(
            f"  {s['step']:<44}{s['median_ms']:>10.3f}{s['dominant_in']:>6}{s['share']:>7.0%}"
            f"{s['worst_ms']:>10.3f}"
        )
    lines.append(f"  {'present during the trial':<50}{'slow':>6}{'share':>7}{'in all':>8}  worst")
    for c in summary["causes"]:
        lines.append(
            f"  {c['cause']:<50}{c['slow_trials']:>6}{c['share_of_slow']:>7.0%}"
            f"{c['share_of_all']:>8.0%}  {c['worst']:g} ({c['worst_of']})"
        )
    return "\n".join(lines)
