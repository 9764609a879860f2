"""Reports in the console: the session report (the same printable HTML as ``laserguard report
session``, or its data as JSON) and the clinic summary over a period (``laserguard report
clinic``: a printable page, CSV or JSON). Read-only; anyone who reads records may open them.

A session whose chain fails verification gets no report (409), as on the command line.
"""

from __future__ import annotations

import json
from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.sheets import Which, given_note
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.reports.clinic_summary import build_clinic_summary
from monitor.reports.session_report import build_session_report
from monitor.service.api_incidents import clinic, when_of
from monitor.service.deps import Principal, ServiceState, get_state, need
from monitor.service.roles import Permission

__all__ = ["router"]

router = APIRouter(prefix="/api/reports", tags=["reports"])
State = Annotated[ServiceState, Depends(get_state)]
Reader = Annotated[Principal, Depends(need(Permission.READ_RECORDS))]
Stamp = Annotated[str | None, Query(max_length=40)]


def _known_session(records: ClinicRecords, session_id: str) -> None:
    """404 for a session the log does not hold; a damaged log raises as it is (409)."""
    try:
        records.log.session(session_id)
    except SessionLogDamaged:
        raise
    except SessionLogError as e:
        raise HTTPException(404, str(e)) from e


@router.get(
    "/session/{session_id}",
    summary="The session report: printable HTML (format=json: its data)",
    response_class=HTMLResponse,
)
def session_report(
    session_id: str,
    who: Reader,
    st: State,
    format: Literal["html", "json"] = "html",
    as_of: Stamp = None,
) -> Response:
    at = when_of(as_of, "as_of")
    with clinic(st) as records:
        _known_session(records, session_id)
        report = build_session_report(records, session_id, as_of=at)
        if not report.verification.ok:
            raise HTTPException(
                409, f"session {session_id[:8]} fails verification: no report of a damaged record"
            )
        if format == "json":
            return Response(json.dumps(report.as_dict()), media_type="application/json")
        return HTMLResponse(report.html())


@router.get(
    "/session/{session_id}/sheet/{which}",
    summary="A session's patient information sheet (before or after treatment), printable",
    response_class=HTMLResponse,
)
def patient_sheet(
    session_id: str, which: Literal["before", "after"], who: Reader, st: State
) -> HTMLResponse:
    """Rebuilt from the session's verified record and the sheets' file, as ``laserguard report
    sheet`` does; the staff's note above it (not printed) says whether it is the text the log
    records as given, to whom and by whom."""
    with clinic(st) as records:
        _known_session(records, session_id)
        sheet, given = records.sheet(session_id, Which(which))
    note = given_note(sheet, given)
    banner = (
        '<p class="staff-note" style="background:#eef;padding:.4em">'
        f"For staff, not printed: {escape(note)}.</p>"
        "<style>@media print{.staff-note{display:none}}</style>"
    )
    html = sheet.html.replace("</head><body>", f"</head><body>\n{banner}", 1)
    return HTMLResponse(html, headers={"X-Sheet-Given": "yes" if given else "no"})


@router.get(
    "/clinic",
    summary="The clinic summary over [from, to): printable page, CSV or JSON",
    response_class=HTMLResponse,
)
def clinic_summary(
    who: Reader,
    st: State,
    t_from: Annotated[str, Query(alias="from", max_length=40)],
    t_to: Annotated[str, Query(alias="to", max_length=40)],
    format: Literal["html", "csv", "json"] = "html",
    as_of: Stamp = None,
) -> Response:
    start, end, at = when_of(t_from, "from"), when_of(t_to, "to"), when_of(as_of, "as_of")
    assert start is not None and end is not None
    if end <= start:
        raise HTTPException(422, f"to {t_to} is not after from {t_from}")
    with clinic(st) as records:
        summary = build_clinic_summary(records, start, end, as_of=at)
    if format == "json":
        return Response(summary.json(), media_type="application/json")
    if format == "csv":
        return PlainTextResponse(
            summary.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="clinic-summary.csv"'},
        )
    return HTMLResponse(_page(f"Clinic summary {t_from} to {t_to}", summary.text()))


def _page(title: str, text: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;"
        "margin:2em}} pre{{font-size:14px;line-height:1.4}}"
        "@media print{{button{{display:none}}}}</style></head><body>"
        f"<h1>{escape(title)}</h1><pre>{escape(text)}</pre>"
        "<button onclick='window.print()'>Print</button></body></html>"
    )
