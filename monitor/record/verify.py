"""Verifying a session log, on any store: its own integrity, the chain, every telemetry batch.

Three layers, because each catches what the others cannot:

1. The store's own check of itself (``StoreReader.integrity_problems``; for SQLite,
   ``PRAGMA integrity_check`` of every page and of every index against its table). One
   flipped byte in an index makes lookups return part of a session while the chain (read
   by ``seq`` from the rows themselves) still links; only this check sees it.
2. The chain, scanned by ``seq`` from the stored rows (no index): every event's hash and
   its link to the one before; every session's channel map readable.
3. Every chained ``telemetry_batch`` recounted and re-hashed from the stored rows
   themselves: all its rows, in order, with the digest the chain vouches for; no row that no
   batch vouches for; no channel that its session's map does not name.

``walk_span`` is also how ``sessions show`` and ``plot`` read a session: they display what
was walked and checked, never what a lookup returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from monitor.record.chain import (
    GENESIS_HASH,
    KIND_START,
    KIND_TELEMETRY,
    event_hash,
    telemetry_digest,
)
from monitor.record.channels import ChannelMap, channel_map_of
from monitor.record.store import StoredEvent, TelemetryArrays, TelemetryRows

__all__ = [
    "ChainScan",
    "Event",
    "SessionData",
    "VerifyResult",
    "damaged_result",
    "integrity_reason",
    "walk_span",
]

_MAX_REPORTED = 3
_NO_END = 2**62


class ChainScan(Protocol):
    """All verification reads of a store: its rows themselves (every ``StoreReader`` is one,
    and so is one bridge's chain in the fleet store)."""

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]: ...

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]: ...


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
    damaged: bool = False  # the store itself is damaged (SQLite pages or indexes)
    # Sessions (of those checked) that recorded no channel map: read with the legacy map.
    legacy_channel_maps: int = 0


@dataclass
class SessionData:
    """One session's events and telemetry, as walked along the chain."""

    events: list[Event] = field(default_factory=list)
    t_s: list[npt.NDArray[np.float64]] = field(default_factory=list)
    channel: list[npt.NDArray[np.int32]] = field(default_factory=list)
    value: list[npt.NDArray[np.float64]] = field(default_factory=list)

    def telemetry(self) -> TelemetryArrays:
        if not self.t_s:
            return np.empty(0), np.empty(0, np.int32), np.empty(0)
        return np.concatenate(self.t_s), np.concatenate(self.channel), np.concatenate(self.value)


def damaged_result(reason: str) -> VerifyResult:
    return VerifyResult(False, 0, 0, None, f"the database file is damaged: {reason}", True)


def integrity_reason(problems: list[str]) -> str:
    more = len(problems) - _MAX_REPORTED
    text = "; ".join(p.strip() for p in problems[:_MAX_REPORTED])
    return text + (f" (and {more} more)" if more > 0 else "")


