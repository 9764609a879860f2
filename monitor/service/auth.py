"""Signing in: server-side sessions that expire, and failed sign-ins slowed down.

A sign-in makes a random token (``secrets.token_urlsafe``), kept in the service's memory with
the user's name: sent back as an HttpOnly, SameSite=Strict cookie (the page) and in the
answer (a script sends it as ``Authorization: Bearer``). A token expires
``IDLE_S`` after its last use or ``ABSOLUTE_S`` after the sign-in, whichever comes first
(30 min and 8 h: clinic defaults, review); an open live view counts as use. Signing out, and
the service's restart, end every token. Each request reads the user afresh from the users
file: a user disabled (from the console or ``laserguard users disable``) is out at once.

Failed sign-ins are slowed per user name and per address: after the n-th failure in a row
that key waits ``min(BASE_DELAY_S * 2**(n-1), MAX_DELAY_S)`` (1 s, 2 s, 4 s ... 60 s; clinic
default, review) before its next try is even checked, and is told how long. A success clears
both keys. The table is bounded (``MAX_KEYS``); the oldest entries go first.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ABSOLUTE_S", "IDLE_S", "SignIn", "SignIns", "Throttle"]

IDLE_S = 30 * 60.0  # clinic default, review
ABSOLUTE_S = 8 * 3600.0  # clinic default, review
BASE_DELAY_S = 1.0  # clinic default, review
MAX_DELAY_S = 60.0
MAX_KEYS = 10_000
MAX_TOKENS = 1_000
COOKIE = "laserguard_session"


@dataclass
class SignIn:
    token: str
    username: str
    created: float
    last_used: float

    def expires_at(self) -> float:
        return min(self.last_used + IDLE_S, self.created + ABSOLUTE_S)


class SignIns:
    """Tokens in memory (see the module docstring). ``now`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[str, SignIn] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def create(self, username: str) -> SignIn:
        now = self._clock()
        s = SignIn(secrets.token_urlsafe(32), username, now, now)
        with self._lock:
            self._expire(now)
            if len(self._tokens) >= MAX_TOKENS:  # the oldest sign-in gives way
                oldest = min(self._tokens.values(), key=lambda t: t.last_used)
                del self._tokens[oldest.token]
            self._tokens[s.token] = s
        return s

    def use(self, token: str) -> SignIn | None:
        """The sign-in of a token still valid (its idle time starts again), else None."""
        now = self._clock()
        with self._lock:
            s = self._tokens.get(token)
            if s is None:
                return None
            if now >= s.expires_at():
                del self._tokens[token]
                return None
            s.last_used = now
            return s

    def end(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def end_user(self, username: str) -> None:
        with self._lock:
            for t in [t for t, s in self._tokens.items() if s.username == username]:
                del self._tokens[t]

    def _expire(self, now: float) -> None:
        for t in [t for t, s in self._tokens.items() if now >= s.expires_at()]:
            del self._tokens[t]

    def seconds_left(self, s: SignIn) -> float:
        return max(0.0, s.expires_at() - self._clock())


class Throttle:
    """Failed sign-ins per key (``user:NAME``, ``addr:IP``), each delayed exponentially."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._fails: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (n, until)
        self._lock = threading.Lock()
        self._clock = clock

    def wait_s(self, *keys: str) -> float:
        """How long these keys must still wait before a try is checked (0: go ahead)."""
        now = self._clock()
        with self._lock:
            until = max((self._fails.get(k, (0, 0.0))[1] for k in keys), default=0.0)
        return max(0.0, until - now)

    def failed(self, *keys: str) -> float:
        """Count a failure for each key; returns the longest wait it sets."""
        now = self._clock()
        longest = 0.0
        with self._lock:
            for k in keys:
                n = self._fails.get(k, (0, 0.0))[0] + 1
                delay = min(BASE_DELAY_S * 2 ** (n - 1), MAX_DELAY_S)
                self._fails[k] = (n, now + delay)
                self._fails.move_to_end(k)
                longest = max(longest, delay)
            while len(self._fails) > MAX_KEYS:
                self._fails.popitem(last=False)
        return longest

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)
