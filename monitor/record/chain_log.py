"""Append-only, tamper-evident session log: the chain's rules, on any ``Store``.

Every record is an event in a single hash chain that spans all sessions in the store::

    hash = sha256(prev_hash || canonical_json({seq, session_id, t_wall, kind, payload}))

so editing, inserting or deleting any event (or a whole session) breaks the chain at a
known ``seq``. Telemetry rows are kept apart from the events and covered by the chain
through one ``telemetry_batch`` event per batch that carries the row count and the sha256
of the rows' canonical bytes (``monitor.record.chain``).

Session metadata is not kept in a separate, mutable place: a session *is* its
``session_start`` event (who, which patient, which profile and digest, mode, and its
telemetry channel map: ``monitor.record.channels``) plus its ``session_end`` event, so
everything a report shows is under the chain.

A session whose process died never gets its ``session_end`` from that process. The next
writer to open the store marks it: a chained ``session_interrupted`` event (when it was last
heard from) and a ``session_end`` with the reason ``INTERRUPTED_REASON``. A session that
another process is still writing is left alone (``Store.open_locks``).

Clinic records that outlive a session (incidents, follow-ups: ``monitor.incidents``) are
*record streams* in the same chain: events whose stream id starts with ``record:`` and that
no ``session_start`` opens (``append_record``). A session's chain ends at its
``session_end`` and stays sealed; a correction made a week later is a new event in its
record's stream, under the same hashes, verified by the same ``verify``.
A *records chain* (``start_records``) is a run of records that is not a treatment session:
a calibration run, an incident. It lives in the same hash chain, under its own id, from a
``records_start`` event (naming its ``chain``) to a ``session_end``; it has no patient, no
telemetry and no channel map, and ``sessions()`` does not list it. Appends, the end, and the
marking of one whose writer died work as for a session (``records.py`` reads them back).

What a chain alone cannot show is truncation of the newest events: with a ``HeadAnchor``
(``monitor.record.anchor``) the head is checkpointed, signed, outside the store after commits
(every session end, and periodically), and a writer refuses to open a log that is behind its
checkpoints.

Every payload is bounded before it is hashed (``chain.bound_payload``): no caller, and no
device whose words end up in a payload, can make one record large.

The store holds rows (``monitor.record.store``); this class decides what they are. The
SQLite store and this class together are ``sqlite_store.SessionLog``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import numpy as np

from monitor.record.anchor import AnchorCheck, HeadAnchor, HeadInfo, compare, head_info
from monitor.record.chain import (
    GENESIS_HASH,
    KIND_END,
    KIND_INTERRUPTED,
    KIND_RECORDS_START,
    KIND_START,
    KIND_TELEMETRY,
    RECORD_STREAM_PREFIX,
    TELEMETRY_FORMAT,
    bound_payload,
    canonical_json,
    event_hash,
    telemetry_digest,
)
from monitor.record.channels import START_FIELD, ChannelMap, channel_map_of, current_channel_map
from monitor.record.checkpoints import Checkpoint
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.session_info import (
    SessionInfo,
    SessionRecord,
    info_from_events,
    info_from_row,
)
from monitor.record.store import (
    Store,
    StoredEvent,
    StoreReader,
    StoreWriter,
    TelemetryArrays,
)
from monitor.record.verify import (
    Event,
    VerifyResult,
    damaged_result,
    integrity_reason,
    walk_span,
)

__all__ = [
    "INTERRUPTED_REASON",
    "ChainLog",
    "SessionInfo",
    "SessionRecord",
    "StaleRecord",
]

INTERRUPTED_REASON = "interrupted (process ended without closing the session)"
# Only the log itself may create the structural kinds that sessions() and verify() rely on.
_RESERVED_KINDS = frozenset({KIND_START, KIND_TELEMETRY, KIND_INTERRUPTED, KIND_RECORDS_START})
# What a session or a records chain starts with.
_START_KINDS = (KIND_START, KIND_RECORDS_START)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
# Clinic text (aftercare instructions, attestations) is a few hundred characters; nothing a
# person writes for a record needs more. Device words are bounded tighter by the LogWriter.
DEFAULT_MAX_FIELD_CHARS = 4096


class StaleRecord(SessionLogError):
    """A record stream changed between reading it and appending to it."""


def _encode_payload(payload: dict[str, Any], max_chars: int) -> tuple[str, dict[str, Any]]:
    """Canonical text of the bounded payload and the dict as it will read back."""
    if not isinstance(payload, dict):
        raise SessionLogError(f"payload must be a dict, got {type(payload).__name__}")
    try:
        text = canonical_json(bound_payload(payload, max_chars))
    except ValueError as e:
        raise SessionLogError(f"payload contains NaN or infinity, refused: {e}") from e
    except TypeError as e:
        raise SessionLogError(f"payload is not JSON-serialisable: {e}") from e
    decoded: dict[str, Any] = json.loads(text)
    return text, decoded


def _check_t_wall(t_wall: float | None) -> float:
    t = time.time() if t_wall is None else float(t_wall)
    if not np.isfinite(t):
        raise SessionLogError(f"t_wall must be finite, got {t_wall!r}")
    return t


class ChainLog:
    """The session log over a store. Writes come from one thread at a time; reads from any.

    The log owns its store: ``close()`` closes it.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_field_chars: int | None = None,
        anchor: HeadAnchor | None = None,
    ) -> None:
        self._store = store
        self._anchor = anchor
        self._read_only = store.read_only
        self._max_field_chars = max_field_chars or DEFAULT_MAX_FIELD_CHARS
        # Reentrant: the appends inside a batch() take it again on the same thread.
        self._lock = threading.RLock()
        self._writer: StoreWriter | None = None  # the open transaction, inside batch()
        self._pending_end: set[str] = set()  # ended in the open transaction, not yet committed
        self._ended: dict[str, bool] = {}  # session_id -> ended, for sessions seen by this writer
        # session_id -> its channel map, for the sessions this writer appends telemetry to.
        self._maps: dict[str, ChannelMap] = {}
        self._closed = False
        self._locks = store.open_locks()
        #: Sessions this writer found with a dead writer and marked interrupted on opening.
        self.interrupted: list[str] = []
        if self._read_only:
            return
        try:
            if anchor is not None:  # before anything is written: a rolled-back log stays as found
                with self._reading() as r:
                    anchor.check_open(r, store.name)
            self._mark_interrupted()
        except BaseException:
            self._locks.close()
            store.close()
            raise

    @property
    def store(self) -> Store:
        return self._store

    def lock_descriptor(self, session_id: str) -> int | None:
        """The descriptor of this writer's lock on an open session (``SessionLocks``)."""
        return self._locks.descriptor(session_id)

    def _mark_interrupted(self) -> None:
        """End every open session whose writer is gone, in the chain, saying so."""
        with self._reading() as r:
            open_ids = [row.start.session_id for row in reversed(r.sessions()) if row.end is None]
            open_ids += [
                e.session_id
                for e in reversed(r.events_of_kind(KIND_RECORDS_START))
                if r.latest(e.session_id, [KIND_END]) is None
            ]
        for sid in open_ids:
            token = self._locks.claim_orphan(sid)
            if token is None:
                continue  # another writer holds it: that session is alive
            try:
                self._interrupt(sid)
            finally:
                self._locks.release(sid, token)

    def _interrupt(self, session_id: str) -> None:
        now = time.time()
        with self._transaction() as w:
            if w.latest(session_id, [KIND_END]) is not None:
                return  # someone else marked it between our query and our lock
            last = w.latest(session_id)
            if last is None:  # listed as open a moment ago: its events cannot have gone
                raise SessionLogDamaged(f"session {session_id} has no events any more")
            for kind, payload in (
                (
                    KIND_INTERRUPTED,
                    {
                        "reason": "the process writing this session ended without closing it",
                        "last_event_seq": last.seq,
                        "last_event_t_wall": last.t_wall,
                        "noticed_by_pid": os.getpid(),
                    },
                ),
                (KIND_END, {"reason": INTERRUPTED_REASON}),
            ):
                text, decoded = _encode_payload(payload, self._max_field_chars)
                self._insert_event(w, session_id, now, kind, text, decoded)
        self._ended[session_id] = True
        self.interrupted.append(session_id)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._locks.close()  # sessions left open are interrupted, for the next writer
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def start_session(
        self,
        *,
        operator: str,
        patient_id: str,
        skin_type: str,
        profile_name: str,
        profile_digest: str,
        mode: str,
        meta: dict[str, Any] | None = None,
        t_wall: float | None = None,
        channels: ChannelMap | None = None,
    ) -> str:
        """Start a session; its telemetry channels are ``channels`` (default: today's ``Ch``)."""
        session_id = uuid.uuid4().hex
        cmap = current_channel_map() if channels is None else channels
        payload: dict[str, Any] = {
            "operator": operator,
            "patient_id": patient_id,
            "skin_type": skin_type,
            "profile_name": profile_name,
            "profile_digest": profile_digest,
            "mode": mode,
            "meta": dict(meta) if meta is not None else {},
            START_FIELD: cmap.as_record(),
        }
        for key in ("operator", "patient_id", "skin_type", "profile_name", "mode"):
            if not isinstance(payload[key], str) or not payload[key]:
                raise SessionLogError(f"start_session: {key} must be a non-empty string")
        text, decoded = _encode_payload(payload, self._max_field_chars)
        t = _check_t_wall(t_wall)
        if self._read_only:
            raise SessionLogError(f"session log {self._store.name} was opened read-only")
        try:
            # Held before the start is visible to anyone: a live session is never "orphaned".
            self._locks.hold(session_id)
        except OSError as e:
            raise SessionLogError(f"cannot lock the new session in {self._locks.where}: {e}") from e
        try:
            with self._transaction() as w:
                event = self._insert_event(w, session_id, t, KIND_START, text, decoded)
        except BaseException:
            self._locks.release(session_id)
            raise
        self._ended[session_id] = False
        self._maps[session_id] = cmap
        return event.session_id

    def start_records(
        self, chain: str, payload: dict[str, Any], *, t_wall: float | None = None
    ) -> str:
        """Start a records chain of kind ``chain`` (e.g. "calibration"); returns its id.

        Its ``records_start`` event holds ``payload`` and ``chain``; append to it and end it
        like a session (``append``, ``end_session``). Until it ends it is held like an open
        session, so a writer that dies leaves it to be marked interrupted by the next.
        """
        if not isinstance(chain, str) or not chain.strip():
            raise SessionLogError("start_records: chain must be a non-empty string")
        text, decoded = _encode_payload({**payload, "chain": chain}, self._max_field_chars)
        t = _check_t_wall(t_wall)
        if self._read_only:
            raise SessionLogError(f"session log {self._store.name} was opened read-only")
        records_id = uuid.uuid4().hex
        try:
            self._locks.hold(records_id)
        except OSError as e:
            raise SessionLogError(f"cannot lock the new records in {self._locks.where}: {e}") from e
        try:
            with self._transaction() as w:
                self._insert_event(w, records_id, t, KIND_RECORDS_START, text, decoded)
        except BaseException:
            self._locks.release(records_id)
            raise
        self._ended[records_id] = False
        return records_id

    def append(
        self, session_id: str, kind: str, payload: dict[str, Any], t_wall: float | None = None
    ) -> Event:
        return self.append_many([(session_id, kind, payload, _check_t_wall(t_wall))])[0]

    def append_many(
        self,
        items: Sequence[tuple[str, str, dict[str, Any], float]],
        *,
        max_field_chars: int | None = None,
    ) -> list[Event]:
        """Append events in order, all in one transaction: all are written or none.

        ``max_field_chars`` bounds strings tighter than the log's own limit (for payloads
        that carry a device's words); it can never loosen it.
        """
        limit = self._max_field_chars
        if max_field_chars is not None:
            limit = min(limit, max_field_chars)
        prepared: list[tuple[str, str, float, str, dict[str, Any]]] = []
        for session_id, kind, payload, t_wall in items:
            if not isinstance(kind, str) or not kind:
                raise SessionLogError(f"event kind must be a non-empty string, got {kind!r}")
            if kind in _RESERVED_KINDS:
                raise SessionLogError(f"kind {kind!r} is written by the log itself, not append")
            text, decoded = _encode_payload(payload, limit)
            if kind == KIND_END and not isinstance(decoded.get("reason"), str):
                raise SessionLogError("a session_end event needs a string 'reason' in its payload")
            prepared.append((session_id, kind, _check_t_wall(t_wall), text, decoded))
        if not prepared:
            return []
        events: list[Event] = []
        with self._transaction() as w:
            for session_id, kind, t, text, decoded in prepared:
                self._require_open(w, session_id)
                events.append(self._insert_event(w, session_id, t, kind, text, decoded))
                if kind == KIND_END:
                    self._pending_end.add(session_id)  # marked ended once committed
        return events

    def append_telemetry(
        self,
        session_id: str,
        t_s: np.ndarray[Any, Any],
        channel: np.ndarray[Any, Any],
        value: np.ndarray[Any, Any],
        t_wall: float | None = None,
    ) -> Event:
        """Write a batch of telemetry rows plus the chained event that vouches for them.

        Every channel must be in the session's channel map: a row nobody can label later is
        refused (and a LogWriter that is refused halts treatment).
        """
        t_arr, ch_arr, v_arr = _check_telemetry(t_s, channel, value)
        n = int(t_arr.shape[0])
        payload = {
            "n": n,
            "t_first_s": float(t_arr[0]),
            "t_last_s": float(t_arr[-1]),
            "sha256": telemetry_digest(t_arr, ch_arr, v_arr),
            "format": TELEMETRY_FORMAT,
        }
        text, decoded = _encode_payload(payload, self._max_field_chars)
        t = _check_t_wall(t_wall)
        with self._transaction() as w:
            self._require_open(w, session_id)
            unnamed = self._map_for(w, session_id).first_unnamed(ch_arr)
            if unnamed is not None:
                raise SessionLogError(
                    f"telemetry channel {unnamed} is not in session"
                    f" {session_id[:8]}'s channel map: a row nobody could label, refused"
                )
            event = self._insert_event(w, session_id, t, KIND_TELEMETRY, text, decoded)
            w.insert_telemetry(event.seq, session_id, t_arr, ch_arr, v_arr)
        return event

    def end_session(self, session_id: str, reason: str, t_wall: float | None = None) -> Event:
        return self.append(session_id, KIND_END, {"reason": reason}, t_wall)

    def append_record(
        self,
        stream_id: str,
        kind: str,
        payload: dict[str, Any],
        *,
        t_wall: float | None = None,
        expect_last_seq: int | None = None,
    ) -> Event:
        """Append one event to a clinic record stream (``record:...``), which no session opens
        or ends. ``expect_last_seq``: refused unless the stream's newest event has this seq
        (0: the stream must be new), checked in the same transaction, so that two people
        changing one record at once cannot both build on the same state."""
        if not stream_id.startswith(RECORD_STREAM_PREFIX) or len(stream_id) > 200:
            raise SessionLogError(
                f"{stream_id!r} is not a record stream ({RECORD_STREAM_PREFIX}...)"
            )
        if not isinstance(kind, str) or not kind:
            raise SessionLogError(f"event kind must be a non-empty string, got {kind!r}")
        if kind in _RESERVED_KINDS or kind == KIND_END:
            raise SessionLogError(f"kind {kind!r} belongs to sessions, not to a record stream")
        text, decoded = _encode_payload(payload, self._max_field_chars)
        t = _check_t_wall(t_wall)
        with self._transaction() as w:
            if expect_last_seq is not None:
                last = w.latest(stream_id)
                seq = 0 if last is None else last.seq
                if seq != expect_last_seq:
                    raise StaleRecord(
                        f"{stream_id} changed meanwhile (its newest entry is seq {seq}, not "
                        f"{expect_last_seq}): read it again"
                    )
            return self._insert_event(w, stream_id, t, kind, text, decoded)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every append inside one transaction: one commit (one fsync), all or none.

        Only the thread that opened the batch may append inside it; others wait for it.
        """
        with self._transaction():
            yield

    @contextmanager
    def _transaction(self) -> Iterator[StoreWriter]:
        if self._read_only:
            raise SessionLogError(f"session log {self._store.name} was opened read-only")
        with self._lock:
            if self._closed:
                raise SessionLogError("session log is closed")
            if self._writer is not None:  # inside batch(): the outer transaction commits
                yield self._writer
                return
            head: HeadInfo | None = None
            try:
                with self._store.writing() as writer:
                    self._writer = writer
                    yield writer
                    if self._anchor is not None:
                        head = head_info(writer)
            except BaseException:
                self._pending_end.clear()
                raise
            finally:
                self._writer = None
            ended, self._pending_end = self._pending_end, set()
        for session_id in ended:  # committed: these sessions are over
            self._ended[session_id] = True
            self._maps.pop(session_id, None)
            self._locks.release(session_id)
        if self._anchor is not None:  # committed; a checkpoint that fails raises (and halts)
            self._anchor.committed(head, session_ended=bool(ended))

    def _require_open(self, w: StoreWriter, session_id: str) -> None:
        if session_id in self._pending_end:
            raise SessionLogError(f"session {session_id} has already ended")
        ended = self._ended.get(session_id)
        if ended is None:
            kinds = {e.kind for e in w.events(session_id, [*_START_KINDS, KIND_END])}
            if not kinds & set(_START_KINDS):
                raise SessionLogError(f"no session {session_id!r} in this log")
            ended = KIND_END in kinds
            self._ended[session_id] = ended
        if ended:
            raise SessionLogError(f"session {session_id} has already ended")

    def _map_for(self, w: StoreWriter, session_id: str) -> ChannelMap:
        """An open session's channel map (read from its start the first time)."""
        cmap = self._maps.get(session_id)
        if cmap is None:
            start = w.latest(session_id, [KIND_START])
            if start is None:  # _require_open found it in this same transaction
                raise SessionLogError(f"no session {session_id!r} in this log")
            try:
                cmap = channel_map_of(json.loads(start.payload_text))
            except ValueError as e:
                raise SessionLogError(
                    f"session {session_id[:8]}'s channel map is unreadable ({e}): its telemetry"
                    " could not be labelled, refused"
                ) from e
            self._maps[session_id] = cmap
        return cmap

    @staticmethod
    def _insert_event(
        w: StoreWriter,
        session_id: str,
        t_wall: float,
        kind: str,
        text: str,
        decoded: dict[str, Any],
    ) -> Event:
        head = w.head()
        seq, prev_hash = (1, GENESIS_HASH) if head is None else (head[0] + 1, head[1])
        digest = event_hash(prev_hash, seq, session_id, t_wall, kind, decoded)
        w.insert_event(StoredEvent(seq, session_id, t_wall, kind, text, prev_hash, digest))
        return Event(seq, session_id, t_wall, kind, decoded, prev_hash, digest)

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[StoreReader]:
        if self._closed:
            raise SessionLogError("session log is closed")
        with self._store.reading() as reader:
            try:
                yield reader
            except json.JSONDecodeError as e:
                raise SessionLogError(
                    f"session log {self._store.name} holds an unreadable event: {e}"
                ) from e

    def sessions(self) -> list[SessionInfo]:
        """All sessions, newest first."""
        with self._reading() as r:
            return [info_from_row(row) for row in r.sessions()]

    def session(self, session_id: str) -> SessionInfo:
        """One session by its id or a unique prefix of it."""
        if not session_id:
            raise SessionLogError("empty session id")
        with self._reading() as r:
            exact = r.sessions(session_id)
            if exact:
                return info_from_row(exact[0])
            found = [info_from_row(row) for row in r.sessions(session_id, prefix=True)]
        if not found:
            raise SessionLogError(f"no session matching {session_id!r}")
        if len(found) > 1:
            ids = ", ".join(s.session_id[:12] for s in found[:5])
            raise SessionLogError(f"session id {session_id!r} is ambiguous: {ids}")
        return found[0]

    def start_events(self) -> list[Event]:
        """Every session's ``session_start`` event (with its meta), newest first."""
        with self._reading() as r:
            return [_event(e) for e in r.events_of_kind(KIND_START)]

    def latest_event(self, session_id: str, kinds: Iterable[str]) -> Event | None:
        """The session's newest event of one of ``kinds``, or None."""
        with self._reading() as r:
            found = r.latest(session_id, list(kinds))
            return None if found is None else _event(found)

    def events(self, session_id: str, kinds: Iterable[str] | None = None) -> list[Event]:
        """A session's events in order (exact id), optionally only some kinds."""
        with self._reading() as r:
            _require_exists(r, session_id)
            return [_event(e) for e in r.events(session_id, None if kinds is None else list(kinds))]

    def events_of_kind(self, kind: str) -> list[Event]:
        """Every event of one kind, in every session and record stream, newest first (a
        lookup: quick, unverified)."""
        with self._reading() as r:
            return [_event(e) for e in r.events_of_kind(kind)]

    def record_stream(self, stream_id: str) -> list[Event]:
        """A record stream's events, oldest first (a lookup: quick, unverified); empty if none."""
        with self._reading() as r:
            return [_event(e) for e in r.events(stream_id)]

    def read_verified_stream(self, stream_id: str) -> list[Event]:
        """A record stream's events as walked along the verified chain (every event from the
        one before its first to its last), and checked against the lookups, as
        ``read_verified`` reads a session. Raises ``SessionLogError`` for an unknown stream,
        ``SessionLogDamaged`` if any of it fails."""
        with self._reading() as r:
            span = r.span(stream_id)
            if span is None:
                raise SessionLogError(f"no record {stream_id!r} in this log")
            _, lo, hi = span
            result, data = walk_span(r, lo, hi, stream_id, collect=True)
            if not result.ok:
                raise SessionLogDamaged(
                    f"{stream_id} fails verification at seq {result.first_bad_seq}: {result.reason}"
                )
            walked = [e.seq for e in data.events]
            if r.lookup_seqs(stream_id) != walked:
                raise SessionLogDamaged(
                    f"the session log {self._store.name} is damaged: its indexes disagree with"
                    f" its tables about {stream_id} (run `laserguard sessions verify`)"
                )
        return data.events

    def telemetry(self, session_id: str) -> TelemetryArrays:
        """(t_s, channel, value) of all the session's telemetry rows, in the order written.

        A quick read for a running session; ``read_verified`` is the read for a report.
        """
        with self._reading() as r:
            _require_exists(r, session_id)
            return r.telemetry(session_id)

    def channels(self, session_id: str) -> ChannelMap:
        """The session's channel map (the legacy map if it recorded none; quick read)."""
        with self._reading() as r:
            start = r.latest(session_id, [KIND_START])
            if start is None:
                raise SessionLogError(f"no session {session_id!r} in this log")
            try:
                return channel_map_of(json.loads(start.payload_text))
            except ValueError as e:
                raise SessionLogError(f"session {session_id[:8]}'s channel map: {e}") from e

    # -- verification ----------------------------------------------------------------------

    def verify(self, session_id: str | None = None) -> VerifyResult:
        """Check the store's integrity, the chain and every telemetry batch.

        With a session id (or unique prefix), the chain is checked from the event before the
        session's first up to its last, whichever session those events belong to: a gap
        anywhere in that span may have removed this session's events. The store's integrity
        is always checked whole.
        """
        try:
            with self._reading() as r:
                problems = r.integrity_problems()
                if problems:
                    return damaged_result(integrity_reason(problems))
                if session_id is None:
                    lo, hi, target = 1, None, None
                else:
                    target = self.session(session_id).session_id
                    _, lo, hi = _span_of(r, target)
                result, _ = walk_span(r, lo, hi, target)
                return result
        except SessionLogDamaged as e:
            return damaged_result(str(e))

    def compare_head(self, entries: list[Checkpoint]) -> AnchorCheck:
        """This log next to its signed checkpoints (``anchor.compare``)."""
        with self._reading() as r:
            return compare(r, entries, self._store.name)

    def read_verified(self, session_id: str) -> SessionRecord:
        """One whole session for a report, read along its chain span and checked as read.

        The events and telemetry returned are the ones whose hashes and digests were just
        recomputed, read from the stored rows themselves. Raises ``SessionLogDamaged`` if
        any of it fails, or if a lookup disagrees with the rows about this session (which
        events it has, how it ended): a report never shows part of a session as if whole.

        Costs one scan of the session's span; unlike ``verify`` it does not check the rest
        of the store.
        """
        indexed = self.session(session_id)
        sid = indexed.session_id
        with self._reading() as r:
            _, lo, hi = _span_of(r, sid)
            result, data = walk_span(r, lo, hi, sid, collect=True)
            if not result.ok:
                raise SessionLogDamaged(
                    f"session {sid[:8]} fails verification at seq {result.first_bad_seq}:"
                    f" {result.reason}"
                )
            walked = [e.seq for e in data.events]
            by_session = r.lookup_seqs(sid)
            kinds = sorted({e.kind for e in data.events})
            by_kind = sorted(r.lookup_seqs(sid, kinds))
        info = info_from_events(data.events)
        if by_session != walked or by_kind != walked or info != indexed:
            raise SessionLogDamaged(
                f"the session log {self._store.name} is damaged: its indexes disagree with its"
                f" tables about session {sid[:8]} (run `laserguard sessions verify`)"
            )
        # Readable: walk_span has checked the start's map.
        cmap = channel_map_of(data.events[0].payload)
        return SessionRecord(info, data.events, *data.telemetry(), channels=cmap)


