"""The store interface: where the chain's events and telemetry rows are kept.

A store keeps rows; it knows nothing of hashes. Everything the chain means (sequence
numbers, the link to the event before, the digest that vouches for a telemetry batch, what
verification recomputes) lives in ``monitor.record.chain``, ``chain_log`` and ``verify``,
and works on any store. SQLite (``sqlite_store``) is the embedded store; ``memory_store``
keeps everything in memory, for tests; a PostgreSQL store is one more implementation of
these three protocols.

A store provides:

- ``writing()``: one exclusive transaction. Everything inserted in it is committed when the
  block ends, or none of it if it raises; nobody else writes meanwhile, so the head read in
  it is still the head when the next event is inserted.
- ``reading()``: reads that never hold up the writer.
- Two ways to find a session's rows. The *lookups* (``sessions``, ``events``, ``latest``,
  ``telemetry``, ``lookup_seqs``) may go through indexes and be fast. The *scans*
  (``span``, ``scan_events``, ``scan_telemetry``) read the stored rows themselves, never an
  index: verification reads only those, and ``read_verified`` checks that the lookups agree.
- ``integrity_problems()``: the store's own check of itself (SQLite's ``integrity_check``).
- ``open_locks()``: which open sessions still have a live writer (``open_sessions``).

Every error leaves a store as ``SessionLogError`` (``SessionLogDamaged`` when the store is
damaged), with the driver's own error as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "SessionLocks",
    "SessionRow",
    "Store",
    "StoreReader",
    "StoreWriter",
    "StoredEvent",
    "TelemetryArrays",
    "TelemetryRows",
]

TelemetryArrays = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]
]  # t_s, channel, value (NaN where the sensor said NaN)


@dataclass(frozen=True)
class StoredEvent:
    """One event as stored: its payload as the canonical text it was hashed over."""

    seq: int
    session_id: str
    t_wall: float
    kind: str
    payload_text: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class TelemetryRows:
    """The stored rows of one telemetry batch, in ``idx`` order, as the store holds them.

    ``session_ids`` is None unless the store's format repeats the session in every row (the
    first SQLite format); verification then checks each against the batch's event.
    """

    batch_seq: int
    idx: npt.NDArray[np.int64]
    session_ids: tuple[str, ...] | None
    t_s: npt.NDArray[np.float64]
    channel: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]


@dataclass(frozen=True)
class SessionRow:
    """A session as the lookups list it: its start, its end (if any), how many events."""

    start: StoredEvent
    end: StoredEvent | None
    n_events: int


class StoreReader(Protocol):
    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the newest event, or None for an empty store."""
        ...

    def sessions(self, session_id: str | None = None, *, prefix: bool = False) -> list[SessionRow]:
        """Every session (None), the one with this id, or those whose id starts with it;
        newest first."""
        ...

    def events(self, session_id: str, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        """A session's events (optionally of some kinds only), oldest first."""
        ...

    def latest(self, session_id: str, kinds: Sequence[str] | None = None) -> StoredEvent | None:
        """A session's newest event (optionally of one of ``kinds``)."""
        ...

    def events_of_kind(self, kind: str) -> list[StoredEvent]:
        """Every event of one kind, in every session, newest first."""
        ...

    def telemetry(self, session_id: str) -> TelemetryArrays:
        """All a session's telemetry rows, in the order written (a quick, unverified read)."""
        ...

    def lookup_seqs(self, session_id: str, kinds: Sequence[str] | None = None) -> list[int]:
        """The seqs the lookups find for a session (by session; by kind if ``kinds``)."""
        ...

    def span(self, session_id: str) -> tuple[int, int, int] | None:
        """(number of events, first seq, last seq) of a session, from the rows themselves."""
        ...

    def scan_events(self, lo: int, hi: int) -> Iterator[StoredEvent]:
        """Every stored event with lo <= seq <= hi, in seq order, from the rows themselves."""
        ...

    def scan_telemetry(self, lo: int, hi: int) -> Iterator[TelemetryRows]:
        """Every stored telemetry row whose batch_seq is in [lo, hi], grouped by batch, in
        (batch_seq, idx) order, from the rows themselves."""
        ...

    def integrity_problems(self) -> list[str]:
        """What the store's own check finds wrong with itself; empty when sound."""
        ...


class StoreWriter(StoreReader, Protocol):
    """Reads inside the transaction see its own inserts."""

    def insert_event(self, event: StoredEvent) -> None: ...

    def insert_telemetry(
        self,
        batch_seq: int,
        session_id: str,
        t_s: npt.NDArray[np.float64],
        channel: npt.NDArray[np.int32],
        value: npt.NDArray[np.float64],
    ) -> None:
        """The rows of the batch whose ``telemetry_batch`` event has seq ``batch_seq``."""
        ...


class SessionLocks(Protocol):
    """One writer's hold on the sessions it has open (see ``open_sessions``)."""

    @property
    def where(self) -> str:
        """Where the locks are kept, for messages."""
        ...

    def hold(self, session_id: str) -> None:
        """Take the lock of a session about to start (raises OSError if that fails)."""
        ...

    def claim_orphan(self, session_id: str) -> int | None:
        """A token for the lock of an open session whose writer is gone, or None if a live
        writer holds it."""
        ...

    def release(self, session_id: str, token: int | None = None) -> None:
        """The session has ended: let go of its lock (the held one, or ``token``'s)."""
        ...

    def descriptor(self, session_id: str) -> int | None:
        """The file descriptor that holds a session's lock, for a process that writes the
        session too (``writer_process``) to hold it with this one; None if there is none."""
        ...

    def close(self) -> None:
        """Let go of every lock held; those sessions never ended."""
        ...


class Store(Protocol):
    @property
    def name(self) -> str:
        """How messages name the store (its file, its database)."""
        ...

    @property
    def read_only(self) -> bool: ...

    def reading(self) -> AbstractContextManager[StoreReader]: ...

    def writing(self) -> AbstractContextManager[StoreWriter]: ...

    def open_locks(self) -> SessionLocks: ...

    def close(self) -> None:
        """Safe to call twice. Reading or writing after it raises SessionLogError."""
        ...
