"""Where clinic records live in the chain, and the small rules every one of them shares.

An incident and a follow-up are each a *record stream* of its own in the session log's one
chain (``ChainLog.append_record``): ``record:incident:<id>``, ``record:followup:<id>``. Not
the session's chain: a session is sealed at its ``session_end``, while an incident can be
noticed, corrected and followed up weeks later. Not a file of their own either: they name
sessions in this log, and one file is one thing to back up, verify and ship; ``laserguard
sessions verify`` walks the whole chain, records included.

Times are wall-clock seconds (``t_wall``) in the record and ISO 8601 in words. A time
written without a zone is taken in the machine's local zone (the clinic's).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from monitor.incidents.errors import IncidentInputError
from monitor.record.chain import RECORD_STREAM_PREFIX
from monitor.record.chain_log import ChainLog, SessionInfo
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.verify import Event

__all__ = [
    "Clock",
    "find_record",
    "iso",
    "new_id",
    "parse_when",
    "require_person",
    "resolve_session",
    "stream_id",
]

#: Wall-clock seconds now; injected so that tests control "now" (follow-ups fall due).
Clock = Callable[[], float]
DEFAULT_CLOCK: Clock = time.time


def new_id() -> str:
    return uuid.uuid4().hex


def stream_id(what: str, record_id: str) -> str:
    return f"{RECORD_STREAM_PREFIX}{what}:{record_id}"


def iso(t_wall: float | None) -> str:
    if t_wall is None:
        return "-"
    return (
        datetime.fromtimestamp(t_wall, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def parse_when(text: str, what: str) -> float:
    """Wall-clock seconds of an ISO 8601 date or date-time; a date alone is its midnight."""
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise IncidentInputError(
            f"{what} {text!r} is not a date or time (write 2026-05-01 or 2026-05-01T14:30)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # the clinic's local zone
    return stamp.timestamp()


def require_person(who: str, role: str = "who") -> str:
    name = who.strip()
    if not name:
        raise IncidentInputError(f"{role} must be named: a clinic record says who")
    return name


def resolve_session(log: ChainLog, session_id: str) -> SessionInfo:
    """A logged session by id or unique prefix; an unknown one is bad input."""
    if not session_id.strip() or session_id.startswith(RECORD_STREAM_PREFIX):
        raise IncidentInputError(f"{session_id!r} is not a session id")
    try:
        return log.session(session_id)
    except SessionLogDamaged:
        raise
    except SessionLogError as e:
        raise IncidentInputError(f"{e}: a clinic record belongs to a logged session") from e


def find_record(log: ChainLog, opened_kind: str, id_field: str, record_id: str, what: str) -> str:
    """The full id of the record whose id is ``record_id`` or starts with it."""
    text = record_id.strip()
    if not text:
        raise IncidentInputError(f"give the {what} id")
    ids = {str(e.payload.get(id_field)) for e in log.events_of_kind(opened_kind)}
    if text in ids:
        return text
    found = sorted(i for i in ids if i.startswith(text))
    if not found:
        raise IncidentInputError(f"no {what} matching {text!r} in this log")
    if len(found) > 1:
        raise IncidentInputError(
            f"{what} id {text!r} is ambiguous: {', '.join(i[:12] for i in found[:5])}"
        )
    return found[0]


def opened_events(log: ChainLog, opened_kind: str) -> list[Event]:
    """Every record of one kind, by its opening event, oldest first."""
    return list(reversed(log.events_of_kind(opened_kind)))