def walk_span(
    store: ChainScan,
    lo: int,
    hi: int | None,
    target: str | None,
    *,
    collect: bool = False,
) -> tuple[VerifyResult, SessionData]:
    """Check the chain from ``lo`` to ``hi`` (None: to the head) and its telemetry batches.

    Counts, and with ``collect`` gathers, the events and telemetry rows of ``target`` (every
    session if None).
    """
    data = SessionData()
    n_events = 0
    n_legacy = 0
    problems: list[tuple[int, str]] = []
    expected_prev: str | None = GENESIS_HASH
    if lo > 1:
        before = next(store.scan_events(lo - 1, lo - 1), None)
        if before is None:
            problems.append((lo - 1, f"event seq {lo - 1} is missing (deleted?)"))
        expected_prev = None if before is None else before.hash
    expected_seq = lo
    hi_seq = hi if hi is not None else _NO_END
    batches: dict[int, tuple[str, dict[str, Any]]] = {}
    maps: dict[str, ChannelMap] = {}
    for stored in store.scan_events(lo, hi_seq):
        seq, sid, kind = stored.seq, stored.session_id, stored.kind
        mine = target is None or sid == target
        if mine:
            n_events += 1
        if seq != expected_seq:
            problems.append((expected_seq, f"events seq {expected_seq}..{seq - 1} are missing"))
            expected_prev = None  # the link across a gap cannot be checked
        if expected_prev is not None and stored.prev_hash != expected_prev:
            problems.append((seq, f"event seq {seq} does not link to the event before it"))
        try:
            payload = json.loads(stored.payload_text)
            computed = event_hash(stored.prev_hash, seq, sid, stored.t_wall, kind, payload)
        except (ValueError, TypeError) as e:
            problems.append((seq, f"event seq {seq} is unreadable: {e}"))
        else:
            if computed != stored.hash:
                problems.append((seq, f"event seq {seq} ({kind}) content does not match its hash"))
            if kind == KIND_TELEMETRY:
                batches[seq] = (sid, payload)
            elif kind == KIND_START:
                try:
                    maps[sid] = channel_map_of(payload)
                except ValueError as e:
                    problems.append(
                        (seq, f"event seq {seq} (session_start): unreadable channel map: {e}")
                    )
                else:
                    if mine and maps[sid].legacy:
                        n_legacy += 1
            if mine and collect:
                data.events.append(
                    Event(seq, sid, stored.t_wall, kind, payload, stored.prev_hash, stored.hash)
                )
        expected_prev = stored.hash
        expected_seq = seq + 1
        if problems:
            break  # everything after the first break is reported by its seq only

    n_rows = _check_telemetry(
        store, lo, hi_seq, target, batches, maps, problems, data if collect else None
    )
    if problems:
        seq, reason = min(problems)
        return VerifyResult(
            False, n_events, n_rows, seq, reason, legacy_channel_maps=n_legacy
        ), data
    return VerifyResult(
        True, n_events, n_rows, None, "chain intact", legacy_channel_maps=n_legacy
    ), data


def _check_telemetry(
    store: ChainScan,
    lo: int,
    hi_seq: int,
    target: str | None,
    batches: dict[int, tuple[str, dict[str, Any]]],
    maps: dict[str, ChannelMap],
    problems: list[tuple[int, str]],
    data: SessionData | None,
) -> int:
    """Recount and re-hash every batch from the stored rows; returns the target's row count."""
    stop_at = problems[0][0] if problems else hi_seq + 1  # nothing after the first break
    n_rows = 0
    found: set[int] = set()
    for rows in store.scan_telemetry(lo, hi_seq):
        batch_seq = rows.batch_seq
        if batch_seq >= stop_at:
            break
        found.add(batch_seq)
        vouched = batches.get(batch_seq)
        if vouched is None:
            problems.append((batch_seq, f"telemetry rows at batch {batch_seq} have no batch event"))
            continue
        sid, payload = vouched
        n = int(rows.idx.shape[0])
        in_order = bool(np.array_equal(rows.idx, np.arange(n)))
        same_session = rows.session_ids is None or all(s == sid for s in rows.session_ids)
        if n != payload.get("n") or not in_order or not same_session:
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: rows added or removed")
            )
        elif telemetry_digest(rows.t_s, rows.channel, rows.value) != payload.get("sha256"):
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: rows do not match digest")
            )
        else:
            unnamed = _unnamed_channel(rows.channel, maps.get(sid))
            if unnamed is not None:
                problems.append(
                    (
                        batch_seq,
                        f"telemetry batch at seq {batch_seq}: channel {unnamed} is not in its"
                        " session's channel map",
                    )
                )
        if target is None or sid == target:
            n_rows += n
            if data is not None:
                data.t_s.append(rows.t_s)
                data.channel.append(rows.channel)
                data.value.append(rows.value)
    for batch_seq, (_, payload) in batches.items():
        if batch_seq not in found and batch_seq < stop_at:
            problems.append(
                (batch_seq, f"telemetry batch at seq {batch_seq}: all {payload.get('n')} rows gone")
            )
    return n_rows


def _unnamed_channel(channel: npt.NDArray[np.int32], cmap: ChannelMap | None) -> int | None:
    """A channel code of the rows that the session's recorded map lacks, or None.

    Legacy sessions recorded no map, and a session whose start lies before the span walked
    has none to hand: neither is held to one.
    """
    if cmap is None or cmap.legacy:
        return None
    return cmap.first_unnamed(channel)
