"""The clinic's records of complications in the console: the emergency protocols, incidents
(draft, documented, closed, with their history), the protocol's checklist, photos, and
follow-ups. The same functions as ``laserguard incident`` and ``laserguard followup``
(``monitor.incidents``), over the same session log.

Who may do what (``roles.py``): the operator and the clinician record (tick a checklist, open
an incident, attach a photo, schedule a follow-up and record its outcome); only the clinician
signs off (completes a draft, corrects, closes); the auditor reads. Every entry is appended
to the log's chain with the signed-in user as ``by`` and the time; nothing is overwritten.

Refusals: 404 an unknown session, incident or follow-up; 409 the record's state does not
allow it (a step ticked twice, a draft closed as resolved) or someone changed the record
meanwhile; 413 a photo over the size limit; 415 a photo that is no whole PNG or JPEG (judged
by its bytes); 422 a malformed body or a value the record does not take (a grade off the
scale, a follow-up whose window has closed). A refused request stores nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.followups import FollowUp
from monitor.incidents.incidents import Incident, IncidentStatus
from monitor.incidents.photos import Photo, PhotoStore, sniff
from monitor.incidents.protocols import Book, load_book
from monitor.incidents.streams import parse_when, resolve_session
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.sqlite_store import SessionLog
from monitor.service.deps import Principal, ServiceState, get_state, need
from monitor.service.models import (
    AmendBody,
    CloseBody,
    CompleteBody,
    FollowUpBody,
    FollowUpOutcomeBody,
    OpenIncidentBody,
    TickBody,
)
from monitor.service.roles import Permission

__all__ = ["clinic", "photo_upload_path", "router", "when_of"]

router = APIRouter(prefix="/api", tags=["incidents"])
State = Annotated[ServiceState, Depends(get_state)]
Viewer = Annotated[Principal, Depends(need(Permission.VIEW))]
Reader = Annotated[Principal, Depends(need(Permission.READ_RECORDS))]
Recorder = Annotated[Principal, Depends(need(Permission.RECORD_INCIDENTS))]
SignOff = Annotated[Principal, Depends(need(Permission.SIGN_OFF_INCIDENTS))]
Format = Literal["json", "csv"]


def photo_upload_path(path: str) -> bool:
    """Whether a request path is a photo upload (its body may be a whole photo)."""
    parts = path.strip("/").split("/")
    return len(parts) == 4 and parts[:2] == ["api", "incidents"] and parts[3] == "photos"


@cache
def _book() -> Book:
    return load_book()


@contextmanager
def clinic(st: ServiceState, *, write: bool = False) -> Iterator[ClinicRecords]:
    """The clinic's records over the session log, each request on a connection of its own;
    every back-end refusal becomes its 4xx here."""
    if not st.db_path.is_file():
        raise HTTPException(404, "the session log is empty: no session has been recorded yet")
    try:
        with SessionLog(st.db_path, read_only=not write) as log:
            yield ClinicRecords.over(
                log, photos=PhotoStore.beside(st.db_path), book=_book(), clock=st.clock
            )
    except IncidentRefused as e:
        raise HTTPException(409, str(e)) from e
    except IncidentInputError as e:
        raise HTTPException(422, str(e)) from e
    except SessionLogDamaged as e:
        raise HTTPException(409, f"the session log fails verification: {e}") from e
    except SessionLogError as e:  # someone changed the record meanwhile, or the log is locked
        raise HTTPException(409, str(e)) from e


def _incident(records: ClinicRecords, incident_id: str) -> Incident:
    try:
        return records.incidents.get(incident_id)
    except IncidentInputError as e:
        raise HTTPException(404, str(e)) from e


def _followup(records: ClinicRecords, followup_id: str) -> FollowUp:
    try:
        return records.followups.get(followup_id)
    except IncidentInputError as e:
        raise HTTPException(404, str(e)) from e


def _session(records: ClinicRecords, session_id: str) -> str:
    try:
        return resolve_session(records.log, session_id).session_id
    except IncidentInputError as e:
        raise HTTPException(404, str(e)) from e


def when_of(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_when(text, what)
    except IncidentInputError as e:
        raise HTTPException(422, str(e)) from e


def table(rows: list[dict[str, Any]], fmt: Format, name: str) -> Response | list[dict[str, Any]]:
    """A list as JSON, or as a CSV download (nested values as JSON in their cell)."""
    if fmt == "json":
        return rows
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    return PlainTextResponse(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _cell(v: object) -> object:
    return json.dumps(v) if isinstance(v, dict | list) else v


def _row(i: Incident) -> dict[str, Any]:
    return {
        "incident_id": i.incident_id,
        "session_id": i.session_id,
        "patient_id": i.patient_id,
        "status": str(i.status),
        "origin": i.origin,
        "protocol": None if i.protocol is None else i.protocol.get("id"),
        "trigger": None if i.trigger is None else i.trigger.get("check"),
        "opened_by": i.opened_by,
        **{k: i.details.get(k) for k in ("type", "severity", "body_site")},
        "steps_ticked": len(i.ticks),
        "photos": len(i.photos),
        "amended": i.amended,
        "closure": None if i.closure is None else i.closure.get("outcome"),
    }


# --- protocols ------------------------------------------------------------------------------


@router.get("/protocols", summary="The emergency protocols, the halt causes they answer, grades")
def protocols(who: Viewer) -> dict[str, Any]:
    book = _book()
    return {
        "version": book.version,
        "sha256": book.digest,
        "protocols": [p.model_dump(mode="json") for p in book.book.protocols],
        "halt_causes": {k: v.model_dump(mode="json") for k, v in book.book.halt_causes.items()},
        "severity_scale": [g.model_dump(mode="json") for g in book.book.severity_scale],
        "severity_source": book.book.severity_source,
    }


# --- incidents ------------------------------------------------------------------------------


@router.get("/incidents", summary="Incidents, oldest first (a session's, or by status)")
def list_incidents(
    who: Reader,
    st: State,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    status: IncidentStatus | None = None,
    format: Format = "json",
) -> Any:
    if not st.db_path.is_file():
        return table([], format, "incidents")
    with clinic(st) as records:
        sid = None if session_id is None else _session(records, session_id)
        found = records.incidents.select(session_id=sid, status=status)
        rows = [_row(i) for i in found] if format == "csv" else [i.as_dict() for i in found]
    return table(rows, format, "incidents")


@router.post("/incidents", status_code=201, summary="Document an incident of a session")
def open_incident(body: OpenIncidentBody, who: Recorder, st: State) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        sid = _session(records, body.session_id)
        incident = records.incidents.open(
            sid, by=who.name, details=body.details.given(), trigger_seq=body.trigger_seq
        )
        return incident.as_dict()


@router.get("/incidents/{incident_id}", summary="One incident, its checklist and its history")
def show_incident(incident_id: str, who: Reader, st: State) -> dict[str, Any]:
    with clinic(st) as records:
        incident = _incident(records, incident_id)
        out = incident.as_dict()
        out["photo_problems"] = [
            p for a in incident.photos if (p := records.incidents.photos.check(a.photo))
        ]
        if incident.protocol is not None:
            protocol = records.book.protocol(str(incident.protocol["id"]))
            out["checklist"] = list(protocol.immediate_steps)
        out["followups"] = [
            f.as_dict(st.clock()) for f in records.followups.select(incident_id=incident_id)
        ]
        return out


@router.post("/incidents/{incident_id}/ticks", summary="One step of its protocol done, now")
def tick(incident_id: str, body: TickBody, who: Recorder, st: State) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _incident(records, incident_id).incident_id
        return records.incidents.tick(full, body.step, by=who.name, note=body.note).as_dict()


@router.post("/incidents/{incident_id}/complete", summary="A draft's details (a clinician)")
def complete(incident_id: str, body: CompleteBody, who: SignOff, st: State) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _incident(records, incident_id).incident_id
        done = records.incidents.complete(full, by=who.name, details=body.given())
        return done.as_dict()


@router.post("/incidents/{incident_id}/amend", summary="A correction: a new entry, who/when/why")
def amend(incident_id: str, body: AmendBody, who: SignOff, st: State) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _incident(records, incident_id).incident_id
        changes = body.changes.given()
        return records.incidents.amend(full, by=who.name, why=body.why, changes=changes).as_dict()


@router.post("/incidents/{incident_id}/close", summary="Close: a draft as no_injury (a clinician)")
def close(incident_id: str, body: CloseBody, who: SignOff, st: State) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _incident(records, incident_id).incident_id
        closed = records.incidents.close(
            full, by=who.name, outcome=str(body.outcome), reason=body.reason
        )
        return closed.as_dict()


@router.post(
    "/incidents/{incident_id}/photos",
    status_code=201,
    summary="Attach a photo: the request body is the PNG or JPEG itself",
    openapi_extra={
        "requestBody": {
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def attach_photo(
    incident_id: str,
    request: Request,
    who: Recorder,
    st: State,
    caption: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    data = await request.body()
    store = PhotoStore.beside(st.db_path)
    if len(data) > store.max_bytes:
        raise HTTPException(
            413, f"the photo is over the {store.max_bytes / 1e6:.0f} MB limit for a photo"
        )
    if not data:
        raise HTTPException(415, "the request body is empty: send the PNG or JPEG itself")
    try:
        sniff(data, "the upload")
    except IncidentInputError as e:
        raise HTTPException(415, str(e)) from e
    # The log and the photo folder are written off the event loop.
    return await run_in_threadpool(_attach, st, incident_id, data, who.name, caption)


def _attach(
    st: ServiceState, incident_id: str, data: bytes, by: str, caption: str
) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _incident(records, incident_id).incident_id
        fd, tmp = tempfile.mkstemp(prefix="laserguard-upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            done = records.incidents.attach(full, tmp, by=by, caption=caption)
        finally:
            os.unlink(tmp)
        return done.as_dict()


@router.get("/incidents/{incident_id}/photos/{sha256}", summary="A photo, as stored")
def photo(incident_id: str, sha256: str, who: Reader, st: State) -> Response:
    with clinic(st) as records:
        incident = _incident(records, incident_id)
        found: Photo | None = next(
            (a.photo for a in incident.photos if a.photo.sha256 == sha256), None
        )
        if found is None:
            raise HTTPException(404, f"incident {incident.incident_id[:8]} has no such photo")
        problem = records.incidents.photos.check(found)
        if problem is not None:
            raise HTTPException(409, problem)
        data = records.incidents.photos.path_of(found).read_bytes()
    return Response(data, media_type=found.media_type)


# --- follow-ups -----------------------------------------------------------------------------


@router.get("/followups", summary="Follow-ups by due date; due=true: only due and overdue")
def list_followups(
    who: Reader,
    st: State,
    due: bool = False,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    format: Format = "json",
) -> Any:
    now = when_of(as_of, "as_of")
    if not st.db_path.is_file():
        return table([], format, "followups")
    with clinic(st) as records:
        at = st.clock() if now is None else now
        if due:
            found = records.followups.due(at)
        else:
            sid = None if session_id is None else _session(records, session_id)
            found = records.followups.select(session_id=sid)
        rows = [f.as_dict(at) for f in found]
    return table(rows, format, "followups")


@router.post("/followups", status_code=201, summary="Schedule a follow-up (not in the past)")
def schedule(body: FollowUpBody, who: Recorder, st: State) -> dict[str, Any]:
    due_by = when_of(body.due_by, "due_by")
    due_from = when_of(body.due_from, "due_from")
    assert due_by is not None
    with clinic(st, write=True) as records:
        sid = _session(records, body.session_id)
        incident = None
        if body.incident_id is not None:
            incident = _incident(records, body.incident_id)
            if incident.session_id != sid:
                raise HTTPException(
                    422, f"incident {incident.incident_id[:8]} is not of session {sid[:8]}"
                )
        planned = records.followups.schedule(
            sid,
            due_by=due_by,
            due_from=due_from,
            by=who.name,
            method=body.method,
            reason=body.reason,
            incident_id=None if incident is None else incident.incident_id,
        )
        return planned.as_dict(st.clock())


@router.post("/followups/{followup_id}/outcome", summary="The follow-up's outcome: it is done")
def outcome(
    followup_id: str, body: FollowUpOutcomeBody, who: Recorder, st: State
) -> dict[str, Any]:
    with clinic(st, write=True) as records:
        full = _followup(records, followup_id).followup_id
        done = records.followups.record(
            full, outcome=str(body.outcome), by=who.name, note=body.note
        )
        return done.as_dict(st.clock())
