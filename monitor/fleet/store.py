"""The fleet store on PostgreSQL: many bridges' chains, each checked link by link on arrival.

``FleetStore.receive`` is the one way in. In one transaction, holding the bridge's row in
``chain_heads`` (so two shippers of one bridge take turns, and shipments arrive in chain
order), it checks that what arrived continues the bridge's chain exactly: the next seq, each
event linked to the one before and matching its own hash, each telemetry batch recounted and
re-hashed against the event that vouches for it. Then events are written with COPY, telemetry
with binary COPY, and the head moves. Anything else is refused: the transaction rolls back,
the refusal is written to ``refusals`` in a transaction of its own, and ``ShipmentRefused``
is raised. A killed shipper or a cut connection leaves the transaction uncommitted, so the
store holds whole shipments only, and the next shipment starts from ``chain_heads``.

Rows already there (a second shipper overlapping the first) are checked against what is
stored by their hash, and skipped: shipping twice stores once.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from monitor.fleet.errors import FleetError, FleetUnreachable, ShipmentRefused, one_line
from monitor.record.chain import (
    GENESIS_HASH,
    KIND_START,
    KIND_TELEMETRY,
    event_hash,
    telemetry_digest,
)
from monitor.record.checkpoints import Checkpoint
from monitor.record.store import StoredEvent, TelemetryRows

__all__ = [
    "BridgeActivity",
    "BridgeStatus",
    "FleetChainReader",
    "FleetStore",
    "Shipment",
    "copy_telemetry",
]

_EVENT_COLUMNS = "seq, session_id, t_wall, kind, payload, prev_hash, hash"
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)


@dataclass(frozen=True)
class Shipment:
    """A run of one bridge's chain: events in seq order, and the telemetry rows they vouch for."""

    bridge_id: str
    events: Sequence[StoredEvent]
    telemetry: Sequence[TelemetryRows]
    clinic: str | None = None


@dataclass(frozen=True)
class BridgeActivity:
    """What the fleet's records say of one laser: its sessions and its halts, by cause."""

    bridge_id: str
    sessions: int
    last_session_at: float | None
    halts_by_cause: dict[str, int]


@dataclass(frozen=True)
class BridgeStatus:
    bridge_id: str
    clinic: str | None
    head_seq: int
    head_hash: str
    shipped_at: float
    n_refusals: int
    last_refusal: str | None


def _telemetry_copy_bytes(bridge_id: str, batches: Sequence[TelemetryRows]) -> bytes:
    """PostgreSQL's binary COPY format for the rows of ``batches``, built by NumPy at once."""
    bid = bridge_id.encode("utf-8")
    dtype = np.dtype(
        [
            ("nf", ">i2"), ("l0", ">i4"), ("bid", f"S{len(bid)}"),
            ("l1", ">i4"), ("batch_seq", ">i8"), ("l2", ">i4"), ("idx", ">i4"),
            ("l3", ">i4"), ("t_s", ">f8"), ("l4", ">i4"), ("channel", ">i4"),
            ("l5", ">i4"), ("value", ">f8"),
        ]
    )  # fmt: skip
    n = sum(int(b.idx.shape[0]) for b in batches)
    rows = np.empty(n, dtype=dtype)
    rows["nf"] = 6
    rows["l0"], rows["bid"] = len(bid), bid
    rows["l1"], rows["l2"], rows["l3"], rows["l4"], rows["l5"] = 8, 4, 8, 4, 8
    at = 0
    for b in batches:
        k = int(b.idx.shape[0])
        rows["batch_seq"][at : at + k] = b.batch_seq
        rows["idx"][at : at + k] = b.idx
        rows["t_s"][at : at + k] = b.t_s
        rows["channel"][at : at + k] = b.channel
        rows["value"][at : at + k] = b.value
        at += k
    return _PGCOPY_HEADER + rows.tobytes() + _PGCOPY_TRAILER


