"""Append-only, tamper-evident session log in one SQLite file.

Every record is an event in a single hash chain that spans all sessions in the file::

    hash = sha256(prev_hash || canonical_json({seq, session_id, t_wall, kind, payload}))

so editing, inserting or deleting any event (or a whole session) breaks the chain at a
known ``seq``. Telemetry rows live in their own table and are covered by the chain through
one ``telemetry_batch`` event per batch that carries the row count and the sha256 of the
rows' canonical bytes (``monitor.record.chain``).

Session metadata is not stored in a separate, mutable table: a session *is* its
``session_start`` event (who, which patient, which profile and digest, mode) plus its
``session_end`` event, so everything a report shows is under the chain.

A session whose process died never gets its ``session_end`` from that process. The next
writer to open the file marks it: a chained ``session_interrupted`` event (when it was last
heard from) and a ``session_end`` with the reason ``INTERRUPTED_REASON``. A session that
another process is still writing is left alone (``monitor.record.open_sessions``).

The database itself refuses UPDATE and DELETE (triggers); ``verify`` still catches edits made
by someone who drops the triggers, and damage to the file itself (``monitor.record.verify``).
What a chain alone cannot show is truncation of the newest events: keep the head hash from
``verify`` somewhere else if that matters.

Every payload is bounded before it is hashed (``log_format.bound_payload``): no caller, and
no device whose words end up in a payload, can make one record large.

File formats (``PRAGMA user_version``): 2, telemetry rows keyed by their batch only (WITHOUT
ROWID, no secondary index); 0, the first format, whose rows also carried their session id
and had an index by session. Both are read and verified; a format-0 file is appended to in
its own format.

Exceptions::

    SessionLogError        any failure to open, write or read; sqlite3 errors kept as __cause__
    └── SessionLogDamaged  the file or its chain fails verification: nothing is shown from it

Durability: WAL journal with ``synchronous=FULL``; each append commits before it returns, so
a killed process or a power cut loses nothing that was reported written.
"""

from __future__ import annotations

import json
import os
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

from monitor.record.chain import (
    GENESIS_HASH,
    TELEMETRY_FORMAT,
    bound_payload,
    canonical_json,
    event_hash,
    telemetry_digest,
)
from monitor.record.open_sessions import OpenSessionLocks
from monitor.record.verify import (
    Event,
    VerifyResult,
    damaged_result,
    integrity_problems,
    integrity_reason,
    rows_to_arrays,
    walk_span,
)

__all__ = [
    "GENESIS_HASH",
    "INTERRUPTED_REASON",
    "Event",
    "SessionInfo",
    "SessionLog",
    "SessionLogDamaged",
    "SessionLogError",
    "SessionRecord",
    "VerifyResult",
    "canonical_json",
    "event_hash",
    "telemetry_digest",
]

KIND_START = "session_start"
KIND_END = "session_end"
KIND_TELEMETRY = "telemetry_batch"
KIND_INTERRUPTED = "session_interrupted"
INTERRUPTED_REASON = "interrupted (process ended without closing the session)"
# Only the log itself may create the structural kinds that sessions() and verify() rely on.
_RESERVED_KINDS = frozenset({KIND_START, KIND_TELEMETRY, KIND_INTERRUPTED})
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
FORMAT_VERSION = 2
# Clinic text (aftercare instructions, attestations) is a few hundred characters; nothing a
# person writes for a record needs more. Device words are bounded tighter by the LogWriter.
DEFAULT_MAX_FIELD_CHARS = 4096

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
-- A row's session is its batch event's session: not repeated in every row.
CREATE TABLE IF NOT EXISTS telemetry (
    batch_seq  INTEGER NOT NULL,  -- seq of the telemetry_batch event that vouches for it
    idx        INTEGER NOT NULL,
    t_s        REAL    NOT NULL,
    channel    INTEGER NOT NULL,
    value      REAL,  -- NULL stands for NaN (SQLite cannot store NaN)
    PRIMARY KEY (batch_seq, idx)
) WITHOUT ROWID;
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


class SessionLogDamaged(SessionLogError):
    """The file or its chain fails verification; nothing may be shown from it as if whole."""


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
    """One whole session, read along the verified chain (``SessionLog.read_verified``)."""

    info: SessionInfo
    events: list[Event]
    t_s: npt.NDArray[np.float64]
    channel: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]


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


def _sqlite_error(path: Path, e: sqlite3.Error, doing: str) -> SessionLogError:
    """One sentence for an sqlite3 error; damage to the file is its own kind."""
    name = str(getattr(e, "sqlite_errorname", ""))
    if name.startswith("SQLITE_CORRUPT"):
        return SessionLogDamaged(f"session log {path} is damaged ({e}); restore it from a backup")
    if name == "SQLITE_NOTADB":
        return SessionLogError(f"{path} is not an SQLite database, so not a session log")
    return SessionLogError(f"{doing} session log {path} failed: {e}")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _rows_carry_session(conn: sqlite3.Connection) -> bool:
    """True for the first file format, whose telemetry rows name their session."""
    return any(r[1] == "session_id" for r in conn.execute("PRAGMA table_info(telemetry)"))


