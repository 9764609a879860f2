"""Anchored chain heads: a log checked against its signed checkpoints, and the writer's hook.

``compare`` says what a log is, next to the checkpoints its bridge signed
(``monitor.record.checkpoints``):

- ``anchored``: its chain passes through every checkpoint it reaches, and its head is at or
  past the newest one (events written since the last checkpoint are expected);
- ``replaced``: its chain is not the one checkpointed (another first event, or another hash
  at a checkpointed seq): a different file put in its place;
- ``rolled back``: its head is behind the newest checkpoint *and* is exactly a head that an
  earlier checkpoint signed: the whole log as it was at that moment (a restored copy);
- ``truncated``: its head is behind the newest checkpoint at a point no checkpoint saw: its
  newest events were cut off;
- ``not anchored``: there are no checkpoints (and the log is empty, or nobody anchored it).

Which of "rolled back" and "truncated" a shortened log is, is a judgement from the evidence
kept (a head the log was once seen at); either way the events after its head are missing,
and both refuse a start.

``HeadAnchor`` is what ``ChainLog`` calls: ``check_open`` before a writer touches the log
(a log behind its checkpoints is refused, ``LogBehindCheckpoint``), and ``committed`` after
every commit, on the committing thread (the log writer's, never the interlock's): a
checkpoint at every session end and at least every ``period_s`` while writing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from monitor.record.checkpoints import (
    AnchorKey,
    Checkpoint,
    CheckpointFile,
    load_private_key,
    parse_public_key,
)
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.store import StoreReader

__all__ = [
    "DEFAULT_PERIOD_S",
    "AnchorCheck",
    "AnchorSpec",
    "HeadAnchor",
    "HeadInfo",
    "LogBehindCheckpoint",
    "Verdict",
    "anchor_for",
    "checkpoint_path",
    "checkpoints_for",
    "compare",
    "default_key_path",
    "head_info",
]

KEY_FILE_NAME = "anchor-ed25519.key"
# Clinic default, review: how much of a running session a cut tail could hide unnoticed
# (since the last checkpoint) against one small fsync'd file rewrite per period.
DEFAULT_PERIOD_S = 30.0


class Verdict(StrEnum):
    ANCHORED = "anchored"
    NOT_ANCHORED = "not anchored"
    REPLACED = "replaced"
    ROLLED_BACK = "rolled back"
    TRUNCATED = "truncated"


class LogBehindCheckpoint(SessionLogDamaged):
    """The log is behind (or not) the chain its checkpoints signed: refused for writing."""

    def __init__(self, check: AnchorCheck) -> None:
        super().__init__(check.message)
        self.check = check


@dataclass(frozen=True)
class HeadInfo:
    chain: str  # hash of seq 1: which chain this is
    seq: int
    hash: str


@dataclass(frozen=True)
class AnchorCheck:
    verdict: Verdict
    message: str
    checkpoint: Checkpoint | None = None  # the newest checkpoint

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.ANCHORED, Verdict.NOT_ANCHORED)


def _when(t_wall: float) -> str:
    return (
        datetime.fromtimestamp(t_wall, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def head_info(r: StoreReader) -> HeadInfo | None:
    head = r.head()
    if head is None:
        return None
    first = next(r.scan_events(1, 1), None)
    chain = "" if first is None else first.hash
    return HeadInfo(chain, head[0], head[1])


def compare(r: StoreReader, entries: list[Checkpoint], name: str) -> AnchorCheck:
    """What the log in ``r`` is, next to its checkpoints (oldest first, signatures checked)."""
    if not entries:
        return AnchorCheck(Verdict.NOT_ANCHORED, f"{name}: no checkpoints of its chain head")
    last = entries[-1]
    head = head_info(r)
    if head is None:
        return AnchorCheck(
            Verdict.REPLACED,
            f"{name} is empty, but its checkpoint of {_when(last.t_wall)} signed a head at seq"
            f" {last.seq}: the log was replaced by an empty one",
            last,
        )
    if head.chain != last.chain:
        return AnchorCheck(
            Verdict.REPLACED,
            f"{name} is not the log its checkpoints signed (its first event differs): the file"
            " was replaced by another log",
            last,
        )
    for cp in reversed(entries):
        if cp.seq > head.seq:
            continue
        stored = next(r.scan_events(cp.seq, cp.seq), None)
        if stored is None or stored.hash != cp.hash:
            return AnchorCheck(
                Verdict.REPLACED,
                f"{name} differs at seq {cp.seq} from its checkpoint of {_when(cp.t_wall)}: the"
                " file was replaced by another log with the same beginning",
                last,
            )
        break  # the chain (checked by verify) vouches for everything before
    if head.seq >= last.seq:
        return AnchorCheck(
            Verdict.ANCHORED,
            f"head seq {head.seq} is at or past its newest checkpoint (seq {last.seq},"
            f" {_when(last.t_wall)})",
            last,
        )
    missing = f"events seq {head.seq + 1}..{last.seq} are missing"
    earlier = next((cp for cp in entries if cp.seq == head.seq and cp.hash == head.hash), None)
    if earlier is not None:
        return AnchorCheck(
            Verdict.ROLLED_BACK,
            f"{name} was rolled back: it is the log as it was at {_when(earlier.t_wall)}"
            f" (checkpoint {earlier.n}), but a checkpoint of {_when(last.t_wall)} signed head"
            f" seq {last.seq}: {missing}",
            last,
        )
    return AnchorCheck(
        Verdict.TRUNCATED,
        f"{name} was truncated: its head is seq {head.seq}, but its checkpoint of"
        f" {_when(last.t_wall)} signed head seq {last.seq}: {missing}",
        last,
    )


class HeadAnchor:
    """Keeps a log's checkpoint file up to date as the log is written (see module docstring).

    Raises ``SessionLogError`` when the checkpoint cannot be written: the ``LogWriter`` then
    halts treatment, as for any record that cannot be written.
    """

    def __init__(
        self,
        file: CheckpointFile,
        *,
        period_s: float = DEFAULT_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.file = file
        self._period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[Checkpoint] = []
        self._last_write: float | None = None
        self.written = 0  # checkpoints written by this anchor (for tests and reports)
        #: How to make this anchor again in another process (set by ``anchor_for``).
        self.spec: AnchorSpec | None = None

    @property
    def entries(self) -> list[Checkpoint]:
        return list(self._entries)

    def check_open(self, r: StoreReader, name: str) -> AnchorCheck:
        """Before a writer appends: refused (``LogBehindCheckpoint``) unless anchored."""
        entries = self.file.read()
        check = compare(r, entries, name)
        if not check.ok:
            raise LogBehindCheckpoint(check)
        if check.verdict is Verdict.NOT_ANCHORED and r.head() is not None:
            raise LogBehindCheckpoint(
                AnchorCheck(
                    Verdict.NOT_ANCHORED,
                    f"{name} holds events but {self.file.path} has no checkpoint of them (deleted"
                    " or never made): verify the log, then anchor it with `laserguard keys"
                    " anchor`",
                )
            )
        with self._lock:
            self._entries = entries
        return check

    def committed(self, head: HeadInfo | None, *, session_ended: bool) -> None:
        """After a commit: write a checkpoint if a session ended or the period is up."""
        if head is None:
            return
        now = self._clock()
        with self._lock:
            last = self._entries[-1] if self._entries else None
            # Commits of two threads may report out of order: a checkpoint never goes back.
            if last is not None and head.seq <= last.seq and head.chain == last.chain:
                return
            due = self._last_write is None or now - self._last_write >= self._period_s
            if not (session_ended or due):
                return
            cp = Checkpoint(
                0, head.chain, head.seq, head.hash, time.time(),
                "session_end" if session_ended else "periodic",
            )  # fmt: skip
            # Another process may write this log and its checkpoints too (the session log's
            # own process, `writer_process`): the file is read again under a lock shared
            # with it, so entries are numbered on from the newest and never go back.
            with _file_lock(self.file.path):
                entries = self.file.read()
                newest = entries[-1] if entries else None
                if newest is not None and head.seq <= newest.seq and head.chain == newest.chain:
                    self._entries = entries
                    return
                self._entries = self.file.append(cp, entries)
            self._last_write = now
            self.written += 1


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s checkpoints, across processes (a lock file beside it)."""
    try:
        fd = os.open(
            path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
    except OSError as e:
        raise SessionLogError(f"cannot lock the checkpoint file {path}: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class AnchorSpec:
    """What an anchor is made from, so another process can make the same one (``open``)."""

    db: Path
    public_key: str
    key_file: Path | None
    period_s: float

    def open(self) -> HeadAnchor:
        return anchor_for(self.db, self.public_key, self.key_file, period_s=self.period_s)


def checkpoint_path(db: Path) -> Path:
    """Where a log's checkpoints are kept: beside it, named after it."""
    return db.with_name(db.name + ".checkpoints.json")


def default_key_path(db: Path) -> Path:
    """The bridge's private anchor key, unless told otherwise: in the log's folder."""
    return db.with_name(KEY_FILE_NAME)


def checkpoints_for(db: Path, public_key: str, key_file: Path | None = None) -> CheckpointFile:
    """The checkpoint file of the log at ``db``, checked with ``public_key`` (from the setup);
    able to sign only if ``key_file`` is given (its key must match)."""
    private = None if key_file is None else load_private_key(key_file)
    return CheckpointFile(checkpoint_path(db), AnchorKey(parse_public_key(public_key), private))


def anchor_for(
    db: Path, public_key: str, key_file: Path | None = None, *, period_s: float = DEFAULT_PERIOD_S
) -> HeadAnchor:
    """The ``HeadAnchor`` a bridge writes the log at ``db`` with."""
    key_file = key_file or default_key_path(db)
    anchor = HeadAnchor(checkpoints_for(db, public_key, key_file), period_s=period_s)
    anchor.spec = AnchorSpec(db, public_key, key_file, period_s)
    return anchor
