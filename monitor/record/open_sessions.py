"""Which open sessions still have a live writer: one locked file per open session.

The ``SessionLocks`` of the SQLite store. A session's writer holds an exclusive ``flock`` on ``<log file>-open/<session id>.lock``
from before its ``session_start`` is committed until its ``session_end`` is. The kernel
drops the lock when the process ends in any way (``kill -9``, a power cut ends everything
anyway), so a writer that opens the log later can tell a session whose process is gone (the
lock can be taken) from one that another bridge is still writing (it cannot): only the
first kind is marked interrupted.

``flock`` locks belong to an open file, not to a process, so a second ``SessionLog`` in the
same process sees the first one's sessions as live too. This works for writers on one
machine; a log file on a network share is not supported (nor is it by SQLite's WAL mode).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path

__all__ = ["OpenSessionLocks"]

_PLAIN_ID = re.compile(r"[0-9a-f]{32}")


class OpenSessionLocks:
    """The lock files of one log file's open sessions."""

    def __init__(self, db_path: Path) -> None:
        self.folder = Path(f"{db_path}-open")
        self._held: dict[str, int] = {}

    @property
    def where(self) -> str:
        return str(self.folder)

    def _file(self, session_id: str) -> Path:
        # Ids come from the log, which a person may have edited: never a path from one.
        name = (
            session_id
            if _PLAIN_ID.fullmatch(session_id)
            else hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        )
        return self.folder / f"{name}.lock"

    def _open_locked(self, session_id: str) -> int | None:
        """A descriptor holding the session's lock, or None if someone else holds it."""
        self.folder.mkdir(exist_ok=True)
        fd = os.open(self._file(session_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            raise
        return fd

    def hold(self, session_id: str) -> None:
        """Take the lock of a session about to start (raises OSError if that fails)."""
        fd = self._open_locked(session_id)
        if fd is None:
            raise OSError(f"the lock of new session {session_id} is already held")
        os.ftruncate(fd, 0)
        os.write(fd, f"session {session_id} written by pid {os.getpid()}\n".encode())
        self._held[session_id] = fd

    def holds(self, session_id: str) -> bool:
        return session_id in self._held

    def descriptor(self, session_id: str) -> int | None:
        """The descriptor holding a session's lock. A process it is handed to (duplicated
        over a Unix socket: the same open file) holds the lock with this one: the session is
        live until both have let go."""
        return self._held.get(session_id)

    def claim_orphan(self, session_id: str) -> int | None:
        """The lock of an open session whose writer is gone, or None if a writer holds it."""
        if session_id in self._held:
            return None
        return self._open_locked(session_id)

    def release(self, session_id: str, token: int | None = None) -> None:
        """The session has ended: remove its lock file, then let go of the lock (the held
        one, or the orphan's that ``claim_orphan`` returned as ``token``)."""
        fd = self._held.pop(session_id, None) if token is None else token
        if fd is None:
            return
        try:
            self._file(session_id).unlink(missing_ok=True)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Let go of every lock and keep the files: those sessions never ended."""
        held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)
