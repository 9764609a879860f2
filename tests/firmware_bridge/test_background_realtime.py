"""Issue 15: while a real-time session runs, every other thread of the safety process is
real-time too (at the lowest priority), so an ordinary process cannot preempt a thread that
holds the GIL the interlock loop waits for; what those threads start is ordinary; afterwards
the process is ordinary again."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

import pytest

from firmware_bridge.realtime import BACKGROUND_PRIORITY, BackgroundRealtime

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="per-thread scheduling is Linux's"
)


def policy(tid: int) -> tuple[int, int]:
    """A thread's policy (without the reset-on-fork flag) and priority."""
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(
        tid
    ).sched_priority


def test_other_threads_run_real_time_during_a_session_and_ordinary_after() -> None:
    stop = threading.Event()
    before = threading.Thread(target=stop.wait)
    before.start()
    assert before.native_id is not None
    background = BackgroundRealtime()
    try:
        state = background.apply()
        if "refused" in state:  # an unprivileged user: said, and nothing moved
            assert state.startswith("SCHED_OTHER (SCHED_RR refused")
            assert policy(before.native_id) == (os.SCHED_OTHER, 0)
            assert policy(threading.get_native_id()) == (os.SCHED_OTHER, 0)
            return
        assert state.startswith(f"SCHED_RR priority {BACKGROUND_PRIORITY}")
        assert policy(before.native_id) == (os.SCHED_RR, BACKGROUND_PRIORITY)
        # Whatever they start later begins ordinary: a thread, and a process (a CPU hog
        # spawned from here must not outrank the bridge's own threads).
        seen: list[tuple[int, int]] = []
        later = threading.Thread(target=lambda: seen.append(policy(threading.get_native_id())))
        later.start()
        later.join()
        assert seen == [(os.SCHED_OTHER, 0)]
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert int(child.stdout) == os.SCHED_OTHER
    finally:
        background.restore()
        stop.set()
        before.join()
    assert policy(threading.get_native_id()) == (os.SCHED_OTHER, 0)


def test_a_thread_already_real_time_keeps_its_own_priority() -> None:
    got: list[tuple[int, int]] = []
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        with contextlib.suppress(PermissionError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(40))
        ready.set()
        done.wait()
        got.append(policy(threading.get_native_id()))

    t = threading.Thread(target=worker)
    t.start()
    ready.wait()
    background = BackgroundRealtime()
    try:
        state = background.apply()
    finally:
        background.restore()
        done.set()
        t.join()
    if "refused" in state:
        assert got == [(os.SCHED_OTHER, 0)]
    else:
        assert got == [(os.SCHED_FIFO, 40)]  # neither lowered by apply() nor by restore()


def test_a_thread_started_after_apply_is_adopted_and_ordinary_again_after_restore() -> None:
    stop = threading.Event()
    background = BackgroundRealtime()
    later = threading.Thread(target=stop.wait)
    try:
        state = background.apply()
        later.start()
        assert later.native_id is not None
        assert policy(later.native_id) == (os.SCHED_OTHER, 0)  # reset on fork
        moved = background.adopt()
        if "refused" in state:  # nothing applied, nothing adopted
            assert moved == 0 and not background.applied
            assert policy(later.native_id) == (os.SCHED_OTHER, 0)
            return
        assert moved >= 1 and background.adopted == moved
        assert policy(later.native_id) == (os.SCHED_RR, BACKGROUND_PRIORITY)
        assert background.adopt() == 0  # nothing new since
        background.restore()
        assert policy(later.native_id) == (os.SCHED_OTHER, 0)  # ordinary again
    finally:
        background.restore()
        stop.set()
        if later.is_alive():
            later.join()


def test_adopt_does_nothing_before_apply_or_after_restore() -> None:
    background = BackgroundRealtime()
    assert background.adopt() == 0
    assert policy(threading.get_native_id()) == (os.SCHED_OTHER, 0)
    background.apply()
    background.restore()
    assert background.adopt() == 0
    assert policy(threading.get_native_id()) == (os.SCHED_OTHER, 0)
