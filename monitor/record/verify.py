"""Verifying a session log: the file's own integrity, the hash chain, every telemetry batch.

Three layers, because each catches what the others cannot:

1. ``PRAGMA integrity_check``: SQLite's own check of every page, and of every index against
   its table. One flipped byte in an index makes reads through that index return part of a
   session while the chain (read by ``seq``) still links; only this check sees it.
2. The chain, read by ``seq`` (the rowid: the table itself, no index): every event's hash
   and its link to the one before.
3. Every chained ``telemetry_batch`` recounted and re-hashed from the telemetry table itself
   (``NOT INDEXED``): all its rows, in order, with the digest the chain vouches for; and no
   row that no batch vouches for.

``walk_span`` is also how ``sessions show`` and ``plot`` read a session: they display what
was walked and checked, never what an index returned.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.record.chain import GENESIS_HASH, event_hash, telemetry_digest

__all__ = ["Event", "SessionData", "VerifyResult", "integrity_problems", "walk_span"]

KIND_TELEMETRY = "telemetry_batch"
_MAX_REPORTED = 3


@dataclass(frozen=True)
class Event:
    seq: int
    session_id: str
    t_wall: float
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    n_events: int
    n_telemetry_rows: int
    first_bad_seq: int | None
    reason: str
    damaged: bool = False  # the file itself is damaged (SQLite pages or indexes)


@dataclass
class SessionData:
    """One session's events and telemetry, as walked along the chain."""

    events: list[Event] = field(default_factory=list)
    t_s: list[npt.NDArray[np.float64]] = field(default_factory=list)
    channel: list[npt.NDArray[np.int32]] = field(default_factory=list)
    value: list[npt.NDArray[np.float64]] = field(default_factory=list)

    def telemetry(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        if not self.t_s:
            return np.empty(0), np.empty(0, np.int32), np.empty(0)
        return np.concatenate(self.t_s), np.concatenate(self.channel), np.concatenate(self.value)


def damaged_result(reason: str) -> VerifyResult:
    return VerifyResult(False, 0, 0, None, f"the database file is damaged: {reason}", True)


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong with the file; empty when it is sound."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(100)").fetchall()]
    return [] if rows == ["ok"] else rows


def integrity_reason(problems: list[str]) -> str:
    more = len(problems) - _MAX_REPORTED
    text = "; ".join(p.strip() for p in problems[:_MAX_REPORTED])
    return text + (f" (and {more} more)" if more > 0 else "")


