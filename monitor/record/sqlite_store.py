"""The session log in one SQLite file: ``SqliteStore``, and ``SessionLog`` that chains over it.

``SqliteStore`` is SQL and nothing else: two tables, their indexes, the append-only
triggers, transactions, and the conversion of ``sqlite3`` errors at this one boundary. What
the rows mean (the hash chain, telemetry digests, verification, channel maps) is
``monitor.record.chain_log`` and ``verify``, which work on any ``Store``.

The database refuses UPDATE and DELETE (triggers); ``verify`` still catches edits made by
someone who drops the triggers, and damage to the file itself.

File formats (``PRAGMA user_version``): 2, telemetry rows keyed by their batch only (WITHOUT
ROWID, no secondary index); 0, the first format, whose rows also carried their session id
and had an index by session. Both are read and verified; a format-0 file is appended to in
its own format. Sessions' channel maps live in their chained start events, so recording
them changed no table: files written before maps were recorded are the same format.

Durability: WAL journal with ``synchronous=FULL``; each transaction commits before it
returns, so a killed process or a power cut loses nothing that was reported written.

Which open sessions still have a live writer: lock files beside the database
(``monitor.record.open_sessions``).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.record.anchor import AnchorSpec, HeadAnchor
from monitor.record.chain import (
    GENESIS_HASH,
    KIND_END,
    KIND_START,
    KIND_TELEMETRY,
    canonical_json,
    event_hash,
    telemetry_digest,
)
from monitor.record.chain_log import (
    INTERRUPTED_REASON,
    ChainLog,
    SessionInfo,
    SessionRecord,
)
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.open_sessions import OpenSessionLocks
from monitor.record.recorder import LogRecorder
from monitor.record.store import (
    SessionRow,
    StoredEvent,
    TelemetryArrays,
    TelemetryRows,
)
from monitor.record.verify import Event, VerifyResult

__all__ = [
    "GENESIS_HASH",
    "INTERRUPTED_REASON",
    "KIND_END",
    "Event",
    "SessionInfo",
    "SessionLog",
    "SessionLogDamaged",
    "SessionLogError",
    "SessionRecord",
    "SqliteStore",
    "VerifyResult",
    "canonical_json",
    "event_hash",
    "telemetry_digest",
]

FORMAT_VERSION = 2

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

_EVENT_COLUMNS = "seq, session_id, t_wall, kind, payload, prev_hash, hash"


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


def _stored(r: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        int(r[0]), str(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])
    )


def _arrays(rows: list[Any]) -> TelemetryArrays:
    """(t_s, channel, value) from rows whose last three fields are those; NULL is NaN."""
    n = len(rows)
    t_arr = np.fromiter((r[-3] for r in rows), dtype=np.float64, count=n)
    ch_arr = np.fromiter((r[-2] for r in rows), dtype=np.int32, count=n)
    v_arr = np.fromiter((np.nan if r[-1] is None else r[-1] for r in rows), np.float64, count=n)
    return t_arr, ch_arr, v_arr


_ROW = np.dtype(
    [
        ("batch_seq", "<i8"), ("idx", "<i8"), ("t_s", "<f8"), ("channel", "<i4"),
        ("is_null", "u1"), ("value", "<f8"),
    ]
)  # fmt: skip


def _batches_at_once(rows: Iterable[Any]) -> Iterator[TelemetryRows]:
    """Rows (batch_seq, idx, t_s, channel, value IS NULL, IFNULL(value, 0)) grouped by batch,
    converted in one C loop instead of one Python call per row per column (verification and
    the shipper read every row of a log this way). NULL is NaN: SQLite cannot store NaN."""
    arr = np.fromiter(rows, dtype=_ROW)
    if arr.shape[0] == 0:
        return
    arr["value"][arr["is_null"] != 0] = np.nan
    cuts = np.flatnonzero(np.diff(arr["batch_seq"])) + 1
    for part in np.split(arr, cuts):
        yield TelemetryRows(
            int(part["batch_seq"][0]),
            part["idx"].copy(),
            None,
            part["t_s"].copy(),
            part["channel"].copy(),
            part["value"].copy(),
        )


def _in(values: Sequence[str]) -> str:
    return f"IN ({','.join('?' * len(values))})"


class _Reader:
    """The ``StoreReader`` (and, on the write connection, ``StoreWriter``) over one connection."""

    def __init__(self, conn: sqlite3.Connection, rows_carry_session: bool) -> None:
        self._conn = conn
        self._rows_carry_session = rows_carry_session

    def head(self) -> tuple[int, str] | None:
        row = self._conn.execute(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def sessions(self, session_id: str | None = None, *, prefix: bool = False) -> list[SessionRow]:
        where = ""
        params: tuple[Any, ...] = ()
        if session_id is not None and prefix:
            where, params = "AND substr(s.session_id, 1, ?) = ?", (len(session_id), session_id)
        elif session_id is not None:
            where, params = "AND s.session_id = ?", (session_id,)
        rows = self._conn.execute(
            f"SELECT {', '.join('s.' + c for c in _EVENT_COLUMNS.split(', '))},"
            " (SELECT COUNT(*) FROM events c WHERE c.session_id = s.session_id),"
            f" {', '.join('e.' + c for c in _EVENT_COLUMNS.split(', '))}"
            " FROM events s LEFT JOIN events e"
            "   ON e.session_id = s.session_id AND e.kind = ?"
            f" WHERE s.kind = ? {where}"
            " ORDER BY s.seq DESC",
            (KIND_END, KIND_START, *params),
        ).fetchall()
        return [
            SessionRow(_stored(r[:7]), None if r[8] is None else _stored(r[8:]), int(r[7]))
            for r in rows
        ]

    def events(self, session_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE session_id = ?"
        params: list[Any] = [session_id]
        if kinds is not None:
            sql += f" AND kind {_in(kinds)}" if kinds else " AND 0"
            params.extend(kinds)
        return [_stored(r) for r in self._conn.execute(sql + " ORDER BY seq", params)]

    def latest(self, session_id: str, kinds: Sequence[str] | None = None) -> StoredEvent | None:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE session_id = ?"
        if kinds is not None:
            sql += f" AND kind {_in(kinds)}"
        row = self._conn.execute(
            sql + " ORDER BY seq DESC LIMIT 1", (session_id, *(kinds or ()))
        ).fetchone()
        return None if row is None else _stored(row)

    def events_of_kind(self, kind: str) -> list[StoredEvent]:
        rows = self._conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE kind = ? ORDER BY seq DESC", (kind,)
        )
        return [_stored(r) for r in rows]

    def telemetry(self, session_id: str) -> TelemetryArrays:
        rows = self._conn.execute(
            "SELECT t.t_s, t.channel, t.value FROM events e"
            " JOIN telemetry t ON t.batch_seq = e.seq"
            " WHERE e.session_id = ? AND e.kind = ? ORDER BY t.batch_seq, t.idx",
            (session_id, KIND_TELEMETRY),
        ).fetchall()
        return _arrays(rows)

    def lookup_seqs(self, session_id: str, kinds: Sequence[str] | None = None) -> list[int]:
        if kinds is None:
            sql = (
                "SELECT seq FROM events INDEXED BY events_by_session"
                " WHERE session_id = ? ORDER BY seq"
            )
        else:
            sql = (
                "SELECT seq FROM events INDEXED BY events_by_kind"
                f" WHERE session_id = ? AND kind {_in(kinds)} ORDER BY seq"
            )
        return [int(r[0]) for r in self._conn.execute(sql, (session_id, *(kinds or ())))]

    # The rows themselves: NOT INDEXED, never trust an index to say which rows exist.

    def span(self, session_id: str) -> tuple[int, int, int] | None:
        n, lo, hi = self._conn.execute(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events NOT INDEXED WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        return None if not n else (int(n), int(lo), int(hi))

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]:
        # seq is the rowid: this is the table itself, in its own order.
        rows = self._conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq",
            (lo, hi),
        )
        return (_stored(r) for r in rows)

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]:
        # The current format is a WITHOUT ROWID table whose primary key *is* the table, so
        # this is still a range read.
        if not self._rows_carry_session:
            yield from _batches_at_once(
                self._conn.execute(
                    "SELECT batch_seq, idx, t_s, channel, value IS NULL, IFNULL(value, 0.0)"
                    " FROM telemetry NOT INDEXED WHERE batch_seq >= ? AND batch_seq <= ?"
                    " ORDER BY batch_seq, idx",
                    (lo, hi),
                )
            )
            return
        rows = self._conn.execute(
            "SELECT batch_seq, idx, session_id, t_s, channel, value FROM telemetry NOT INDEXED"
            " WHERE batch_seq >= ? AND batch_seq <= ? ORDER BY batch_seq, idx",
            (lo, hi),
        )
        for batch_seq, group in itertools.groupby(rows, key=lambda r: int(r[0])):
            batch = list(group)
            idx = np.fromiter((r[1] for r in batch), dtype=np.int64, count=len(batch))
            sids = tuple(str(r[2]) for r in batch) if self._rows_carry_session else None
            yield TelemetryRows(batch_seq, idx, sids, *_arrays(batch))

    def integrity_problems(self) -> list[str]:
        rows = [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check(100)").fetchall()]
        return [] if rows == ["ok"] else rows

    # Writing (only on the write connection, inside SqliteStore.writing()).

    def insert_event(self, event: StoredEvent) -> None:
        self._conn.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.seq,
                event.session_id,
                event.t_wall,
                event.kind,
                event.payload_text,
                event.prev_hash,
                event.hash,
            ),
        )

    def insert_telemetry(
        self,
        batch_seq: int,
        session_id: str,
        t_s: npt.NDArray[np.float64],
        channel: npt.NDArray[np.int32],
        value: npt.NDArray[np.float64],
    ) -> None:
        n = int(t_s.shape[0])
        values_db: list[float | None] = value.tolist()
        if np.isnan(value).any():  # SQLite has no NaN: store NULL (read back as NaN)
            values_db = [None if v != v else v for v in values_db]
        columns: list[Iterable[Any]] = [[batch_seq] * n, range(n)]
        sql = "INSERT INTO telemetry (batch_seq, idx, t_s, channel, value) VALUES (?,?,?,?,?)"
        if self._rows_carry_session:
            columns.append([session_id] * n)
            sql = (
                "INSERT INTO telemetry (batch_seq, idx, session_id, t_s, channel, value)"
                " VALUES (?,?,?,?,?,?)"
            )
        self._conn.executemany(
            sql, zip(*columns, t_s.tolist(), channel.tolist(), values_db, strict=True)
        )


class SqliteStore:
    """One SQLite file. One writing connection, held open; a short-lived one per read."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._write_lock = threading.Lock()
        self._rows_carry_session = False
        if read_only:
            if not self._path.is_file():
                raise SessionLogError(f"no session log at {self._path}")
            # Fail now, not on first read, if the file is not a readable log.
            with self.reading() as r:
                r.head()
            return
        try:
            self._open_for_writing()
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

    def _close_quietly(self) -> None:
        # Only used while construction is already failing with a more useful error.
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def name(self) -> str:
        return str(self._path)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def open_locks(self) -> OpenSessionLocks:
        return OpenSessionLocks(self._path)

    def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                raise SessionLogError(f"closing session log failed: {e}") from e

    @contextmanager
    def reading(self) -> Iterator[_Reader]:
        """A short-lived connection of its own, so reads never hold up the writer."""
        if self._closed:
            raise SessionLogError("session log is closed")
        try:
            if self._read_only:
                conn = sqlite3.connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                conn = sqlite3.connect(self._path)
        except sqlite3.Error as e:
            raise _sqlite_error(self._path, e, "opening the") from e
        try:
            if "events" not in _tables(conn):
                raise SessionLogError(
                    f"{self._path} is an SQLite database but not a LaserGuard session log"
                    " (it has no events table)"
                )
            yield _Reader(conn, _rows_carry_session(conn))
        except sqlite3.Error as e:
            raise _sqlite_error(self._path, e, "reading the") from e
        finally:
            conn.close()

    @contextmanager
    def writing(self) -> Iterator[_Reader]:
        if self._read_only:
            raise SessionLogError(f"session log {self._path} was opened read-only")
        with self._write_lock:
            conn = self._conn
            if conn is None:
                raise SessionLogError("session log is closed")
            try:
                # IMMEDIATE: take the write lock before reading the chain head.
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise _sqlite_error(self._path, e, "writing the") from e
            try:
                yield _Reader(conn, self._rows_carry_session)
                conn.execute("COMMIT")
            except BaseException as e:
                # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): a
                # second ROLLBACK would fail and hide why the write failed (a full disk).
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error as rollback_error:
                        raise SessionLogError(
                            f"session log rollback failed: {rollback_error}"
                        ) from e
                if isinstance(e, sqlite3.Error):
                    raise _sqlite_error(self._path, e, "writing the") from e
                raise


