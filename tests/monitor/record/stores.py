"""Every store the chain runs on, with a way to damage it as someone with the file would.

The contract tests take a ``Backend`` and never know which store is underneath: SQLite on a
real file (damaged with ``sqlite3`` after dropping the append-only triggers), or the memory
store (damaged by editing its rows). A new store (PostgreSQL) adds a backend here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from monitor.record.chain_log import ChainLog
from monitor.record.memory_store import MemoryStore
from monitor.record.sqlite_store import SessionLog
from monitor.record.store import StoredEvent, TelemetryRows


class Backend(Protocol):
    name: str

    def open(self, *, read_only: bool = False) -> ChainLog:
        """The log, as a bridge (or, read-only, a reviewer) opens it."""
        ...

    def event(self, seq: int) -> StoredEvent:
        """The stored event, read without the log."""
        ...

    def replace_event(self, seq: int, **fields: Any) -> None:
        """Overwrite fields of a stored event (``payload_text``, ``hash``, ``t_wall``)."""
        ...

    def delete_events(self, *, seq: int | None = None, session_id: str | None = None) -> None: ...

    def set_telemetry_value(self, batch_seq: int, idx: int, value: float) -> None: ...

    def delete_telemetry_row(self, batch_seq: int, idx: int) -> None: ...

    def add_telemetry_row(
        self, batch_seq: int, idx: int, t_s: float, channel: int, value: float
    ) -> None: ...

    def delete_all_telemetry(self) -> None: ...


class SqliteBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, *, read_only: bool = False) -> ChainLog:
        return SessionLog(self.path, read_only=read_only)

    def _tamper(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        conn = sqlite3.connect(self.path)
        for trigger in ("no_update", "no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS events_{trigger}")
            conn.execute(f"DROP TRIGGER IF EXISTS telemetry_{trigger}")
        conn.execute(sql, params)
        conn.commit()
        conn.close()

    def event(self, seq: int) -> StoredEvent:
        conn = sqlite3.connect(self.path)
        row = conn.execute(
            "SELECT seq, session_id, t_wall, kind, payload, prev_hash, hash FROM events"
            " WHERE seq = ?",
            (seq,),
        ).fetchone()
        conn.close()
        return StoredEvent(*row)

    def replace_event(self, seq: int, **fields: Any) -> None:
        columns = {"payload_text": "payload"}
        sets = ", ".join(f"{columns.get(k, k)} = ?" for k in fields)
        self._tamper(f"UPDATE events SET {sets} WHERE seq = ?", (*fields.values(), seq))

    def delete_events(self, *, seq: int | None = None, session_id: str | None = None) -> None:
        if seq is not None:
            self._tamper("DELETE FROM events WHERE seq = ?", (seq,))
        else:
            self._tamper("DELETE FROM events WHERE session_id = ?", (session_id,))

    def set_telemetry_value(self, batch_seq: int, idx: int, value: float) -> None:
        self._tamper(
            "UPDATE telemetry SET value = ? WHERE batch_seq = ? AND idx = ?",
            (value, batch_seq, idx),
        )

    def delete_telemetry_row(self, batch_seq: int, idx: int) -> None:
        self._tamper("DELETE FROM telemetry WHERE batch_seq = ? AND idx = ?", (batch_seq, idx))

    def add_telemetry_row(
        self, batch_seq: int, idx: int, t_s: float, channel: int, value: float
    ) -> None:
        self._tamper(
            "INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)", (batch_seq, idx, t_s, channel, value)
        )

    def delete_all_telemetry(self) -> None:
        self._tamper("DELETE FROM telemetry")


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.store = MemoryStore()

    def open(self, *, read_only: bool = False) -> ChainLog:
        return ChainLog(self.store.reopen(read_only=read_only))

    def event(self, seq: int) -> StoredEvent:
        return next(e for e in self.store.data.events if e.seq == seq)

    def replace_event(self, seq: int, **fields: Any) -> None:
        events = self.store.data.events
        i = next(i for i, e in enumerate(events) if e.seq == seq)
        events[i] = dataclasses.replace(events[i], **fields)

    def delete_events(self, *, seq: int | None = None, session_id: str | None = None) -> None:
        data = self.store.data
        data.events = [
            e
            for e in data.events
            if not (e.seq == seq if seq is not None else e.session_id == session_id)
        ]

    def _edit_batch(self, batch_seq: int, edit: Any) -> None:
        data = self.store.data
        for i, rows in enumerate(data.telemetry):
            if rows.batch_seq == batch_seq:
                data.telemetry[i] = edit(rows)
                return
        data.telemetry.append(
            edit(
                TelemetryRows(
                    batch_seq,
                    np.empty(0, np.int64),
                    None,
                    np.empty(0),
                    np.empty(0, np.int32),
                    np.empty(0),
                )
            )
        )
        data.telemetry.sort(key=lambda r: r.batch_seq)

    def set_telemetry_value(self, batch_seq: int, idx: int, value: float) -> None:
        def edit(rows: TelemetryRows) -> TelemetryRows:
            v = rows.value.copy()
            v[idx] = value
            return dataclasses.replace(rows, value=v)

        self._edit_batch(batch_seq, edit)

    def delete_telemetry_row(self, batch_seq: int, idx: int) -> None:
        def edit(rows: TelemetryRows) -> TelemetryRows:
            keep = rows.idx != idx
            return dataclasses.replace(
                rows,
                idx=rows.idx[keep],
                t_s=rows.t_s[keep],
                channel=rows.channel[keep],
                value=rows.value[keep],
            )

        self._edit_batch(batch_seq, edit)

    def add_telemetry_row(
        self, batch_seq: int, idx: int, t_s: float, channel: int, value: float
    ) -> None:
        def edit(rows: TelemetryRows) -> TelemetryRows:
            return dataclasses.replace(
                rows,
                idx=np.append(rows.idx, idx),
                t_s=np.append(rows.t_s, t_s),
                channel=np.append(rows.channel, np.int32(channel)).astype(np.int32),
                value=np.append(rows.value, value),
            )

        self._edit_batch(batch_seq, edit)

    def delete_all_telemetry(self) -> None:
        self.store.data.telemetry = []
