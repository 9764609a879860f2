"""Incident records: a complication, linked to its session and to the halt that led to it.

An incident is a record stream (``monitor.incidents.streams``) of chained entries; its
state is folded from them, never stored apart, and nothing is ever overwritten: a
correction is an ``incident_amended`` entry with who, when, why and each field's value
before and after, and ``history`` shows every entry. States::

    (halt on skin temperature,   ──► DRAFT ──complete (details)──► DOCUMENTED ──close──► CLOSED
     unexpected emission...)          │                               (resolved, referred)
                                      └──close "no injury"───────────────────────────► CLOSED
    (noticed later, e.g. at a
     follow-up call)             ──► DOCUMENTED (opened with its details)

The details: ``type`` (a complication: one of the protocols' ids), ``severity`` (a grade of
the protocol book's stated scale), ``body_site``, ``noticed_at`` and ``noticed_by``,
``actions_taken``, ``referral``. The settings and the skin-temperature trace around the
halt are not typed in: they are read from the session's verified record when shown
(``monitor.incidents.trace``), by the trigger's seq and hash.

The protocol's checklist: each immediate step ticked once, with who and when, in the order
they were done (the chain's order). Photos: by content hash (``monitor.incidents.photos``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.photos import Photo, PhotoStore
from monitor.incidents.protocols import Book
from monitor.incidents.streams import (
    DEFAULT_CLOCK,
    Clock,
    find_record,
    iso,
    new_id,
    opened_events,
    parse_when,
    require_person,
    resolve_session,
    stream_id,
)
from monitor.record.chain_log import ChainLog
from monitor.record.verify import Event

__all__ = [
    "DETAIL_FIELDS",
    "CloseOutcome",
    "Incident",
    "IncidentBook",
    "IncidentKind",
    "IncidentStatus",
]


class IncidentKind(StrEnum):
    """The entries of an incident's stream."""

    OPENED = "incident_opened"
    STEP_DONE = "incident_step_done"
    COMPLETED = "incident_completed"
    AMENDED = "incident_amended"
    PHOTO = "incident_photo_attached"
    CLOSED = "incident_closed"


class IncidentStatus(StrEnum):
    DRAFT = "draft"
    DOCUMENTED = "documented"
    CLOSED = "closed"


class CloseOutcome(StrEnum):
    NO_INJURY = "no_injury"  # a draft the clinician found harmless
    RESOLVED = "resolved"
    REFERRED = "referred"  # handed on to a physician or service; the referral says where


DETAIL_FIELDS = (
    "type",
    "severity",
    "body_site",
    "noticed_at",
    "noticed_by",
    "actions_taken",
    "referral",
)
_TEXT_FIELDS = ("body_site", "noticed_by", "actions_taken", "referral")
# A clock a few minutes fast on a tablet is not a complication noticed in the future.
_FUTURE_SLACK_S = 300.0


@dataclass(frozen=True)
class Tick:
    step: int  # 1-based, as the checklist shows it
    text: str
    by: str
    t_wall: float
    note: str
    seq: int


@dataclass(frozen=True)
class Attached:
    photo: Photo
    by: str
    caption: str
    t_wall: float
    seq: int


@dataclass(frozen=True)
class Entry:
    """One chained entry of an incident, as its history shows it."""

    seq: int
    t_wall: float
    kind: str
    by: str
    payload: dict[str, Any]

    def summary(self) -> str:
        p = self.payload
        if self.kind == IncidentKind.OPENED:
            return f"opened as {p.get('status')} ({p.get('origin')})"
        if self.kind == IncidentKind.STEP_DONE:
            return f"step {p.get('step')} done: {p.get('text')}"
        if self.kind == IncidentKind.COMPLETED:
            return "completed: " + _words(p.get("details"))
        if self.kind == IncidentKind.AMENDED:
            changes = p.get("changes") or {}
            parts = [f"{k} {v.get('from')!r} -> {v.get('to')!r}" for k, v in changes.items()]
            return f"amended ({p.get('why')}): " + "; ".join(parts)
        if self.kind == IncidentKind.PHOTO:
            return f"photo {str(p.get('sha256'))[:12]} ({p.get('media_type')}) {p.get('caption') or ''}"
        if self.kind == IncidentKind.CLOSED:
            return f"closed: {p.get('outcome')} ({p.get('reason')})"
        return self.kind


