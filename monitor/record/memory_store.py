"""A store that keeps everything in memory: the test double, and the proof of the interface.

The same chain rules run on it as on SQLite (``ChainLog(MemoryStore())``), and the same
verification tests pass on both. Nothing survives the process.

Its rows are public (``MemoryStore.data``) so that a test can damage them the way someone
with the file and ``sqlite3`` in hand damages a real log: edit an event, delete one, add a
telemetry row. Its *lookups* are kept apart from the rows (``data.by_session``), as an
index is kept apart from its table, so a lookup that disagrees with the rows can be shown
too.

A transaction works on a copy of the row lists and swaps it in on commit: all or nothing,
and readers never see half a transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from monitor.record.chain import KIND_END, KIND_START, KIND_TELEMETRY
from monitor.record.errors import SessionLogError
from monitor.record.store import (
    SessionRow,
    StoredEvent,
    TelemetryArrays,
    TelemetryRows,
)

__all__ = ["MemoryData", "MemoryStore"]


@dataclass
class MemoryData:
    """What a file would hold: the rows, the lookups, and which sessions have a writer."""

    events: list[StoredEvent] = field(default_factory=list)  # in seq order
    telemetry: list[TelemetryRows] = field(default_factory=list)  # in batch_seq order
    by_session: dict[str, list[int]] = field(default_factory=dict)  # the lookups' "index"
    live: set[str] = field(default_factory=set)  # sessions whose writer holds their lock
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    guard: threading.Lock = field(default_factory=threading.Lock)  # swaps vs. snapshots


class _View:
    """``StoreReader`` over one snapshot of the rows; ``StoreWriter`` when it may insert."""

    def __init__(
        self,
        events: list[StoredEvent],
        telemetry: list[TelemetryRows],
        by_session: dict[str, list[int]],
        *,
        writable: bool = False,
    ) -> None:
        self.events_ = events
        self.telemetry_ = telemetry
        self.by_session = by_session
        self._writable = writable
        self.inserted: list[StoredEvent] = []

    def head(self) -> tuple[int, str] | None:
        return None if not self.events_ else (self.events_[-1].seq, self.events_[-1].hash)

    def _looked_up(self, session_id: str) -> list[StoredEvent]:
        by_seq = {e.seq: e for e in self.events_}
        seqs = self.by_session.get(session_id, []) + [
            e.seq for e in self.inserted if e.session_id == session_id
        ]
        return [by_seq[s] for s in seqs if s in by_seq]

    def sessions(self, session_id: str | None = None, *, prefix: bool = False) -> list[SessionRow]:
        rows = []
        for sid in self.by_session.keys() | {e.session_id for e in self.inserted}:
            if session_id is not None and not (
                sid.startswith(session_id) if prefix else sid == session_id
            ):
                continue
            events = self._looked_up(sid)
            start = next((e for e in events if e.kind == KIND_START), None)
            if start is not None:
                end = next((e for e in events if e.kind == KIND_END), None)
                rows.append(SessionRow(start, end, len(events)))
        return sorted(rows, key=lambda r: -r.start.seq)

    def events(self, session_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        return [e for e in self._looked_up(session_id) if kinds is None or e.kind in kinds]

    def latest(self, session_id: str, kinds: Sequence[str] | None = None) -> StoredEvent | None:
        found = self.events(session_id, kinds)
        return found[-1] if found else None

    def events_of_kind(self, kind: str) -> list[StoredEvent]:
        return [e for e in reversed(self.events_) if e.kind == kind]

    def telemetry(self, session_id: str) -> TelemetryArrays:
        batches = {e.seq for e in self.events(session_id, [KIND_TELEMETRY])}
        mine = [b for b in self.telemetry_ if b.batch_seq in batches]
        if not mine:
            return np.empty(0), np.empty(0, np.int32), np.empty(0)
        return (
            np.concatenate([b.t_s for b in mine]),
            np.concatenate([b.channel for b in mine]),
            np.concatenate([b.value for b in mine]),
        )

    def lookup_seqs(self, session_id: str, kinds: Sequence[str] | None = None) -> list[int]:
        return [e.seq for e in self.events(session_id, kinds)]

    def span(self, session_id: str) -> tuple[int, int, int] | None:
        seqs = [e.seq for e in self.events_ if e.session_id == session_id]
        return None if not seqs else (len(seqs), min(seqs), max(seqs))

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]:
        return iter(sorted((e for e in self.events_ if lo <= e.seq <= hi), key=lambda e: e.seq))

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]:
        rows = (b for b in self.telemetry_ if lo <= b.batch_seq <= hi)
        return iter(sorted(rows, key=lambda b: b.batch_seq))

    def integrity_problems(self) -> list[str]:
        return []  # nothing below the rows to check: no pages, no index structure

    def _require_writable(self) -> None:
        if not self._writable:
            raise SessionLogError("a read of the memory store cannot insert")

    def insert_event(self, event: StoredEvent) -> None:
        self._require_writable()
        self.events_.append(event)
        self.inserted.append(event)

    def insert_telemetry(
        self,
        batch_seq: int,
        session_id: str,
        t_s: npt.NDArray[np.float64],
        channel: npt.NDArray[np.int32],
        value: npt.NDArray[np.float64],
    ) -> None:
        self._require_writable()
        n = int(t_s.shape[0])
        rows = TelemetryRows(
            batch_seq, np.arange(n), None, t_s.copy(), channel.copy(), value.copy()
        )
        self.telemetry_.append(rows)


class _MemoryLocks:
    """``SessionLocks`` within one process: a session is live while a log holds it."""

    def __init__(self, data: MemoryData) -> None:
        self._data = data
        self._held: set[str] = set()

    @property
    def where(self) -> str:
        return "memory"

    def hold(self, session_id: str) -> None:
        with self._data.guard:
            if session_id in self._data.live:
                raise OSError(f"the lock of new session {session_id} is already held")
            self._data.live.add(session_id)
        self._held.add(session_id)

    def claim_orphan(self, session_id: str) -> int | None:
        with self._data.guard:
            if session_id in self._data.live:
                return None
            self._data.live.add(session_id)
        return 0

    def descriptor(self, session_id: str) -> int | None:
        return None  # one process: nothing to hand over

    def release(self, session_id: str, token: int | None = None) -> None:
        self._held.discard(session_id)
        with self._data.guard:
            self._data.live.discard(session_id)

    def close(self) -> None:
        with self._data.guard:
            self._data.live -= self._held
        self._held = set()


class MemoryStore:
    """The ``Store`` in memory. ``reopen()`` is what opening the same file again would be."""

    def __init__(self, data: MemoryData | None = None, *, read_only: bool = False) -> None:
        self.data = MemoryData() if data is None else data
        self._read_only = read_only
        self._closed = False

    def reopen(self, *, read_only: bool = False) -> MemoryStore:
        return MemoryStore(self.data, read_only=read_only)

    @property
    def name(self) -> str:
        return f"memory store {id(self.data):#x}"

    @property
    def read_only(self) -> bool:
        return self._read_only

    def open_locks(self) -> _MemoryLocks:
        return _MemoryLocks(self.data)

    def close(self) -> None:
        self._closed = True

    def _snapshot(self, *, writable: bool = False) -> _View:
        d = self.data
        with d.guard:
            return _View(list(d.events), list(d.telemetry), d.by_session, writable=writable)

    @contextmanager
    def reading(self) -> Iterator[_View]:
        if self._closed:
            raise SessionLogError("session log is closed")
        yield self._snapshot()

    @contextmanager
    def writing(self) -> Iterator[_View]:
        if self._read_only:
            raise SessionLogError(f"session log {self.name} was opened read-only")
        with self.data.write_lock:
            if self._closed:
                raise SessionLogError("session log is closed")
            view = self._snapshot(writable=True)
            yield view  # an exception here drops the copy: nothing of it is kept
            d = self.data
            with d.guard:
                d.events, d.telemetry = view.events_, view.telemetry_
                by_session = {k: list(v) for k, v in d.by_session.items()}
                for e in view.inserted:
                    by_session.setdefault(e.session_id, []).append(e.seq)
                d.by_session = by_session
