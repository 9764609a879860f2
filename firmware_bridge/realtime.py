"""Real-time scheduling for the threads of the interlock path, when the OS allows it."""

from __future__ import annotations

import os

LOOP_PRIORITY = 50  # the interlock loop
IO_PRIORITY = 40  # device workers: below the loop, above everything else


def try_realtime(priority: int, *, round_robin: bool = False) -> str:
    """Ask for SCHED_FIFO on the calling thread (``round_robin``: SCHED_RR, reset on fork, as
    the background threads get); say what we got (never raises)."""
    name = "SCHED_RR" if round_robin else "SCHED_FIFO"
    if not hasattr(os, "sched_setscheduler"):
        return f"SCHED_OTHER (no {name} on this platform)"
    policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK if round_robin else os.SCHED_FIFO
    try:
        os.sched_setscheduler(0, policy, os.sched_param(priority))
    except OSError as e:
        return f"SCHED_OTHER ({name} refused: {e.strerror})"
    return f"{name} priority {priority}"


#: Every other thread of the safety process (log writer, control channel, live view, the
#: main thread): real-time, at the lowest priority, so that no ordinary process can preempt a
#: thread while it holds the GIL that the loop is waiting for (issue 15: the late cycles were
#: this priority inversion). Below the device workers and the loop; above every process at
#: SCHED_OTHER, the console service and a CPU hog included.
BACKGROUND_PRIORITY = 1
_TASKS = "/proc/self/task"


def _tids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(_TASKS)]
    except OSError:
        return []


def _policy(tid: int) -> int:
    """A thread's policy without the reset-on-fork flag."""
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK


class BackgroundRealtime:
    """The process's ordinary threads to SCHED_RR at ``BACKGROUND_PRIORITY`` and back.

    ``apply()`` moves every thread of this process that runs at SCHED_OTHER now, with
    SCHED_RESET_ON_FORK: anything they start later, a thread or a process (a restarted
    console service, a report's browser, a benchmark's CPU hog), starts ordinary. A child
    process that inherited real-time would outrank the bridge's own threads. ``restore()``
    puts every thread still at exactly that class back to SCHED_OTHER, so a process that
    hosted one session (a test, the bench) is ordinary again afterwards. Never raises;
    ``state`` says what happened, in words for the session's record.
    """

    def __init__(self, priority: int = BACKGROUND_PRIORITY) -> None:
        self.priority = priority
        self.state = "SCHED_OTHER (not requested)"
        self.applied = False
        self.adopted = 0  # threads moved by ``adopt`` since ``apply``

    def apply(self) -> str:
        if not hasattr(os, "sched_setscheduler") or not os.path.isdir(_TASKS):
            self.state = "SCHED_OTHER (no SCHED_RR on this platform)"
            return self.state
        moved, refused = self._move_ordinary()
        if refused:
            self.restore()
            self.state = f"SCHED_OTHER (SCHED_RR refused: {refused})"
        else:
            self.applied = True
            self.adopted = 0
            self.state = f"SCHED_RR priority {self.priority} ({moved} threads)"
        return self.state

    def adopt(self) -> int:
        """The threads started since ``apply()`` (they start ordinary: reset on fork), into
        the same class: a console that connected later gets its channel threads, a live view
        started after the session its own. Called periodically while a session runs; does
        nothing unless ``apply()`` succeeded. Returns how many it moved; never raises."""
        if not self.applied:
            return 0
        moved, refused = self._move_ordinary()
        self.adopted += moved
        if refused:  # allowed at apply, refused now (the limit was lowered): say so
            self.state = f"{self.state}; a later thread refused SCHED_RR: {refused}"
        return moved

    def _move_ordinary(self) -> tuple[int, str]:
        """Every SCHED_OTHER thread of this process to SCHED_RR: (how many, why refused)."""
        moved = 0
        for tid in _tids():
            try:
                if _policy(tid) != os.SCHED_OTHER:
                    continue  # already real-time (the loop, a worker): its own priority
                os.sched_setscheduler(
                    tid, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(self.priority)
                )
                moved += 1
            except ProcessLookupError:
                continue  # the thread ended meanwhile
            except OSError as e:
                return moved, e.strerror or str(e)
        return moved, ""

    def restore(self) -> None:
        self.applied = False
        if not hasattr(os, "sched_setscheduler"):
            return
        for tid in _tids():
            try:
                if (
                    _policy(tid) == os.SCHED_RR
                    and os.sched_getparam(tid).sched_priority == self.priority
                ):
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            except OSError:
                continue