def copy_telemetry(cur: psycopg.Cursor[Any], data: bytes, table: str = "telemetry") -> None:
    """COPY pre-encoded binary rows (``_telemetry_copy_bytes``) into ``table``."""
    with cur.copy(
        f"COPY {table} (bridge_id, batch_seq, idx, t_s, channel, value) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(data)


def _check_links(head: tuple[int, str] | None, shipment: Shipment) -> None:
    """Raise ShipmentRefused unless the events continue ``head`` and vouch for the rows."""
    seq, prev = (0, GENESIS_HASH) if head is None else head
    batches: dict[int, dict[str, Any]] = {}
    for e in shipment.events:
        if e.seq != seq + 1:
            raise ShipmentRefused(
                seq + 1, f"gap: the fleet holds up to seq {seq}, this starts at seq {e.seq}"
            )
        if e.prev_hash != prev:
            raise ShipmentRefused(e.seq, "does not link to the event before it (forged link)")
        try:
            payload = json.loads(e.payload_text)
            computed = event_hash(e.prev_hash, e.seq, e.session_id, e.t_wall, e.kind, payload)
        except (ValueError, TypeError) as err:
            raise ShipmentRefused(e.seq, f"unreadable event: {err}") from None
        if computed != e.hash:
            raise ShipmentRefused(e.seq, f"{e.kind} content does not match its hash (forged)")
        if e.kind == KIND_TELEMETRY:
            batches[e.seq] = payload
        seq, prev = e.seq, e.hash
    for rows in shipment.telemetry:
        vouched = batches.pop(rows.batch_seq, None)
        n = int(rows.idx.shape[0])
        if vouched is None:
            raise ShipmentRefused(rows.batch_seq, "telemetry rows no batch event vouches for")
        if n != vouched.get("n") or not np.array_equal(rows.idx, np.arange(n)):
            raise ShipmentRefused(rows.batch_seq, "telemetry batch: rows added or removed")
        if telemetry_digest(rows.t_s, rows.channel, rows.value) != vouched.get("sha256"):
            raise ShipmentRefused(rows.batch_seq, "telemetry batch: rows do not match digest")
    if batches:
        missing = min(batches)
        raise ShipmentRefused(missing, "telemetry batch shipped without its rows")


class FleetStore:
    """One connection to the fleet store. Not shared between threads."""

    def __init__(self, dsn: str, *, connect_timeout_s: int = 5) -> None:
        try:
            self._conn = psycopg.connect(dsn, connect_timeout=connect_timeout_s)
        except psycopg.OperationalError as e:
            raise FleetUnreachable(f"cannot reach the fleet store: {one_line(e)}".strip()) from e
        except psycopg.Error as e:
            raise FleetError(f"cannot open the fleet store: {one_line(e)}") from e

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FleetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as e:
            raise FleetUnreachable(
                f"{doing}: the fleet store went away: {one_line(e)}".strip()
            ) from e
        except psycopg.Error as e:
            raise FleetError(f"{doing}: {one_line(e)}") from e

    def head(self, bridge_id: str) -> tuple[int, str] | None:
        with self._errors("reading the chain head"):
            row = self._conn.execute(
                "SELECT seq, hash FROM chain_heads WHERE bridge_id = %s", (bridge_id,)
            ).fetchone()
            self._conn.rollback()
        return None if row is None else (int(row[0]), str(row[1]))

    def anchored_head(self, bridge_id: str) -> Checkpoint | None:
        """The bridge's head as the fleet holds it, as a checkpoint ``anchor.compare`` reads
        (its signature is the database's word: the row is not signed)."""
        with self._errors("reading the chain head"):
            row = self._conn.execute(
                "SELECT b.chain, h.seq, h.hash, extract(epoch FROM h.shipped_at)"
                " FROM chain_heads h JOIN bridges b USING (bridge_id)"
                " WHERE bridge_id = %s AND h.seq > 0",
                (bridge_id,),
            ).fetchone()
            self._conn.rollback()
        if row is None:
            return None
        return Checkpoint(1, str(row[0]), int(row[1]), str(row[2]), float(row[3]), "fleet")

    def stored_hash(self, bridge_id: str, seq: int) -> str | None:
        with self._errors("reading an event"):
            row = self._conn.execute(
                "SELECT hash FROM events WHERE bridge_id = %s AND seq = %s", (bridge_id, seq)
            ).fetchone()
            self._conn.rollback()
        return None if row is None else str(row[0])

    def refuse(self, bridge_id: str, seq: int | None, reason: str) -> None:
        """Report a refusal, in a transaction of its own."""
        with self._errors("reporting a refusal"), self._conn.transaction():
            self._conn.execute(
                "INSERT INTO refusals (bridge_id, seq, reason) VALUES (%s, %s, %s)",
                (bridge_id, seq, reason[:2000]),
            )

    def receive(self, shipment: Shipment) -> tuple[int, str] | None:
        """Check and store a shipment (see the module docstring); returns the new head."""
        try:
            return self._receive(shipment)
        except ShipmentRefused as e:
            self.refuse(shipment.bridge_id, e.seq, e.reason)
            raise

    def _receive(self, shipment: Shipment) -> tuple[int, str] | None:
        bid = shipment.bridge_id
        events = list(shipment.events)
        with self._errors(f"shipping {bid}"), self._conn.transaction():
            cur = self._conn.cursor()
            if events and events[0].seq == 1:
                cur.execute(
                    "INSERT INTO bridges (bridge_id, chain, clinic) VALUES (%s, %s, %s)"
                    " ON CONFLICT (bridge_id) DO NOTHING",
                    (bid, events[0].hash, shipment.clinic),
                )
                cur.execute(
                    "INSERT INTO chain_heads (bridge_id, seq, hash) VALUES (%s, 0, %s)"
                    " ON CONFLICT (bridge_id) DO NOTHING",
                    (bid, GENESIS_HASH),
                )
            row = cur.execute(
                "SELECT seq, hash FROM chain_heads WHERE bridge_id = %s FOR UPDATE", (bid,)
            ).fetchone()
            if row is None:
                if not events:
                    return None
                raise ShipmentRefused(
                    events[0].seq, "the fleet holds nothing of this bridge: start from seq 1"
                )
            head = (int(row[0]), str(row[1]))
            # Already stored (another shipper got there first): the same rows, or refused.
            done = [e for e in events if e.seq <= head[0]]
            if done:
                last = done[-1]
                stored = cur.execute(
                    "SELECT hash FROM events WHERE bridge_id = %s AND seq = %s", (bid, last.seq)
                ).fetchone()
                if stored is None or stored[0] != last.hash:
                    raise ShipmentRefused(
                        last.seq,
                        "differs from what the fleet holds: the bridge's log was replaced or"
                        " rolled back",
                    )
            events = events[len(done) :]
            new_batches = {e.seq for e in events if e.kind == KIND_TELEMETRY}
            telemetry = [t for t in shipment.telemetry if t.batch_seq in new_batches]
            _check_links(None if head[0] == 0 else head, Shipment(bid, events, telemetry))
            if not events:
                return head
            with cur.copy(f"COPY events (bridge_id, {_EVENT_COLUMNS}) FROM STDIN") as copy:
                for e in events:
                    copy.write_row(
                        (bid, e.seq, e.session_id, e.t_wall, e.kind, e.payload_text,
                         e.prev_hash, e.hash)
                    )  # fmt: skip
            if telemetry:
                copy_telemetry(cur, _telemetry_copy_bytes(bid, telemetry))
            new_head = (events[-1].seq, events[-1].hash)
            cur.execute(
                "UPDATE chain_heads SET seq = %s, hash = %s, shipped_at = now()"
                " WHERE bridge_id = %s",
                (*new_head, bid),
            )
        return new_head

    def bridges(self) -> list[BridgeStatus]:
        with self._errors("reading the fleet's bridges"):
            rows = self._conn.execute(
                "SELECT h.bridge_id, b.clinic, h.seq, h.hash, extract(epoch FROM h.shipped_at),"
                " (SELECT count(*) FROM refusals r WHERE r.bridge_id = h.bridge_id),"
                " (SELECT reason FROM refusals r WHERE r.bridge_id = h.bridge_id"
                "  ORDER BY id DESC LIMIT 1)"
                " FROM chain_heads h JOIN bridges b USING (bridge_id) ORDER BY h.bridge_id"
            ).fetchall()
            self._conn.rollback()
        return [
            BridgeStatus(str(r[0]), r[1], int(r[2]), str(r[3]), float(r[4]), int(r[5]), r[6])
            for r in rows
        ]

    def activity(self) -> list[BridgeActivity]:
        """Every laser's sessions and halts by cause (``trip`` events by their ``check``)."""
        with self._errors("reading the fleet's sessions"):
            sessions = self._conn.execute(
                "SELECT bridge_id, count(*), max(t_wall) FROM events WHERE kind = %s"
                " GROUP BY bridge_id",
                (KIND_START,),
            ).fetchall()
            halts = self._conn.execute(
                "SELECT bridge_id, payload::jsonb ->> 'check', count(*) FROM events"
                " WHERE kind = 'trip' GROUP BY 1, 2 ORDER BY 1, 3 DESC"
            ).fetchall()
            self._conn.rollback()
        by_bridge: dict[str, dict[str, int]] = {}
        for bid, check, n in halts:
            by_bridge.setdefault(str(bid), {})[str(check)] = int(n)
        return [
            BridgeActivity(str(b), int(n), float(t), by_bridge.get(str(b), {}))
            for b, n, t in sessions
        ]

    def reader(self, bridge_id: str) -> FleetChainReader:
        return FleetChainReader(self._conn, bridge_id)


class FleetChainReader:
    """One bridge's chain in the fleet store, as ``verify.walk_span`` reads a chain."""

    def __init__(self, conn: psycopg.Connection[Any], bridge_id: str) -> None:
        self._conn = conn
        self._bridge_id = bridge_id

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            rows = self._conn.execute(sql, params).fetchall()
            self._conn.rollback()
        except psycopg.OperationalError as e:
            raise FleetUnreachable(
                f"reading {self._bridge_id}: the fleet store went away: {one_line(e)}"
            ) from e
        except psycopg.Error as e:
            raise FleetError(f"reading {self._bridge_id}: {one_line(e)}") from e
        return rows

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]:
        rows = self._fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE bridge_id = %s AND seq BETWEEN %s AND %s"
            " ORDER BY seq",
            (self._bridge_id, lo, hi),
        )
        for r in rows:
            yield StoredEvent(
                int(r[0]), str(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])
            )

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]:
        rows = self._fetch(
            "SELECT batch_seq, idx, t_s, channel, value FROM telemetry"
            " WHERE bridge_id = %s AND batch_seq BETWEEN %s AND %s ORDER BY batch_seq, idx",
            (self._bridge_id, lo, hi),
        )
        if not rows:
            return
        arr = np.array([tuple(r) for r in rows], dtype=np.float64)
        seqs = arr[:, 0].astype(np.int64)
        cuts = np.flatnonzero(np.diff(seqs)) + 1
        for part in np.split(np.arange(len(rows)), cuts):
            yield TelemetryRows(
                int(seqs[part[0]]),
                arr[part, 1].astype(np.int64),
                None,
                arr[part, 2].copy(),
                arr[part, 3].astype(np.int32),
                arr[part, 4].copy(),
            )