def rows_to_arrays(
    rows: list[Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """(t_s, channel, value) from rows whose last three fields are those; NULL is NaN."""
    n = len(rows)
    t_arr = np.fromiter((r[-3] for r in rows), dtype=np.float64, count=n)
    ch_arr = np.fromiter((r[-2] for r in rows), dtype=np.int32, count=n)
    v_arr = np.fromiter((np.nan if r[-1] is None else r[-1] for r in rows), np.float64, count=n)
    return t_arr, ch_arr, v_arr


def walk_span(
    conn: sqlite3.Connection,
    lo: int,
    hi: int | None,
    target: str | None,
    *,
    rows_carry_session: bool,
    collect: bool = False,
) -> tuple[VerifyResult, SessionData]:
    """Check the chain from ``lo`` to ``hi`` (None: to the head) and its telemetry batches.

    Counts, and with ``collect`` gathers, the events and telemetry rows of ``target`` (every
    session if None). ``rows_carry_session``: the file's telemetry rows name their session
    (the first file format), which must then match their batch's.
    """
    data = SessionData()
    n_events = 0
    problems: list[tuple[int, str]] = []
    if lo > 1:
        before = conn.execute("SELECT hash FROM events WHERE seq = ?", (lo - 1,)).fetchone()
        if before is None:
            problems.append((lo - 1, f"event seq {lo - 1} is missing (deleted?)"))
        expected_prev: str | None = None if before is None else str(before[0])
    else:
        expected_prev = GENESIS_HASH
    expected_seq = lo
    hi_seq = hi if hi is not None else 2**62
    rows = conn.execute(
        "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
        " WHERE seq >= ? AND seq <= ? ORDER BY seq",
        (lo, hi_seq),
    )
    batches: dict[int, tuple[str, dict[str, Any]]] = {}
    for seq, sid, t_wall, kind, text, prev_hash, stored_hash in rows:
        mine = target is None or sid == target
        if mine:
            n_events += 1
        if seq != expected_seq:
            problems.append((expected_seq, f"events seq {expected_seq}..{seq - 1} are missing"))
            expected_prev = None  # the link across a gap cannot be checked
        if expected_prev is not None and prev_hash != expected_prev:
            problems.append((seq, f"event seq {seq} does not link to the event before it"))
        try:
            payload = json.loads(text)
            computed = event_hash(prev_hash, seq, sid, float(t_wall), kind, payload)
        except (ValueError, TypeError) as e:
            problems.append((seq, f"event seq {seq} is unreadable: {e}"))
        else:
            if computed != stored_hash:
                problems.append((seq, f"event seq {seq} ({kind}) content does not match its hash"))
            if kind == KIND_TELEMETRY:
                batches[seq] = (sid, payload)
            if mine and collect:
                data.events.append(
                    Event(int(seq), sid, float(t_wall), kind, payload, prev_hash, stored_hash)
                )
        expected_prev = stored_hash
        expected_seq = seq + 1
        if problems:
            break  # everything after the first break is reported by its seq only

    n_rows = _check_telemetry(
        conn, lo, hi_seq, target, batches, problems, data if collect else None, rows_carry_session
    )
    if problems:
        seq, reason = min(problems)
        return VerifyResult(False, n_events, n_rows, seq, reason), data
    return VerifyResult(True, n_events, n_rows, None, "chain intact"), data


def _check_telemetry(
    conn: sqlite3.Connection,
    lo: int,
    hi_seq: int,
    target: str | None,
    batches: dict[int, tuple[str, dict[str, Any]]],
    problems: list[tuple[int, str]],
    data: SessionData | None,
    rows_carry_session: bool,
) -> int:
    """Recount and re-hash every batch from the table itself; returns the target's row count."""
    stop_at = problems[0][0] if problems else hi_seq + 1  # nothing after the first break
    extra = ", session_id" if rows_carry_session else ""
    # NOT INDEXED: never trust an index to say which rows exist. The current format is a
    # WITHOUT ROWID table whose primary key *is* the table, so this is still a range read.
    rows = conn.execute(
        f"SELECT batch_seq, idx{extra}, t_s, channel, value FROM telemetry NOT INDEXED"
        " WHERE batch_seq >= ? AND batch_seq <= ? ORDER BY batch_seq, idx",
        (lo, hi_seq),
    )
    n_rows = 0
    found: set[int] = set()
    for batch_seq, group in itertools.groupby(rows, key=lambda r: int(r[0])):
        if batch_seq >= stop_at:
            break
        batch = list(group)
        found.add(batch_seq)
        vouched = batches.get(batch_seq)
        if vouched is None:
            problems.append((batch_seq, f"telemetry rows at batch {batch_seq} have no batch event"))
            continue
        sid, payload = vouched
        t_arr, ch_arr, v_arr = rows_to_arrays(batch)
        in_order = all(int(r[1]) == i for i, r in enumerate(batch))
        same_session = not rows_carry_session or all(r[2] == sid for r in batch)
        if len(batch) != payload.get("n") or not in_order or not same_session:
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: rows added or removed")
            )
        elif telemetry_digest(t_arr, ch_arr, v_arr) != payload.get("sha256"):
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: rows do not match digest")
            )
        if target is None or sid == target:
            n_rows += len(batch)
            if data is not None:
                data.t_s.append(t_arr)
                data.channel.append(ch_arr)
                data.value.append(v_arr)
    for batch_seq, (_, payload) in batches.items():
        if batch_seq not in found and batch_seq < stop_at:
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: all {payload.get('n')} rows gone")
            )
    return n_rows
