"""The console's users: names, roles and Argon2id password hashes in their own SQLite file.

The file lives beside the session log (``users_path``: ``users.sqlite3`` in the log's folder)
and is not part of the session log's chain: it is the key to the console, not a record of a
treatment. What happens to users (added, disabled, enabled, a password changed, a sign-in
refused) is kept in its ``user_audit`` table, with who did it.

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106 low-memory
defaults: 64 MiB, 3 passes), never stored or logged as text. A password is 12 to 256
characters (clinic default, review). The last enabled administrator cannot be disabled.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.service.roles import Role

__all__ = ["MIN_PASSWORD_CHARS", "User", "UserError", "UserStore", "users_path"]

MIN_PASSWORD_CHARS = 12  # clinic default, review
MAX_PASSWORD_CHARS = 256
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    changed_at REAL NOT NULL,
    changed_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_audit (
    id INTEGER PRIMARY KEY,
    t_wall REAL NOT NULL,
    by TEXT NOT NULL,
    action TEXT NOT NULL,
    username TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class UserError(ValueError):
    """A user that cannot be added or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    disabled: bool
    created_at: float
    created_by: str

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username,
            "role": str(self.role),
            "disabled": self.disabled,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def users_path(db_path: str | Path) -> Path:
    """The users file beside a session log."""
    return Path(db_path).parent / "users.sqlite3"


def check_username(name: str) -> str:
    if not USERNAME.match(name):
        raise UserError(
            f"user name {name!r} must be 1-32 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    return password


def role_of(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise UserError(
            f"unknown role {text!r}: one of {', '.join(r.value for r in Role)}"
        ) from None


class UserStore:
    """The users file (see the module docstring). Safe to use from several threads."""

    def __init__(self, path: str | Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._open: sqlite3.Connection | None = None
        # Hashed once: an unknown name costs a sign-in as much time as a known one.
        self._dummy = self.hasher.hash("laserguard: no such user")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._conn() as c:
                # WAL: the console reads it on every request while ``laserguard users`` writes.
                c.execute("PRAGMA journal_mode=WAL")
                c.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot open the users file {self.path}: {e}") from e

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """One connection, kept open and used under the lock: the console reads the users
        file on every request, and opening it each time was a large share of a flooded
        service's work. Each use is its own transaction, so a change made by another
        process (``laserguard users disable``) is seen by the next request (WAL). A
        connection that failed is closed and the next use opens a new one."""
        with self._lock:
            if self._open is None:
                self._open = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            conn = self._open
            try:
                with conn:
                    yield conn
            except sqlite3.Error:
                self._open = None
                conn.close()
                raise

    def _audit(
        self, c: sqlite3.Connection, by: str, action: str, username: str, detail: str
    ) -> None:
        c.execute(
            "INSERT INTO user_audit (t_wall, by, action, username, detail) VALUES (?,?,?,?,?)",
            (time.time(), by, action, username, detail[:300]),
        )

    def audit(self, by: str, action: str, username: str, detail: str = "") -> None:
        with self._conn() as c:
            self._audit(c, by, action, username, detail)

    def audit_log(self, limit: int = 100) -> list[dict[str, object]]:
        with self._conn() as c:
            rows = c.execute(
                "SELECT t_wall, by, action, username, detail FROM user_audit"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("t_wall", "by", "action", "username", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @staticmethod
    def _user(row: tuple[str, str, int, float, str]) -> User:
        return User(row[0], Role(row[1]), bool(row[2]), float(row[3]), row[4])

    def list(self) -> list[User]:
        with self._conn() as c:
            rows = c.execute(
                "SELECT username, role, disabled, created_at, created_by FROM users"
                " ORDER BY username"
            ).fetchall()
        return [self._user(r) for r in rows]

    def get(self, username: str) -> User | None:
        with self._conn() as c:
            row = c.execute(
                "SELECT username, role, disabled, created_at, created_by FROM users"
                " WHERE username = ?",
                (username,),
            ).fetchone()
        return None if row is None else self._user(row)

    def add(self, username: str, role: Role, password: str, by: str) -> User:
        check_username(username)
        check_password(password)
        digest = self.hasher.hash(password)
        now = time.time()
        try:
            with self._conn() as c:
                c.execute(
                    "INSERT INTO users (username, role, password_hash, disabled, created_at,"
                    " created_by, changed_at, changed_by) VALUES (?,?,?,0,?,?,?,?)",
                    (username, str(role), digest, now, by, now, by),
                )
                self._audit(c, by, "add", username, f"role {role}")
        except sqlite3.IntegrityError:
            raise UserError(f"user {username!r} already exists") from None
        return User(username, role, False, now, by)

    def _set_disabled(self, username: str, disabled: bool, by: str) -> User:
        user = self.get(username)
        if user is None:
            raise UserError(f"no user {username!r}")
        with self._conn() as c:
            if disabled and user.role is Role.ADMIN and not user.disabled:
                admins = c.execute(
                    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
                ).fetchone()[0]
                if admins <= 1:
                    raise UserError(
                        f"{username!r} is the last enabled administrator: add another first"
                    )
            c.execute(
                "UPDATE users SET disabled = ?, changed_at = ?, changed_by = ? WHERE username = ?",
                (int(disabled), time.time(), by, username),
            )
            self._audit(c, by, "disable" if disabled else "enable", username, "")
        return User(user.username, user.role, disabled, user.created_at, user.created_by)

    def disable(self, username: str, by: str) -> User:
        return self._set_disabled(username, True, by)

    def enable(self, username: str, by: str) -> User:
        return self._set_disabled(username, False, by)

    def set_password(self, username: str, password: str, by: str) -> None:
        check_password(password)
        digest = self.hasher.hash(password)
        with self._conn() as c:
            n = c.execute(
                "UPDATE users SET password_hash = ?, changed_at = ?, changed_by = ?"
                " WHERE username = ?",
                (digest, time.time(), by, username),
            ).rowcount
            if n == 0:
                raise UserError(f"no user {username!r}")
            self._audit(c, by, "password", username, "")

    def verify(self, username: str, password: str) -> User | None:
        """The user, if the name is known, enabled and the password right; else None.
        Costs about one Argon2 verification whatever the outcome."""
        with self._conn() as c:
            row = c.execute(
                "SELECT password_hash, disabled FROM users WHERE username = ?", (username,)
            ).fetchone()
        digest = row[0] if row is not None else self._dummy
        try:
            self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row[1]:
            return None
        if self.hasher.check_needs_rehash(digest):  # the parameters grew since it was set
            # Hashed before the lock is taken: every request reads this file under it, some
            # on the service's event loop, and a hash takes tens of milliseconds.
            fresh = self.hasher.hash(password)
            with self._conn() as c:
                c.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?", (fresh, username)
                )
        return self.get(username)

    def enabled_count(self) -> int:
        with self._conn() as c:
            n: int = c.execute("SELECT COUNT(*) FROM users WHERE disabled = 0").fetchone()[0]
        return n