def _words(details: object) -> str:
    if not isinstance(details, dict):
        return ""
    return "; ".join(f"{k} {details[k]!r}" for k in DETAIL_FIELDS if k in details)


@dataclass(frozen=True)
class Incident:
    """An incident as its entries say it is now (``history``: every entry, oldest first)."""

    incident_id: str
    session_id: str
    patient_id: str
    status: IncidentStatus
    origin: str  # "halt" (opened by LaserGuard) or "manual"
    trigger: dict[str, Any] | None  # the halt or alarm: seq, hash, check, reason, t_s
    protocol: dict[str, Any] | None  # id, title, book version and sha256
    opened_at: float
    opened_by: str
    details: dict[str, Any]
    closure: dict[str, Any] | None
    ticks: tuple[Tick, ...]
    photos: tuple[Attached, ...]
    history: tuple[Entry, ...]
    last_seq: int
    amended: bool = False

    @property
    def stream(self) -> str:
        return stream_id("incident", self.incident_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "session_id": self.session_id,
            "patient_id": self.patient_id,
            "status": str(self.status),
            "origin": self.origin,
            "trigger": self.trigger,
            "protocol": self.protocol,
            "opened_at": iso(self.opened_at),
            "opened_by": self.opened_by,
            "details": self.details,
            "closure": self.closure,
            "ticks": [
                {"step": t.step, "text": t.text, "by": t.by, "at": iso(t.t_wall), "note": t.note}
                for t in self.ticks
            ],
            "photos": [
                {
                    "sha256": a.photo.sha256,
                    "media_type": a.photo.media_type,
                    "bytes": a.photo.n_bytes,
                    "by": a.by,
                    "caption": a.caption,
                    "at": iso(a.t_wall),
                }
                for a in self.photos
            ],
            "history": [
                {"seq": e.seq, "at": iso(e.t_wall), "kind": e.kind, "by": e.by, "what": e.summary()}
                for e in self.history
            ],
            "amended": self.amended,
        }


def fold(events: list[Event]) -> Incident:
    """An incident from its stream's entries, oldest first."""
    if not events or events[0].kind != IncidentKind.OPENED:
        raise IncidentInputError("not an incident's record: it does not start with its opening")
    first = events[0].payload
    status = IncidentStatus(str(first["status"]))
    details: dict[str, Any] = dict(first.get("details") or {})
    closure: dict[str, Any] | None = None
    ticks: list[Tick] = []
    photos: list[Attached] = []
    history: list[Entry] = []
    amended = False
    for e in events:
        p = e.payload
        by = str(p.get("by", ""))
        history.append(Entry(e.seq, e.t_wall, e.kind, by, p))
        if e.kind == IncidentKind.STEP_DONE:
            ticks.append(
                Tick(int(p["step"]), str(p["text"]), by, e.t_wall, str(p.get("note", "")), e.seq)
            )
        elif e.kind == IncidentKind.COMPLETED:
            details.update(p["details"])
            status = IncidentStatus.DOCUMENTED
        elif e.kind == IncidentKind.AMENDED:
            amended = True
            for name, change in p["changes"].items():
                details[name] = change["to"]
        elif e.kind == IncidentKind.PHOTO:
            photo = Photo(str(p["sha256"]), str(p["media_type"]), int(p["bytes"]))
            photos.append(Attached(photo, by, str(p.get("caption", "")), e.t_wall, e.seq))
        elif e.kind == IncidentKind.CLOSED:
            closure = {
                "outcome": p["outcome"],
                "reason": p["reason"],
                "by": by,
                "at": iso(e.t_wall),
            }
            status = IncidentStatus.CLOSED
    return Incident(
        incident_id=str(first["incident_id"]),
        session_id=str(first["session_id"]),
        patient_id=str(first.get("patient_id", "")),
        status=status,
        origin=str(first["origin"]),
        trigger=first.get("trigger"),
        protocol=first.get("protocol"),
        opened_at=events[0].t_wall,
        opened_by=str(first.get("by", "")),
        details=details,
        closure=closure,
        ticks=tuple(ticks),
        photos=tuple(photos),
        history=tuple(history),
        last_seq=events[-1].seq,
        amended=amended,
    )


