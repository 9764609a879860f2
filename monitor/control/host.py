"""The session's owner in the bridge process, as the control channel drives it.

``SessionHost`` starts and ends sessions on the channel's commands, turns each command into
a call of the session's own method (which enforces every limit and precondition: nothing
here can widen a limit or arm past the gate), answers snapshots, and watches the console.

**Console loss halts.** A session started over the channel has a console: the connection
that started it (or one that attached later). Its heartbeat is its ``ping``. When the console's
connection closes, or it sends no ping for ``heartbeat_timeout_s`` (1 s by default; clinic
default, review), the session halts with the trip ``console_lost`` ("console lost: nobody can
see the alarms") in whatever state it is, and the log says why. A console that attaches
afterwards (``attach_console``) sees the latched halt; a person resets it like any other.

Threads: commands run on the channel's command thread, one at a time; ``ping``, ``emergency_halt``
and the connection bookkeeping run on its I/O thread (they never wait for a command); the
console watch has its own thread. The host's lock guards only its own fields and is never
held while the session is called, so nothing here can hold up a halt.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import LoadedSetup, load_contraindications
from device_profiles.protocols import Protocol, ProtocolBook, load_protocols
from device_profiles.schema import Contraindications, Setup
from monitor.control.alarms import AlarmBook, ResetRefused
from monitor.control.feed import EventFeed, TeeRecorder
from monitor.control.protocol import (
    SNAPSHOT_HZ,
    ApplySettings,
    Arm,
    AttachConsole,
    Command,
    ConfirmEyeShields,
    EmergencyHalt,
    EndSession,
    EndTestSpotPause,
    ErrorKind,
    Ping,
    ProposeSettings,
    ProtocolStep,
    Reset,
    SessionInfoCmd,
    Standby,
    StartSession,
    json_safe,
)
from monitor.core.calibration_status import CalibrationStatus
from monitor.core.errors import Refused
from monitor.core.gate import GateResult
from monitor.core.recorder import Recorder
from monitor.core.records import Payload, SessionMode, State
from monitor.core.risk import Attestation, RiskOutcome, assess
from monitor.core.session import Session, SessionParams
from monitor.core.skin_typing import SkinTyping, SkinTypingError
from monitor.record.errors import SessionLogError
from monitor.record.sqlite_store import open_recorder

__all__ = ["HEARTBEAT_TIMEOUT_S", "CommandFailed", "ConsoleEvent", "HostConfig", "SessionHost"]

#: No ping from the console for this long during a session halts it. Clinic default, review:
#: long enough for a busy service to answer, short against a person's reaction to an alarm.
HEARTBEAT_TIMEOUT_S = 1.0
#: How often the console watch looks (and the longest it waits after a connection closes).
WATCH_PERIOD_S = 0.02
#: How the console watch says a closed channel (the link's words follow, when it has them).
_CLOSED = "the channel to the console closed"
#: Trips and warnings listed in a snapshot (the newest; the totals say how many there were).
LISTED_TRIPS = 20


class ConsoleEvent(StrEnum):
    """The channel's own words in the session log (the session writes the rest)."""

    COMMAND = "console_command"  # every command from the console, who, and its outcome
    ATTACHED = "console_attached"
    LOST = "console_lost"
    ALARM_RESET = "console_alarm_reset"
    RESET_REFUSED = "console_reset_refused"
    # One step of the emergency protocol shown for a halt, done: who, which step, its words.
    PROTOCOL_STEP = "console_protocol_step"


class CommandFailed(Exception):
    """A command not carried out; ``kind`` and a one-sentence message for the client."""

    def __init__(self, kind: ErrorKind, message: str, detail: dict[str, object] | None = None):
        super().__init__(message)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class HostConfig:
    loaded: LoadedSetup
    setup: Setup  # the loaded setup with its devices' addresses (an endpoints file, the sim)
    db_path: Path
    mode: SessionMode  # fixed by how the bridge was started, never chosen by a client
    realtime: bool = True
    heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S
    connect_timeout_s: float = 5.0
    meta: Mapping[str, object] = field(default_factory=dict)
    # Called on the command thread after each arm the session carried out (``serve --demo``
    # starts the simulator's scenario then); it must not raise, and never decides anything.
    on_armed: Callable[[], None] | None = None
    # The laser's calibration status, read from the log the session's recorder writes
    # (``monitor.calibration``); None: none is given, and a setup with a calibration policy
    # then refuses to arm. An error reading it refuses the session.
    calibration_for: Callable[[Recorder], CalibrationStatus | None] | None = None


