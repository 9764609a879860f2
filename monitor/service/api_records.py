"""Past sessions, read-only from the session store: the list, one session, its aftercare sheet.

The store is opened read-only for each request (``SessionLog(read_only=True)``): reviewing a
log never changes it, and a session shown is one read along its verified chain (a damaged log
is refused with 409, never shown in part).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.sqlite_store import SessionLog
from monitor.service.aftercare import aftercare_html
from monitor.service.deps import Principal, ServiceState, get_state, need
from monitor.service.roles import Permission

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["records"])
State = Annotated[ServiceState, Depends(get_state)]
Reader = Annotated[Principal, Depends(need(Permission.READ_RECORDS))]
MAX_EVENTS = 2000


def _open(st: ServiceState) -> SessionLog | None:
    if not st.db_path.is_file():
        return None
    try:
        return SessionLog(st.db_path, read_only=True)
    except SessionLogError as e:
        raise HTTPException(409, f"the session log cannot be read: {e}") from e


def _read(st: ServiceState, session_id: str) -> Any:
    log = _open(st)
    if log is None:
        raise HTTPException(404, f"no session {session_id!r}: the session log is empty")
    try:
        with log:
            return log.read_verified(session_id)
    except SessionLogDamaged as e:
        raise HTTPException(409, f"the session log fails verification: {e}") from e
    except SessionLogError as e:
        raise HTTPException(404, str(e)) from e


@router.get("", summary="Every session, newest first")
def list_sessions(who: Reader, st: State) -> list[dict[str, Any]]:
    log = _open(st)
    if log is None:
        return []
    try:
        with log:
            infos = log.sessions()
    except SessionLogError as e:
        raise HTTPException(409, f"the session log cannot be read: {e}") from e
    return [asdict(i) for i in infos]


@router.get("/{session_id}", summary="One session, read along its verified chain")
def show_session(
    session_id: str,
    who: Reader,
    st: State,
    kinds: Annotated[list[str] | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    record = _read(st, session_id)
    events = [e for e in record.events if kinds is None or e.kind in kinds]
    shown = events[-MAX_EVENTS:]
    return {
        "info": asdict(record.info),
        "verified": True,
        "events_total": len(events),
        "events": [
            {"seq": e.seq, "t_wall": e.t_wall, "kind": e.kind, "payload": e.payload} for e in shown
        ],
        "telemetry_rows": int(record.t_s.size),
    }


@router.get(
    "/{session_id}/aftercare",
    response_class=HTMLResponse,
    summary="The patient's aftercare sheet, printable, with the clinic's emergency contact",
)
def aftercare(session_id: str, who: Reader, st: State) -> HTMLResponse:
    record = _read(st, session_id)
    return HTMLResponse(aftercare_html(record))
