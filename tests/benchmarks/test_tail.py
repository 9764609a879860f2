"""Issue 15 items 1-2: the long run exists as one command, and its attribution says where a
slow trial's time went and what the safety process did meanwhile.

No assertion on any latency: benchmarks measure, tests assert behaviour.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.run import LONG, _positive_float, _positive_int, selection
from benchmarks.tail_probe import (
    STEPS,
    Ring,
    TailProbe,
    TrialRecord,
    _recent,
    attribution_table,
    stall_summary,
    summarize,
)
from firmware_bridge.live import Ch, Dev, LiveState
from monitor.record import chain_log
from monitor.record.writer import LogWriter

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_item1_the_long_run_is_one_command_with_sizes_and_floors() -> None:
    # The smallest run (the idle phase; the CPU-hog phase is the same code under load):
    # each figure next to its floor, the attribution and the late cycles' causes.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "tail", "--trials", "5",
         "--session-s", "1", "--no-console", "--no-hogs", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)["results"]
    assert set(results) == {"tail_halt_ms", "tail_loop_lateness_ms"}
    halt = results["tail_halt_ms"]
    assert {"p50", "p99", "p999", "max", "n"} <= set(halt["value"])
    assert halt["floor_name"] == "floor_modbus_roundtrip_ms" and halt["floor"]["n"] >= 1
    attribution = halt["notes"]["attribution"]
    assert [s["step"] for s in attribution["steps"]] == list(STEPS)
    assert attribution["slow_ms"] == 3.0 and attribution["causes"]
    assert halt["notes"]["live_view"]["frames"] > 0  # the view rendered in the process
    checks = {c["target"] for c in halt["checks"]}
    assert {"≤ 2 ms", "≤ 5 ms", "5 trials run"} <= checks
    loop = results["tail_loop_lateness_ms"]
    assert {"missed", "p999", "max"} <= set(loop["value"]) and loop["floor"]["n"] > 0
    assert "own process, same window" in loop["floor_name"]
    assert loop["notes"]["late_cycles"][-1]["cause"].startswith("none of the above")


@pytest.mark.timeout(90)
def test_issue15_the_long_run_weighs_the_halt_path_alone() -> None:
    """``--core-alone``: the same trials and window on a session with nothing else in its
    process (no session host, control channel, console or view), the log in its own process:
    what a process of its own for the loop and the device workers would run."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--long", "--core-alone", "--trials", "5",
         "--session-s", "1", "--no-hogs", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the halt path alone in the safety process" in done.stderr
    # A long run says where it is: trials timed, and when the armed window ends.
    assert "idle: 5 of 5 halt trials timed" in done.stderr
    assert "idle: the armed window, 1 s (until " in done.stderr
    results = json.loads(done.stdout)["results"]
    halt = results["tail_halt_ms"]
    assert halt["value"]["n"] == 5 and halt["floor"]["n"] >= 1
    notes = halt["notes"]
    assert notes["safety_process"].startswith("the halt path alone")
    assert notes["live_view"]["drawn_in"] == "off" and notes["console_flood"]["running"] is False
    assert notes["log_writer"] == "a process of its own"
    assert results["tail_loop_lateness_ms"]["floor"]["n"] > 0


def test_item1_the_long_run_is_not_in_the_default_run_and_bad_sizes_are_refused() -> None:
    assert LONG not in selection(None, long=False) and "halt" in selection(None, long=False)
    assert selection(None, long=True) == {LONG}
    assert selection("halt", long=True) == {"halt", LONG}
    assert selection("tail", long=False) == {LONG}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "tail", "--trials", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "at least 1, not '0'" in done.stderr
    for parse, bad in ((_positive_int, "x"), (_positive_float, "-1"), (_positive_float, "nan"),
                       (_positive_float, "inf")):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            parse(bad)


