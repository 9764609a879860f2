"""The fleet view, read-only: every laser of the clinic chain and the clinic summary, from the
fleet store (``monitor.fleet.view``).

The console finds its fleet store in its configuration: ``app.state.fleet_dsn`` if set, else
``$LASERGUARD_FLEET_DSN`` (the libpq connection string ``laserguard fleet`` uses). Without
one, every route answers 404 in one sentence; a store that cannot be reached, or goes away
mid-read, answers 503 (try again). A store that cannot be read (a damaged chain) is 409. A
request never waits on the bridge: the fleet store is its own database, opened per request
on its own connection, read-only.

Who: ``read_fleet`` (clinician, auditor, administrator; ``roles.py`` says why not the
operator). The administrator sees no patient pseudonyms: it does not read patients' records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from monitor.fleet.errors import FleetError, FleetUnreachable
from monitor.fleet.view import FleetView
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.streams import parse_when
from monitor.record.errors import SessionLogError
from monitor.service.deps import Principal, need
from monitor.service.roles import Permission, allowed

__all__ = ["FLEET_DSN_ENV", "router"]

FLEET_DSN_ENV = "LASERGUARD_FLEET_DSN"
#: The longest period one summary request may ask for: a year and a leap day. Longer is
#: refused (422) rather than keep a console worker reading for minutes.
MAX_PERIOD_S = 366 * 86400.0
#: Seconds to wait for the database to answer a connection: a dead host is a 503 quickly.
CONNECT_TIMEOUT_S = 3

router = APIRouter(prefix="/api/fleet", tags=["fleet"])
FleetReader = Annotated[Principal, Depends(need(Permission.READ_FLEET))]
Clinic = Annotated[str | None, Query(min_length=1, max_length=200, description="one clinic")]
When = Annotated[
    str | None,
    Query(min_length=4, max_length=40, description="ISO 8601 date or time (default: now)"),
]


def fleet_dsn(request: Request) -> str | None:
    dsn = getattr(request.app.state, "fleet_dsn", None) or os.environ.get(FLEET_DSN_ENV)
    return str(dsn) if dsn else None


Dsn = Annotated[str | None, Depends(fleet_dsn)]


@contextmanager
def _view(dsn: str | None) -> Iterator[FleetView]:
    if not dsn:
        raise HTTPException(
            404,
            f"this console has no fleet store: set {FLEET_DSN_ENV} for the console service "
            "(docs/fleet.md)",
        )
    try:
        with FleetView(dsn, connect_timeout_s=CONNECT_TIMEOUT_S) as view:
            yield view
    except FleetUnreachable as e:
        raise HTTPException(
            503, f"the fleet store cannot be reached now, try again later ({e})"
        ) from e
    except FleetError as e:
        raise HTTPException(503, f"the fleet store cannot be read now ({e})") from e
    except (SessionLogError, IncidentInputError, IncidentRefused) as e:
        raise HTTPException(409, f"the fleet store holds a record that cannot be read: {e}") from e


def _when(text: str | None, what: str, default: float) -> float:
    if text is None:
        return default
    try:
        return parse_when(text, what)
    except IncidentInputError as e:
        raise HTTPException(422, str(e)) from e


def _redact(value: Any) -> Any:
    """The same answer without patient pseudonyms (for a role that reads no patient records)."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if k != "patient_id"}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _for(who: Principal, answer: dict[str, Any]) -> dict[str, Any]:
    return answer if allowed(who.role, Permission.READ_RECORDS) else _redact(answer)


@router.get(
    "/lasers", summary="Every laser of the fleet: last session, halts, calibration, follow-ups"
)
def lasers(who: FleetReader, dsn: Dsn, clinic: Clinic = None, as_of: When = None) -> dict[str, Any]:
    now = _when(as_of, "as_of", time.time())
    with _view(dsn) as view:
        found = view.lasers(now, clinic)
    return _for(
        who,
        {"as_of": now, "clinic": clinic, "lasers": [laser.as_dict() for laser in found]},
    )


@router.get("/clinics", summary="The clinics the fleet store holds lasers of")
def clinics(who: FleetReader, dsn: Dsn) -> dict[str, Any]:
    with _view(dsn) as view:
        return {"clinics": view.clinics()}


@router.get(
    "/summary",
    summary="The clinic summary over the fleet store for a period (from inclusive, to exclusive)",
    response_model=None,
)
def summary(
    who: FleetReader,
    dsn: Dsn,
    t_from: Annotated[str, Query(alias="from", min_length=4, max_length=40)],
    t_to: Annotated[str, Query(alias="to", min_length=4, max_length=40)],
    clinic: Clinic = None,
    as_of: When = None,
    mode: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    format: Literal["json", "csv"] = "json",  # the query's own word
) -> dict[str, Any] | Response:
    lo = _when(t_from, "from", 0.0)
    hi = _when(t_to, "to", 0.0)
    if hi <= lo:
        raise HTTPException(422, f"the period ends ({t_to}) before it starts ({t_from})")
    if hi - lo > MAX_PERIOD_S:
        raise HTTPException(422, "a summary covers at most 366 days: ask for a shorter period")
    now = _when(as_of, "as_of", time.time())
    with _view(dsn) as view:
        found = view.clinic_summary(lo, hi, as_of=now, clinic=clinic, mode=mode)
    if found is None:
        where = "any clinic" if clinic is None else f"clinic {clinic!r}"
        raise HTTPException(404, f"the fleet store holds no laser of {where}")
    if format == "csv":  # counts and follow-up ids: no patient pseudonyms
        return PlainTextResponse(found.csv(), media_type="text/csv")
    return _for(who, {**found.as_dict(), "clinic": clinic})
