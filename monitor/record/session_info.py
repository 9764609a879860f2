"""A session as a report reads it: ``SessionInfo`` (its summary) and ``SessionRecord`` (all of it).

A session's summary comes from its own chained events (its start and its end), never from a
separate table: built from what the lookups list (``info_from_row``) or from what was walked
along the verified chain (``info_from_events``), and ``read_verified`` checks the two agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.record.chain import KIND_END
from monitor.record.channels import ChannelMap
from monitor.record.store import SessionRow, StoredEvent
from monitor.record.verify import Event

__all__ = ["SessionInfo", "SessionRecord", "info_from_events", "info_from_row"]


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    started_at: float
    ended_at: float | None
    operator: str
    patient_id: str
    skin_type: str
    profile_name: str
    profile_digest: str
    mode: str
    n_events: int
    end_reason: str | None


@dataclass(frozen=True)
class SessionRecord:
    """One whole session, read along the verified chain (``ChainLog.read_verified``).

    ``channels`` labels the ``channel`` codes: the session's own map, or the legacy map
    (``channels.legacy``) for a session that recorded none.
    """

    info: SessionInfo
    events: list[Event]
    t_s: npt.NDArray[np.float64]
    channel: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
    channels: ChannelMap


def info_from_row(row: SessionRow) -> SessionInfo:
    start = json.loads(row.start.payload_text)
    end_reason = None if row.end is None else str(json.loads(row.end.payload_text).get("reason"))
    return _info(row.start.session_id, row.start.t_wall, start, row.end, row.n_events, end_reason)


def info_from_events(events: list[Event]) -> SessionInfo:
    """A session's summary from its own events (what the chain says, not a lookup)."""
    end = next((e for e in events if e.kind == KIND_END), None)
    end_reason = None if end is None else str(end.payload.get("reason"))
    first = events[0]
    return _info(first.session_id, first.t_wall, first.payload, end, len(events), end_reason)


def _info(
    session_id: str,
    started_at: float,
    start: dict[str, Any],
    end: StoredEvent | Event | None,
    n_events: int,
    end_reason: str | None,
) -> SessionInfo:
    return SessionInfo(
        session_id=session_id,
        started_at=float(started_at),
        ended_at=None if end is None else float(end.t_wall),
        operator=str(start.get("operator", "")),
        patient_id=str(start.get("patient_id", "")),
        skin_type=str(start.get("skin_type", "")),
        profile_name=str(start.get("profile_name", "")),
        profile_digest=str(start.get("profile_digest", "")),
        mode=str(start.get("mode", "")),
        n_events=int(n_events),
        end_reason=end_reason,
    )
