"""One bridge's chain in the fleet store, as a read-only ``Store``: the record's own readers
(``ChainLog``, the clinic records, the certificates, the clinic summary) run on it unchanged.

``monitor.record.store`` says a PostgreSQL store is one more implementation of its protocols;
this is that implementation, for reading. Every reading is one REPEATABLE READ snapshot (a
shipment committing meanwhile is not half seen), and the scans are ``FleetChainReader``'s, so
verification reads the same stored rows ``laserguard fleet verify`` reads. Nothing writes
through it: the only way into the fleet store stays ``FleetStore.receive``.

A database that goes away raises ``FleetUnreachable`` (never ``SessionLogError``): a store
that cannot be reached is not a damaged log, and the console says "try again" (503), not
"this record fails verification".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import psycopg

from monitor.fleet.errors import FleetError, FleetUnreachable, one_line
from monitor.fleet.store import _EVENT_COLUMNS, FleetChainReader
from monitor.record.chain import KIND_END, KIND_START, KIND_TELEMETRY
from monitor.record.errors import SessionLogError
from monitor.record.store import (
    SessionRow,
    StoredEvent,
    StoreWriter,
    TelemetryArrays,
    TelemetryRows,
)

__all__ = ["FleetBridgeStore", "open_reading_connection"]


def open_reading_connection(dsn: str, *, connect_timeout_s: int = 5) -> psycopg.Connection[Any]:
    """A read-only connection whose every transaction is one snapshot."""
    try:
        conn = psycopg.connect(dsn, connect_timeout=connect_timeout_s)
    except psycopg.OperationalError as e:
        raise FleetUnreachable(f"cannot reach the fleet store: {one_line(e)}".strip()) from e
    except psycopg.Error as e:
        raise FleetError(f"cannot open the fleet store: {one_line(e)}") from e
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def _stored(r: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        int(r[0]), str(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])
    )


class _Reader:
    """``StoreReader`` over one bridge's rows, inside one snapshot."""

    def __init__(self, conn: psycopg.Connection[Any], bridge_id: str) -> None:
        self._conn = conn
        self._bid = bridge_id
        self._chain = FleetChainReader(conn, bridge_id)

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as e:
            raise FleetUnreachable(
                f"reading {self._bid}: the fleet store went away: {one_line(e)}"
            ) from e
        except psycopg.Error as e:
            raise FleetError(f"reading {self._bid}: {one_line(e)}") from e

    def _kinds(self, kinds: Sequence[str] | None) -> tuple[str, tuple[object, ...]]:
        return ("", ()) if kinds is None else (" AND kind = ANY(%s)", (list(kinds),))

    def head(self) -> tuple[int, str] | None:
        rows = self._rows(
            "SELECT seq, hash FROM events WHERE bridge_id = %s ORDER BY seq DESC LIMIT 1",
            (self._bid,),
        )
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def sessions(self, session_id: str | None = None, *, prefix: bool = False) -> list[SessionRow]:
        where: str = ""
        params: tuple[object, ...] = ()
        if session_id is not None:
            # left(): a prefix compared as text, with no LIKE wildcards to escape
            where = " AND left(session_id, %s) = %s" if prefix else " AND session_id = %s"
            params = (len(session_id), session_id) if prefix else (session_id,)
        starts = self._rows(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE bridge_id = %s AND kind = %s{where}"
            " ORDER BY seq DESC",
            (self._bid, KIND_START, *params),
        )
        if not starts:
            return []
        ids = [str(r[1]) for r in starts]
        ends = {
            str(r[1]): _stored(r)
            for r in self._rows(
                f"SELECT DISTINCT ON (session_id) {_EVENT_COLUMNS} FROM events"
                " WHERE bridge_id = %s AND kind = %s AND session_id = ANY(%s)"
                " ORDER BY session_id, seq DESC",
                (self._bid, KIND_END, ids),
            )
        }
        counts = dict(
            self._rows(
                "SELECT session_id, count(*) FROM events WHERE bridge_id = %s"
                " AND session_id = ANY(%s) GROUP BY session_id",
                (self._bid, ids),
            )
        )
        return [
            SessionRow(_stored(r), ends.get(str(r[1])), int(counts.get(str(r[1]), 0)))
            for r in starts
        ]

    def events(self, session_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        k, kp = self._kinds(kinds)
        rows = self._rows(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE bridge_id = %s AND session_id = %s{k}"
            " ORDER BY seq",
            (self._bid, session_id, *kp),
        )
        return [_stored(r) for r in rows]

    def latest(self, session_id: str, kinds: Sequence[str] | None = None) -> StoredEvent | None:
        k, kp = self._kinds(kinds)
        rows = self._rows(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE bridge_id = %s AND session_id = %s{k}"
            " ORDER BY seq DESC LIMIT 1",
            (self._bid, session_id, *kp),
        )
        return _stored(rows[0]) if rows else None

    def events_of_kind(self, kind: str) -> list[StoredEvent]:
        rows = self._rows(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE bridge_id = %s AND kind = %s"
            " ORDER BY seq DESC",
            (self._bid, kind),
        )
        return [_stored(r) for r in rows]

    def telemetry(self, session_id: str) -> TelemetryArrays:
        rows = self._rows(
            "SELECT t.t_s, t.channel, t.value FROM telemetry t JOIN events e"
            " ON e.bridge_id = t.bridge_id AND e.seq = t.batch_seq"
            " WHERE t.bridge_id = %s AND e.session_id = %s AND e.kind = %s"
            " ORDER BY t.batch_seq, t.idx",
            (self._bid, session_id, KIND_TELEMETRY),
        )
        if not rows:
            return np.empty(0), np.empty(0, np.int32), np.empty(0)
        arr = np.array(rows, dtype=np.float64)
        return arr[:, 0].copy(), arr[:, 1].astype(np.int32), arr[:, 2].copy()

    def lookup_seqs(self, session_id: str, kinds: Sequence[str] | None = None) -> list[int]:
        k, kp = self._kinds(kinds)
        rows = self._rows(
            f"SELECT seq FROM events WHERE bridge_id = %s AND session_id = %s{k} ORDER BY seq",
            (self._bid, session_id, *kp),
        )
        return [int(r[0]) for r in rows]

    def span(self, session_id: str) -> tuple[int, int, int] | None:
        rows = self._rows(
            "SELECT count(*), min(seq), max(seq) FROM events"
            " WHERE bridge_id = %s AND session_id = %s",
            (self._bid, session_id),
        )
        n, lo, hi = rows[0]
        return None if not n else (int(n), int(lo), int(hi))

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]:
        return self._chain.scan_events(lo, hi)

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]:
        return self._chain.scan_telemetry(lo, hi)

    def integrity_problems(self) -> list[str]:
        # PostgreSQL checks its own pages (checksums, WAL); every row is recomputed by the
        # chain's verification, which is what this store is read for.
        return []


