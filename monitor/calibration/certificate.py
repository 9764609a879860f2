"""A calibration's certificate: one run's chained records, read back and verified.

A run is a records chain (``ChainLog.start_records``) of kind ``calibration`` in the session
log. Its records, in order::

    records_start              who, when (performed_at), the check (full or daily), the
                               laser (laser_id = setup name, model, wavelength, digest, the
                               policy and laser-description digests of ``basis``), the
                               policy it ran under
    calibration_preconditions  the meter and head identities, the head's own calibration date
                               and due date, the wavelength set on the meter and read back
    calibration_refused        a precondition that failed (then the result, INCOMPLETE)
    calibration_laser          the laser's answer to its identify command (or null)
    laser_pulse_counter        the laser's counter before the first shot
    pulses, calibration_shot   every shot: the laser's counter after it, the meter's reading
    calibration_point          every point: its shots, mean, SD, deviation
    reference_point            every reference temperature: readings, offset
    calibration_aborted        why a run stopped early (Ctrl-C, a lost meter, a fault)
    calibration_standby        the laser's way out: service mode off, STANDBY, relay open
    calibration_result         the verdict, its reason, the fit, the next due date
    session_end                the structural end

A run whose process died has no result: the next writer marks it interrupted, and it reads
back INCOMPLETE (or FAIL, if a point it measured was already out of tolerance), never PASS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from monitor.calibration.analysis import (
    EnergyPoint,
    ReferencePoint,
    Verdict,
    judge_energy,
)
from monitor.core.calibration_status import CalibrationOutcome
from monitor.record.chain import KIND_END, KIND_RECORDS_START
from monitor.record.chain_log import ChainLog
from monitor.record.records import (
    RecordsInfo,
    interrupted_note,
    list_records,
    read_verified_records,
)
from monitor.record.verify import Event

__all__ = [
    "CHAIN",
    "Certificate",
    "certificate_of",
    "certificates",
    "read_certificate",
]

CHAIN = "calibration"
KIND_PRECONDITIONS = "calibration_preconditions"
KIND_REFUSED = "calibration_refused"
KIND_LASER = "calibration_laser"
KIND_SHOT = "calibration_shot"
KIND_POINT = "calibration_point"
KIND_REFERENCE = "reference_point"
KIND_ABORTED = "calibration_aborted"
KIND_STANDBY = "calibration_standby"
KIND_RESULT = "calibration_result"
CHECK_FULL = "full"
CHECK_DAILY = "daily"


def parse_time(text: object) -> datetime:
    """An ISO time from a record; naive times are UTC."""
    t = datetime.fromisoformat(str(text))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Certificate:
    """One calibration run as its records say (module docstring)."""

    record_id: str
    check: str  # "full" or "daily"
    who: str
    performed_at: datetime
    simulated: bool  # run against the simulator: never counts for a clinical session
    laser: dict[str, Any]
    policy: dict[str, Any]
    preconditions: dict[str, Any] | None
    points: tuple[EnergyPoint, ...]
    references: tuple[ReferencePoint, ...]
    result: dict[str, Any] | None  # the calibration_result payload, if the run got one
    verdict: Verdict
    reason: str
    next_due: date | None
    refused: str | None
    aborted: str | None
    standby: str | None
    interrupted: str | None  # the process died: marked by the next writer
    ended: bool
    started_t_wall: float
    ended_t_wall: float | None
    laser_identity: str | None = None  # the laser's answer to its identify command, if asked

    @property
    def laser_id(self) -> str:
        return str(self.laser.get("laser_id", ""))

    @property
    def policy_digest(self) -> str | None:
        """The digest of the calibration policy it was made under (``basis``); None on a
        certificate from before it was recorded."""
        value = self.laser.get("policy_digest")
        return None if value is None else str(value)

    @property
    def laser_digest(self) -> str | None:
        value = self.laser.get("laser_digest")
        return None if value is None else str(value)

    @property
    def tolerance(self) -> float:
        return float(self.policy.get("tolerance_fraction", 0.2))

    def outcome(self) -> CalibrationOutcome | None:
        """For enforcement: a completed check (pass or fail); None while it has no result."""
        if self.verdict is Verdict.INCOMPLETE:
            return None
        return CalibrationOutcome(
            record_id=self.record_id,
            performed_at=self.performed_at,
            passed=self.verdict is Verdict.PASS,
            summary=self.reason,
            next_due=self.next_due,
        )

    def as_record(self) -> dict[str, Any]:
        """The certificate as JSON."""
        return {
            "record_id": self.record_id,
            "check": self.check,
            "who": self.who,
            "performed_at": self.performed_at.isoformat(),
            "simulated": self.simulated,
            "laser": self.laser,
            "preconditions": self.preconditions,
            "policy": self.policy,
            "points": [p.as_record() for p in self.points],
            "references": [r.as_record() for r in self.references],
            "result": self.result,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "next_due": None if self.next_due is None else self.next_due.isoformat(),
            "laser_identity": self.laser_identity,
            "refused": self.refused,
            "aborted": self.aborted,
            "standby": self.standby,
            "interrupted": self.interrupted,
            "ended": self.ended,
        }


def certificate_of(events: list[Event]) -> Certificate:
    """A certificate from one run's events, in chain order (the first is its start)."""
    start = events[0]
    if start.kind != KIND_RECORDS_START or start.payload.get("chain") != CHAIN:
        raise ValueError(f"records {start.session_id[:8]} are not a calibration run")
    head = start.payload
    by_kind: dict[str, list[Event]] = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e)

    def last(kind: str) -> dict[str, Any] | None:
        found = by_kind.get(kind)
        return None if not found else found[-1].payload

    points = tuple(EnergyPoint.from_record(e.payload) for e in by_kind.get(KIND_POINT, []))
    refs = tuple(ReferencePoint.from_record(e.payload) for e in by_kind.get(KIND_REFERENCE, []))
    policy = dict(head.get("policy") or {})
    result = last(KIND_RESULT)
    refused = last(KIND_REFUSED)
    laser_seen = last(KIND_LASER)
    aborted = last(KIND_ABORTED)
    standby = last(KIND_STANDBY)
    interrupted = interrupted_note(events)
    end = last(KIND_END)
    next_due: date | None = None
    if result is not None:
        verdict = Verdict(str(result["verdict"]))
        reason = str(result["reason"])
        if result.get("next_due"):
            next_due = date.fromisoformat(str(result["next_due"]))
    else:
        # No result: the process died, or the run is still going. Never a pass.
        why = interrupted or ("in progress" if end is None else "ended without a result")
        tolerance = float(policy.get("tolerance_fraction", 0.2))
        energy = judge_energy(points, tolerance, planned=len(points) + 1, cut_short=why)
        verdict = energy.verdict if energy.verdict is Verdict.FAIL else Verdict.INCOMPLETE
        reason = energy.reason
    return Certificate(
        record_id=start.session_id,
        check=str(head.get("check", CHECK_FULL)),
        who=str(head.get("by", "")),
        performed_at=parse_time(head["performed_at"]),
        simulated=head.get("simulated") is not False,
        laser=dict(head.get("laser") or {}),
        policy=policy,
        preconditions=last(KIND_PRECONDITIONS),
        points=points,
        references=refs,
        result=result,
        verdict=verdict,
        reason=reason,
        next_due=next_due,
        laser_identity=None
        if laser_seen is None or laser_seen.get("identity") is None
        else str(laser_seen["identity"]),
        refused=None if refused is None else str(refused.get("reason")),
        aborted=None if aborted is None else str(aborted.get("reason")),
        standby=None if standby is None else str(standby.get("outcome")),
        interrupted=interrupted,
        ended=end is not None,
        started_t_wall=start.t_wall,
        ended_t_wall=None if end is None else by_kind[KIND_END][-1].t_wall,
    )


def read_certificate(log: ChainLog, record_id: str) -> Certificate:
    """One run, read along the verified chain (raises SessionLogDamaged if it fails)."""
    return certificate_of(read_verified_records(log, record_id))


def certificates(log: ChainLog, laser_id: str | None = None) -> list[Certificate]:
    """Every calibration run (of one laser, if given), newest first, each verified."""
    infos: list[RecordsInfo] = list_records(log, CHAIN)
    out = []
    for info in infos:
        laser = info.start.get("laser")
        if laser_id is not None and (
            not isinstance(laser, dict) or laser.get("laser_id") != laser_id
        ):
            continue
        out.append(read_certificate(log, info.records_id))
    return out