def _record(total: float, steps: tuple[float, float, float, float], **ctx: float) -> TrialRecord:
    base = {
        "laser_tx_in_flight_ms": 0.0, "gc_n": 0, "gc_ms": 0.0, "gc_max_gen": -1,
        "writer_tx_n": 0, "writer_tx_ms": 0.0, "hash_n": 0, "hash_ms": 0.0, "view_n": 0,
        "view_ms": 0.0, "path_minflt": 0, "path_majflt": 0, "path_nivcsw": 0,
        "process_minflt": 0, "process_majflt": 0, "process_nivcsw": 0,
    }  # fmt: skip
    base.update(ctx)
    return TrialRecord(total, dict(zip(STEPS, steps, strict=True)), base)


def test_item2_a_slow_trial_is_put_on_its_step_and_on_what_overlapped_it() -> None:
    fast = [_record(1.5, (0.4, 0.3, 0.3, 0.5)) for _ in range(98)]
    # One trial whose STOP waited 6 ms behind a status poll on the wire, one whose loop
    # waited for a gen-2 collection: each is put on its own step and its own cause.
    behind = _record(7.2, (0.4, 0.3, 6.0, 0.5), laser_tx_in_flight_ms=5.8)
    collected = _record(4.9, (0.4, 3.7, 0.3, 0.5), gc_n=1, gc_ms=3.5, gc_max_gen=2)
    summary = summarize([*fast, behind, collected], slow_ms=3.0)
    assert summary["slow_trials"] == 2 and summary["trials"] == 100
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["halt() -> STOP written"]["dominant_in"] == 1
    assert steps["halt() -> STOP written"]["worst_ms"] == 6.0
    assert steps["stored -> halt()"]["dominant_in"] == 1
    causes = {c["cause"]: c for c in summary["causes"]}
    laser = causes["laser transaction in flight at halt()"]
    assert (laser["slow_trials"], laser["share_of_slow"], laser["share_of_all"]) == (1, 0.5, 0.01)
    assert laser["worst"] == 5.8
    assert causes["garbage collection, gen 2"]["slow_trials"] == 1
    assert causes["log writer transaction (SQLite, commit)"]["slow_trials"] == 0
    assert summary["slowest"][0]["latency_ms"] == 7.2
    text = attribution_table(summary, "tail_halt_ms")
    assert "2 of 100 trials slower than 3 ms" in text and "laser transaction" in text


def test_item2_late_loop_cycles_are_laid_against_the_work_that_held_the_process() -> None:
    ms = 1_000_000
    lo, hi = 0, 1000 * ms
    # Late cycles (deadline, ran): two during view frames, one during a writer commit,
    # one during nothing timed.
    stalls = [
        (100 * ms, 104 * ms),
        (300 * ms, 302 * ms),
        (500 * ms, 503 * ms),
        (900 * ms, 902 * ms),
    ]
    kinds = {
        "garbage collection": [(700 * ms, 701 * ms)],
        "log writer transaction (SQLite, commit)": [(499 * ms, 501 * ms)],
        "hashing (the chain)": [],
        "live view tick": [
            (50 * ms, 101 * ms), (301 * ms, 340 * ms), (600 * ms, 610 * ms),
        ],
    }  # fmt: skip
    rows = {r["cause"]: r for r in stall_summary(kinds, stalls, lo, hi)}
    view = rows["live view tick"]
    assert (view["late_cycles"], view["share_of_late"], view["worst_ms"]) == (2, 0.5, 4.0)
    assert view["share_of_time"] == 0.1
    assert rows["log writer transaction (SQLite, commit)"]["late_cycles"] == 1
    assert rows["garbage collection"]["late_cycles"] == 0
    unexplained = rows["none of the above (other threads holding the GIL, the kernel)"]
    assert (unexplained["late_cycles"], unexplained["worst_ms"]) == (1, 2.0)
    assert stall_summary(kinds, [], lo, hi)[0]["late_cycles"] == 0  # no late cycle: no cause


class _Laser:
    def stop(self) -> None: ...
    def status(self) -> str:
        return "READY"

    def heartbeat(self) -> None: ...
    def arm(self) -> None: ...
    def standby(self) -> None: ...
    def set(self, name: str, value: float) -> float:
        return value


