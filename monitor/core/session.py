"""A treatment session: the bridge, the interlock loop and the log, under one state machine.

States::

    CONNECTING ──all devices fresh──► STANDBY ──arm (gate + preconditions)──► READY
         │                              ▲  ▲                                     │
         └──────── timeout: FAILED      │  └──────────── standby ────────────────┤
                                        └── acknowledge (who, why; conditions clear) ── HALTED ◄── any trip

Everything that happens is recorded through the session's ``Recorder``
(``monitor.core.recorder``; the session log implements it in ``monitor.record``). If the record
cannot be written, the laser is halted. Operator commands are refused with a reason
(``Refused``), never silently ignored.

A clinical session (``SessionMode.CLINICAL``) starts only with the patient's risk assessment,
complete and on the current form (``RiskOutcome.clinical_problem``); it is recorded before
anything can arm. Demo and test sessions may run on the all-"no" declaration, recorded as such.

A session treats one site (``SessionParams.site``: face, periorbital, legs, body) under its
setup's cooling method; only the limit rows published for both judge it. A clinical session
states its site; demo and test sessions default to the legs. Periorbital treatment arms only
after someone confirmed the patient's eye shields (``confirm_eye_shields``, recorded).
Types IV–VI, and settings whose limit row asks for it, need a test spot in the patient's
history, read days later (``monitor.core.treatment``); without one the session only does the
test spot: test-spot mode, whose pause no one ends in this session.

Test-spot mode (a relative contraindication's ``test_spot_only``, ``monitor.core.spots``): after
the allowed number of pulses the session puts the laser in STANDBY itself and refuses to arm
until a clinician ends the pause (``end_test_spot_pause``). The pause is not a state of its
own: a halt and its acknowledgement during the pause leave it in place.

Calibration (``monitor.core.calibration_status``): a setup with a calibration policy arms
only while the ``CalibrationStatus`` given in ``SessionParams`` holds (missing, failed,
expired or a daily check due refuse, with the dates). Where the laser reports each pulse's
delivered energy, a pulse outside the tolerance halts and arming stays refused for the rest
of the session (``monitor.core.delivered``).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from typing import NoReturn

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import LoadedSetup, load_contraindications
from device_profiles.schema import LASER_SETTINGS, Setup, SkinType
from device_profiles.timing import pulse_to_standby_ms, reaction_budget
from firmware_bridge.bridge import Bridge
from firmware_bridge.drivers import LaserDriver
from firmware_bridge.errors import BridgeError
from firmware_bridge.interrupts import ctrl_c_after
from firmware_bridge.live import ANSWER_MIN, Ch, Dev
from firmware_bridge.realtime import BackgroundRealtime
from monitor.core.bookkeeper import Bookkeeper
from monitor.core.calibration_status import CalibrationStatus
from monitor.core.checks import (
    BLOCKS_ARMING,
    CHECKS,
    HALT_MASK,
    INDEX,
    CheckEngine,
    LatchedAlarm,
    Severity,
)
from monitor.core.delivered import DeliveredEnergyWatch
from monitor.core.errors import Refused
from monitor.core.gate import GateResult, LimitTable, NoRowsForTreatment
from monitor.core.interlock import InterlockLoop
from monitor.core.pulse_limits import PulseJudge
from monitor.core.recorder import Recorder
from monitor.core.records import (
    EventKind,
    Payload,
    SessionMode,
    SessionStart,
    State,
    Trip,
    TripTally,
)
from monitor.core.risk import RiskOutcome, no_contraindications_declared
from monitor.core.skin_typing import SkinTyping
from monitor.core.snapshot import (
    RECENT_TRIPS,
    AnswerTimes,
    ReactionTimes,
    SettingsReading,
    Snapshot,
)
from monitor.core.spots import TestSpotMode, Verdict
from monitor.core.treatment import (
    DEMO_SITE,
    UNREAD_TEST_SPOT_PULSES,
    TestSpotCover,
    needs_read_test_spot,
    qualifying_test_spot,
)

__all__ = [
    "Refused",
    "Session",
    "SessionMode",
    "SessionParams",
    "State",
    "Trip",
    "no_contraindications_declared",
]

SWITCH_INTERVAL_S = 0.0002
#: How long a session's start waits for its log to take the first events (a log written by a
#: process of its own waits for that process to start: half a second on a small machine).
LOG_START_S = 30.0
#: How often the live thermal dose is written to the session's record (and at its end).
DOSE_RECORD_PERIOD_S = 2.0
#: Beyond the stop grace, how long an acknowledgement waits for the loop to judge the STOP
#: (a few loop cycles on a loaded machine).
_STOP_JUDGEMENT_SLACK_NS = 500_000_000


@dataclass
class SessionParams:
    operator: str
    patient_id: str
    skin_type: SkinType
    risk: RiskOutcome  # no session without a recorded pre-treatment risk assessment
    mode: SessionMode = SessionMode.DEMO  # simulated data is never mistaken for real
    skin_typing: SkinTyping | None = None  # how the type was chosen (clinician / melanin index)
    meta: dict[str, object] = field(default_factory=dict)
    # The laser's calibration as recorded (monitor.calibration builds it from the log);
    # required to arm when the setup has a calibration policy.
    calibration: CalibrationStatus | None = None
    # Where on the body. A clinical session must state it; demo and test ones treat DEMO_SITE.
    site: TreatmentSite | None = None

    def __post_init__(self) -> None:
        try:  # a mode given as text (a command line) is one of the three, or refused
            self.mode = SessionMode(self.mode)
        except ValueError:
            modes = ", ".join(m.value for m in SessionMode)
            raise Refused(f"unknown session mode {self.mode!r}: one of {modes}") from None


def _pulse_report(payload: Payload) -> tuple[int, int, dict[str, float]]:
    """The bridge's ``pulses`` event: new pulses, the laser's total, the settings read."""
    n, total, settings = payload.get("n"), payload.get("total"), payload.get("settings")
    if not (isinstance(n, int) and isinstance(total, int) and isinstance(settings, dict)):
        raise TypeError(f"a pulses event needs n, total and settings, got {payload!r}")
    return n, total, {str(k): float(v) for k, v in settings.items()}


class Session:
    def __init__(
        self,
        loaded: LoadedSetup,
        recorder: Recorder,
        params: SessionParams,
        *,
        setup: Setup | None = None,
        realtime: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.loaded = loaded
        self.setup = setup or loaded.setup
        self.params = params
        self.recorder = recorder
        self.state = State.CONNECTING
        self.trips: list[Trip] = []
        self.warnings: list[Trip] = []
        # The same, by check (how many, the last): a snapshot reads these, never the lists.
        self.trip_tally = TripTally()
        self.warning_tally = TripTally()
        self.approved: dict[str, float] | None = None
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        budget = reaction_budget(self.setup)
        if not budget.ok:  # also refused at load; a setup built in code gets the same answer
            raise Refused("the setup cannot meet its required reaction time:\n" + budget.format())
        if params.mode is SessionMode.CLINICAL:  # whatever the front end checked before
            problem = params.risk.clinical_problem(load_contraindications().version)
            if problem is not None:
                raise Refused(problem)
            if params.site is None:
                sites = ", ".join(str(x) for x in TreatmentSite)
                raise Refused(f"a clinical session states the treatment site: one of {sites}")
        self.site = params.site if params.site is not None else DEMO_SITE
        cooling = self.setup.cooler.method
        problem = params.risk.treatment_problem(self.setup.laser.wavelength_nm, self.site)
        if problem is not None:
            raise Refused(problem)
        try:  # refused before anything is recorded: nothing could be treated
            LimitTable(self.setup.limits.settings).for_treatment(self.site, cooling)
        except NoRowsForTreatment as e:
            raise Refused(str(e)) from None
        self.eye_shields_confirmed_by: str | None = None
        # The patient's test spot was not read yet: this session may only do it.
        self.test_spot_unread = False
        start = SessionStart(
            operator=params.operator,
            patient_id=params.patient_id,
            skin_type=params.skin_type,
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
                "calibration": None
                if params.calibration is None
                else params.calibration.as_record(),
                "treatment": {
                    "site": str(self.site),
                    "site_stated": params.site is not None,
                    "cooling": str(cooling),
                    "skin_baseline_max_c": self.setup.limits.skin_baseline_max_c,
                    "thermal_dose_halt_cem43": self.setup.limits.thermal_dose.cem43_halt_min,
                },
            },
        )
        self.session_id = recorder.start_session(start)
        clinic = self.setup.clinic
        # Recorded before anything can arm, synchronously: these decide what arming may do.
        recorder.record(self.session_id, EventKind.RISK_ASSESSMENT, params.risk.as_record())
        self.test_spots = (
            TestSpotMode.from_restrictions(params.risk.restrictions)
            if params.risk.arming_allowed
            else None
        )
        if self.test_spots is not None:
            recorder.record(
                self.session_id,
                EventKind.TEST_SPOT_MODE,
                {
                    **self.test_spots.as_record(),
                    "pulse_to_standby_ms": round(pulse_to_standby_ms(self.setup), 3),
                },
            )
        if params.skin_typing is not None:
            recorder.record(self.session_id, EventKind.SKIN_TYPING, params.skin_typing.as_record())
        recorder.record(
            self.session_id,
            EventKind.PATIENT_INFORMATION,
            {
                "clinic": None if clinic is None else clinic.name,
                "emergency_contact": None if clinic is None else clinic.emergency_contact,
                "aftercare_instructions": None if clinic is None else clinic.aftercare_instructions,
            },
        )
        self.t0_wall = time.time()
        self.t0_ns = time.perf_counter_ns()
        self.engine = CheckEngine(self.setup, params.skin_type, self.site)
        # The profile's own rows: whether a row asks for a test spot in the patient's history
        # (a relative contraindication's test-spot mode is another matter).
        self.profile_table = self.engine.table
        if params.risk.arming_allowed:  # a relative contraindication tightens, never widens
            self.engine.table = self.engine.table.restricted(params.risk.restrictions)
        # The limits settings are requested against. The running checks (the read-back's
        # judgement in the loop, each reported pulse's) judge ``engine.table``: this table, or
        # this table narrowed to what the test spot that admitted the settings covered.
        self.limits_table = self.engine.table
        self.pulse_judge = PulseJudge(self.engine.table, params.skin_type)
        self.delivered = DeliveredEnergyWatch(self.setup)
        self.bridge = Bridge(
            self.setup,
            on_event=self._bridge_event,
            on_telemetry=self._telemetry,
            realtime=realtime,
        )
        # With real-time asked for, every other thread of this process too, at the lowest
        # real-time priority, while the session runs (``firmware_bridge.realtime``).
        self.background = BackgroundRealtime()
        self._want_background = realtime
        self.loop = InterlockLoop(
            self.engine,
            self.bridge.live,
            rate_hz=self.setup.loop.rate_hz,
            halt=self.bridge.halt,
            on_condition=self._condition,
            ring_samples=self.setup.loop.ring_samples,
            realtime=realtime,
            on_failure=self._loop_failed,
            period_s=DOSE_RECORD_PERIOD_S,
            on_period=self._dose_due,
        )

        # Halt first, words after: what the bridge's threads report is written down on the
        # bookkeeper's thread, so that no device worker ever waits for this session's lock.
        self._bookkeeper = Bookkeeper("laserguard-session-words", self._bookkeeping_failed)
        stall_ns = int(self.setup.limits.required_reaction_ms * 1e6)
        self.bridge.supervisor = lambda: self._loop_trouble(stall_ns)
        self.bridge.on_supervisor_halt = self._loop_halted

    # --- helpers -------------------------------------------------------------------------------

    def _halted_by(self, check: str, why: str, t_s: float | None = None) -> None:
        """The words for a halt already sent (call ``bridge.halt`` first): the trip, HALTED.
        Takes the session's lock: on a bridge worker's thread use ``_halted_later``."""
        with self._lock:
            self.loop.emission_permitted = False
            self.state = State.HALTED
            trip = Trip(check, why, self.t_s() if t_s is None else t_s, Severity.HALT)
            self.trip_tally.add(trip)
            self.trips.append(trip)  # last, as in ``_record_condition``
        self._event(EventKind.TRIP, trip.as_dict())

    def _halted_later(self, check: str, why: str) -> None:
        """``_halted_by`` on the bookkeeper's thread, timed now. Never blocks."""
        self._bookkeeper.post(self._halted_by, check, why, self.t_s())

    def _bookkeeping_failed(self, task: str, error: str) -> None:
        """A bug in the session's own words: halt (a trip may be missing), and say so."""
        self.bridge.halt(f"session bookkeeping failed in {task}: {error}")
        self._event(EventKind.BOOKKEEPING_FAILED, {"task": task, "error": error})

    def _dose_due(self) -> None:
        """On the loop's thread, every DOSE_RECORD_PERIOD_S: the record is made elsewhere,
        and so is the look for threads started since the session did (they start ordinary)."""
        self._bookkeeper.post(self._record_dose)
        if self.background.applied:
            self._bookkeeper.post(self.background.adopt)

    def _record_dose(self) -> None:
        self._event(EventKind.THERMAL_DOSE, self.engine.dose.frozen().as_dict())

    def set_treatment_area(self, area: str, who: str | None = None) -> None:
        """The handpiece moves to treatment area ``area``: the dose checks follow the dose
        accumulated there (a new area starts at none). The seam for treatment sites; until
        the session has them, every session has one area, ``default``."""
        if not area.strip():
            raise Refused("a treatment area needs a name")
        self._record_dose()  # the area left behind, as it was
        self.engine.dose.set_area(area.strip())
        self._event(
            EventKind.TREATMENT_AREA, {"area": area.strip(), "by": who or self.params.operator}
        )

    def _loop_failed(self, failure: str) -> None:
        self._halted_by("interlock_loop", f"interlock loop failed: {failure}")

    def _loop_trouble(self, stall_ns: int) -> str | None:
        """Why the interlock loop cannot be trusted now, or None. Asked by the relay worker
        before it writes the relay: it only reads (no lock, no log), so nothing this session
        holds can delay the halt; the words come after, from ``_loop_halted``."""
        if self.loop.alive(time.perf_counter_ns(), stall_ns):
            return None
        if self.loop.failure:
            return f"interlock loop failed: {self.loop.failure}"
        return f"interlock loop stalled for more than {stall_ns / 1e6:g} ms"

    def _loop_halted(self, why: str) -> None:
        """On the relay worker, after it halted for ``why`` and wrote the relay open."""
        if self.loop.failure is None:  # a failed loop has recorded its own trip
            self._halted_later("interlock_loop", why)

    def t_s(self) -> float:
        return (time.perf_counter_ns() - self.t0_ns) / 1e9

    def _event(self, kind: str, payload: Payload) -> None:
        """Queue an event (an ``EventKind``, or the bridge's own kind) stamped with ``t_s``."""
        self.recorder.event(self.session_id, kind, {"t_s": round(self.t_s(), 6), **payload})

    def _telemetry(self, ch: int, value: float) -> None:
        self.recorder.telemetry(self.session_id, self.t_s(), ch, value)

    def _bridge_event(self, kind: str, payload: Payload) -> None:
        self._event(kind, payload)
        if kind == EventKind.PULSES:
            n, total, settings = _pulse_report(payload)
            bad = self.pulse_judge.judge(n, total, settings)
            if bad is not None:
                self._event(EventKind.PULSE_OUT_OF_LIMITS, bad.as_record())
            if self.test_spots is not None:
                self._count_test_spots(n)
            if "delivered_j" in payload:
                self._judge_delivered(settings, payload["delivered_j"])

    def _judge_delivered(self, settings: dict[str, float], delivered_j: object) -> None:
        """On the laser's thread, right after the status that reported the pulse: halt first
        (never waits for the session's lock), the words after."""
        finding = self.delivered.judge(settings, delivered_j)
        if finding is None:
            return
        self.loop.halted = True  # the loop must not read the stop in flight as a new fault
        self.bridge.halt(finding.reason)
        self._event(EventKind.DELIVERED_ENERGY_DRIFT, {"reason": finding.reason, **finding.record})
        self._halted_later("delivered_energy_drift", finding.reason)

    @property
    def pulses_out_of_limits(self) -> int:
        """Pulses the laser reported at settings outside the session's limits."""
        return self.pulse_judge.out_of_limits

    # --- test-spot mode ------------------------------------------------------------------------

    def _count_test_spots(self, pulses: int) -> None:
        """On the laser's thread, right after the status that showed new pulses. Takes none
        of the session's locks (the counter has its own): nothing delays the halt below."""
        assert self.test_spots is not None
        verdict = self.test_spots.count(pulses)
        record = self.test_spots.as_record()
        if verdict is Verdict.PAUSE_NOW:
            self._event(EventKind.TEST_SPOTS_DONE, record)
            # Queued, not called: this runs inside the laser worker's own status poll.
            self.bridge.laser_submit(self._pause_for_review).add_done_callback(self._paused)
        elif verdict is Verdict.EXCEEDED:
            why = (
                f"{record['fired']} pulses in test-spot mode, {record['allowed']} allowed: "
                "the laser fired after the test spots"
            )
            self.loop.halted = True  # the loop must not read the stop in flight as a new fault
            self.bridge.halt(why)
            self._halted_later("test_spots_exceeded", why)

    def _pause_for_review(self, laser: LaserDriver) -> None:
        """Runs on the laser's thread: STANDBY first, then withdraw the permission to emit.
        The session's state follows in ``_test_spots_paused``, on the bookkeeper's thread."""
        laser.standby()
        self.bridge.publish_status(laser.status())
        self.loop.emission_permitted = False
        self.bridge.set_permit(False)

    def _paused(self, fut: Future[None]) -> None:
        """On the laser's thread, when ``_pause_for_review`` is done."""
        error = fut.exception()
        if error is None:
            self._bookkeeper.post(self._test_spots_paused, self.bridge.live.laser_state())
            return
        why = f"the laser did not go to STANDBY after the test spots: {error}"
        self.loop.halted = True
        self.bridge.halt(why)
        self._halted_later("test_spot_pause", why)

    def _test_spots_paused(self, laser_state: str) -> None:
        with self._lock:
            if self.state is State.READY:
                self.state = State.STANDBY
        self._event(EventKind.TEST_SPOT_PAUSE, {"laser_state": laser_state})

    def end_test_spot_pause(self, who: str, reason: str) -> None:
        """A clinician reviewed the test sites (after the stated wait): treatment may go on,
        under the same tightened limits. Refused without a name and a reason."""
        if not who.strip() or not reason.strip():
            raise Refused("ending the test-spot pause needs the clinician's name and a reason")
        with self._lock:
            if self.test_spots is None or not self.test_spots.paused:
                raise Refused("there is no test-spot pause to end")
            if self.test_spot_unread:
                days = self.setup.limits.test_spot_read_after_days
                raise Refused(
                    "these were the patient's test spots: they are read at least "
                    f"{days} days from now and recorded in the patient's history; treatment "
                    "starts in a later session"
                )
            self.test_spots.end_pause(who)
            record = self.test_spots.as_record()
        self._event(EventKind.TEST_SPOT_PAUSE_ENDED, {"by": who, "reason": reason, **record})

    def confirm_eye_shields(self, who: str) -> None:
        """Someone checked that the patient wears eye shields (periorbital treatment): named,
        recorded. Arming periorbital treatment waits for it."""
        if not who.strip():
            raise Refused("confirming the eye shields needs the name of who checked them")
        with self._lock:
            self.eye_shields_confirmed_by = who.strip()
        self._event(EventKind.EYE_SHIELDS_CONFIRMED, {"by": who.strip(), "site": str(self.site)})

    def _test_spot_history(self, settings: dict[str, float]) -> Payload:
        """Whether the patient's test spots vouch for these settings; without one the session
        turns into the test spot itself (test-spot mode, pause not ended here). Returns what
        the settings record says about it."""
        row_asks = self.profile_table.check(self.params.skin_type, settings).test_spot_required
        if not needs_read_test_spot(self.params.skin_type, row_asks):
            # No read test spot vouches for this session: a panel turned into a row that asks
            # for one halts. In test-spot mode the session is itself the test spot (its pulses
            # counted, then a pause), so every row stays open to it.
            self._judge_running(
                self.limits_table if self.test_spots is not None
                else self.limits_table.with_no_test_spot()
            )  # fmt: skip
            return {"test_spot": "not required"}
        verdict = qualifying_test_spot(
            self.params.risk.test_spots,
            site=self.site,
            wavelength_nm=self.setup.laser.wavelength_nm,
            settings=settings,
            read_after_days=self.setup.limits.test_spot_read_after_days,
            today=date.today(),
        )
        if verdict.reading is not None:
            # Before the settings reach the laser: from now on a panel change beyond what the
            # test spot covered halts (read-back) and is recorded (each pulse), as one beyond
            # the table does.
            self._judge_running(
                self.limits_table.within_test_spot(TestSpotCover.of(verdict.reading))
            )
            return {"test_spot": verdict.reading.describe()}
        self._judge_running(self.limits_table)
        with self._lock:
            self.test_spot_unread = True
            if self.test_spots is None:
                self.test_spots = TestSpotMode(allowed=UNREAD_TEST_SPOT_PULSES)
                started = True
            else:
                started = False
        if started:
            assert self.test_spots is not None
            self._event(
                EventKind.TEST_SPOT_MODE,
                {
                    **self.test_spots.as_record(),
                    "reason": verdict.why_not,
                    "pulse_to_standby_ms": round(pulse_to_standby_ms(self.setup), 3),
                },
            )
        return {"test_spot": f"none: this session does the test spot ({verdict.why_not})"}

    def _judge_running(self, table: LimitTable) -> None:
        """The table the running checks judge the laser by from now on (each picks up a new
        table by its identity, and judges the settings again at once)."""
        self.engine.table = table
        self.pulse_judge.table = table

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
        """On whichever thread found the log failed (a device worker's too): never blocks."""
        self.loop.halted = True  # the loop must not read the stop in flight as a new fault
        self.bridge.halt(f"session log failed: {reason}")
        self._halted_later("session_log", f"session log cannot be written: {reason}")

    def _condition(self, index: int, active: bool) -> None:
        """Called by the loop thread when a check becomes active or clears (halt already sent).
        The reason is worded now, from the values that raised it; the rest is written on the
        bookkeeper's thread: the loop never waits for the session's lock, and keeps watching."""
        spec = CHECKS[index]
        if not active:
            cleared = {"check": spec.name, "t_s": round(self.t_s(), 6)}
            self._bookkeeper.post(self._event, EventKind.CONDITION_CLEARED, cleared)
            return
        trip = Trip(
            spec.name, self.engine.reason(index, self.bridge.live), self.t_s(), spec.severity
        )
        self._bookkeeper.post(self._record_condition, index, trip)

    def _record_condition(self, index: int, trip: Trip) -> None:
        with self._lock:
            # The trip is listed last: whoever sees it (a console, a test reading without the
            # lock) sees the state it caused and its count.
            if HALT_MASK[index]:
                self.loop.emission_permitted = False
                if self.state in (State.STANDBY, State.READY, State.CONNECTING):
                    self.state = State.HALTED
                self.trip_tally.add(trip)
                self.trips.append(trip)
            else:
                self.warning_tally.add(trip)
                self.warnings.append(trip)
        self._event(EventKind.TRIP if HALT_MASK[index] else EventKind.WARNING, trip.as_dict())

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to every device; STANDBY once each has sent fresh data, else FAILED."""
        gc.collect()  # a full collection now, not in the loop's first cycles (it holds the GIL)
        # A thread that wakes waits up to the switch interval (5 ms by default) for the GIL;
        # the interlock loop must not wait that long behind a device worker.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.recorder.start_writing(self._log_failed)
        self.bridge.start()
        deadline = time.monotonic() + self.connect_timeout_s
        live = self.bridge.live
        present = [d for d in Dev if live.present[d]]  # no second skin sensor: not waited for
        polled = [d for d in present if d is not Dev.INTERLOCK]  # the relay is written, not read
        timed_devs = [d for d in present if d is not Dev.COOLER]  # on the reaction path
        while time.monotonic() < deadline:
            # Fresh, and the answer times that the reaction-time checks hold against the
            # budget measured: arming is never judged on an answer time not yet known.
            timed = live.answers[timed_devs] >= ANSWER_MIN
            fresh = live.fresh_ns[polled] > self.t0_ns
            if live.link_ok[present].all() and fresh.all() and timed.all():
                break
            time.sleep(0.01)
        else:
            missing = [d.name.lower() for d in present if not live.link_ok[d]]
            why = f"devices did not answer within {self.connect_timeout_s:g} s: {', '.join(missing) or 'stale data, or too few answers timed'}"
            self._start_failed(why)
        # STANDBY only once the log has taken what the session gave it so far: a log that
        # cannot be written (or whose writing process never started) refuses the session.
        if not self.recorder.flush(LOG_START_S):
            self._start_failed(
                "the session log did not take the session's first events: "
                + (self.recorder.failed or f"nothing was written within {LOG_START_S:g} s")
            )
        self.state = State.STANDBY
        self._event(EventKind.CONNECTED, {"laser_state": live.laser_state()})
        # The laser's counter as first read, and any pulses it fired that no session logged.
        counter = self.bridge.first_pulse_total
        self._event(EventKind.LASER_PULSE_COUNTER, {"total": counter})
        gap = self.recorder.pulse_gap(self.setup.name, self.session_id, counter)
        if gap is not None:
            self._event(gap.kind, gap.payload)
        self.loop.start()
        if self._want_background:  # every thread there is now; later ones by ``_dose_due``
            self.background.apply()

    def _start_failed(self, why: str) -> NoReturn:
        """The session cannot start: FAILED, said in its record, the laser halted."""
        self.state = State.FAILED
        self._event(EventKind.CONNECT_FAILED, {"reason": why})
        self.bridge.halt(why)
        self.background.restore()
        raise Refused(why)

    def end(self, reason: str = "operator ended the session") -> None:
        """STANDBY, the loop and the bridge stopped, the dose and the session's end logged. A
        Ctrl-C that comes meanwhile (the demo and ``laserguard bridge`` end from the main
        thread, often just after a first Ctrl-C) is raised once it is all done: an end cut
        halfway would leave the relay's permit given or the log's end unwritten."""
        with ctrl_c_after():
            self._end(reason)

    def _end(self, reason: str) -> None:
        if self.state is State.ENDED:
            return
        if self.state is not State.FAILED:
            try:
                self.standby()
            except Refused as e:
                self._event(EventKind.END_STANDBY_FAILED, {"error": str(e)})
        self.loop.stop()
        self.bridge.close()
        self._bookkeeper.close()  # the words of the last halts, before the log is closed
        self.loop.halted = True
        self._record_dose()  # the dose at the end, after the loop's last sample
        self._event(
            EventKind.LOOP_LATENESS,
            {
                **self.loop.lateness().as_dict(),
                "workers": self.bridge.scheduling(),
                "other_threads": self.background.state,
                "other_threads_adopted_later": self.background.adopted,
            },
        )
        self.state = State.ENDED
        try:
            self.recorder.end_session(self.session_id, reason)
        finally:  # the process is ordinary again, whatever the log did
            self.background.restore()

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
        result = self.limits_table.check(self.params.skin_type, settings)
        if not result.ok:
            self._event(
                EventKind.SETTINGS_REFUSED,
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
        spot_record = self._test_spot_history(settings)

        def apply(laser: LaserDriver) -> dict[str, float]:
            confirmed = {k: laser.set(k, float(settings[k])) for k in LASER_SETTINGS}
            self.bridge.publish_status(laser.status())  # the read-back arming compares against
            return confirmed

        try:
            confirmed = self.bridge.laser_call(apply)
        except (BridgeError, TimeoutError) as e:
            self._event(EventKind.SETTINGS_FAILED, {"requested": settings, "error": str(e)})
            raise Refused(f"the laser did not take the settings: {e}") from e
        self.approved = confirmed
        self._event(
            EventKind.SETTINGS_APPLIED,
            {"requested": settings, "confirmed": confirmed, "by": who, **spot_record},
        )
        return result

    def arm(self, who: str | None = None) -> None:
        """STANDBY → READY, only when every precondition holds."""
        who = who or self.params.operator
        self._wait_fresh_evaluation()
        with self._lock:
            why = self._arm_blocker()
            if why:
                self._event(EventKind.ARM_REFUSED, {"reason": why, "by": who})
                raise Refused(why)
            self.loop.emission_permitted = True
            self.bridge.set_permit(True)
        try:
            self.bridge.wait_relay_closed()
            self.bridge.arm()
        except BaseException as e:  # a failure, or a Ctrl-C in the wait: the permit goes too
            interrupted = not isinstance(e, BridgeError | TimeoutError)
            if interrupted:
                # A Ctrl-C is held until the laser's call returns: it may have taken ARM. Back
                # to STANDBY first (a laser left READY without the permit halts the session).
                self._laser_to_standby_after_interrupt()
            with self._lock:
                self.loop.emission_permitted = False
                self.bridge.set_permit(False)
            if interrupted:
                error = f"interrupted ({type(e).__name__}): the relay's permit withdrawn"
                self._event(EventKind.ARM_FAILED, {"error": error, "by": who})
                raise
            self._event(EventKind.ARM_FAILED, {"error": str(e), "by": who})
            raise Refused(f"arming failed: {e}") from e
        with self._lock:
            if self.state is State.STANDBY:
                self.state = State.READY
        self._event(EventKind.ARMED, {"by": who, "settings": self.approved})

    def _laser_to_standby(self, laser: LaserDriver) -> None:
        """On the laser's thread: STANDBY, and its status published."""
        laser.standby()
        self.bridge.publish_status(laser.status())

    def _laser_to_standby_after_interrupt(self) -> None:
        """The laser to STANDBY on the way out of an interrupted command; a laser that does not
        answer is left to the loop (READY without the permit halts the session)."""
        with contextlib.suppress(BridgeError, TimeoutError):
            self.bridge.laser_call(self._laser_to_standby)

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
        if self.recorder.failed:
            return f"the session log cannot be written: {self.recorder.failed}"
        if not self.params.risk.arming_allowed:
            return "the risk assessment refuses arming: " + "; ".join(self.params.risk.reasons)
        calibration = self._calibration_blocker()
        if calibration:
            return calibration
        if self.approved is None:
            return "no settings have been approved for this session"
        live = self.bridge.live
        readback = live.settings()
        for k, v in self.approved.items():
            if abs(readback[k] - v) > 1e-6 * max(1.0, abs(v)):
                return f"laser reads back {k}={readback[k]:g}, approved {v:g}"
        if self.site is TreatmentSite.PERIORBITAL and self.eye_shields_confirmed_by is None:
            return (
                "periorbital treatment: confirm that the patient wears eye shields "
                "(confirm_eye_shields, with your name) before arming"
            )
        spots = self._test_spot_blocker()
        if spots:
            return spots
        blocking = [n for n in self.loop.active_names() if BLOCKS_ARMING[INDEX[n]]]
        if blocking:
            words = [f"{n} ({self.engine.reason(INDEX[n], live)})" for n in blocking]
            return "conditions active: " + "; ".join(words)
        return None

    def _calibration_blocker(self) -> str | None:
        drifted = self.delivered.drifted
        if drifted is not None:
            return drifted
        status = self.params.calibration
        if status is None:
            if self.setup.calibration is None:
                return None
            return (
                f"setup {self.setup.name} requires a calibration, and this session was given "
                "no calibration status: arming refused"
            )
        if status.laser_id != self.setup.name:
            return (
                f"the calibration status given is for laser {status.laser_id}, not this "
                f"session's laser {self.setup.name}: arming refused"
            )
        return status.blocker() or status.identity_blocker(self.bridge.laser_identity)

    def _prove_relay(self) -> None:
        """The relay's proof test, at every standby from READY or FIRING: the relay opens
        first, and the laser must then report STANDBY by itself (its remote interlock opened)
        within its staleness limit plus one serial timeout, the grace ``laser_did_not_stop``
        also gives. A laser still READY or FIRING then: the relay (or the laser's interlock
        input) does not cut emission, a latent fault no halt would show while the laser obeys
        STOP. ``relay_stuck_closed`` is latched (a halt, reset by name after service); the
        STANDBY command follows either way. While this runs the loop still counts emission
        as permitted: the laser may be READY without that being an unexpected emission.
        """
        live = self.bridge.live
        # Not gated on the laser's last reported state: that may be a poll older than ARM
        # (a laser armed and firing within a millisecond still reads STANDBY here). The
        # session is READY, so the relay was closed: prove it opens.
        if self.engine.relay_stuck.latched:
            return
        opened_ns = self.bridge.wait_relay_opened(self.bridge.open_relay())
        if opened_ns is None:
            return  # the relay's link is down: interlock_link halts on its own
        grace_ns = self.engine.stop_grace_ns
        while time.perf_counter_ns() - opened_ns < grace_ns:
            if int(live.fresh_ns[Dev.LASER]) > opened_ns and live.laser_state() == "STANDBY":
                return
            time.sleep(0.001)
        state = live.laser_state()
        if state in ("READY", "FIRING"):
            late_ms = (time.perf_counter_ns() - opened_ns) / 1e6
            why = f"still reported {state} {late_ms:.0f} ms after the relay was written open"
            self.engine.relay_stuck.latch(time.perf_counter_ns(), why)

    def standby(self, who: str | None = None) -> None:
        try:
            if self.state is State.READY:
                self._prove_relay()
            self._standby_laser(who)
        except (KeyboardInterrupt, SystemExit) as e:
            # A Ctrl-C (the demo and ``laserguard bridge`` call this from the main thread) in
            # the relay's proof or in the wait for the laser: the operator asked for STANDBY,
            # so it is finished before the interrupt goes on. The permit is withdrawn even if
            # the laser does not answer (a laser left READY without it halts the session).
            try:
                self._laser_to_standby_after_interrupt()  # again: STANDBY is idempotent
            finally:
                self._standby_done(who, f"interrupted ({type(e).__name__})")
            raise

    def _standby_laser(self, who: str | None) -> None:
        try:
            self.bridge.laser_call(self._laser_to_standby)
        except (BridgeError, TimeoutError) as e:
            detail = (
                str(e) or f"no answer ({type(e).__name__}): the laser worker is still stopping it"
            )
            why = f"laser did not go to STANDBY: {detail}"
            with ctrl_c_after():  # the halt and its trip in the log, both or neither
                self.loop.halted = True  # the loop must not read the stop in flight as a fault
                self.bridge.halt(why)
                self._halted_by("laser_standby", why)  # a halt is a trip, in the log and summary
            raise Refused(f"the laser did not go to STANDBY; halted: {detail}") from e
        self._standby_done(who)

    def _standby_done(self, who: str | None, interrupted: str | None = None) -> None:
        with self._lock:  # only now: the laser has left READY, so this is no unexpected emission
            self.loop.emission_permitted = False
            self.bridge.set_permit(False)
            if self.state is State.READY:
                self.state = State.STANDBY
        payload: Payload = {"by": who or self.params.operator}
        if interrupted:
            payload["interrupted"] = interrupted
        self._event(EventKind.STANDBY, payload)

    def emergency_halt(self, who: str, reason: str = "") -> None:
        """The operator's emergency halt: never refused while the session runs, whatever its
        state, with or without a name. Emission stops first (both routes of the bridge); the
        trip is recorded after, and may wait for the session's lock. Acknowledged like any
        other halt."""
        if self.state is State.ENDED:
            raise Refused("the session has ended: the laser was stopped and the relay opened")
        why = f"emergency halt by {who.strip() or 'an unnamed operator'}"
        if reason.strip():
            why += f": {reason.strip()}"
        self.loop.halted = True  # the loop must not read the stop in flight as a new fault
        self.bridge.halt(why)
        self._halted_by("emergency_halt", why)

    def halt(self, check: str, why: str) -> None:
        """A halt decided beside the session (``console_lost``: nobody can see the alarms).
        Emission stops first, by both routes of the bridge; the trip ``check`` is recorded
        after. Reset like any other halt. Does nothing once the session has ended."""
        if self.state is State.ENDED:
            return
        self.loop.halted = True  # the loop must not read the stop in flight as a new fault
        self.bridge.halt(why)
        self._halted_by(check, why)

    def acknowledge(self, who: str, reason: str, *, reset: Iterable[str] = ()) -> None:
        """A person releases a latched halt, with a reason. Refused while a cause persists.

        ``laser_did_not_stop`` and ``relay_stuck_closed`` outlive their cause: only an
        acknowledgement that names one in ``reset`` clears it, and only once the laser reports
        STANDBY again (fresh), so that acknowledging one alarm never clears one behind it.
        """
        if not reason.strip():
            raise Refused("an acknowledgement needs a reason")
        resets = sorted(set(reset))
        latched = {
            "laser_did_not_stop": self.engine.did_not_stop,
            "relay_stuck_closed": self.engine.relay_stuck,
        }
        unknown = [name for name in resets if name not in latched]
        if unknown:
            raise Refused(
                f"only {' and '.join(latched)} are reset by name, not {', '.join(unknown)}"
            )
        with self._lock:
            if self.state is not State.HALTED:
                raise Refused(f"nothing to acknowledge (state {self.state})")
        self._wait_stop_judged()
        for name, alarm in latched.items():
            if alarm.latched:
                self._reset_latched(name, alarm, who, reason, name in resets)
        self._wait_fresh_evaluation()
        with self._lock:
            if self.state is not State.HALTED:
                raise Refused(f"nothing to acknowledge (state {self.state})")
            if self.recorder.failed:
                raise Refused(f"the session log cannot be written: {self.recorder.failed}")
            if self.loop.halt_conditions_active():
                why = "the cause is still present: " + ", ".join(self.loop.active_names())
                self._event(
                    EventKind.ACKNOWLEDGE_REFUSED, {"by": who, "reason": reason, "why": why}
                )
                raise Refused(why)
            self.bridge.release_halt()
            self.loop.halted = False
            self.state = State.STANDBY
        self._event(EventKind.ACKNOWLEDGED, {"by": who, "reason": reason, "reset": resets})

    def _wait_stop_judged(self) -> None:
        """Wait (at most the stop grace, about a quarter of a second) until the loop has judged
        whether the laser confirmed this halt's STOP. Releasing the halt before would drop that
        judgement, and with it a ``laser_did_not_stop`` alarm. A loop that cannot judge refuses.
        """
        halt_ns = int(self.bridge.live.halt_ns)
        if halt_ns == 0:
            return
        deadline_ns = halt_ns + self.engine.stop_grace_ns + _STOP_JUDGEMENT_SLACK_NS
        while not self.engine.stop_judged(halt_ns):
            if not self.loop.is_alive() or time.perf_counter_ns() > deadline_ns:
                raise Refused(
                    "the laser's answer to STOP has not been judged yet (the interlock loop "
                    "did not run): the halt stays; acknowledge again"
                )
            time.sleep(0.001)

    def _reset_latched(
        self, name: str, alarm: LatchedAlarm, who: str, reason: str, named: bool
    ) -> None:
        live = self.bridge.live
        age_ns = time.perf_counter_ns() - int(live.fresh_ns[Dev.LASER])
        fresh = bool(live.link_ok[Dev.LASER]) and age_ns <= self.engine.stale_ns[Dev.LASER]
        state = live.laser_state()
        if not named:
            what = (
                "the laser did not stop (laser_did_not_stop): the relay is the only barrier"
                if name == "laser_did_not_stop"
                else "the relay did not cut emission (relay_stuck_closed): have it serviced"
            )
            why = f"{what}; name it to reset it, once the laser is in STANDBY"
        elif state != "STANDBY" or not fresh:
            why = (
                f"{name} cannot be reset: the laser reports {state}"
                f"{'' if fresh else ' (no fresh status)'}, not STANDBY; use the emergency stop"
            )
        else:
            alarm.reset()
            self._event(EventKind.ALARM_RESET, {"check": name, "by": who, "reason": reason})
            return
        self._event(EventKind.ACKNOWLEDGE_REFUSED, {"by": who, "reason": reason, "why": why})
        raise Refused(why)

    # --- views ---------------------------------------------------------------------------------

    def view_failed(self, view: str, error: str) -> None:
        """A view, report or tick beside the session raised: logged, and never raised here.

        While the laser may emit it is halted: the view was how a person sees the alarms.
        In STANDBY or HALTED the session simply goes on (the failure is in the log).
        """
        self._event(EventKind.VIEW_FAILED, {"view": view, "error": error})
        if self.state is State.READY:
            self.loop.halted = True  # the loop must not read the stop in flight as a new fault
            self.bridge.halt(f"the {view} failed")
            self._halted_by("view_failed", f"the {view} failed ({error}): nobody sees the alarms")

    def view_failures(self, view: str, count: int, last_error: str, why: str) -> None:
        """A run of failures of one view, logged once with its count when it ends."""
        self._event(
            EventKind.VIEW_FAILURES,
            {"view": view, "count": count, "last_error": last_error, "ended": why},
        )

    def snapshot(self) -> Snapshot:
        """The session at this moment, for views and reports (``Snapshot.as_dict`` for JSON)."""
        live = self.bridge.live
        v = live.value
        engine = self.engine
        spots = self.test_spots
        calibration_blocker = self._calibration_blocker()  # drift, status, laser's identity

        def num_of(x: float) -> float | None:
            return None if x != x else round(float(x), 3)

        def num(ch: Ch) -> float | None:
            return num_of(v[ch])

        return Snapshot(
            session_id=self.session_id,
            t_s=round(self.t_s(), 3),
            state=self.state,
            laser_state=live.laser_state(),
            skin_type=self.params.skin_type,
            skin_temp_c=num(Ch.SKIN_TEMP_C),
            plate_temp_c=num(Ch.PLATE_TEMP_C),
            flow_l_min=num(Ch.FLOW_L_MIN),
            settings=SettingsReading(
                fluence_j_cm2=num(Ch.FLUENCE_J_CM2),
                pulse_ms=num(Ch.PULSE_MS),
                spot_mm=num(Ch.SPOT_MM),
                rep_rate_hz=num(Ch.REP_RATE_HZ),
            ),
            pulses=num(Ch.LASER_PULSES),
            pulses_out_of_limits=self.pulses_out_of_limits,
            links={d.name.lower(): bool(live.link_ok[d]) for d in Dev if live.present[d]},
            permit=self.bridge.permit,
            active_conditions=tuple(self.loop.active_names()),
            trips=tuple(self.trips[-RECENT_TRIPS:]),
            warnings=tuple(self.warnings[-RECENT_TRIPS:]),
            test_spots=None if spots is None else spots.frozen(),
            reaction_time=ReactionTimes(
                required_ms=engine.live_budget.required_ms,
                measured_worst_case_ms=num_of(engine.measured_reaction_ms),
                answer_ms={
                    d.name.lower(): AnswerTimes(
                        assumed_ms=round(engine.live_budget.assumed[d.name.lower()], 3),
                        typical_ms=num_of(live.answer_typical_ms[d]),
                        recent_worst_ms=num_of(live.answer_worst_ms[d]),
                    )
                    for d in Dev
                    if live.present[d]
                },
            ),
            skin_temp_band_c=(engine.skin_low, engine.skin_high),
            calibration_note=calibration_blocker or self._calibration_warning(),
            calibration_blocks_arming=calibration_blocker is not None,
            thermal_dose=engine.dose.frozen(),
            skin_temp_2_c=num(Ch.SKIN_TEMP_2_C) if live.present[Dev.SENSOR2] else None,
            trip_counts=self.trip_tally.frozen(),
            warning_counts=self.warning_tally.frozen(),
        )

    def _calibration_warning(self) -> str | None:
        """For views, when nothing blocks arming: the warning before the calibration expires."""
        status = self.params.calibration
        return None if status is None else status.warning()