class SessionLog:
    """The session store. Writes come from one thread at a time; reads may come from any."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        max_field_chars: int | None = None,
    ) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._max_field_chars = max_field_chars or DEFAULT_MAX_FIELD_CHARS
        # Reentrant: the appends inside a batch() take it again on the same thread.
        self._lock = threading.RLock()
        self._in_transaction = False
        self._pending_end: set[str] = set()  # ended in the open transaction, not yet committed
        self._ended: dict[str, bool] = {}  # session_id -> ended, for sessions seen by this writer
        self._conn: sqlite3.Connection | None = None
        self._locks = OpenSessionLocks(self._path)
        self._rows_carry_session = False
        #: Sessions this writer found with a dead writer and marked interrupted on opening.
        self.interrupted: list[str] = []
        if read_only:
            if not self._path.is_file():
                raise SessionLogError(f"no session log at {self._path}")
            # Fail now, not on first read, if the file is not a readable log.
            with self._reader() as conn:
                conn.execute("SELECT seq FROM events LIMIT 1").fetchall()
            return
        try:
            self._open_for_writing()
            self._mark_interrupted()
        except sqlite3.Error as e:
            self._close_quietly()
            raise _sqlite_error(self._path, e, "opening for writing the") from e
        except OSError as e:
            self._close_quietly()
            raise SessionLogError(
                f"cannot open session log {self._path} for writing: {e.strerror or e}"
            ) from e
        except SessionLogError:
            self._close_quietly()
            raise

    def _open_for_writing(self) -> None:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        self._conn = conn
        tables = _tables(conn)
        if tables and "events" not in tables:
            raise SessionLogError(
                f"{self._path} is an SQLite database but not a LaserGuard session log;"
                " refusing to write into it"
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SessionLogError(f"could not put {self._path} in WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        if not tables:
            conn.executescript(_SCHEMA + f"PRAGMA user_version = {FORMAT_VERSION};")
        else:
            conn.executescript(_SCHEMA)  # a table or trigger someone dropped comes back
        self._rows_carry_session = _rows_carry_session(conn)
        # A write-protected file opens "successfully" and even grants the write lock;
        # only writing a page tells the truth. Rolled back, so the file is unchanged.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE laserguard_write_probe (x INTEGER)")
        finally:
            conn.execute("ROLLBACK")

    def _mark_interrupted(self) -> None:
        """End every open session whose writer is gone, in the chain, saying so."""
        assert self._conn is not None
        open_ids = [
            r[0]
            for r in self._conn.execute(
                "SELECT s.session_id FROM events s WHERE s.kind = ? AND NOT EXISTS"
                " (SELECT 1 FROM events e WHERE e.session_id = s.session_id AND e.kind = ?)"
                " ORDER BY s.seq",
                (KIND_START, KIND_END),
            )
        ]
        for sid in open_ids:
            fd = self._locks.claim_orphan(sid)
            if fd is None:
                continue  # another writer holds it: that session is alive
            try:
                self._interrupt(sid)
            finally:
                self._locks.release(sid, fd)

    def _interrupt(self, session_id: str) -> None:
        now = time.time()
        with self._transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM events WHERE session_id = ? AND kind = ?", (session_id, KIND_END)
            ).fetchone():
                return  # someone else marked it between our query and our lock
            last_seq, last_t = conn.execute(
                "SELECT seq, t_wall FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            for kind, payload in (
                (
                    KIND_INTERRUPTED,
                    {
                        "reason": "the process writing this session ended without closing it",
                        "last_event_seq": int(last_seq),
                        "last_event_t_wall": float(last_t),
                        "noticed_by_pid": os.getpid(),
                    },
                ),
                (KIND_END, {"reason": INTERRUPTED_REASON}),
            ):
                text, decoded = _encode_payload(payload, self._max_field_chars)
                self._insert_event(conn, session_id, now, kind, text, decoded)
        self._ended[session_id] = True
        self.interrupted.append(session_id)

    @property
    def path(self) -> Path:
        return self._path

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self._locks.close()  # sessions left open are interrupted, for the next writer
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                raise SessionLogError(f"closing session log failed: {e}") from e

    def _close_quietly(self) -> None:
        # Only used while construction is already failing with a more useful error.
        self._locks.close()
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
        text, decoded = _encode_payload(payload, self._max_field_chars)
        t = _check_t_wall(t_wall)
        if self._read_only:
            raise SessionLogError(f"session log {self._path} was opened read-only")
        try:
            # Held before the start is visible to anyone: a live session is never "orphaned".
            self._locks.hold(session_id)
        except OSError as e:
            raise SessionLogError(
                f"cannot lock the new session in {self._locks.folder}: {e}"
            ) from e
        try:
            with self._transaction() as conn:
                event = self._insert_event(conn, session_id, t, KIND_START, text, decoded)
        except BaseException:
            self._locks.release(session_id)
            raise
        self._ended[session_id] = False
        return event.session_id

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
        with self._transaction() as conn:
            for session_id, kind, t, text, decoded in prepared:
                self._require_open(conn, session_id)
                events.append(self._insert_event(conn, session_id, t, kind, text, decoded))
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
        text, decoded = _encode_payload(payload, self._max_field_chars)
        t = _check_t_wall(t_wall)
        values_db: list[float | None] = v_arr.tolist()
        if np.isnan(v_arr).any():  # SQLite has no NaN: store NULL (read back as NaN)
            values_db = [None if v != v else v for v in values_db]
        with self._transaction() as conn:
            self._require_open(conn, session_id)
            event = self._insert_event(conn, session_id, t, KIND_TELEMETRY, text, decoded)
            columns: list[Iterable[Any]] = [[event.seq] * n, range(n)]
            sql = "INSERT INTO telemetry (batch_seq, idx, t_s, channel, value) VALUES (?,?,?,?,?)"
            if self._rows_carry_session:
                columns.append([session_id] * n)
                sql = (
                    "INSERT INTO telemetry (batch_seq, idx, session_id, t_s, channel, value)"
                    " VALUES (?,?,?,?,?,?)"
                )
            conn.executemany(
                sql, zip(*columns, t_arr.tolist(), ch_arr.tolist(), values_db, strict=True)
            )
        return event

    def end_session(self, session_id: str, reason: str, t_wall: float | None = None) -> Event:
        return self.append(session_id, KIND_END, {"reason": reason}, t_wall)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every append inside one transaction: one commit (one fsync), all or none.

        Only the thread that opened the batch may append inside it; others wait for it.
        """
        with self._transaction():
            yield

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._read_only:
            raise SessionLogError(f"session log {self._path} was opened read-only")
        with self._lock:
            conn = self._conn
            if conn is None:
                raise SessionLogError("session log is closed")
            if self._in_transaction:  # inside batch(): the outer transaction commits
                yield conn
                return
            try:
                # IMMEDIATE: take the write lock before reading the chain head.
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise _sqlite_error(self._path, e, "writing the") from e
            self._in_transaction = True
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                self._pending_end.clear()
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as rollback_error:
                    raise SessionLogError(f"session log rollback failed: {rollback_error}") from e
                if isinstance(e, sqlite3.Error):
                    raise _sqlite_error(self._path, e, "writing the") from e
                raise
            finally:
                self._in_transaction = False
            ended, self._pending_end = self._pending_end, set()
        for session_id in ended:  # committed: these sessions are over
            self._ended[session_id] = True
            self._locks.release(session_id)

    def _require_open(self, conn: sqlite3.Connection, session_id: str) -> None:
        if session_id in self._pending_end:
            raise SessionLogError(f"session {session_id} has already ended")
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
            raise _sqlite_error(self._path, e, "opening the") from e
        try:
            if "events" not in _tables(conn):
                raise SessionLogError(
                    f"{self._path} is an SQLite database but not a LaserGuard session log"
                    " (it has no events table)"
                )
            yield conn
        except sqlite3.Error as e:
            raise _sqlite_error(self._path, e, "reading the") from e
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

    def start_events(self) -> list[Event]:
        """Every session's ``session_start`` event (with its meta), newest first."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
                " WHERE kind = ? ORDER BY seq DESC",
                (KIND_START,),
            ).fetchall()
        return [_event(r) for r in rows]

    def latest_event(self, session_id: str, kinds: Iterable[str]) -> Event | None:
        """The session's newest event of one of ``kinds``, or None."""
        kind_list = list(kinds)
        with self._reader() as conn:
            row = conn.execute(
                "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
                f" WHERE session_id = ? AND kind IN ({','.join('?' * len(kind_list))})"
                " ORDER BY seq DESC LIMIT 1",
                (session_id, *kind_list),
            ).fetchone()
        return None if row is None else _event(row)

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
        return [_event(r) for r in rows]

    def telemetry(
        self, session_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """(t_s, channel, value) of all the session's telemetry rows, in the order written.

        A quick read for a running session; ``read_verified`` is the read for a report.
        """
        with self._reader() as conn:
            self._require_exists(conn, session_id)
            rows = conn.execute(
                "SELECT t.t_s, t.channel, t.value FROM events e"
                " JOIN telemetry t ON t.batch_seq = e.seq"
                " WHERE e.session_id = ? AND e.kind = ? ORDER BY t.batch_seq, t.idx",
                (session_id, KIND_TELEMETRY),
            ).fetchall()
        return rows_to_arrays(rows)

    @staticmethod
    def _require_exists(conn: sqlite3.Connection, session_id: str) -> None:
        row = conn.execute(
            "SELECT 1 FROM events WHERE kind = ? AND session_id = ?", (KIND_START, session_id)
        ).fetchone()
        if row is None:
            raise SessionLogError(f"no session {session_id!r} in this log")

    # -- verification ----------------------------------------------------------------------

    @staticmethod
    def _span_of(conn: sqlite3.Connection, session_id: str) -> tuple[int, int, int]:
        """(number of events, first seq, last seq) of a session, read without any index."""
        n, lo, hi = conn.execute(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events NOT INDEXED WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if not n:
            raise SessionLogDamaged(
                f"session {session_id} is listed by an index but has no events in the table:"
                " the file is damaged"
            )
        return int(n), int(lo), int(hi)

    def verify(self, session_id: str | None = None) -> VerifyResult:
        """Check the file's integrity, the chain and every telemetry batch.

        With a session id (or unique prefix), the chain is checked from the event before the
        session's first up to its last, whichever session those events belong to: a gap
        anywhere in that span may have removed this session's events. The file's integrity
        is always checked whole.
        """
        try:
            with self._reader() as conn:
                problems = integrity_problems(conn)
                if problems:
                    return damaged_result(integrity_reason(problems))
                if session_id is None:
                    lo, hi, target = 1, None, None
                else:
                    target = self.session(session_id).session_id
                    _, lo, hi = self._span_of(conn, target)
                result, _ = walk_span(
                    conn, lo, hi, target, rows_carry_session=_rows_carry_session(conn)
                )
                return result
        except SessionLogDamaged as e:
            return damaged_result(str(e))

    def read_verified(self, session_id: str) -> SessionRecord:
        """One whole session for a report, read along its chain span and checked as read.

        The events and telemetry returned are the ones whose hashes and digests were just
        recomputed, read from the tables themselves. Raises ``SessionLogDamaged`` if any of
        it fails, or if an index disagrees with the tables about this session (which events
        it has, how it ended): a report never shows part of a session as if it were whole.

        Costs one scan of the events table plus the session's span; unlike ``verify`` it
        does not check the rest of the file.
        """
        indexed = self.session(session_id)
        sid = indexed.session_id
        with self._reader() as conn:
            _, lo, hi = self._span_of(conn, sid)
            result, data = walk_span(
                conn, lo, hi, sid, rows_carry_session=_rows_carry_session(conn), collect=True
            )
            if not result.ok:
                raise SessionLogDamaged(
                    f"session {sid[:8]} fails verification at seq {result.first_bad_seq}:"
                    f" {result.reason}"
                )
            walked = [e.seq for e in data.events]
            by_session = [
                int(r[0])
                for r in conn.execute(
                    "SELECT seq FROM events INDEXED BY events_by_session"
                    " WHERE session_id = ? ORDER BY seq",
                    (sid,),
                )
            ]
            kinds = sorted({e.kind for e in data.events})
            by_kind = sorted(
                int(r[0])
                for r in conn.execute(
                    "SELECT seq FROM events INDEXED BY events_by_kind"
                    f" WHERE session_id = ? AND kind IN ({','.join('?' * len(kinds))})",
                    (sid, *kinds),
                )
            )
        info = _info_from_events(data.events)
        if by_session != walked or by_kind != walked or info != indexed:
            raise SessionLogDamaged(
                f"the session log {self._path} is damaged: its indexes disagree with its"
                f" tables about session {sid[:8]} (run `laserguard sessions verify`)"
            )
        return SessionRecord(info, data.events, *data.telemetry())


def _info_from_events(events: list[Event]) -> SessionInfo:
    """A session's summary from its own events (what the chain says, not an index)."""
    start = events[0].payload
    end = next((e for e in events if e.kind == KIND_END), None)
    return SessionInfo(
        session_id=events[0].session_id,
        started_at=events[0].t_wall,
        ended_at=None if end is None else end.t_wall,
        operator=str(start.get("operator", "")),
        patient_id=str(start.get("patient_id", "")),
        skin_type=str(start.get("skin_type", "")),
        profile_name=str(start.get("profile_name", "")),
        profile_digest=str(start.get("profile_digest", "")),
        mode=str(start.get("mode", "")),
        n_events=len(events),
        end_reason=None if end is None else str(end.payload.get("reason")),
    )


def _event(r: Sequence[Any]) -> Event:
    return Event(int(r[0]), r[1], float(r[2]), r[3], json.loads(r[4]), r[5], r[6])


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
