"""Records chains read back: runs of records that are not treatment sessions.

A records chain (``ChainLog.start_records``) is a calibration run, an incident, anything a
clinic records apart from a patient's session: a ``records_start`` event naming its
``chain``, the records appended to it, a ``session_end``. It is part of the file's one hash
chain (``sessions verify`` checks it with everything else). This module lists them by chain
and reads one whole, verified, the way ``ChainLog.read_verified`` reads a session: what a
report shows was walked and re-hashed along the chain, and the lookups agree with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.record.chain import KIND_END, KIND_INTERRUPTED, KIND_RECORDS_START
from monitor.record.chain_log import INTERRUPTED_REASON, ChainLog
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.store import StoredEvent
from monitor.record.verify import Event, walk_span

__all__ = ["RecordsInfo", "find_records", "list_records", "read_verified_records"]


@dataclass(frozen=True)
class RecordsInfo:
    """One records chain as the lookups list it: its start, and how it ended (if it did)."""

    records_id: str
    chain: str
    started_at: float
    ended_at: float | None
    end_reason: str | None
    start: dict[str, Any]  # the records_start payload

    @property
    def interrupted(self) -> bool:
        """Its writer died before it ended (the next writer marked it)."""
        return self.end_reason == INTERRUPTED_REASON


def _payload(e: StoredEvent) -> dict[str, Any]:
    try:
        data: Any = json.loads(e.payload_text)
    except ValueError as err:
        raise SessionLogError(f"event seq {e.seq} holds an unreadable payload: {err}") from err
    if not isinstance(data, dict):
        raise SessionLogError(f"event seq {e.seq}: a payload is an object")
    return data


def _info(start: StoredEvent, end: StoredEvent | None) -> RecordsInfo:
    payload = _payload(start)
    reason = None if end is None else _payload(end).get("reason")
    return RecordsInfo(
        records_id=start.session_id,
        chain=str(payload.get("chain", "")),
        started_at=float(start.t_wall),
        ended_at=None if end is None else float(end.t_wall),
        end_reason=None if reason is None else str(reason),
        start=payload,
    )


def list_records(log: ChainLog, chain: str) -> list[RecordsInfo]:
    """Every records chain of kind ``chain`` in the log, newest first."""
    with log.store.reading() as r:
        out = []
        for start in r.events_of_kind(KIND_RECORDS_START):
            info = _info(start, r.latest(start.session_id, [KIND_END]))
            if info.chain == chain:
                out.append(info)
        return out


def find_records(log: ChainLog, chain: str, records_id: str) -> RecordsInfo:
    """One records chain of kind ``chain`` by its id or a unique prefix of it."""
    if not records_id:
        raise SessionLogError("empty id")
    found = [i for i in list_records(log, chain) if i.records_id.startswith(records_id)]
    exact = [i for i in found if i.records_id == records_id]
    if exact:
        return exact[0]
    if not found:
        raise SessionLogError(f"no {chain} record matching {records_id!r}")
    if len(found) > 1:
        ids = ", ".join(i.records_id[:12] for i in found[:5])
        raise SessionLogError(f"{chain} id {records_id!r} is ambiguous: {ids}")
    return found[0]


def read_verified_records(log: ChainLog, records_id: str) -> list[Event]:
    """All events of one records chain, read along its chain span and checked as read.

    Raises ``SessionLogDamaged`` if any of it fails verification, or if the lookups disagree
    with the rows about which events it has: a certificate is never shown from part of a run.
    """
    with log.store.reading() as r:
        span = r.span(records_id)
        if span is None:
            raise SessionLogError(f"no records {records_id!r} in this log")
        _, lo, hi = span
        result, data = walk_span(r, lo, hi, records_id, collect=True)
        if not result.ok:
            raise SessionLogDamaged(
                f"records {records_id[:8]} fail verification at seq {result.first_bad_seq}:"
                f" {result.reason}"
            )
        walked = [e.seq for e in data.events]
        if r.lookup_seqs(records_id) != walked:
            raise SessionLogDamaged(
                f"the session log {log.store.name} is damaged: its indexes disagree with its"
                f" tables about records {records_id[:8]} (run `laserguard sessions verify`)"
            )
    events = data.events
    if not events or events[0].kind != KIND_RECORDS_START:
        raise SessionLogError(f"{records_id[:8]} is not a records chain (a treatment session?)")
    return events


def interrupted_note(events: list[Event]) -> str | None:
    """Why a records chain has no proper end: its writer died (marked by the next writer)."""
    marked = next((e for e in events if e.kind == KIND_INTERRUPTED), None)
    return None if marked is None else str(marked.payload.get("reason", "interrupted"))