@dataclass
class IncidentBook:
    """Opens, completes, corrects and closes incidents in a session log (any store).

    Every request is checked against the incident's state as read, and appended only if the
    stream has not changed meanwhile (``ChainLog.append_record(expect_last_seq=...)``).
    ``on_documented`` is called with an incident once it has its details (the follow-up
    policy schedules its follow-up there).
    """

    log: ChainLog
    book: Book
    photos: PhotoStore
    clock: Clock = DEFAULT_CLOCK
    on_documented: list[Callable[[Incident, str], None]] = field(default_factory=list)

    # --- reading ------------------------------------------------------------------------

    def get(self, incident_id: str, *, verified: bool = True) -> Incident:
        """One incident by id or unique prefix; ``verified``: read along the checked chain."""
        full = find_record(self.log, IncidentKind.OPENED, "incident_id", incident_id, "incident")
        sid = stream_id("incident", full)
        events = self.log.read_verified_stream(sid) if verified else self.log.record_stream(sid)
        return fold(events)

    def select(
        self, *, session_id: str | None = None, status: IncidentStatus | None = None
    ) -> list[Incident]:
        """Incidents, oldest first (quick lookups; ``get`` reads one verified)."""
        out = []
        for opened in opened_events(self.log, IncidentKind.OPENED):
            if session_id is not None and opened.payload.get("session_id") != session_id:
                continue
            incident = fold(self.log.record_stream(opened.session_id))
            if status is None or incident.status is status:
                out.append(incident)
        return out

    # --- opening ------------------------------------------------------------------------

    def open_draft(self, session_id: str, trigger: Event, *, by: str) -> Incident:
        """A draft opened by a halt (``trigger``: its chained ``trip`` event)."""
        info = resolve_session(self.log, session_id)
        check = str(trigger.payload.get("check"))
        cause = self.book.for_halt(check)
        if cause is None or cause.protocol is None:
            raise IncidentInputError(f"a halt on {check} names no protocol: no draft incident")
        return self._open(
            info.session_id,
            info.patient_id,
            status=IncidentStatus.DRAFT,
            origin="halt",
            trigger=_trigger(trigger),
            protocol_id=cause.protocol,
            by=require_person(by),
            details={},
        )

    def open(
        self,
        session_id: str,
        *,
        by: str,
        details: Mapping[str, object],
        trigger_seq: int | None = None,
    ) -> Incident:
        """An incident documented at once (noticed later, at a follow-up call, or by a
        clinician during the session), linked to a halt or alarm of the session if given."""
        info = resolve_session(self.log, session_id)
        who = require_person(by)
        checked = self._checked_details(details, require_all=True)
        trigger = None
        if trigger_seq is not None:
            found = [
                e
                for e in self.log.events(info.session_id, ["trip", "warning"])
                if e.seq == trigger_seq
            ]
            if not found:
                raise IncidentInputError(
                    f"session {info.session_id[:8]} has no halt or alarm at seq {trigger_seq}"
                )
            trigger = _trigger(found[0])
        incident = self._open(
            info.session_id,
            info.patient_id,
            status=IncidentStatus.DOCUMENTED,
            origin="manual",
            trigger=trigger,
            protocol_id=str(checked["type"]),
            by=who,
            details=checked,
        )
        self._documented(incident, who)
        return incident

    def _open(
        self,
        session_id: str,
        patient_id: str,
        *,
        status: IncidentStatus,
        origin: str,
        trigger: dict[str, Any] | None,
        protocol_id: str,
        by: str,
        details: dict[str, Any],
    ) -> Incident:
        incident_id = new_id()
        payload: dict[str, Any] = {
            "incident_id": incident_id,
            "session_id": session_id,
            "patient_id": patient_id,
            "status": str(status),
            "origin": origin,
            "trigger": trigger,
            "protocol": self.book.reference(protocol_id),
            "by": by,
            "details": details,
        }
        self.log.append_record(
            stream_id("incident", incident_id),
            IncidentKind.OPENED,
            payload,
            t_wall=self.clock(),
            expect_last_seq=0,
        )
        return self.get(incident_id, verified=False)

    # --- changing -----------------------------------------------------------------------

    def complete(self, incident_id: str, *, by: str, details: Mapping[str, object]) -> Incident:
        """A draft's details, from the clinician: it is DOCUMENTED from now on."""
        incident = self.get(incident_id)
        who = require_person(by)
        if incident.status is not IncidentStatus.DRAFT:
            raise IncidentRefused(
                f"incident {incident.incident_id[:8]} is {incident.status}, not a draft: "
                "correct it with amend"
            )
        checked = self._checked_details(details, require_all=True)
        done = self._append(incident, IncidentKind.COMPLETED, {"by": who, "details": checked})
        self._documented(done, who)
        return done

    def amend(
        self, incident_id: str, *, by: str, why: str, changes: Mapping[str, object]
    ) -> Incident:
        """A correction: a new entry with who, when, why and each value before and after."""
        incident = self.get(incident_id)
        who = require_person(by)
        if not why.strip():
            raise IncidentInputError("a correction needs its reason (why)")
        if incident.status is IncidentStatus.DRAFT:
            raise IncidentRefused(
                f"incident {incident.incident_id[:8]} is a draft: complete it (or close it as "
                "no injury) before correcting it"
            )
        checked = self._checked_details(changes, require_all=False)
        if not checked:
            raise IncidentInputError(f"nothing to correct: give one of {', '.join(DETAIL_FIELDS)}")
        diff = {
            k: {"from": incident.details.get(k), "to": v}
            for k, v in checked.items()
            if incident.details.get(k) != v
        }
        if not diff:
            raise IncidentRefused("the correction changes nothing: every value is as recorded")
        return self._append(
            incident, IncidentKind.AMENDED, {"by": who, "why": why.strip(), "changes": diff}
        )

    def close(self, incident_id: str, *, by: str, outcome: str, reason: str) -> Incident:
        """A draft closes only as ``no_injury``; a documented incident as resolved or referred."""
        incident = self.get(incident_id)
        who = require_person(by)
        try:
            how = CloseOutcome(outcome)
        except ValueError:
            raise IncidentInputError(
                f"outcome {outcome!r} is not one of {', '.join(o.value for o in CloseOutcome)}"
            ) from None
        if not reason.strip():
            raise IncidentInputError("closing an incident needs a reason")
        if incident.status is IncidentStatus.CLOSED:
            raise IncidentRefused(f"incident {incident.incident_id[:8]} is closed already")
        if incident.status is IncidentStatus.DRAFT and how is not CloseOutcome.NO_INJURY:
            raise IncidentRefused(
                f"incident {incident.incident_id[:8]} is a draft: close it as no_injury, or "
                "complete it with its details"
            )
        if incident.status is IncidentStatus.DOCUMENTED and how is CloseOutcome.NO_INJURY:
            raise IncidentRefused(
                f"incident {incident.incident_id[:8]} documents an injury: close it as "
                "resolved or referred, or correct its details with amend"
            )
        payload = {"by": who, "outcome": str(how), "reason": reason.strip()}
        return self._append(incident, IncidentKind.CLOSED, payload)

    def tick(self, incident_id: str, step: int, *, by: str, note: str = "") -> Incident:
        """One immediate step of the incident's protocol done, by whom, now."""
        incident = self.get(incident_id, verified=False)
        who = require_person(by)
        if incident.protocol is None:
            raise IncidentRefused(f"incident {incident.incident_id[:8]} has no protocol")
        if incident.status is IncidentStatus.CLOSED:
            raise IncidentRefused(f"incident {incident.incident_id[:8]} is closed")
        steps = self.book.protocol(str(incident.protocol["id"])).immediate_steps
        if not 1 <= step <= len(steps):
            raise IncidentInputError(
                f"the protocol {incident.protocol['id']} has steps 1 to {len(steps)}, not {step}"
            )
        if any(t.step == step for t in incident.ticks):
            raise IncidentRefused(f"step {step} is ticked already")
        payload = {
            "by": who,
            "step": step,
            "text": steps[step - 1],
            "protocol_id": incident.protocol["id"],
            "note": note.strip(),
        }
        return self._append(incident, IncidentKind.STEP_DONE, payload)

    def attach(self, incident_id: str, path: str, *, by: str, caption: str = "") -> Incident:
        """A photo, judged by its bytes, stored by content hash, then named in the chain."""
        incident = self.get(incident_id, verified=False)
        who = require_person(by)
        photo, data = self.photos.read_checked(path)  # refused before anything is written
        self.photos.put(photo, data)
        payload = {
            "by": who,
            "sha256": photo.sha256,
            "media_type": photo.media_type,
            "bytes": photo.n_bytes,
            "caption": caption.strip(),
        }
        return self._append(incident, IncidentKind.PHOTO, payload)

    # --- helpers ------------------------------------------------------------------------

    def _append(self, incident: Incident, kind: IncidentKind, payload: dict[str, Any]) -> Incident:
        self.log.append_record(
            incident.stream,
            kind,
            payload,
            t_wall=self.clock(),
            expect_last_seq=incident.last_seq,
        )
        return self.get(incident.incident_id, verified=False)

    def _documented(self, incident: Incident, by: str) -> None:
        for hook in self.on_documented:
            hook(incident, by)

    def _checked_details(self, given: Mapping[str, object], *, require_all: bool) -> dict[str, Any]:
        unknown = sorted(set(given) - set(DETAIL_FIELDS))
        if unknown:
            raise IncidentInputError(
                f"unknown incident fields {unknown}: the fields are {', '.join(DETAIL_FIELDS)}"
            )
        if require_all:
            missing = [k for k in DETAIL_FIELDS if given.get(k) in (None, "")]
            if missing:
                raise IncidentInputError(f"an incident's details need {', '.join(missing)}")
        out: dict[str, Any] = {}
        for name, value in given.items():
            if value is None:
                continue
            out[name] = self._checked_field(name, value)
        return out

    def _checked_field(self, name: str, value: object) -> object:
        if name == "type":
            known = [p.id for p in self.book.book.protocols]
            if value not in known:
                raise IncidentInputError(
                    f"type {value!r} is not a complication: {', '.join(known)}"
                )
            return value
        if name == "severity":
            scale = self.book.book.severity_scale
            try:
                grade = int(str(value))
            except ValueError:
                grade = -1
            if grade not in [g.grade for g in scale]:
                words = ", ".join(f"{g.grade} {g.name}" for g in scale)
                raise IncidentInputError(f"severity {value!r} is not a grade of the scale: {words}")
            return grade
        if name == "noticed_at":
            t = value if isinstance(value, float | int) else parse_when(str(value), "noticed_at")
            t = float(t)
            if not math.isfinite(t) or t > self.clock() + _FUTURE_SLACK_S:
                raise IncidentInputError(f"noticed_at {iso(t)} is in the future")
            return iso(t)
        text = str(value).strip()
        if not text:
            raise IncidentInputError(f"{name} is empty")
        return text


def _trigger(e: Event) -> dict[str, Any]:
    p = e.payload
    return {
        "seq": e.seq,
        "hash": e.hash,
        "kind": e.kind,
        "check": p.get("check"),
        "reason": p.get("reason"),
        "t_s": p.get("t_s"),
        "at": iso(e.t_wall),
    }
