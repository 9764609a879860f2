"""Issue 15: a thread the safety process starts while a real-time session runs (a console's
channel threads when it connects later, a live view) joins the other threads' real-time class
within a dose period, not ordinary for the rest of the session; the session records how many."""

from __future__ import annotations

import os
import threading

import pytest

from monitor.core.records import EventKind
from monitor.core.session import DOSE_RECORD_PERIOD_S
from tests.e2e.conftest import Rig, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux's per-thread policy"),
]


def _policy(tid: int) -> int:
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK


def test_a_thread_started_during_a_realtime_session_is_adopted(rig: Rig) -> None:
    session = rig.start("normal", realtime=True)
    if not session.background.applied:
        pytest.skip(f"real-time refused here: {session.background.state}")
    stop = threading.Event()
    late = threading.Thread(target=stop.wait, name="a console's channel thread, say")
    late.start()
    try:
        assert late.native_id is not None
        wait_for(
            lambda: _policy(late.native_id) == os.SCHED_RR,  # type: ignore[arg-type]
            DOSE_RECORD_PERIOD_S * 3 + 2.0,
            "the late thread to be adopted",
        )
        rig.close()
        rig.session = None
        assert _policy(late.native_id) == os.SCHED_OTHER  # ordinary again after the session
    finally:
        stop.set()
        late.join()


def test_the_session_records_how_many_threads_it_adopted(rig: Rig) -> None:
    session = rig.start("normal", realtime=True)
    if not session.background.applied:
        pytest.skip(f"real-time refused here: {session.background.state}")
    stop = threading.Event()
    late = threading.Thread(target=stop.wait)
    late.start()
    try:
        wait_for(lambda: session.background.adopted >= 1, DOSE_RECORD_PERIOD_S * 3 + 2.0, "adopt")
        session.end("test finished")
        (lateness,) = rig.log.events(session.session_id, kinds=[EventKind.LOOP_LATENESS])
        payload = lateness.payload if hasattr(lateness, "payload") else lateness["payload"]
        assert payload["other_threads_adopted_later"] >= 1
    finally:
        stop.set()
        late.join()
