"""A bridge in a process of its own, for the faults only a process has: killed, frozen.

The fault matrix runs most scenarios with the session in its own process. A bridge killed
with SIGKILL, or stopped (SIGSTOP: no CPU at all, the worst a starved host can do) and
continued, needs the session in another process: ``BridgeProcess`` starts one, a real
session (bridge, interlock loop, halt path, SQLite session log) against the simulator's
endpoints, and reports over a pipe what the parent cannot see from outside::

    started (session id, t0 wall) -> armed | not_armed (why) -> trip* -> ended

Children are forked from a forkserver that has imported the bridge once, so a start costs
the session's connect, not an interpreter's imports (the kill test starts fifty).

A killed child says nothing more; the pipe only closes. The parent never trusts the child for
what the kill proves: the simulator's record says when the laser stopped, and the SQLite file
says what was committed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from device_profiles.loader import load, with_endpoints
from device_profiles.schema import Setup, SkinType
from firmware_bridge.errors import BridgeError
from monitor.core.errors import Refused
from monitor.core.records import SessionMode, State
from monitor.core.session import Session, SessionParams, no_contraindications_declared
from monitor.record.sqlite_store import open_recorder

__all__ = ["BridgeProcess", "BridgeReport", "BridgeSpec"]

_ARM_ATTEMPTS = 5
_REPORT_POLL_S = 0.002
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BridgeSpec:
    """What the child runs: plain data, so it crosses the process boundary."""

    setup_name: str
    setup: dict[str, Any]  # the setup as the scenario runs it (overrides merged), dumped
    endpoints: dict[str, Any]
    log_path: str
    settings: dict[str, float]
    skin_type: str = SkinType.III.value
    realtime: bool = True
    arm: bool = True


@dataclass
class BridgeReport:
    """What the child said, in order; filled by the parent's reader thread."""

    session_id: str | None = None
    t0_wall: float | None = None
    armed: bool | None = None
    not_armed_why: str = ""
    arm_retries: int = 0
    trips: list[tuple[str, float, str]] = field(default_factory=list)  # check, t_wall, why
    ended: bool = False
    error: str = ""


def _arm(session: Session, settings: dict[str, float]) -> tuple[bool, int, str]:
    """Arm as the matrix does: a loaded host's transient halt before arming is acknowledged
    and arming retried (counted), never the scenario's fault, which comes after arming."""
    last = ""
    for attempt in range(_ARM_ATTEMPTS):
        try:
            if session.state is State.HALTED:
                session.acknowledge("fault-matrix", "halted before arming, no fault yet")
            if not session.request_settings(settings).ok:
                return False, attempt, "the settings were refused by the gate"
            session.arm()
            return True, attempt, ""
        except Refused as e:
            last = str(e)
            time.sleep(0.5)
    return False, _ARM_ATTEMPTS, last


def _serve(conn: multiprocessing.connection.Connection, spec: BridgeSpec) -> None:
    """The child's main: start, arm, report trips until told to end (or killed)."""
    os.setpgid(0, 0)  # a Ctrl-C in the terminal reaches the parent, which ends us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loaded = load(spec.setup_name)
    setup = with_endpoints(Setup.model_validate(spec.setup), spec.endpoints)
    params = SessionParams(
        "fault-matrix",
        "PAT-MATRIX",
        SkinType(spec.skin_type),
        no_contraindications_declared(),
        mode=SessionMode.TEST,
    )
    session = Session(
        loaded, open_recorder(spec.log_path), params, setup=setup, realtime=spec.realtime
    )
    try:
        session.start()
    except (Refused, BridgeError) as e:
        conn.send(("error", f"the session did not start: {e}"))
        return
    conn.send(("started", session.session_id, session.t0_wall))
    if spec.arm:
        armed, retries, why = _arm(session, spec.settings)
        conn.send(("armed", armed, retries, why))
    sent = 0
    try:
        while not conn.poll(_REPORT_POLL_S):
            trips = session.trips
            while sent < len(trips):
                trip = trips[sent]
                conn.send(("trip", trip.check, session.t0_wall + trip.t_s, trip.reason))
                sent += 1
        conn.recv()  # "end"
    except (EOFError, OSError):  # the parent is gone: end the session as a bridge would
        pass
    finally:
        session.end("fault matrix scenario finished")
        session.recorder.close()
    with contextlib.suppress(OSError):
        conn.send(("ended",))


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


class BridgeProcess:
    """The parent's handle on a bridge child process."""

    @staticmethod
    def warm_up() -> None:
        """Start the forkserver (and its imports, a few seconds) now, not at the first start."""
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()

    def __init__(self, spec: BridgeSpec) -> None:
        ctx = _context()
        self.spec = spec
        self.report = BridgeReport()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, spec), name="laserguard-bridge")
        self._child_conn = child
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        pid: int | None = self._proc.pid
        if pid is None:
            raise RuntimeError("the bridge process has not started")
        return pid

    def start(self) -> BridgeProcess:
        self._proc.start()
        self._child_conn.close()
        self._reader = threading.Thread(target=self._read, name="bridge-report", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        rep = self.report
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):  # killed, or ended
                break
            with self._changed:
                match msg:
                    case ("started", sid, t0):
                        rep.session_id, rep.t0_wall = str(sid), float(t0)
                    case ("armed", ok, retries, why):
                        rep.armed, rep.arm_retries, rep.not_armed_why = bool(ok), int(retries), why
                    case ("trip", check, t_wall, why):
                        rep.trips.append((str(check), float(t_wall), str(why)))
                    case ("ended",):
                        rep.ended = True
                    case ("error", why):
                        rep.error = str(why)
                self._changed.notify_all()
        with self._changed:
            if not rep.ended and not rep.error:
                rep.error = "the bridge process is gone"
            self._changed.notify_all()

    def wait(self, what: str, timeout_s: float = _START_TIMEOUT_S) -> bool:
        """Wait until the child has said ``started`` or ``armed`` (or failed); True if it did."""

        def said() -> bool:
            rep = self.report
            if what == "started":
                return rep.session_id is not None
            return rep.armed is not None

        with self._changed:
            self._changed.wait_for(lambda: said() or bool(self.report.error), timeout_s)
            return said()

    def trips_after(self, t_wall: float) -> list[tuple[str, float, str]]:
        with self._changed:
            return [t for t in self.report.trips if t[1] >= t_wall]

    def wait_trip(self, after_wall: float, timeout_s: float) -> tuple[str, float, str] | None:
        with self._changed:
            self._changed.wait_for(lambda: bool(self.trips_after(after_wall)), timeout_s)
        found = self.trips_after(after_wall)
        return found[0] if found else None

    def kill(self) -> float:
        """SIGKILL; the wall time it was sent."""
        t = time.time()
        os.kill(self.pid, signal.SIGKILL)
        self._proc.join(10.0)
        return t

    def freeze(self, stall_s: float) -> tuple[float, float]:
        """SIGSTOP for ``stall_s``, then SIGCONT; the wall times of both."""
        t_stop = time.time()
        os.kill(self.pid, signal.SIGSTOP)
        try:
            time.sleep(stall_s)
        finally:
            os.kill(self.pid, signal.SIGCONT)
        return t_stop, time.time()

    def end(self, timeout_s: float = 15.0) -> None:
        """End the session (if the child still runs) and the process; safe to call twice."""
        if self._proc.pid is None:
            return
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("end")
            self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
        if self._reader is not None:
            self._reader.join(5.0)
        self._conn.close()