class SessionLog(ChainLog):
    """The session log in one SQLite file: the chain (``ChainLog``) over a ``SqliteStore``."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        max_field_chars: int | None = None,
        anchor: HeadAnchor | None = None,
    ) -> None:
        self._sqlite = SqliteStore(path, read_only=read_only)
        super().__init__(self._sqlite, max_field_chars=max_field_chars, anchor=anchor)

    @property
    def path(self) -> Path:
        return self._sqlite.path


def open_recorder(
    path: str | Path,
    *,
    max_field_chars: int | None = None,
    anchor: HeadAnchor | None = None,
    log_process: bool = False,
    realtime: bool = False,
) -> LogRecorder:
    """A recorder over the SQLite session log at ``path`` (made if missing), closed with it.

    With ``anchor``, a log behind its signed checkpoints is refused (``LogBehindCheckpoint``)
    and the head is checkpointed as the session is written. With ``log_process``, the
    session's events and telemetry are written by a process of its own
    (``monitor.record.writer_process``), which opens the same file; the anchor, if any, must
    come from ``anchor_for`` (that process makes its own from the same key). ``realtime``: a
    real-time session's (its log's process then runs at a real-time priority too)."""
    log = SessionLog(path, max_field_chars=max_field_chars, anchor=anchor)
    if not log_process:
        return LogRecorder(log, owns_log=True)
    try:
        opener = writing_opener(log, max_field_chars=max_field_chars, anchor=anchor)
    except BaseException:
        log.close()
        raise
    return LogRecorder(log, owns_log=True, log_process=opener, log_process_realtime=realtime)


def writing_opener(
    log: SessionLog, *, max_field_chars: int | None = None, anchor: HeadAnchor | None = None
) -> Callable[[], ChainLog]:
    """How another process opens ``log`` for writing, with the same anchor (picklable)."""
    spec = None
    if anchor is not None:
        spec = anchor.spec
        if spec is None:
            raise ValueError(
                "an anchor not made by anchor_for cannot be handed to the session log's process"
            )
    return functools.partial(_open_for_writing, log.path, max_field_chars, spec)


def _open_for_writing(
    path: Path, max_field_chars: int | None, anchor: AnchorSpec | None
) -> SessionLog:
    return SessionLog(
        path, max_field_chars=max_field_chars, anchor=None if anchor is None else anchor.open()
    )
