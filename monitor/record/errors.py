"""What can go wrong with the session record, whichever store holds it.

::

    SessionLogError        any failure to open, write or read; a store's own errors kept as __cause__
    └── SessionLogDamaged  the store or its chain fails verification: nothing is shown from it

Each store converts its own errors (``sqlite3.Error``, a driver's) into these at one
boundary, the store, so nothing above it knows which database is underneath.
"""

from __future__ import annotations

__all__ = ["SessionLogDamaged", "SessionLogError"]


class SessionLogError(Exception):
    """The session log could not be opened, written or read. Treatment must stop."""


class SessionLogDamaged(SessionLogError):
    """The file or its chain fails verification; nothing may be shown from it as if whole."""