def test_item2_the_probe_times_the_process_and_leaves_nothing_patched_behind() -> None:
    live = LiveState()
    laser = _Laser()
    session = SimpleNamespace(
        bridge=SimpleNamespace(laser=laser, live=live, halt_t_ns=None),
        setup=SimpleNamespace(limits=SimpleNamespace(skin_temp_c=SimpleNamespace(high=48.0))),
    )
    originals = (LogWriter._write, chain_log.event_hash, chain_log.telemetry_digest)
    callbacks = list(gc.callbacks)
    probe = TailProbe(session)
    try:
        laser.stop()
        assert laser.status() == "READY"
        live.value[Ch.SKIN_TEMP_C] = 49.0
        live.mark_fresh(Dev.SENSOR)
        live.mark_fresh(Dev.COOLER)  # only the sensor's samples are kept
        gc.collect()
        assert [k for k, _, _ in probe.laser_spans] == ["stop", "status"]
        assert [c for _, c in probe.sensor_stores] == [49.0]
        assert any(gen == 2 for _, _, gen, _ in probe.gc_spans)
        mark = probe.mark()
        assert mark.process[0] >= 0
    finally:
        probe.close()
    assert (LogWriter._write, chain_log.event_hash, chain_log.telemetry_digest) == originals
    assert "stop" not in vars(laser) and "mark_fresh" not in vars(live)
    assert gc.callbacks == callbacks


# --- the probe's rings: no object per event (issue 15, the long run's slow collections) ---


def test_a_ring_keeps_the_newest_rows_in_order_with_their_text() -> None:
    ring = Ring("sif", capacity=4)
    assert ring.rows() == []
    for i in range(6):
        ring.append("stop" if i % 2 else "status", 1_000_000_000_000_000 + i, i / 2)
    assert ring.rows() == [
        ("stop" if i % 2 else "status", 1_000_000_000_000_000 + i, i / 2) for i in range(2, 6)
    ]
    assert _recent(ring, 1_000_000_000_000_004, 1) == ring.rows()[2:]
    assert _recent(ring, 2_000_000_000_000_000, 1) == []


def test_a_ring_written_by_many_threads_at_once_never_reads_a_torn_row() -> None:
    ring = Ring("sii", capacity=512)
    stop = threading.Event()
    torn: list[tuple[object, ...]] = []

    def write(name: str, k: int) -> None:
        for i in range(20_000):
            ring.append(name, i, i * k)

    def read() -> None:
        while not stop.is_set():
            torn.extend(r for r in ring.rows() if r[2] != r[1] * int(r[0][1:]))

    writers = [threading.Thread(target=write, args=(f"w{k}", k)) for k in range(2, 6)]
    reader = threading.Thread(target=read)
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert torn == []
    assert len(ring) == 512
    assert {r[0] for r in ring} <= {"w2", "w3", "w4", "w5"}


def test_a_full_ring_leaves_nothing_in_the_young_generation() -> None:
    """A full deque of tuples frees one for each it makes: CPython's young count stands still
    while its young generation fills with the ring's newest tuples (up to its length), and the
    collection that comes at last scans them all. The ring makes no object that outlives an
    append."""
    kept, n = 4096, 20_000

    def after(append: Callable[[int], object]) -> tuple[int, int]:
        """(objects left young, the young count's rise) after ``n`` appends"""
        gc.collect()
        objects, count = len(gc.get_objects(0)), gc.get_count()[0]
        for i in range(n):
            append(i)
        return len(gc.get_objects(0)) - objects, gc.get_count()[0] - count

    was = gc.isenabled()
    gc.disable()  # so that no collection hides what is left young
    try:
        old: deque[tuple[int, int]] = deque(maxlen=kept)
        ring = Ring("ii", capacity=kept)
        for i in range(2 * kept):  # both full
            old.append((i, i + 1))
            ring.append(i, i + 1)
        young, rise = after(lambda i: old.append((i, i + 1)))  # the probe's old rings
        assert young > 0.9 * kept and rise < 100, (young, rise)
        young, rise = after(lambda i: ring.append(i, i + 1))
        assert young < 100 and rise < 100, (young, rise)
    finally:
        if was:
            gc.enable()
