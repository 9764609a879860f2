"""A treatment session: the bridge, the interlock loop and the log, under one state machine.

States::

    CONNECTING ──all devices fresh──► STANDBY ──arm (gate + preconditions)──► READY
         │                              ▲  ▲                                     │
         └──────── timeout: FAILED      │  └──────────── standby ────────────────┤
                                        └── acknowledge (who, why; conditions clear) ── HALTED ◄── any trip

Everything that happens is logged. If the log cannot be written, the laser is halted.
Operator commands are refused with a reason (``Refused``), never silently ignored.

Test-spot mode (a relative contraindication's ``test_spot_only``, ``monitor.core.spots``): after
the allowed number of pulses the session puts the laser in STANDBY itself and refuses to arm
until a clinician ends the pause (``end_test_spot_pause``). The pause is not a state of its
own: a halt and its acknowledgement during the pause leave it in place.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from device_profiles.loader import LoadedSetup, load_contraindications
from device_profiles.schema import LASER_SETTINGS, Setup, SkinType
from device_profiles.timing import pulse_to_standby_ms, reaction_budget
from firmware_bridge.bridge import Bridge
from firmware_bridge.errors import BridgeError
from firmware_bridge.live import ANSWER_MIN, Ch, Dev
from monitor.core.checks import BLOCKS_ARMING, CHECKS, HALT_MASK, INDEX, CheckEngine
from monitor.core.gate import GateResult
from monitor.core.interlock import InterlockLoop
from monitor.core.pulse_limits import PulseJudge
from monitor.core.risk import RiskOutcome, assess
from monitor.core.skin_typing import SkinTyping
from monitor.core.spots import TestSpotMode, Verdict
from monitor.record.policy import TelemetryPolicy
from monitor.record.reconcile import KIND_COUNTER, reconcile
from monitor.record.sqlite_store import SessionLog
from monitor.record.writer import LogWriter

SWITCH_INTERVAL_S = 0.0002


class State(StrEnum):
    CONNECTING = "CONNECTING"
    STANDBY = "STANDBY"
    READY = "READY"
    HALTED = "HALTED"
    FAILED = "FAILED"
    ENDED = "ENDED"


class Refused(Exception):
    """An operator request that LaserGuard will not carry out; the message says why."""


@dataclass
class Trip:
    check: str
    reason: str
    t_s: float
    severity: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "reason": self.reason,
            "t_s": round(self.t_s, 4),
            "severity": self.severity,
        }


@dataclass
class SessionParams:
    operator: str
    patient_id: str
    skin_type: SkinType
    risk: RiskOutcome  # no session without a recorded pre-treatment risk assessment
    mode: str = "demo"  # demo | test | clinical: simulated data is never mistaken for real
    skin_typing: SkinTyping | None = None  # how the type was chosen (clinician / melanin index)
    meta: dict[str, Any] = field(default_factory=dict)


def no_contraindications_declared() -> RiskOutcome:
    """Every question answered "no": for demos and tests, recorded as such in the log."""
    return assess({q.id: False for q in load_contraindications().questions})


class Session:
    def __init__(
        self,
        loaded: LoadedSetup,
        log: SessionLog,
        params: SessionParams,
        *,
        setup: Setup | None = None,
        realtime: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.loaded = loaded
        self.setup = setup or loaded.setup
        self.params = params
        self.log = log
        self.state = State.CONNECTING
        self.trips: list[Trip] = []
        self.warnings: list[Trip] = []
        self.approved: dict[str, float] | None = None
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        budget = reaction_budget(self.setup)
        if not budget.ok:  # also refused at load; a setup built in code gets the same answer
            raise Refused("the setup cannot meet its required reaction time:\n" + budget.format())
        self.session_id = log.start_session(
            operator=params.operator,
            patient_id=params.patient_id,
            skin_type=params.skin_type.value,
            profile_name=f"{self.setup.name} v{self.setup.version}",
            profile_digest=loaded.digest,
            mode=params.mode,
            meta={
                **params.meta,
                "profile_source": loaded.source,
                "setup_digest": loaded.setup_digest,
                "limit_table": loaded.table_name,
                "limit_table_version": loaded.table_version,
                "limit_table_digest": loaded.table_digest,
                "reaction_budget_ms": round(budget.total_ms, 3),
                "answer_ms_assumed": {k: round(v, 3) for k, v in budget.assumed_answer_ms.items()},
                "skin_temp_band_c": [
                    self.setup.limits.skin_temp_c.low,
                    self.setup.limits.skin_temp_c.high,
                ],
                "required_reaction_ms": budget.required_ms,
                "laser_id": self.setup.name,  # whose pulse counter this session reconciles
            },
        )
        clinic = self.setup.clinic
        # Recorded before anything can arm, synchronously: these decide what arming may do.
        log.append(self.session_id, "risk_assessment", params.risk.as_record())
        self.test_spots = (
            TestSpotMode.from_restrictions(params.risk.restrictions)
            if params.risk.arming_allowed
            else None
        )
        if self.test_spots is not None:
            log.append(
                self.session_id,
                "test_spot_mode",
                {
                    **self.test_spots.as_record(),
                    "pulse_to_standby_ms": round(pulse_to_standby_ms(self.setup), 3),
                },
            )
        if params.skin_typing is not None:
            log.append(self.session_id, "skin_typing", params.skin_typing.as_record())
        log.append(
            self.session_id,
            "patient_information",
            {
                "clinic": None if clinic is None else clinic.name,
                "emergency_contact": None if clinic is None else clinic.emergency_contact,
                "aftercare_instructions": None if clinic is None else clinic.aftercare_instructions,
            },
        )
        self.t0_wall = time.time()
        self.t0_ns = time.perf_counter_ns()
        self.writer = LogWriter(
            log, on_failure=self._log_failed, telemetry_policy=TelemetryPolicy()
        )
        self.engine = CheckEngine(self.setup, params.skin_type)
        if params.risk.arming_allowed:  # a relative contraindication tightens, never widens
            self.engine.table = self.engine.table.restricted(params.risk.restrictions)
        self.pulse_judge = PulseJudge(self.engine.table, params.skin_type)
        self.bridge = Bridge(
            self.setup,
            on_event=self._bridge_event,
            on_telemetry=self._telemetry,
            realtime=realtime,
        )
        self.loop = InterlockLoop(
            self.engine,
            self.bridge.live,
            rate_hz=self.setup.loop.rate_hz,
            halt=self.bridge.halt,
            on_condition=self._condition,
            ring_samples=self.setup.loop.ring_samples,
            realtime=realtime,
            on_failure=self._loop_failed,
        )

        stall_ns = int(self.setup.limits.required_reaction_ms * 1e6)
        self.bridge.supervisor = lambda: self._loop_trouble(stall_ns)

    # --- helpers -------------------------------------------------------------------------------

    def _halted_by(self, check: str, why: str) -> None:
        with self._lock:
            self.loop.emission_permitted = False
            self.state = State.HALTED
            self.trips.append(Trip(check, why, self.t_s(), "HALT"))
        self._event("trip", self.trips[-1].as_dict())

    def _loop_failed(self, failure: str) -> None:
        self._halted_by("interlock_loop", f"interlock loop failed: {failure}")

    def _loop_trouble(self, stall_ns: int) -> str | None:
        """Why the interlock loop cannot be trusted now, or None (checked by the relay worker)."""
        if self.loop.alive(time.perf_counter_ns(), stall_ns):
            return None
        if self.loop.failure:
            return f"interlock loop failed: {self.loop.failure}"  # already recorded as a trip
        why = f"interlock loop stalled for more than {stall_ns / 1e6:g} ms"
        self._halted_by("interlock_loop", why)
        return why

    def t_s(self) -> float:
        return (time.perf_counter_ns() - self.t0_ns) / 1e9

    def _event(self, kind: str, payload: dict[str, Any]) -> None:
        self.writer.event(self.session_id, kind, {"t_s": round(self.t_s(), 6), **payload})

    def _telemetry(self, ch: int, value: float) -> None:
        self.writer.telemetry(self.session_id, self.t_s(), ch, value)

    def _bridge_event(self, kind: str, payload: dict[str, Any]) -> None:
        self._event(kind, payload)
        if kind == "pulses":
            bad = self.pulse_judge.judge(payload["n"], payload["total"], payload["settings"])
            if bad is not None:
                self._event("pulse_out_of_limits", bad.as_record())
            if self.test_spots is not None:
                self._count_test_spots(int(payload["n"]))

    @property
    def pulses_out_of_limits(self) -> int:
        """Pulses the laser reported at settings outside the session's limits."""
        return self.pulse_judge.out_of_limits

    # --- test-spot mode ------------------------------------------------------------------------

    def _count_test_spots(self, pulses: int) -> None:
        """On the laser's thread, right after the status that showed new pulses."""
        assert self.test_spots is not None
        with self._lock:
            verdict = self.test_spots.count(pulses)
            record = self.test_spots.as_record()
        if verdict is Verdict.PAUSE_NOW:
            self._event("test_spots_done", record)
            # Queued, not called: this runs inside the laser worker's own status poll.
            self.bridge.laser_submit(self._pause_for_review).add_done_callback(self._paused)
        elif verdict is Verdict.EXCEEDED:
            why = (
                f"{record['fired']} pulses in test-spot mode, {record['allowed']} allowed: "
                "the laser fired after the test spots"
            )
            self.loop.halted = True  # the loop must not read the stop in flight as a new fault
            self.bridge.halt(why)
            self._halted_by("test_spots_exceeded", why)

    def _pause_for_review(self, laser: Any) -> None:
        """Runs on the laser's thread: STANDBY first, then withdraw the permission to emit."""
        laser.standby()
        self.bridge.publish_status(laser.status())
        with self._lock:
            self.loop.emission_permitted = False
            self.bridge.set_permit(False)
            if self.state is State.READY:
                self.state = State.STANDBY

    def _paused(self, fut: Future[None]) -> None:
        error = fut.exception()
        if error is None:
            self._event("test_spot_pause", {"laser_state": self.bridge.live.laser_state()})
            return
        why = f"the laser did not go to STANDBY after the test spots: {error}"
        self.loop.halted = True
        self.bridge.halt(why)
        self._halted_by("test_spot_pause", why)

    def end_test_spot_pause(self, who: str, reason: str) -> None:
        """A clinician reviewed the test sites (after the stated wait): treatment may go on,
        under the same tightened limits. Refused without a name and a reason."""
        if not who.strip() or not reason.strip():
            raise Refused("ending the test-spot pause needs the clinician's name and a reason")
        with self._lock:
            if self.test_spots is None or not self.test_spots.paused:
                raise Refused("there is no test-spot pause to end")
            self.test_spots.end_pause(who)
            record = self.test_spots.as_record()
        self._event("test_spot_pause_ended", {"by": who, "reason": reason, **record})

    def _test_spot_blocker(self) -> str | None:
        spots = self.test_spots
        if spots is None or not spots.limiting:
            return None
        if spots.paused:
            return (
                f"test spots done ({spots.fired} of {spots.allowed}): the laser stays in "
                "STANDBY until a clinician reviews the test sites and ends the pause"
            )
        assert self.approved is not None
        rate_hz = self.approved["rep_rate_hz"]
        laser_ms = float(self.bridge.live.answer_worst_ms[Dev.LASER])
        stop_ms = pulse_to_standby_ms(self.setup, laser_ms)
        if 1000.0 / rate_hz <= stop_ms:
            return (
                f"test spots are single pulses: at {rate_hz:g} Hz the next pulse comes "
                f"{1000.0 / rate_hz:.0f} ms after the last, and LaserGuard needs up to "
                f"{stop_ms:.0f} ms to stop the laser after the last test spot; "
                f"lower the rate below {1000.0 / stop_ms:.1f} Hz"
            )
        return None

    def _log_failed(self, reason: str) -> None:
        self.loop.halted = True  # the loop must not read the stop in flight as a new fault
        self.bridge.halt(f"session log failed: {reason}")
        self._halted_by("session_log", f"session log cannot be written: {reason}")

    def _condition(self, index: int, active: bool) -> None:
        """Called by the loop thread when a check becomes active or clears (halt already sent)."""
        spec = CHECKS[index]
        if not active:
            self._event("condition_cleared", {"check": spec.name})
            return
        trip = Trip(
            spec.name, self.engine.reason(index, self.bridge.live), self.t_s(), spec.severity.name
        )
        with self._lock:
            if HALT_MASK[index]:
                self.trips.append(trip)
                self.loop.emission_permitted = False
                if self.state in (State.STANDBY, State.READY, State.CONNECTING):
                    self.state = State.HALTED
            else:
                self.warnings.append(trip)
        self._event("trip" if HALT_MASK[index] else "warning", trip.as_dict())

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to every device; STANDBY once each has sent fresh data, else FAILED."""
        gc.collect()  # a full collection now, not in the loop's first cycles (it holds the GIL)
        # A thread that wakes waits up to the switch interval (5 ms by default) for the GIL;
        # the interlock loop must not wait that long behind a device worker.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.writer.start()
        self.bridge.start()
        deadline = time.monotonic() + self.connect_timeout_s
        live = self.bridge.live
        while time.monotonic() < deadline:
            # Fresh, and the answer times that the reaction-time checks hold against the
            # budget measured: arming is never judged on an answer time not yet known.
            timed = live.answers[[Dev.SENSOR, Dev.LASER, Dev.INTERLOCK]] >= ANSWER_MIN
            if live.link_ok.all() and (live.fresh_ns[:3] > self.t0_ns).all() and timed.all():
                break
            time.sleep(0.01)
        else:
            missing = [d.name.lower() for d in Dev if not live.link_ok[d]]
            why = f"devices did not answer within {self.connect_timeout_s:g} s: {', '.join(missing) or 'stale data, or too few answers timed'}"
            self.state = State.FAILED
            self._event("connect_failed", {"reason": why})
            self.bridge.halt(why)
            raise Refused(why)
        self.state = State.STANDBY
        self._event("connected", {"laser_state": live.laser_state()})
        # The laser's counter as first read, and any pulses it fired that no session logged.
        counter = self.bridge.first_pulse_total
        self._event(KIND_COUNTER, {"total": counter})
        gap = reconcile(self.log, self.setup.name, self.session_id, counter)
        if gap is not None:
            self._event(*gap)
        self.loop.start()

    def end(self, reason: str = "operator ended the session") -> None:
        if self.state is State.ENDED:
            return
        if self.state is not State.FAILED:
            try:
                self.standby()
            except Refused as e:
                self._event("end_standby_failed", {"error": str(e)})
        self.loop.stop()
        self.bridge.close()
        self.loop.halted = True
        self._event(
            "loop_lateness", {**self.loop.lateness().as_dict(), "workers": self.bridge.scheduling()}
        )
        self.state = State.ENDED
        self.writer.flush()
        self.writer.close()
        self.log.end_session(self.session_id, reason)

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end("session closed" if exc[0] is None else f"session aborted: {exc[1]}")

    # --- operator commands ---------------------------------------------------------------------

    def request_settings(self, settings: dict[str, float], who: str | None = None) -> GateResult:
        """Gate the settings; if they pass, send them to the laser and confirm them."""
        missing = [k for k in LASER_SETTINGS if k not in settings]
        if missing:
            raise Refused(f"settings lack {', '.join(missing)}")
        who = who or self.params.operator
        result = self.engine.table.check(self.params.skin_type, settings)
        if not result.ok:
            self._event(
                "settings_refused",
                {
                    "requested": settings,
                    "by": who,
                    "violations": [v.as_dict() for v in result.violations],
                },
            )
            return result
        with self._lock:
            if self.state not in (State.STANDBY, State.HALTED):
                raise Refused(f"settings can change only in STANDBY or HALTED (now {self.state})")

        def apply(laser: Any) -> dict[str, float]:
            confirmed = {k: laser.set(k, float(settings[k])) for k in LASER_SETTINGS}
            self.bridge.publish_status(laser.status())  # the read-back arming compares against
            return confirmed

        try:
            confirmed = self.bridge.laser_call(apply)
        except (BridgeError, TimeoutError) as e:
            self._event("settings_failed", {"requested": settings, "error": str(e)})
            raise Refused(f"the laser did not take the settings: {e}") from e
        self.approved = confirmed
        self._event("settings_applied", {"requested": settings, "confirmed": confirmed, "by": who})
        return result

    def arm(self, who: str | None = None) -> None:
        """STANDBY → READY, only when every precondition holds."""
        who = who or self.params.operator
        self._wait_fresh_evaluation()
        with self._lock:
            why = self._arm_blocker()
            if why:
                self._event("arm_refused", {"reason": why, "by": who})
                raise Refused(why)
            self.loop.emission_permitted = True
            self.bridge.set_permit(True)
        try:
            self.bridge.wait_relay_closed()
            self.bridge.arm()
        except (BridgeError, TimeoutError) as e:
            with self._lock:
                self.loop.emission_permitted = False
                self.bridge.set_permit(False)
            self._event("arm_failed", {"error": str(e), "by": who})
            raise Refused(f"arming failed: {e}") from e
        with self._lock:
            if self.state is State.STANDBY:
                self.state = State.READY
        self._event("armed", {"by": who, "settings": self.approved})

    def _wait_fresh_evaluation(self, timeout_s: float = 0.5) -> None:
        """Let the loop evaluate what the operator just changed before deciding on it."""
        if not self.loop.is_alive():
            return
        target = self.loop.cycles + 2
        deadline = time.monotonic() + timeout_s
        while self.loop.cycles < target and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _arm_blocker(self) -> str | None:
        if self.state is not State.STANDBY:
            return f"arming needs STANDBY (now {self.state})"
        if self.writer.failed:
            return f"the session log cannot be written: {self.writer.failed}"
        if not self.params.risk.arming_allowed:
            return "the risk assessment refuses arming: " + "; ".join(self.params.risk.reasons)
        if self.approved is None:
            return "no settings have been approved for this session"
        live = self.bridge.live
        readback = live.settings()
        for k, v in self.approved.items():
            if abs(readback[k] - v) > 1e-6 * max(1.0, abs(v)):
                return f"laser reads back {k}={readback[k]:g}, approved {v:g}"
        spots = self._test_spot_blocker()
        if spots:
            return spots
        blocking = [n for n in self.loop.active_names() if BLOCKS_ARMING[INDEX[n]]]
        if blocking:
            words = [f"{n} ({self.engine.reason(INDEX[n], live)})" for n in blocking]
            return "conditions active: " + "; ".join(words)
        return None

    def standby(self, who: str | None = None) -> None:
        def to_standby(laser: Any) -> None:
            laser.standby()
            self.bridge.publish_status(laser.status())

        try:
            self.bridge.laser_call(to_standby)
        except (BridgeError, TimeoutError) as e:
            detail = (
                str(e) or f"no answer ({type(e).__name__}): the laser worker is still stopping it"
            )
            why = f"laser did not go to STANDBY: {detail}"
            self.loop.halted = True  # the loop must not read the stop in flight as a new fault
            self.bridge.halt(why)
            self._halted_by("laser_standby", why)  # a halt is a trip, in the log and the summary
            raise Refused(f"the laser did not go to STANDBY; halted: {detail}") from e
        with self._lock:  # only now: the laser has left READY, so this is no unexpected emission
            self.loop.emission_permitted = False
            self.bridge.set_permit(False)
            if self.state is State.READY:
                self.state = State.STANDBY
        self._event("standby", {"by": who or self.params.operator})

    def acknowledge(self, who: str, reason: str, *, reset: Iterable[str] = ()) -> None:
        """A person releases a latched halt, with a reason. Refused while a cause persists.

        ``laser_did_not_stop`` outlives its cause: only an acknowledgement that names it in
        ``reset`` clears it, and only once the laser reports STANDBY again (fresh), so that
        acknowledging one alarm never clears this one behind it.
        """
        if not reason.strip():
            raise Refused("an acknowledgement needs a reason")
        resets = sorted(set(reset))
        unknown = [name for name in resets if name != "laser_did_not_stop"]
        if unknown:
            raise Refused(f"only laser_did_not_stop is reset by name, not {', '.join(unknown)}")
        with self._lock:
            if self.state is not State.HALTED:
                raise Refused(f"nothing to acknowledge (state {self.state})")
        if self.engine.did_not_stop.latched:
            self._reset_did_not_stop(who, reason, "laser_did_not_stop" in resets)
        self._wait_fresh_evaluation()
        with self._lock:
            if self.state is not State.HALTED:
                raise Refused(f"nothing to acknowledge (state {self.state})")
            if self.writer.failed:
                raise Refused(f"the session log cannot be written: {self.writer.failed}")
            if self.loop.halt_conditions_active():
                why = "the cause is still present: " + ", ".join(self.loop.active_names())
                self._event("acknowledge_refused", {"by": who, "reason": reason, "why": why})
                raise Refused(why)
            self.bridge.release_halt()
            self.loop.halted = False
            self.state = State.STANDBY
        self._event("acknowledged", {"by": who, "reason": reason, "reset": resets})

    def _reset_did_not_stop(self, who: str, reason: str, named: bool) -> None:
        live = self.bridge.live
        age_ns = time.perf_counter_ns() - int(live.fresh_ns[Dev.LASER])
        fresh = bool(live.link_ok[Dev.LASER]) and age_ns <= self.engine.stale_ns[Dev.LASER]
        state = live.laser_state()
        if not named:
            why = (
                "the laser did not stop (laser_did_not_stop): the relay is the only barrier; "
                "name it to reset it, once the laser is in STANDBY"
            )
        elif state != "STANDBY" or not fresh:
            why = (
                f"laser_did_not_stop cannot be reset: the laser reports {state}"
                f"{'' if fresh else ' (no fresh status)'}, not STANDBY; use the emergency stop"
            )
        else:
            self.engine.did_not_stop.reset()
            self._event("alarm_reset", {"check": "laser_did_not_stop", "by": who, "reason": reason})
            return
        self._event("acknowledge_refused", {"by": who, "reason": reason, "why": why})
        raise Refused(why)

    # --- views ---------------------------------------------------------------------------------

    def view_failed(self, view: str, error: str) -> None:
        """A view, report or tick beside the session raised: logged, and never raised here.

        While the laser may emit it is halted: the view was how a person sees the alarms.
        In STANDBY or HALTED the session simply goes on (the failure is in the log).
        """
        self._event("view_failed", {"view": view, "error": error})
        if self.state is State.READY:
            self.loop.halted = True  # the loop must not read the stop in flight as a new fault
            self.bridge.halt(f"the {view} failed")
            self._halted_by("view_failed", f"the {view} failed ({error}): nobody sees the alarms")

    def view_failures(self, view: str, count: int, last_error: str, why: str) -> None:
        """A run of failures of one view, logged once with its count when it ends."""
        self._event(
            "view_failures", {"view": view, "count": count, "last_error": last_error, "ended": why}
        )

    def snapshot(self) -> dict[str, Any]:
        live = self.bridge.live
        v = live.value

        def num_of(x: float) -> float | None:
            return None if x != x else round(float(x), 3)

        def num(ch: Ch) -> float | None:
            return num_of(v[ch])

        return {
            "session_id": self.session_id,
            "t_s": round(self.t_s(), 3),
            "state": str(self.state),
            "laser_state": live.laser_state(),
            "skin_type": self.params.skin_type.value,
            "skin_temp_c": num(Ch.SKIN_TEMP_C),
            "plate_temp_c": num(Ch.PLATE_TEMP_C),
            "flow_l_min": num(Ch.FLOW_L_MIN),
            "settings": {name: num_of(x) for name, x in live.settings().items()},
            "pulses": num(Ch.LASER_PULSES),
            "pulses_out_of_limits": self.pulses_out_of_limits,
            "links": {d.name.lower(): bool(live.link_ok[d]) for d in Dev},
            "permit": self.bridge.permit,
            "active_conditions": self.loop.active_names(),
            "trips": [t.as_dict() for t in self.trips],
            "warnings": [t.as_dict() for t in self.warnings],
            "test_spots": None if self.test_spots is None else self.test_spots.as_record(),
            "reaction_time_ms": {
                "required": self.engine.live_budget.required_ms,
                "measured_worst_case": num_of(self.engine.measured_reaction_ms),
                "answer_ms": {
                    d.name.lower(): {
                        "assumed": round(self.engine.live_budget.assumed[d.name.lower()], 3),
                        "typical": num_of(live.answer_typical_ms[d]),
                        "recent_worst": num_of(live.answer_worst_ms[d]),
                    }
                    for d in Dev
                },
            },
            "limits": {
                "skin_temp_c": [self.engine.skin_low, self.engine.skin_high],
            },
        }
