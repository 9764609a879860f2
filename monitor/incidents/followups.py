"""Follow-up tasks: who is called (or seen) when, after an incident or a higher-risk session.

A follow-up is a record stream of its own (``record:followup:<id>``): scheduled with a due
window (``due_from`` .. ``due_by``), then closed by its outcome. Its status comes from the
clock it is asked with, never from a stored flag::

    now < due_from           scheduled
    due_from <= now <= due_by due
    now > due_by             overdue
    an outcome recorded      done

The clinic's policy (``follow_up`` in the protocols file, clinic default, review):

- after an incident with its details, by its severity grade (``for_incident``);
- after a session of a higher-risk patient: a skin type of the policy's list, a relative
  contraindication answered yes, or a halt of the listed causes (``for_session``; the skin
  type, the answers and the halts are read from the session's record).

A follow-up whose window has already closed is refused: nobody can call yesterday.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.protocols import Book
from monitor.incidents.streams import (
    DEFAULT_CLOCK,
    Clock,
    find_record,
    iso,
    new_id,
    opened_events,
    require_person,
    resolve_session,
    stream_id,
)
from monitor.record.chain_log import ChainLog
from monitor.record.verify import Event

__all__ = ["FollowUp", "FollowUpKind", "FollowUpStatus", "FollowUps", "Outcome"]

_HOUR_S = 3600.0


class FollowUpKind(StrEnum):
    SCHEDULED = "followup_scheduled"
    OUTCOME = "followup_outcome"


class FollowUpStatus(StrEnum):
    SCHEDULED = "scheduled"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    IMPROVING = "improving"
    UNCHANGED = "unchanged"
    WORSE = "worse"
    REFERRED = "referred"
    NOT_REACHED = "not_reached"  # the patient did not answer: schedule the next try


@dataclass(frozen=True)
class FollowUp:
    followup_id: str
    session_id: str
    patient_id: str
    incident_id: str | None
    due_from: float
    due_by: float
    method: str
    reason: str
    scheduled_by: str
    scheduled_at: float
    outcome: dict[str, Any] | None
    last_seq: int

    def status(self, now: float) -> FollowUpStatus:
        if self.outcome is not None:
            return FollowUpStatus.DONE
        if now > self.due_by:
            return FollowUpStatus.OVERDUE
        if now >= self.due_from:
            return FollowUpStatus.DUE
        return FollowUpStatus.SCHEDULED

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "followup_id": self.followup_id,
            "session_id": self.session_id,
            "patient_id": self.patient_id,
            "incident_id": self.incident_id,
            "due_from": iso(self.due_from),
            "due_by": iso(self.due_by),
            "method": self.method,
            "reason": self.reason,
            "scheduled_by": self.scheduled_by,
            "scheduled_at": iso(self.scheduled_at),
            "status": str(self.status(now)),
            "outcome": self.outcome,
        }


def fold(events: list[Event]) -> FollowUp:
    first = events[0]
    p = first.payload
    outcome = None
    for e in events[1:]:
        if e.kind == FollowUpKind.OUTCOME:
            q = e.payload
            outcome = {
                "outcome": q["outcome"],
                "note": q.get("note", ""),
                "by": q.get("by", ""),
                "at": iso(e.t_wall),
            }
    incident = p.get("incident_id")
    return FollowUp(
        followup_id=str(p["followup_id"]),
        session_id=str(p["session_id"]),
        patient_id=str(p.get("patient_id", "")),
        incident_id=None if incident is None else str(incident),
        due_from=float(p["due_from"]),
        due_by=float(p["due_by"]),
        method=str(p["method"]),
        reason=str(p["reason"]),
        scheduled_by=str(p.get("by", "")),
        scheduled_at=first.t_wall,
        outcome=outcome,
        last_seq=events[-1].seq,
    )


@dataclass
class FollowUps:
    log: ChainLog
    book: Book
    clock: Clock = DEFAULT_CLOCK

    def schedule(
        self,
        session_id: str,
        *,
        due_by: float,
        by: str,
        method: str,
        reason: str,
        due_from: float | None = None,
        incident_id: str | None = None,
    ) -> FollowUp:
        """A follow-up due between ``due_from`` (default: now) and ``due_by``."""
        info = resolve_session(self.log, session_id)
        who = require_person(by)
        now = self.clock()
        start = now if due_from is None else due_from
        if due_by <= now:
            raise IncidentInputError(
                f"a follow-up due by {iso(due_by)} is in the past (now {iso(now)}): give a "
                "later date"
            )
        if start > due_by:
            raise IncidentInputError(
                f"the follow-up window starts ({iso(start)}) after it ends ({iso(due_by)})"
            )
        if not method.strip() or not reason.strip():
            raise IncidentInputError("a follow-up needs its method and its reason")
        followup_id = new_id()
        payload = {
            "followup_id": followup_id,
            "session_id": info.session_id,
            "patient_id": info.patient_id,
            "incident_id": incident_id,
            "due_from": start,
            "due_by": due_by,
            "method": method.strip(),
            "reason": reason.strip(),
            "by": who,
            "policy": {"book_version": self.book.version, "book_sha256": self.book.digest},
        }
        self.log.append_record(
            stream_id("followup", followup_id),
            FollowUpKind.SCHEDULED,
            payload,
            t_wall=now,
            expect_last_seq=0,
        )
        return self.get(followup_id, verified=False)

    def for_incident(
        self, session_id: str, incident_id: str, severity: int, *, by: str
    ) -> FollowUp | None:
        """The policy's follow-up after an incident of this grade (None below every rule)."""
        rule = self.book.book.follow_up.for_grade(severity)
        if rule is None:
            return None
        now = self.clock()
        start = now + rule.due_after_h * _HOUR_S
        return self.schedule(
            session_id,
            due_from=start,
            due_by=start + rule.due_within_h * _HOUR_S,
            by=by,
            method=rule.method,
            reason=f"incident {incident_id[:8]} of grade {severity} (policy: grade {rule.min_grade}+)",
            incident_id=incident_id,
        )

    def higher_risk(self, session_id: str) -> list[str]:
        """Why the policy counts this session's patient as higher-risk (empty: it does not),
        read from the session's record: its skin type, risk assessment and halts."""
        info = resolve_session(self.log, session_id)
        policy = self.book.book.follow_up.session
        why: list[str] = []
        if info.skin_type in [t.value for t in policy.skin_types]:
            why.append(f"skin type {info.skin_type}")
        if policy.relative_contraindication:
            for e in self.log.events(info.session_id, ["risk_assessment"]):
                relative = e.payload.get("relative") or []
                if relative:
                    why.append("relative contraindications " + ", ".join(map(str, relative)))
        halts = {str(e.payload.get("check")) for e in self.log.events(info.session_id, ["trip"])}
        hit = sorted(halts & set(policy.halted_on))
        if hit:
            why.append("halted on " + ", ".join(hit))
        return why

    def for_session(self, session_id: str, *, by: str) -> FollowUp | None:
        """The policy's follow-up after a higher-risk patient's session; None otherwise."""
        why = self.higher_risk(session_id)
        if not why:
            return None
        policy = self.book.book.follow_up.session
        start = self.clock() + policy.due_after_h * _HOUR_S
        return self.schedule(
            session_id,
            due_from=start,
            due_by=start + policy.due_within_h * _HOUR_S,
            by=by,
            method=policy.method,
            reason="higher-risk patient: " + "; ".join(why),
        )

    def record(self, followup_id: str, *, outcome: str, by: str, note: str = "") -> FollowUp:
        """The outcome of a follow-up: it is done."""
        followup = self.get(followup_id)
        who = require_person(by)
        try:
            what = Outcome(outcome)
        except ValueError:
            raise IncidentInputError(
                f"outcome {outcome!r} is not one of {', '.join(o.value for o in Outcome)}"
            ) from None
        if followup.outcome is not None:
            raise IncidentRefused(
                f"follow-up {followup.followup_id[:8]} has its outcome already "
                f"({followup.outcome['outcome']}); schedule another for more"
            )
        self.log.append_record(
            stream_id("followup", followup.followup_id),
            FollowUpKind.OUTCOME,
            {"by": who, "outcome": str(what), "note": note.strip()},
            t_wall=self.clock(),
            expect_last_seq=followup.last_seq,
        )
        return self.get(followup.followup_id, verified=False)

    def get(self, followup_id: str, *, verified: bool = True) -> FollowUp:
        full = find_record(
            self.log, FollowUpKind.SCHEDULED, "followup_id", followup_id, "follow-up"
        )
        sid = stream_id("followup", full)
        return fold(self.log.read_verified_stream(sid) if verified else self.log.record_stream(sid))

    def select(
        self, *, session_id: str | None = None, incident_id: str | None = None
    ) -> list[FollowUp]:
        """Follow-ups, by due date (quick lookups)."""
        out = []
        for opened in opened_events(self.log, FollowUpKind.SCHEDULED):
            p = opened.payload
            if session_id is not None and p.get("session_id") != session_id:
                continue
            if incident_id is not None and p.get("incident_id") != incident_id:
                continue
            out.append(fold(self.log.record_stream(opened.session_id)))
        return sorted(out, key=lambda f: (f.due_by, f.followup_id))

    def due(self, as_of: float | None = None) -> list[FollowUp]:
        """Follow-ups due or overdue at ``as_of`` (default: now), most overdue first."""
        now = self.clock() if as_of is None else as_of
        wanted = (FollowUpStatus.DUE, FollowUpStatus.OVERDUE)
        return [f for f in self.select() if f.status(now) in wanted]
