"""The live view in a process of its own (issue 15): the safety process only hands it frames.

Hostile cases, each with a real drawing process: its drawing raises, it is killed, it is
stopped (SIGSTOP) so it draws nothing, Ctrl-C reaches it, and its session's process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from monitor.cli.live_view import LiveViewProcess
from monitor.core.records import State
from tests.monitor.cli.test_live_view import snapshot

REPO = Path(__file__).resolve().parents[3]
#: Slack for a loaded test machine; the stall test waits at least this long.
STALL_S = 3.0


def session_like(**changes: Any) -> Any:
    """What ``frame_of`` reads of a session, and what a failed view names: state, trips."""
    snap = snapshot("HALTED", 44.06, **changes)
    return SimpleNamespace(
        snapshot=lambda: snap,
        loop=SimpleNamespace(recent_skin=lambda s: (np.zeros(3), np.array([30.0, 40.0, 44.5]))),
        state=State.HALTED,
        trips=list(snap.trips),
    )


def until(cond: Any, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def tick_until_raises(view: LiveViewProcess, session: Any, timeout_s: float = 40.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            view.update(session, 1.0)
        except RuntimeError as e:
            return str(e)
        time.sleep(0.02)
    raise AssertionError("the view never reported a failure")


@pytest.fixture
def view() -> Iterator[LiveViewProcess]:
    with LiveViewProcess("test", None, stall_s=STALL_S, discard=True) as v:
        yield v


def test_it_draws_the_frames_it_is_given(view: LiveViewProcess) -> None:
    session = session_like()
    until(lambda: (view.update(session, 1.0), view.frames >= 3)[1])
    assert view.pid is not None and view.pid != os.getpid()


def test_a_drawing_that_raises_comes_back_as_the_views_failure(view: LiveViewProcess) -> None:
    broken = session_like(skin_temp_band_c=None)  # the panel cannot be laid out
    assert "TypeError" in tick_until_raises(view, broken)
    session = session_like()
    until(lambda: (view.update(session, 1.0), view.frames >= 1)[1])  # and it draws again


def test_a_killed_view_is_a_failure_and_the_state_goes_to_stderr(
    view: LiveViewProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_like()
    until(lambda: (view.update(session, 1.0), view.frames >= 1)[1])
    assert view.pid is not None
    os.kill(view.pid, signal.SIGKILL)
    assert "ended (exit code -9)" in tick_until_raises(view, session)
    with pytest.raises(RuntimeError, match="ended"):  # and on every tick after
        view.update(session, 1.0)
    err = capsys.readouterr().err
    assert err.count("live view failed") == 1  # said once, in plain words
    assert "HALTED" in err and "skin_temp_high" in err


def test_a_view_that_draws_nothing_is_a_failure(view: LiveViewProcess) -> None:
    session = session_like()
    until(lambda: (view.update(session, 1.0), view.frames >= 1)[1])
    assert view.pid is not None
    os.kill(view.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert "drawn nothing for" in tick_until_raises(view, session)
        assert time.monotonic() - t0 >= STALL_S  # its stall limit, not at once
    finally:
        os.kill(view.pid, signal.SIGCONT)


def test_ctrl_c_is_the_sessions_not_the_views(view: LiveViewProcess) -> None:
    session = session_like()
    until(lambda: (view.update(session, 1.0), view.frames >= 1)[1])
    assert view.pid is not None
    os.kill(view.pid, signal.SIGINT)
    drawn = view.frames
    until(lambda: (view.update(session, 1.0), view.frames >= drawn + 2)[1])


def test_a_frame_that_cannot_be_taken_is_a_failure(view: LiveViewProcess) -> None:
    def broken() -> None:
        raise KeyError("limits")

    good = session_like()
    until(lambda: (view.update(good, 1.0), view.frames >= 1)[1])  # ready, and drawing
    bad = replace_snapshot(good, broken)
    deadline = time.monotonic() + 40.0
    with pytest.raises(KeyError):  # once the frame in flight is drawn, the next is taken
        while time.monotonic() < deadline:
            view.update(bad, 1.0)
            time.sleep(0.02)


def replace_snapshot(session: Any, fn: Any) -> Any:
    return SimpleNamespace(**{**vars(session), "snapshot": fn})


ORPHAN = """
import os, sys, time
from monitor.cli.live_view import LiveViewProcess
view = LiveViewProcess("orphan", None, discard=True).__enter__()
print(view.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_the_view_ends_when_its_sessions_process_is_killed() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ORPHAN], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        with proc.stdout:
            child = int(proc.stdout.readline())
        proc.kill()
        proc.wait(10)

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
            return state == "Z"  # ended, not yet reaped by init

        until(gone, 20.0)
    finally:
        proc.kill()