def _span_of(r: StoreReader, session_id: str) -> tuple[int, int, int]:
    span = r.span(session_id)
    if span is None:
        raise SessionLogDamaged(
            f"session {session_id} is listed by an index but has no events in the table:"
            " the file is damaged"
        )
    return span


def _require_exists(r: StoreReader, session_id: str) -> None:
    if r.latest(session_id, list(_START_KINDS)) is None:
        raise SessionLogError(f"no session {session_id!r} in this log")


def _event(e: StoredEvent) -> Event:
    return Event(
        e.seq, e.session_id, e.t_wall, e.kind, json.loads(e.payload_text), e.prev_hash, e.hash
    )


def _check_telemetry(
    t_s: np.ndarray[Any, Any], channel: np.ndarray[Any, Any], value: np.ndarray[Any, Any]
) -> TelemetryArrays:
    t_arr = np.asarray(t_s)
    ch_arr = np.asarray(channel)
    v_arr = np.asarray(value)
    if t_arr.ndim != 1 or ch_arr.ndim != 1 or v_arr.ndim != 1:
        raise SessionLogError("telemetry arrays must be one-dimensional")
    if not t_arr.shape[0] == ch_arr.shape[0] == v_arr.shape[0]:
        raise SessionLogError(
            f"telemetry arrays differ in length: t_s {t_arr.shape[0]},"
            f" channel {ch_arr.shape[0]}, value {v_arr.shape[0]}"
        )
    if t_arr.shape[0] == 0:
        raise SessionLogError("empty telemetry batch")
    if not np.issubdtype(ch_arr.dtype, np.integer):
        raise SessionLogError(f"telemetry channel codes must be integers, got {ch_arr.dtype}")
    if int(ch_arr.min()) < _I32_MIN or int(ch_arr.max()) > _I32_MAX:
        raise SessionLogError("telemetry channel codes must fit in int32")
    if not np.issubdtype(t_arr.dtype, np.floating) or not np.issubdtype(v_arr.dtype, np.floating):
        raise SessionLogError("telemetry t_s and value must be floating point")
    t64 = t_arr.astype(np.float64)
    if not np.all(np.isfinite(t64)):
        raise SessionLogError("telemetry t_s contains NaN or infinity, refused")
    # value may be NaN or infinite: a sensor that reported nonsense is a fact worth keeping.
    return t64, ch_arr.astype(np.int32), v_arr.astype(np.float64)