def _gate(result: GateResult) -> dict[str, object]:
    return {
        "ok": result.ok,
        "explanation": result.explain(),
        "violations": [json_safe(v.as_dict()) for v in result.violations],
        "notes": result.notes(),
    }


class SessionHost:
    """Owns at most one session at a time; see the module docstring for the rules."""

    def __init__(
        self,
        config: HostConfig,
        *,
        recorder_factory: Callable[[Path], Recorder] = open_recorder,
        form: Contraindications | None = None,
        protocols: ProtocolBook | None = None,
    ) -> None:
        self.config = config
        self.feed = EventFeed()
        # The emergency protocols the console shows at a halt (bundled by default; `serve`
        # checks the same book against the halt causes before anything starts).
        self._protocols = protocols if protocols is not None else load_protocols().book
        self._steps_done: dict[str, set[int]] = {}  # per protocol id, this session
        self._recorder_factory = recorder_factory
        self._form = form if form is not None else load_contraindications()
        self._session: Session | None = None
        self._recorder: Recorder | None = None
        self._alarms = AlarmBook()
        self.last_session_id: str | None = None
        # The console: guarded by _lock (the host's own; never held while calling the session).
        self._lock = threading.Lock()
        self._console: int | None = None
        self._console_seen_ns = 0
        self._console_closed: str | None = None  # how its channel closed, once it did
        self._shutting_down = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watch = threading.Thread(
            target=self._watch_console, name="laserguard-console-watch", daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> SessionHost:
        self._watch.start()
        return self

    def shutting_down(self) -> None:
        """An orderly stop begins (Ctrl-C on ``laserguard serve``): the laser goes to STANDBY
        now, while the console still shows it; a console that closes after this is expected."""
        session = self._session
        if session is not None and session.state is State.READY:
            # A standby that fails halts, and the session records why: nothing is lost here.
            with contextlib.suppress(Refused):
                session.standby("laserguard serve (shutting down)")
        with self._lock:
            self._shutting_down = True

    def close(self, reason: str = "the bridge stopped") -> None:
        """End a running session (laser to STANDBY, log closed) and stop the watch."""
        with self._lock:
            self._shutting_down = True
        session = self._session
        if session is not None:
            self._end(session, reason)
        self._stop.set()
        self._wake.set()
        if self._watch.is_alive():
            self._watch.join(2.0)

    @property
    def session(self) -> Session | None:
        return self._session

    # --- the console ------------------------------------------------------------------------

    def ping(self, conn: int) -> dict[str, object]:
        """On the I/O thread: the console's heartbeat (a ping from another client is answered
        but does not count)."""
        with self._lock:
            if conn == self._console:
                self._console_seen_ns = time.perf_counter_ns()
        return {"t_wall": time.time()}

    def connection_closed(self, conn: int) -> None:
        """On the I/O thread: a client went away; if it was the console, the watch halts."""
        with self._lock:
            if conn != self._console:
                return
            self._console_closed = _CLOSED
        self._wake.set()

    def channel_closed(self, why: str | None = None) -> None:
        """The channel itself went away (its process died, or its link broke: ``why``): every
        client with it, the console too; the watch halts a running session."""
        with self._lock:
            if self._console is None:
                return
            self._console_closed = _CLOSED if why is None else f"{_CLOSED}: {why}"
        self._wake.set()

    def console_attached(self) -> bool:
        with self._lock:
            return self._console is not None

    def _bind_console(self, conn: int) -> None:
        with self._lock:
            self._console = conn
            self._console_seen_ns = time.perf_counter_ns()
            self._console_closed = None

    def _watch_console(self) -> None:
        timeout_ns = int(self.config.heartbeat_timeout_s * 1e9)
        while not self._stop.is_set():
            self._wake.wait(WATCH_PERIOD_S)
            self._wake.clear()
            session = self._session
            if session is None or session.state in (State.ENDED, State.FAILED):
                continue
            now = time.perf_counter_ns()
            with self._lock:
                conn, closed = self._console, self._console_closed
                age_ns = now - self._console_seen_ns
                if conn is None or self._shutting_down:
                    continue
                if closed is None and age_ns <= timeout_ns:
                    continue
                self._console = None  # reported once; a console that attaches takes over
            if closed is not None:
                how = closed
            else:
                how = (
                    f"no heartbeat for {age_ns / 1e9:.2f} s "
                    f"(limit {self.config.heartbeat_timeout_s:g} s)"
                )
            why = f"console lost ({how}): nobody can see the alarms"
            session.halt("console_lost", why)  # emission stops first, the words after
            self._record(session, ConsoleEvent.LOST, {"why": why, "state": str(session.state)})

    # --- commands ---------------------------------------------------------------------------

    def emergency_halt(self, cmd: EmergencyHalt) -> dict[str, object]:
        """On the I/O thread, never behind a queued command: emission stops at once."""
        session = self._require_session()
        try:
            session.emergency_halt(cmd.who, cmd.reason)
        except Refused as e:
            raise CommandFailed(ErrorKind.REFUSED, str(e)) from e
        self._audit(session, cmd, True, "halted")
        return {"state": str(session.state)}

    def execute(self, cmd: Command, conn: int) -> dict[str, object]:
        """One command on the command thread; ``CommandFailed`` when it is not carried out."""
        match cmd:
            case Ping():
                return self.ping(conn)
            case EmergencyHalt():
                return self.emergency_halt(cmd)
            case SessionInfoCmd():
                return self.session_info(self._require_session())
            case StartSession():
                return self._start_session(cmd, conn)
            case AttachConsole():
                return self._attach(cmd, conn)
        session = self._require_session()
        try:
            if isinstance(cmd, Arm):
                self._watched_by(session, conn, cmd.who)
            result = self._session_command(session, cmd)
        except Refused as e:
            self._audit(session, cmd, False, str(e))
            raise CommandFailed(ErrorKind.REFUSED, str(e)) from e
        except CommandFailed as e:
            self._audit(session, cmd, False, str(e))
            raise
        self._audit(session, cmd, True, "done")
        return result

    def _session_command(self, session: Session, cmd: Command) -> dict[str, object]:
        match cmd:
            case ProposeSettings():
                return _gate(
                    session.limits_table.check(session.params.skin_type, cmd.settings.as_dict())
                )
            case ApplySettings():
                result = session.request_settings(cmd.settings.as_dict(), who=cmd.who)
                if not result.ok:
                    raise CommandFailed(
                        ErrorKind.REFUSED,
                        f"the settings do not pass the gate: {result.explain()}",
                        _gate(result),
                    )
                return {**_gate(result), "confirmed": session.approved}
            case Arm():
                session.arm(cmd.who)
                if self.config.on_armed is not None:
                    self.config.on_armed()
                return {"state": str(session.state)}
            case Standby():
                session.standby(cmd.who)
                return {"state": str(session.state)}
            case Reset():
                return self._reset(session, cmd)
            case EndTestSpotPause():
                session.end_test_spot_pause(cmd.who, cmd.reason)
                return {"state": str(session.state)}
            case ConfirmEyeShields():
                session.confirm_eye_shields(cmd.who)
                return {"eye_shields_confirmed_by": session.eye_shields_confirmed_by}
            case ProtocolStep():
                return self._protocol_step(session, cmd)
            case EndSession():
                why = f"ended by {cmd.who}" + (f": {cmd.reason}" if cmd.reason else "")
                self._audit(session, cmd, True, "ending")
                return self._end(session, why)
        raise CommandFailed(ErrorKind.BAD_REQUEST, f"{type(cmd).__name__} is not a session command")

    def protocol_for(self, check: str) -> Protocol | None:
        """The emergency protocol the console shows for a halt of ``check`` (None: the halt
        implies no exposure of the patient, or the book does not name the cause)."""
        cause = self._protocols.halt_causes.get(check)
        if cause is None or cause.protocol is None:
            return None
        return self._protocols.protocol(cause.protocol)

    def _protocol_step(self, session: Session, cmd: ProtocolStep) -> dict[str, object]:
        """A step of the protocol shown for a halt of this session, done: recorded once, in
        the order done, with who (the log's time is when)."""
        if not any(t.check == cmd.check for t in session.trips):
            raise CommandFailed(
                ErrorKind.REFUSED, f"this session has not halted on {cmd.check}: no protocol shown"
            )
        protocol = self.protocol_for(cmd.check)
        if protocol is None:
            raise CommandFailed(
                ErrorKind.REFUSED, f"a halt on {cmd.check} has no emergency protocol to tick"
            )
        steps = protocol.immediate_steps
        if cmd.step > len(steps):
            raise CommandFailed(
                ErrorKind.BAD_REQUEST,
                f"the protocol {protocol.id} has steps 1 to {len(steps)}, not {cmd.step}",
            )
        with self._lock:
            done = self._steps_done.setdefault(protocol.id, set())
            if cmd.step in done:
                raise CommandFailed(ErrorKind.REFUSED, f"step {cmd.step} is ticked already")
            done.add(cmd.step)
        payload: Payload = {
            "check": cmd.check,
            "protocol_id": protocol.id,
            "step": cmd.step,
            "text": steps[cmd.step - 1],
            "by": cmd.who,
            "note": cmd.note,
        }
        self._record(session, ConsoleEvent.PROTOCOL_STEP, payload)
        with self._lock:
            ticked = sorted(done)
        return {"protocol_id": protocol.id, "step": cmd.step, "ticked": ticked}

    def _require_session(self) -> Session:
        session = self._session
        if session is None:
            raise CommandFailed(ErrorKind.NO_SESSION, "no session is running: start one first")
        return session

    # --- start, attach, reset, end ----------------------------------------------------------

    def _risk(self, cmd: StartSession) -> RiskOutcome:
        """The risk assessment from the console's answers: every question on the current
        form answered yes or no, an attestation covering only relative questions."""
        form = self._form
        ids = [q.id for q in form.questions]
        unknown = sorted(set(cmd.answers) - set(ids))
        if unknown:
            raise CommandFailed(
                ErrorKind.BAD_REQUEST,
                f"answers to questions not on the contraindication form (version "
                f"{form.version}): {', '.join(unknown)}",
            )
        missing = [q for q in ids if q not in cmd.answers]
        if missing:
            raise CommandFailed(
                ErrorKind.BAD_REQUEST,
                f"not answered: {', '.join(missing)} (every question needs yes or no)",
            )
        attestation = None
        if cmd.attestation is not None:
            relative = {q.id for q in form.questions if q.kind == "relative"}
            wrong = sorted(set(cmd.attestation.covers) - relative)
            if wrong:
                raise CommandFailed(
                    ErrorKind.BAD_REQUEST,
                    f"an attestation covers only relative contraindications "
                    f"({', '.join(sorted(relative))}), not {', '.join(wrong)}",
                )
            attestation = Attestation(
                clinician=cmd.attestation.clinician,
                statement=cmd.attestation.statement,
                covers=frozenset(cmd.attestation.covers),
            )
        # Judged for this laser and site, as `laserguard bridge` judges a risk file (a recent
        # tan weighs by wavelength, reflux by site); no site: the strictest reading.
        return assess(
            cmd.answers,
            attestation,
            form,
            wavelength_nm=self.config.setup.laser.wavelength_nm,
            site=cmd.site,
            test_spots=tuple(cmd.test_spots),
        )

    def _start_session(self, cmd: StartSession, conn: int) -> dict[str, object]:
        running = self._session
        if running is not None:
            raise CommandFailed(
                ErrorKind.REFUSED,
                f"session {running.session_id[:8]} is running: end it before starting another",
            )
        try:
            typing = SkinTyping.combine(clinician=cmd.skin_type, melanin_index=cmd.melanin_index)
        except SkinTypingError as e:
            raise CommandFailed(ErrorKind.BAD_REQUEST, str(e)) from e
        risk = self._risk(cmd)
        try:
            inner = self._recorder_factory(self.config.db_path)
        except SessionLogError as e:
            raise CommandFailed(ErrorKind.REFUSED, f"the session log cannot be opened: {e}") from e
        calibration = None
        if self.config.calibration_for is not None:
            try:
                calibration = self.config.calibration_for(inner)
            except Exception as e:  # any failure to read it refuses the session, said so
                inner.close()
                raise CommandFailed(
                    ErrorKind.REFUSED, f"the laser's calibration status cannot be read: {e}"
                ) from e
        params = SessionParams(
            operator=cmd.who,
            patient_id=cmd.patient_id,
            skin_type=typing.skin_type,
            risk=risk,
            mode=self.config.mode,
            skin_typing=typing,
            meta={**self.config.meta, "started_from": "console", "bridge_pid": os.getpid()},
            calibration=calibration,
            site=cmd.site,
        )
        recorder = TeeRecorder(inner, self.feed, inner.close)
        try:
            session = Session(
                self.config.loaded,
                recorder,
                params,
                setup=self.config.setup,
                realtime=self.config.realtime,
                connect_timeout_s=self.config.connect_timeout_s,
            )
        except (Refused, SessionLogError) as e:
            recorder.close()
            raise CommandFailed(ErrorKind.REFUSED, f"the session was not started: {e}") from e
        try:
            session.start()
        except Refused as e:
            session.end(f"start failed: {e}")
            recorder.close()
            raise CommandFailed(ErrorKind.REFUSED, f"the session did not start: {e}") from e
        self._alarms = AlarmBook()
        with self._lock:
            self._steps_done = {}
        self._recorder = recorder
        self._bind_console(conn)
        self._session = session
        self.last_session_id = session.session_id
        self._record(session, ConsoleEvent.ATTACHED, {"by": cmd.who, "connection": conn})
        self._audit(session, cmd, True, "started")
        return self.session_info(session)

    def _attach(self, cmd: AttachConsole, conn: int) -> dict[str, object]:
        session = self._require_session()
        with self._lock:
            current = self._console
        if current is not None and current != conn:
            raise CommandFailed(
                ErrorKind.REFUSED, "another console is attached to this session and alive"
            )
        self._bind_console(conn)
        self._record(session, ConsoleEvent.ATTACHED, {"by": cmd.who, "connection": conn})
        return self.session_info(session)

    def _watched_by(self, session: Session, conn: int, who: str) -> None:
        """Arming needs a console whose heartbeat the watch follows: the connection that arms
        becomes the console when none is attached (after a console was lost); a connection
        other than the attached console may not arm."""
        with self._lock:
            current = self._console
        if current is None:
            self._bind_console(conn)
            self._record(
                session, ConsoleEvent.ATTACHED, {"by": who, "connection": conn, "on": "arm"}
            )
        elif current != conn:
            raise CommandFailed(
                ErrorKind.REFUSED,
                "only the attached console may arm: its heartbeat is what halts the laser "
                "when nobody can see the alarms",
            )

    def _reset(self, session: Session, cmd: Reset) -> dict[str, object]:
        trips = session.trip_tally.frozen()
        active = session.loop.active_names()
        try:
            still = self._alarms.reset(cmd.condition, trips, active)
        except ResetRefused as e:
            self._record(
                session,
                ConsoleEvent.RESET_REFUSED,
                {"check": cmd.condition, "by": cmd.who, "reason": cmd.reason, "why": str(e)},
            )
            raise CommandFailed(ErrorKind.REFUSED, str(e)) from e
        self._record(
            session,
            ConsoleEvent.ALARM_RESET,
            {"check": cmd.condition, "by": cmd.who, "reason": cmd.reason, "still_latched": still},
        )
        if still or session.state is not State.HALTED:
            return {"released": False, "still_latched": still, "state": str(session.state)}
        named = self._alarms.reset_since_release()
        try:
            session.acknowledge(
                cmd.who, cmd.reason, reset=[c for c in named if c == "laser_did_not_stop"]
            )
        except Refused:
            self._alarms.undo(cmd.condition)
            raise
        self._alarms.released()
        return {"released": True, "still_latched": [], "state": str(session.state)}

    def _end(self, session: Session, reason: str) -> dict[str, object]:
        with self._lock:
            self._console = None  # an ended session has no console to lose
        try:
            session.end(reason)
        finally:
            if self._recorder is not None:
                self._recorder.close()
            self._recorder = None
            self._session = None
        return {
            "session_id": session.session_id,
            "state": str(session.state),
            "trips": [t.as_dict() for t in session.trips],
            "pulses_out_of_limits": session.pulses_out_of_limits,
            "aftercare": self._clinic(),
        }

    # --- words ------------------------------------------------------------------------------

    def _record(self, session: Session, kind: ConsoleEvent, payload: Payload) -> None:
        """Queue one of the channel's events in the session's log (never blocks)."""
        session.recorder.event(
            session.session_id, str(kind), {"t_s": round(session.t_s(), 6), **payload}
        )

    def _audit(self, session: Session, cmd: Command, ok: bool, outcome: str) -> None:
        who = getattr(cmd, "who", None)
        self._record(
            session,
            ConsoleEvent.COMMAND,
            {"command": cmd.cmd, "by": who, "ok": ok, "outcome": outcome[:300]},
        )

    def _clinic(self) -> dict[str, object] | None:
        clinic = self.config.setup.clinic
        if clinic is None:
            return None
        return {
            "clinic": clinic.name,
            "emergency_contact": clinic.emergency_contact,
            "aftercare_instructions": clinic.aftercare_instructions,
        }

    def status(self) -> dict[str, object]:
        session = self._session
        return {
            "setup": f"{self.config.setup.name} v{self.config.setup.version}",
            "mode": str(self.config.mode),
            "pid": os.getpid(),
            "session_id": None if session is None else session.session_id,
            "last_session_id": self.last_session_id,
            "console_attached": self.console_attached(),
            "heartbeat_timeout_s": self.config.heartbeat_timeout_s,
            "snapshot_hz": SNAPSHOT_HZ,
        }

    def session_info(self, session: Session) -> dict[str, object]:
        """What a session is: who, whom, its typing, risk and limits (changes per session only)."""
        params = session.params
        rows = [
            row.model_dump(mode="json")
            for row in session.engine.table.rows
            if params.skin_type in row.skin_types
        ]
        return {
            "session_id": session.session_id,
            "operator": params.operator,
            "patient_id": params.patient_id,
            "mode": str(params.mode),
            "setup": f"{session.setup.name} v{session.setup.version}",
            "profile_digest": session.loaded.digest,
            "skin_type": params.skin_type.value,
            "site": str(session.site),
            "site_stated": params.site is not None,
            "eye_shields_needed": session.site is TreatmentSite.PERIORBITAL,
            "eye_shields_confirmed_by": session.eye_shields_confirmed_by,
            "skin_typing": None if params.skin_typing is None else params.skin_typing.as_record(),
            "risk": json_safe(params.risk.as_record()),
            "test_spots": None if session.test_spots is None else session.test_spots.as_record(),
            "limit_table": session.engine.table.name,
            "limits_for_skin_type": rows,
            "skin_temp_band_c": [session.engine.skin_low, session.engine.skin_high],
            "started_t_wall": session.t0_wall,
            "aftercare": self._clinic(),
            "heartbeat_timeout_s": self.config.heartbeat_timeout_s,
        }

    def snapshot(self) -> dict[str, object]:
        """The session now, its alarms, and the bridge (on the channel's publisher thread).

        Reads the session without taking its lock; builds nothing the halt path waits for."""
        session = self._session
        body: dict[str, object] = {
            "bridge": self.status(),
            "session": None,
            "alarms": [],
            "trips_total": 0,
            "warnings_total": 0,
        }
        if session is None:
            return body
        snap = session.snapshot()
        data = snap.as_dict()
        data["trips"] = data["trips"][-LISTED_TRIPS:]  # type: ignore[index]
        data["warnings"] = data["warnings"][-LISTED_TRIPS:]  # type: ignore[index]
        # Each alarm's words are those recorded when it was raised: nothing is worded here.
        alarms = self._alarms.view(
            snap.trip_counts, snap.warning_counts, snap.active_conditions, {}
        )
        body["session"] = json_safe(data)
        body["alarms"] = [a.as_dict() for a in alarms]
        body["trips_total"] = snap.trips_total
        body["warnings_total"] = snap.warnings_total
        return body
