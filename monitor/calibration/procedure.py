"""The guided calibration: preconditions, reference checks, the energy sweep, the verdict.

One run, start to end, recorded as it happens in the session log (a records chain of kind
``calibration``: ``certificate.py`` lists its records)::

    preflight    setup has a calibration policy and a meter; no patient session is open in
                 the log; a full run has its reference temperatures   (refused: no record)
    open         the run's first record: who, when, the laser, the policy
    meter        identified; its head's own calibration not expired; set to the laser's
                 wavelength and read back; auto range                 (refused: recorded)
    laser        its identity (identify command) recorded; STANDBY, its pulse counter
    references   (full run) the skin sensor, then the plate, against a reference
                 thermometer, point by point
    sweep        relay closed, service mode on; for each spot size and set energy, N shots
                 into the meter: each shot's counter and reading recorded, then the point
    out          always, however the run ended: the halt path (stop, relay open), service
                 mode off, STANDBY, confirmed where the laser still answers
    result       PASS, FAIL (naming the worst point) or INCOMPLETE, and the next due date

Ctrl-C, a lost meter or laser, a laser that leaves STANDBY, a log that cannot be written, an
unexpected error of any other type (recorded with its type and message): the laser goes out
of service mode first, then the run is recorded INCOMPLETE (FAIL if a point
already measured was out of tolerance), never PASS. An over-range reading is no value: its
point fails and the sweep stops (no more energy into a head already over its range).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NoReturn, Protocol

from device_profiles.energy import fluence_j_cm2_for
from device_profiles.laser_state import LaserState
from device_profiles.loader import LoadedSetup
from device_profiles.schema import LASER_SETTINGS, CalibrationPolicy, ReferenceCheck, Setup
from firmware_bridge.errors import (
    BridgeError,
    DeviceRejected,
    LinkLost,
    MeterOverRange,
    NoPulseMeasured,
    ProtocolError,
)
from firmware_bridge.meter import EnergyMeterDriver
from monitor.calibration.analysis import (
    EnergyPoint,
    EnergyResult,
    ReferencePoint,
    ReferenceResult,
    Verdict,
    combine,
    judge_energy,
    judge_reference,
)
from monitor.calibration.basis import basis_digests
from monitor.calibration.certificate import (
    CHAIN,
    CHECK_DAILY,
    CHECK_FULL,
    KIND_ABORTED,
    KIND_LASER,
    KIND_POINT,
    KIND_PRECONDITIONS,
    KIND_REFERENCE,
    KIND_REFUSED,
    KIND_RESULT,
    KIND_SHOT,
    KIND_STANDBY,
    Certificate,
    read_certificate,
)
from monitor.calibration.rig import BenchFault, CalibrationRig
from monitor.core.calibration_status import utc_now
from monitor.core.records import EventKind
from monitor.record.chain_log import ChainLog
from monitor.record.errors import SessionLogError

__all__ = [
    "CalibrationRefused",
    "CalibrationRun",
    "Progress",
    "ReferenceSource",
    "preflight",
]


class CalibrationRefused(Exception):
    """A calibration LaserGuard will not start or go on with; the message says why."""


class Progress(Protocol):
    """What a front end shows while the sweep runs."""

    def begin(self, total_shots: int, title: str) -> None: ...

    def shot(self, label: str) -> None: ...

    def say(self, text: str) -> None: ...


class ReferenceSource(Protocol):
    """The reference thermometer: readies point ``index`` of ``total`` for ``sensor``
    ("skin_sensor" or "plate") and returns what the reference reads there, in degC."""

    def reference_c(self, sensor: str, index: int, total: int) -> float: ...


class _Silent:
    def begin(self, total_shots: int, title: str) -> None:
        del total_shots, title

    def shot(self, label: str) -> None:
        del label

    def say(self, text: str) -> None:
        del text


def preflight(
    loaded: LoadedSetup, log: ChainLog, *, who: str, daily: bool, has_references: bool
) -> CalibrationPolicy:
    """What must hold before any device is touched; raises ``CalibrationRefused``."""
    setup = loaded.setup
    if not who.strip():
        raise CalibrationRefused("a calibration needs the name of who performs it (--who)")
    if setup.calibration is None or loaded.meter is None:
        raise CalibrationRefused(
            f"setup {setup.name} has no calibration policy (a `calibration` block with an "
            "`energy_meter`): nothing to calibrate against"
        )
    open_sessions = [s for s in log.sessions() if s.end_reason is None]
    if open_sessions:
        s = open_sessions[0]
        raise CalibrationRefused(
            f"a treatment session is open in the log ({s.session_id[:8]}, operator "
            f"{s.operator}, patient {s.patient_id}): no calibration while a patient session runs"
        )
    if not daily and not has_references:
        raise CalibrationRefused(
            "a full calibration checks the skin sensor and the plate against a reference "
            "thermometer: give the reference temperatures (or answer the prompts)"
        )
    return setup.calibration


def _head_due(calibrated: date, interval_days: int) -> date:
    return calibrated + timedelta(days=interval_days)


@dataclass(frozen=True)
class _Plan:
    check: str
    points: tuple[tuple[float, float], ...]  # (spot_mm, energy_j)
    shots_per_point: int


class CalibrationRun:
    """One calibration run over a rig, recorded in ``log`` (the module docstring)."""

    def __init__(
        self,
        loaded: LoadedSetup,
        setup: Setup,
        log: ChainLog,
        rig: CalibrationRig,
        *,
        who: str,
        daily: bool = False,
        references: ReferenceSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
        simulated: bool = False,
        defer_interrupts: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.loaded = loaded
        self.setup = setup
        self.log = log
        self.rig = rig
        self.who = who
        self.daily = daily
        self.references = references
        self.clock = clock
        self.progress: Progress = progress or _Silent()
        self.simulated = simulated
        self.defer_interrupts = defer_interrupts
        self.policy = preflight(
            loaded, log, who=who, daily=daily, has_references=references is not None
        )
        self.performed_at = clock()
        self.record_id = ""
        self.points: list[EnergyPoint] = []
        self.references_done: dict[str, list[ReferencePoint]] = {"skin_sensor": [], "plate": []}
        self.refused: str | None = None
        self.cut_short: str | None = None
        self.error: dict[str, str] | None = None  # an unexpected exception's type and text
        self.shots_fired = 0
        self._last_total: int | None = None
        self._last_settings: dict[str, float] = {}

    @property
    def plan(self) -> _Plan:
        p = self.policy
        if self.daily:
            d = p.daily_check
            return _Plan(
                CHECK_DAILY, tuple((d.spot_mm, e) for e in d.energies_j), d.shots_per_point
            )
        points = tuple((s, e) for s in p.spot_sizes_mm for e in p.energies_j)
        return _Plan(CHECK_FULL, points, p.shots_per_point)

    # --- the record ---------------------------------------------------------------------------

    def _append(self, kind: str, payload: dict[str, Any]) -> None:
        self.log.append(self.record_id, kind, payload)

    def _open(self) -> None:
        setup, loaded = self.setup, self.loaded
        assert loaded.meter is not None and setup.energy_meter is not None
        self.record_id = self.log.start_records(
            CHAIN,
            {
                "check": self.plan.check,
                "by": self.who,
                "performed_at": self.performed_at.isoformat(),
                "simulated": self.simulated,
                # laser_id in meta: the pulse reconciliation finds the run's shots by it.
                "meta": {"laser_id": setup.name},
                "laser": {
                    "laser_id": setup.name,
                    "setup": f"{setup.name} v{setup.version}",
                    "setup_digest": loaded.digest,
                    "profile_source": loaded.source,
                    "model": setup.laser.model,
                    "wavelength_nm": setup.laser.wavelength_nm,
                    # What arming compares (monitor.calibration.basis): the policy and the
                    # laser's description this run was made under.
                    **basis_digests(loaded.setup),
                },
                "meter_setup": {
                    "device": setup.energy_meter.device,
                    "description": loaded.meter.description.model,
                    "description_digest": loaded.meter.digest,
                    "head_calibrated": None
                    if setup.energy_meter.head_calibrated is None
                    else setup.energy_meter.head_calibrated.isoformat(),
                    "head_calibration_interval_days": setup.energy_meter.head_calibration_interval_days,
                },
                "policy": self.policy.model_dump(mode="json"),
            },
        )

    def _record_bridge_events(self) -> None:
        for kind, payload in self.rig.drain_events():
            self._append(f"bridge_{kind}", payload)

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> Certificate:
        """Run to the end, whatever happens; the certificate as recorded."""
        self._open()
        why_out = "finished"
        try:
            self._measure()
        except KeyboardInterrupt:
            why_out = self.cut_short = "interrupted by the operator (Ctrl-C)"
        except CalibrationRefused as e:
            why_out = self.refused = str(e)
        except MeterOverRange as e:  # outside a sweep (the sweep handles its own)
            why_out = self.cut_short = f"the energy meter reports over-range: {e}"
        except NoPulseMeasured as e:
            why_out = self.cut_short = f"the energy meter measured no shot: {e}"
        except LinkLost as e:
            why_out = self.cut_short = f"lost a device: {e}"
        except (BenchFault, BridgeError, TimeoutError) as e:
            why_out = self.cut_short = f"{e or type(e).__name__}"
        except SessionLogError as e:
            # No unlogged shots: stop the laser, and say so if the log still takes words.
            self.cut_short = f"the session log cannot be written: {e}"
            with self.defer_interrupts():
                self.rig.stop(self.cut_short)
            raise
        except Exception as e:  # recorded below with its type: never a pass
            # An error no handler above knows (a driver's bug, a reply no parser foresaw):
            # the laser is made safe and the run recorded INCOMPLETE with the error's type
            # and message, as any other cut-short run; the front end says it in one sentence.
            self.error = {"type": type(e).__name__, "message": str(e)[:500]}
            why_out = self.cut_short = (
                f"an unexpected error stopped the run ({type(e).__name__}: {str(e)[:200]})"
            )
        with self.defer_interrupts():
            outcome = self.rig.stop(why_out)
            if self.cut_short is not None:
                aborted: dict[str, Any] = {
                    "reason": self.cut_short,
                    "shots_fired": self.shots_fired,
                }
                if self.error is not None:
                    aborted["error"] = self.error
                self._append(KIND_ABORTED, aborted)
            self._append(KIND_STANDBY, {"outcome": outcome})
            self._record_bridge_events()
            self._final_counter()
            verdict = self._result()
            self.log.end_session(self.record_id, f"calibration {verdict.value}")
        return read_certificate(self.log, self.record_id)

    def _measure(self) -> None:
        meter = self.rig.connect()
        self._meter_preconditions(meter)
        self._laser_preconditions()
        if not self.daily:
            self._reference_checks()
        self._sweep(meter)

    def _refuse(self, why: str) -> NoReturn:
        self._append(KIND_REFUSED, {"reason": why})
        raise CalibrationRefused(why)

    def _meter_preconditions(self, meter: EnergyMeterDriver) -> None:
        setup = self.setup
        assert setup.energy_meter is not None
        desc = meter.desc
        port = setup.energy_meter.port or desc.transport.port
        try:
            ident = meter.identify()
            head = meter.head_info()
        except LinkLost as e:
            self._refuse(f"the energy meter does not answer on {port}: {e}")
        except DeviceRejected as e:
            self._refuse(f"the energy meter refused to identify itself: {e.reason}")
        except ProtocolError as e:
            self._refuse(f"the energy meter does not speak its description ({desc.name}): {e}")
        block = setup.energy_meter
        calibrated = head.calibrated or block.head_calibrated
        source = "reported by the head" if head.calibrated is not None else "stated in the setup"
        today = self.performed_at.astimezone().date()
        facts: dict[str, Any] = {
            "meter": {"model": ident.model, "serial": ident.serial, "firmware": ident.firmware},
            "description": desc.name,
            "head": {"type": head.head_type, "serial": head.head_serial},
            "head_calibrated": None if calibrated is None else calibrated.isoformat(),
            "head_calibrated_source": source,
            "head_due": None,
        }
        if calibrated is None:
            self._append(KIND_PRECONDITIONS, facts)
            self._refuse(
                "the meter head's own calibration date is unknown (not reported, not in the setup)"
            )
        assert calibrated is not None
        due = _head_due(calibrated, block.head_calibration_interval_days)
        facts["head_due"] = due.isoformat()
        if today > due:
            self._append(KIND_PRECONDITIONS, facts)
            self._refuse(
                f"the energy meter head's own calibration has expired: calibrated {calibrated} "
                f"({source}), due {due} ({block.head_calibration_interval_days} days), today "
                f"{today}; have the head recalibrated"
            )
        laser_nm = setup.laser.wavelength_nm
        try:
            took = meter.set_wavelength(laser_nm)
            read_back = meter.wavelength_nm() if desc.commands.get_wavelength is not None else took
            auto = meter.set_range_auto()
        except DeviceRejected as e:
            self._append(KIND_PRECONDITIONS, facts)
            self._refuse(
                f"the energy meter is not measuring at the laser's wavelength {laser_nm:g} nm: "
                f"{e.reason}"
            )
        except (LinkLost, ProtocolError) as e:
            self._append(KIND_PRECONDITIONS, facts)
            self._refuse(f"the energy meter failed while being set to {laser_nm:g} nm: {e}")
        if abs(read_back - laser_nm) > 0.5:
            self._append(KIND_PRECONDITIONS, facts)
            self._refuse(
                f"the energy meter reads back {read_back:g} nm, not the laser's {laser_nm:g} nm"
            )
        facts["wavelength_nm"] = {"laser": laser_nm, "set": took, "read_back": read_back}
        facts["range_auto"] = auto
        self._append(KIND_PRECONDITIONS, facts)
        self.progress.say(
            f"meter {ident.model} {ident.serial or ''} head {head.head_type}: calibrated "
            f"{calibrated} ({source}), due {due}; set to {read_back:g} nm"
        )

    def _laser_preconditions(self) -> None:
        status = self.rig.laser_status()
        # The laser's answer to its identify command (its serial number), if it has one:
        # arming compares it, so a certificate is never lent to another laser.
        identity = self.rig.bridge.laser_identity
        self._append(KIND_LASER, {"identity": identity})
        if identity is not None:
            self.progress.say(f"laser identifies as {identity}")
        if status.state is not LaserState.STANDBY:
            self._refuse(
                f"the laser reports {status.state}, not STANDBY: calibrate with the laser idle"
            )
        self._last_total = status.pulses
        self._last_settings = dict(status.settings)
        self._append(EventKind.LASER_PULSE_COUNTER.value, {"total": status.pulses})

    # --- reference thermometers ----------------------------------------------------------------

    def _reference_checks(self) -> None:
        assert self.references is not None
        checks: tuple[tuple[str, ReferenceCheck], ...] = (
            ("skin_sensor", self.policy.skin_sensor),
            ("plate", self.policy.plate),
        )
        for sensor, check in checks:
            for i in range(check.points):
                reference = float(self.references.reference_c(sensor, i, check.points))
                readings = self.rig.read_temperature(sensor, check.sample_s)
                point = ReferencePoint(sensor, reference, readings)
                self.references_done[sensor].append(point)
                self._append(KIND_REFERENCE, point.as_record())
                self.progress.say(point.describe(check.tolerance_c))

    # --- the sweep ------------------------------------------------------------------------------

    def _sweep(self, meter: EnergyMeterDriver) -> None:
        plan = self.plan
        self.rig.permit()
        try:
            self.rig.service_on()
        except DeviceRejected as e:
            self._refuse(f"the laser refused service mode: {e.reason}")
        total = len(plan.points) * plan.shots_per_point
        self.progress.begin(total, f"{plan.check} calibration: {len(plan.points)} points")
        timeout_s = self.policy.shot_timeout_s
        for spot_mm, energy_j in plan.points:
            settings = self.rig.set_point(spot_mm, fluence_j_cm2_for(energy_j, spot_mm))
            set_j = self.rig.set_energy_of(settings)
            readings: list[float] = []
            over = False
            for k in range(plan.shots_per_point):
                self._record_bridge_events()
                trouble = self.rig.trouble()
                if trouble is not None:
                    raise BenchFault(trouble)
                meter.discard_pending()
                self._fire(settings)
                try:
                    reading = meter.wait_pulse_energy_j(timeout_s)
                except MeterOverRange:
                    over = True
                    self._append(
                        KIND_SHOT,
                        {"spot_mm": spot_mm, "set_j": round(set_j, 6), "shot": k,
                         "reading_j": None, "over_range": True},
                    )  # fmt: skip
                    break
                readings.append(reading)
                self._append(
                    KIND_SHOT,
                    {"spot_mm": spot_mm, "set_j": round(set_j, 6), "shot": k,
                     "reading_j": round(reading, 6), "over_range": False},
                )  # fmt: skip
                self.progress.shot(f"{spot_mm:g} mm, {set_j:.3g} J: shot {k + 1}")
            point = EnergyPoint(
                spot_mm=float(settings["spot_mm"]),
                target_j=energy_j,
                fluence_j_cm2=float(settings["fluence_j_cm2"]),
                set_j=set_j,
                readings_j=tuple(readings),
                over_range=over,
            )
            self.points.append(point)
            self._append(KIND_POINT, point.as_record())
            self.progress.say(point.describe(self.policy.tolerance_fraction))
            if over:
                self.cut_short = f"the meter read over-range at {point.label}; sweep stopped"
                return

    def _fire(self, settings: dict[str, float]) -> None:
        before = self._last_total
        status = self.rig.fire()
        self.shots_fired += 1
        self._last_total = status.pulses
        self._last_settings = dict(status.settings)
        n = status.pulses - (status.pulses - 1 if before is None else before)
        self._append(
            EventKind.PULSES.value,
            {"n": n, "total": status.pulses, "settings": status.settings, "service_shot": True},
        )
        if n != 1:
            raise BenchFault(
                f"the laser's pulse counter went from {before} to {status.pulses} for one "
                "test shot: it fired other than asked"
            )
        for name in LASER_SETTINGS:
            if abs(status.settings[name] - settings[name]) > 1e-9 * max(1.0, abs(settings[name])):
                raise BenchFault(
                    f"the laser's {name} changed to {status.settings[name]:g} during the point "
                    f"(set {settings[name]:g})"
                )

    def _final_counter(self) -> None:
        """The counter as the run leaves it, read if the laser still answers: the shots that
        were fired without a reading are accounted for too."""
        try:
            status = self.rig.laser_status()
        except (BenchFault, BridgeError, TimeoutError):
            return
        if self._last_total is not None and status.pulses != self._last_total:
            self._append(
                EventKind.PULSES.value,
                {
                    "n": status.pulses - self._last_total,
                    "total": status.pulses,
                    "settings": status.settings,
                    "service_shot": True,
                },
            )
        self._last_total = status.pulses

    # --- the verdict ----------------------------------------------------------------------------

    def _result(self) -> Verdict:
        plan = self.plan
        tolerance = self.policy.tolerance_fraction
        energy: EnergyResult = judge_energy(
            self.points, tolerance, planned=len(plan.points), cut_short=self.cut_short
        )
        parts: list[tuple[str, Verdict, str]] = [("energy", energy.verdict, energy.reason)]
        record: dict[str, Any] = {"energy": energy.as_record()}
        if not self.daily:
            for sensor, check in (
                ("skin_sensor", self.policy.skin_sensor),
                ("plate", self.policy.plate),
            ):
                ref: ReferenceResult = judge_reference(
                    sensor, self.references_done[sensor], check.tolerance_c, planned=check.points
                )
                parts.append((sensor, ref.verdict, ref.reason))
                record[sensor] = ref.as_record()
        verdict = combine([v for _, v, _ in parts])
        if self.refused is not None:
            verdict, reason = Verdict.INCOMPLETE, f"refused: {self.refused}"
        elif verdict is Verdict.PASS:
            reason = "; ".join(r for _, _, r in parts)
        else:
            reason = "; ".join(r for _, v, r in parts if v is verdict)
        next_due = None
        if verdict is Verdict.PASS and not self.daily:
            start_day = self.performed_at.astimezone().date()
            next_due = (start_day + timedelta(days=self.policy.interval_days)).isoformat()
        self._append(
            KIND_RESULT,
            {
                "verdict": verdict.value,
                "reason": reason,
                "check": plan.check,
                "performed_at": self.performed_at.isoformat(),
                "next_due": next_due,
                "shots_fired": self.shots_fired,
                "refused": self.refused is not None,
                **record,
            },
        )
        return verdict