class _NoLocks:
    """Nobody writes sessions through the fleet store: no session here has a live writer."""

    @property
    def where(self) -> str:
        return "the fleet store (read-only)"

    def hold(self, session_id: str) -> None:
        raise OSError("the fleet store is read-only here")

    def claim_orphan(self, session_id: str) -> int | None:
        return None

    def release(self, session_id: str, token: int | None = None) -> None:
        return None

    def descriptor(self, session_id: str) -> int | None:
        return None

    def close(self) -> None:
        return None


class FleetBridgeStore:
    """A read-only ``Store`` over one bridge's chain in the fleet store.

    It does not own ``conn``: closing the store leaves the connection to its owner.
    """

    def __init__(self, conn: psycopg.Connection[Any], bridge_id: str) -> None:
        self._conn = conn
        self._bridge_id = bridge_id
        self._closed = False

    @property
    def name(self) -> str:
        return f"the fleet store's copy of {self._bridge_id}"

    @property
    def read_only(self) -> bool:
        return True

    @contextmanager
    def reading(self) -> Iterator[_Reader]:
        if self._closed:
            raise SessionLogError("session log is closed")
        try:
            yield _Reader(self._conn, self._bridge_id)
        finally:
            try:
                self._conn.rollback()  # the snapshot ends; nothing was written
            except psycopg.Error:
                return  # a connection already gone: the error that ended the read says why

    def writing(self) -> AbstractContextManager[StoreWriter]:
        raise SessionLogError(f"{self.name} is read-only: records arrive by `fleet ship`")

    def open_locks(self) -> _NoLocks:
        return _NoLocks()

    def close(self) -> None:
        self._closed = True
