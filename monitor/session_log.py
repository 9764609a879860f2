"""Append-only, tamper-evident session log in one SQLite file.

Every record is an event in a single hash chain that spans all sessions in the file::

    hash = sha256(prev_hash || canonical_json({seq, session_id, t_wall, kind, payload}))

so editing, inserting or deleting any event (or a whole session) breaks the chain at a
known ``seq``. Telemetry rows live in their own table and are covered by the chain through
one ``telemetry_batch`` event per batch that carries the sha256 of the rows' canonical bytes.

Session metadata is not stored in a separate, mutable table: a session *is* its
``session_start`` event (who, which patient, which profile and digest, mode) plus its
``session_end`` event, so everything a report shows is under the chain.

The database itself refuses UPDATE and DELETE (triggers); ``verify`` still catches edits made
by someone who drops the triggers. What a chain alone cannot show is truncation of the newest
events: keep the head hash from ``verify`` somewhere else if that matters.

Exceptions::

    SessionLogError        any failure to open, write or read; sqlite3 errors kept as __cause__

Durability: WAL journal with ``synchronous=FULL``; each append commits before it returns, so
a killed process or a power cut loses nothing that was reported written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

__all__ = ["Event", "SessionInfo", "SessionLog", "SessionLogError", "VerifyResult"]

GENESIS_HASH = "0" * 64
KIND_START = "session_start"
KIND_END = "session_end"
KIND_TELEMETRY = "telemetry_batch"
# Only these methods may create the structural kinds that sessions() and verify() rely on.
_RESERVED_KINDS = frozenset({KIND_START, KIND_TELEMETRY})
# Canonical telemetry bytes: t_s as <f8, channel as <i4, value as <f8, concatenated.
TELEMETRY_FORMAT = "t_s<f8,channel<i4,value<f8"
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL,
    t_wall     REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, seq);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, session_id);
CREATE TABLE IF NOT EXISTS telemetry (
    batch_seq  INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    t_s        REAL    NOT NULL,
    channel    INTEGER NOT NULL,
    value      REAL,  -- NULL stands for NaN (SQLite cannot store NaN)
    PRIMARY KEY (batch_seq, idx)
);
CREATE INDEX IF NOT EXISTS telemetry_by_session ON telemetry (session_id, batch_seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'session log is append-only: UPDATE on events refused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'session log is append-only: DELETE on events refused'); END;
CREATE TRIGGER IF NOT EXISTS telemetry_no_update BEFORE UPDATE ON telemetry
BEGIN SELECT RAISE(ABORT, 'session log is append-only: UPDATE on telemetry refused'); END;
CREATE TRIGGER IF NOT EXISTS telemetry_no_delete BEFORE DELETE ON telemetry
BEGIN SELECT RAISE(ABORT, 'session log is append-only: DELETE on telemetry refused'); END;
"""


class SessionLogError(Exception):
    """The session log could not be opened, written or read. Treatment must stop."""


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


def _json_default(obj: object) -> object:
    # NumPy scalars turn up in payloads from the interlock; store them as plain numbers.
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def canonical_json(obj: object) -> str:
    """The one serialisation that hashes are computed over."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
    )


def event_hash(
    prev_hash: str, seq: int, session_id: str, t_wall: float, kind: str, payload: object
) -> str:
    record = {
        "seq": seq,
        "session_id": session_id,
        "t_wall": t_wall,
        "kind": kind,
        "payload": payload,
    }
    return hashlib.sha256((prev_hash + canonical_json(record)).encode("utf-8")).hexdigest()


def telemetry_digest(
    t_s: npt.NDArray[np.float64], channel: npt.NDArray[np.int32], value: npt.NDArray[np.float64]
) -> str:
    """sha256 of the canonical little-endian bytes; every NaN hashes as the one quiet NaN."""
    value_canon = np.where(np.isnan(value), np.nan, value)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(t_s, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(channel, dtype="<i4").tobytes())
    h.update(np.ascontiguousarray(value_canon, dtype="<f8").tobytes())
    return h.hexdigest()


def _encode_payload(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Canonical text of a payload and the dict as it will read back."""
    if not isinstance(payload, dict):
        raise SessionLogError(f"payload must be a dict, got {type(payload).__name__}")
    try:
        text = canonical_json(payload)
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


class SessionLog:
    """The session store. Writes come from one thread at a time; reads may come from any."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._lock = threading.Lock()
        self._ended: dict[str, bool] = {}  # session_id -> ended, for sessions seen by this writer
        self._conn: sqlite3.Connection | None = None
        try:
            if read_only:
                if not self._path.is_file():
                    raise SessionLogError(f"no session log at {self._path}")
                # Fail now, not on first read, if the file is not a readable log.
                with self._reader() as conn:
                    conn.execute("SELECT seq FROM events LIMIT 1").fetchall()
                return
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            self._conn = conn
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SessionLogError(f"could not put {self._path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            # A write-protected file opens "successfully" and even grants the write lock;
            # only writing a page tells the truth. Rolled back, so the file is unchanged.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE laserguard_write_probe (x INTEGER)")
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            self._close_quietly()
            raise SessionLogError(f"cannot open session log {self._path} for writing: {e}") from e
        except SessionLogError:
            self._close_quietly()
            raise

    @property
    def path(self) -> Path:
        return self._path

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                raise SessionLogError(f"closing session log failed: {e}") from e

    def _close_quietly(self) -> None:
        # Only used while construction is already failing with a more useful error.
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
    ) -> str:
        session_id = uuid.uuid4().hex
        payload: dict[str, Any] = {
            "operator": operator,
            "patient_id": patient_id,
            "skin_type": skin_type,
            "profile_name": profile_name,
            "profile_digest": profile_digest,
            "mode": mode,
            "meta": dict(meta) if meta is not None else {},
        }
        for key in ("operator", "patient_id", "skin_type", "profile_name", "mode"):
            if not isinstance(payload[key], str) or not payload[key]:
                raise SessionLogError(f"start_session: {key} must be a non-empty string")
        text, decoded = _encode_payload(payload)
        t = _check_t_wall(t_wall)
        with self._transaction() as conn:
            event = self._insert_event(conn, session_id, t, KIND_START, text, decoded)
        self._ended[session_id] = False
        return event.session_id

    def append(
        self, session_id: str, kind: str, payload: dict[str, Any], t_wall: float | None = None
    ) -> Event:
        return self.append_many([(session_id, kind, payload, _check_t_wall(t_wall))])[0]

    def append_many(self, items: Sequence[tuple[str, str, dict[str, Any], float]]) -> list[Event]:
        """Append events in order, all in one transaction: all are written or none."""
        prepared: list[tuple[str, str, float, str, dict[str, Any]]] = []
        for session_id, kind, payload, t_wall in items:
            if not isinstance(kind, str) or not kind:
                raise SessionLogError(f"event kind must be a non-empty string, got {kind!r}")
            if kind in _RESERVED_KINDS:
                raise SessionLogError(f"kind {kind!r} is written by the log itself, not append")
            text, decoded = _encode_payload(payload)
            if kind == KIND_END and not isinstance(decoded.get("reason"), str):
                raise SessionLogError("a session_end event needs a string 'reason' in its payload")
            prepared.append((session_id, kind, _check_t_wall(t_wall), text, decoded))
        if not prepared:
            return []
        events: list[Event] = []
        ended_now: set[str] = set()
        with self._transaction() as conn:
            for session_id, kind, t, text, decoded in prepared:
                if session_id in ended_now:
                    raise SessionLogError(f"session {session_id} has already ended")
                self._require_open(conn, session_id)
                events.append(self._insert_event(conn, session_id, t, kind, text, decoded))
                if kind == KIND_END:
                    ended_now.add(session_id)
        for session_id in ended_now:
            self._ended[session_id] = True
        return events

    def append_telemetry(
        self,
        session_id: str,
        t_s: np.ndarray[Any, Any],
        channel: np.ndarray[Any, Any],
        value: np.ndarray[Any, Any],
        t_wall: float | None = None,
    ) -> Event:
        """Write a batch of telemetry rows plus the chained event that vouches for them."""
        t_arr, ch_arr, v_arr = _check_telemetry(t_s, channel, value)
        n = int(t_arr.shape[0])
        payload = {
            "n": n,
            "t_first_s": float(t_arr[0]),
            "t_last_s": float(t_arr[-1]),
            "sha256": telemetry_digest(t_arr, ch_arr, v_arr),
            "format": TELEMETRY_FORMAT,
        }
        text, decoded = _encode_payload(payload)
        t = _check_t_wall(t_wall)
        values_db: list[float | None] = v_arr.tolist()
        if np.isnan(v_arr).any():  # SQLite has no NaN: store NULL (read back as NaN)
            values_db = [None if v != v else v for v in values_db]
        with self._transaction() as conn:
            self._require_open(conn, session_id)
            event = self._insert_event(conn, session_id, t, KIND_TELEMETRY, text, decoded)
            conn.executemany(
                "INSERT INTO telemetry (batch_seq, idx, session_id, t_s, channel, value)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                zip(
                    [event.seq] * n,
                    range(n),
                    [session_id] * n,
                    t_arr.tolist(),
                    ch_arr.tolist(),
                    values_db,
                    strict=True,
                ),
            )
        return event

    def end_session(self, session_id: str, reason: str, t_wall: float | None = None) -> Event:
        return self.append(session_id, KIND_END, {"reason": reason}, t_wall)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._read_only:
            raise SessionLogError(f"session log {self._path} was opened read-only")
        with self._lock:
            conn = self._conn
            if conn is None:
                raise SessionLogError("session log is closed")
            try:
                # IMMEDIATE: take the write lock before reading the chain head.
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise SessionLogError(f"session log write failed: {e}") from e
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as rollback_error:
                    raise SessionLogError(f"session log rollback failed: {rollback_error}") from e
                if isinstance(e, sqlite3.Error):
                    raise SessionLogError(f"session log write failed: {e}") from e
                raise

    def _require_open(self, conn: sqlite3.Connection, session_id: str) -> None:
        ended = self._ended.get(session_id)
        if ended is None:
            rows = conn.execute(
                "SELECT kind FROM events WHERE session_id = ? AND kind IN (?, ?)",
                (session_id, KIND_START, KIND_END),
            ).fetchall()
            kinds = {r[0] for r in rows}
            if KIND_START not in kinds:
                raise SessionLogError(f"no session {session_id!r} in this log")
            ended = KIND_END in kinds
            self._ended[session_id] = ended
        if ended:
            raise SessionLogError(f"session {session_id} has already ended")

    @staticmethod
    def _insert_event(
        conn: sqlite3.Connection,
        session_id: str,
        t_wall: float,
        kind: str,
        text: str,
        decoded: dict[str, Any],
    ) -> Event:
        head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev_hash = (1, GENESIS_HASH) if head is None else (int(head[0]) + 1, str(head[1]))
        digest = event_hash(prev_hash, seq, session_id, t_wall, kind, decoded)
        conn.execute(
            "INSERT INTO events (seq, session_id, t_wall, kind, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, session_id, t_wall, kind, text, prev_hash, digest),
        )
        return Event(seq, session_id, t_wall, kind, decoded, prev_hash, digest)

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection of its own, so reads never hold up the writer."""
        try:
            if self._read_only:
                conn = sqlite3.connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                if self._conn is None:
                    raise SessionLogError("session log is closed")
                conn = sqlite3.connect(self._path)
        except sqlite3.Error as e:
            raise SessionLogError(f"cannot read session log {self._path}: {e}") from e
        try:
            yield conn
        except sqlite3.Error as e:
            raise SessionLogError(f"reading session log {self._path} failed: {e}") from e
        except json.JSONDecodeError as e:
            raise SessionLogError(f"session log {self._path} holds an unreadable event: {e}") from e
        finally:
            conn.close()

    def sessions(self) -> list[SessionInfo]:
        """All sessions, newest first."""
        with self._reader() as conn:
            return self._session_infos(conn, "", ())

    def session(self, session_id: str) -> SessionInfo:
        """One session by its id or a unique prefix of it."""
        if not session_id:
            raise SessionLogError("empty session id")
        with self._reader() as conn:
            exact = self._session_infos(conn, "AND s.session_id = ?", (session_id,))
            if exact:
                return exact[0]
            found = self._session_infos(
                conn, "AND substr(s.session_id, 1, ?) = ?", (len(session_id), session_id)
            )
        if not found:
            raise SessionLogError(f"no session matching {session_id!r}")
        if len(found) > 1:
            ids = ", ".join(s.session_id[:12] for s in found[:5])
            raise SessionLogError(f"session id {session_id!r} is ambiguous: {ids}")
        return found[0]

    @staticmethod
    def _session_infos(
        conn: sqlite3.Connection, where: str, params: tuple[Any, ...]
    ) -> list[SessionInfo]:
        rows = conn.execute(
            "SELECT s.session_id, s.t_wall, s.payload,"
            " (SELECT COUNT(*) FROM events c WHERE c.session_id = s.session_id),"
            " e.t_wall, e.payload"
            " FROM events s LEFT JOIN events e"
            "   ON e.session_id = s.session_id AND e.kind = ?"
            f" WHERE s.kind = ? {where}"
            " ORDER BY s.seq DESC",
            (KIND_END, KIND_START, *params),
        ).fetchall()
        infos = []
        for sid, started, start_text, n_events, ended, end_text in rows:
            start = json.loads(start_text)
            infos.append(
                SessionInfo(
                    session_id=sid,
                    started_at=float(started),
                    ended_at=None if ended is None else float(ended),
                    operator=str(start.get("operator", "")),
                    patient_id=str(start.get("patient_id", "")),
                    skin_type=str(start.get("skin_type", "")),
                    profile_name=str(start.get("profile_name", "")),
                    profile_digest=str(start.get("profile_digest", "")),
                    mode=str(start.get("mode", "")),
                    n_events=int(n_events),
                    end_reason=None
                    if end_text is None
                    else str(json.loads(end_text).get("reason")),
                )
            )
        return infos

    def events(self, session_id: str, kinds: Iterable[str] | None = None) -> list[Event]:
        """A session's events in order (exact id), optionally only some kinds."""
        sql = (
            "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
            " WHERE session_id = ?"
        )
        params: list[Any] = [session_id]
        if kinds is not None:
            kind_list = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kind_list))})" if kind_list else " AND 0"
            params.extend(kind_list)
        with self._reader() as conn:
            self._require_exists(conn, session_id)
            rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [
            Event(int(r[0]), r[1], float(r[2]), r[3], json.loads(r[4]), r[5], r[6]) for r in rows
        ]

    def telemetry(
        self, session_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """(t_s, channel, value) of all the session's telemetry rows, in the order written."""
        with self._reader() as conn:
            self._require_exists(conn, session_id)
            rows = conn.execute(
                "SELECT t_s, channel, value FROM telemetry WHERE session_id = ?"
                " ORDER BY batch_seq, idx",
                (session_id,),
            ).fetchall()
        return _rows_to_arrays(rows)

    @staticmethod
    def _require_exists(conn: sqlite3.Connection, session_id: str) -> None:
        row = conn.execute(
            "SELECT 1 FROM events WHERE kind = ? AND session_id = ?", (KIND_START, session_id)
        ).fetchone()
        if row is None:
            raise SessionLogError(f"no session {session_id!r} in this log")

    # -- verification ----------------------------------------------------------------------

    def verify(self, session_id: str | None = None) -> VerifyResult:
        """Recompute the chain and every telemetry digest.

        With a session id (or unique prefix), the check covers the chain from the event before
        the session's first up to its last, whichever session those events belong to: a gap
        anywhere in that span may have removed this session's events.
        """
        with self._reader() as conn:
            if session_id is None:
                lo, hi, target = 1, None, None
            else:
                target = self.session(session_id).session_id
                lo, hi = conn.execute(
                    "SELECT MIN(seq), MAX(seq) FROM events WHERE session_id = ?", (target,)
                ).fetchone()
            return _verify_span(conn, lo, hi, target)


def _verify_span(
    conn: sqlite3.Connection, lo: int, hi: int | None, target: str | None
) -> VerifyResult:
    n_events = 0
    n_rows = 0
    problems: list[tuple[int, str]] = []
    if lo > 1:
        before = conn.execute("SELECT hash FROM events WHERE seq = ?", (lo - 1,)).fetchone()
        if before is None:
            problems.append((lo - 1, f"event seq {lo - 1} is missing (deleted?)"))
        expected_prev: str | None = None if before is None else str(before[0])
    else:
        expected_prev = GENESIS_HASH
    expected_seq = lo
    rows = conn.execute(
        "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
        " WHERE seq >= ? AND seq <= ? ORDER BY seq",
        (lo, hi if hi is not None else 2**62),
    )
    telemetry_batches: list[tuple[int, str, dict[str, Any]]] = []
    for seq, sid, t_wall, kind, text, prev_hash, stored_hash in rows:
        if target is None or sid == target:
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
            if kind == KIND_TELEMETRY and (target is None or sid == target):
                telemetry_batches.append((seq, sid, payload))
        expected_prev = stored_hash
        expected_seq = seq + 1
        if problems:
            break  # everything after the first break is reported by its seq only

    for seq, sid, payload in telemetry_batches:
        if problems and seq > problems[0][0]:
            break
        batch = conn.execute(
            "SELECT t_s, channel, value, session_id FROM telemetry WHERE batch_seq = ?"
            " ORDER BY idx",
            (seq,),
        ).fetchall()
        n_rows += len(batch)
        t_arr, ch_arr, v_arr = _rows_to_arrays([r[:3] for r in batch])
        if len(batch) != payload.get("n") or any(r[3] != sid for r in batch):
            problems.append((seq, f"telemetry batch at seq {seq}: rows added or removed"))
        elif telemetry_digest(t_arr, ch_arr, v_arr) != payload.get("sha256"):
            problems.append((seq, f"telemetry batch at seq {seq}: rows do not match digest"))

    # Rows that no telemetry_batch event vouches for were inserted behind the log's back.
    span_sql = "batch_seq >= ?" + (" AND batch_seq <= ?" if hi is not None else "")
    span_params: tuple[Any, ...] = (lo, hi) if hi is not None else (lo,)
    orphan = conn.execute(
        "SELECT MIN(t.batch_seq) FROM telemetry t LEFT JOIN events e"
        "   ON e.seq = t.batch_seq AND e.kind = ? AND e.session_id = t.session_id"
        f" WHERE e.seq IS NULL AND t.{span_sql}",
        (KIND_TELEMETRY, *span_params),
    ).fetchone()[0]
    if orphan is not None:
        problems.append((int(orphan), f"telemetry rows at batch {orphan} have no batch event"))

    if problems:
        seq, reason = min(problems)
        return VerifyResult(False, n_events, n_rows, seq, reason)
    return VerifyResult(True, n_events, n_rows, None, "chain intact")


def _check_telemetry(
    t_s: np.ndarray[Any, Any], channel: np.ndarray[Any, Any], value: np.ndarray[Any, Any]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
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


def _rows_to_arrays(
    rows: Sequence[Sequence[Any]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    n = len(rows)
    t_arr = np.fromiter((r[0] for r in rows), dtype=np.float64, count=n)
    ch_arr = np.fromiter((r[1] for r in rows), dtype=np.int32, count=n)
    v_arr = np.fromiter((np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64, count=n)
    return t_arr, ch_arr, v_arr
