"""What every route depends on: the service's state, the signed-in user, the permission.

``need(Permission.X)`` is a dependency that answers 401 to a request without a valid sign-in
and 403 to one whose role lacks ``X``, before the route runs: a refused request changes
nothing.

The dependencies are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a
hand-over there and back per dependency per request, and with three of them that was the
largest single cost of a flooded service. What they do (a dictionary look-up and one
indexed read of the users file) is brief enough for the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from device_profiles.schema import Contraindications
from monitor.service.auth import COOKIE, SignIn, SignIns, Throttle
from monitor.service.port import ControlPort
from monitor.service.roles import Permission, Role, allowed, roles_with
from monitor.service.session_info import SessionInfoCache
from monitor.service.users import User, UserStore

__all__ = [
    "CommandLimiter", "Principal", "ServiceState", "get_state", "need", "principal_of", "state_of",
]  # fmt: skip

#: Commands the service sends the bridge per second, and the burst above it: a flood of
#: requests gets 429 here, never a flood on the channel (the emergency halt is never limited).
COMMANDS_PER_S = 20.0
COMMANDS_BURST = 40.0


class CommandLimiter:
    """A token bucket over every command sent to the bridge (but the emergency halt)."""

    def __init__(self, rate: float = COMMANDS_PER_S, burst: float = COMMANDS_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


@dataclass
class ServiceState:
    port: ControlPort
    users: UserStore
    db_path: Path
    form: Contraindications
    signins: SignIns = field(default_factory=SignIns)
    throttle: Throttle = field(default_factory=Throttle)
    limiter: CommandLimiter = field(default_factory=CommandLimiter)
    session_info: SessionInfoCache = field(default_factory=SessionInfoCache)
    # Wall-clock seconds now, for the clinic's records (a test controls when follow-ups fall due).
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Principal:
    user: User
    signin: SignIn

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role


def state_of(conn: HTTPConnection) -> ServiceState:
    st: ServiceState = conn.app.state.laserguard
    return st


async def get_state(conn: HTTPConnection) -> ServiceState:
    """The service's state, as a dependency."""
    return state_of(conn)


def _token(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return conn.cookies.get(COOKIE)


def principal_of(conn: HTTPConnection) -> Principal | str:
    """The signed-in user of a request or WebSocket, or why there is none."""
    st = state_of(conn)
    token = _token(conn)
    if token is None:
        return "sign in first"
    signin = st.signins.use(token)
    if signin is None:
        return "your sign-in has expired or ended: sign in again"
    user = st.users.get(signin.username)
    if user is None or user.disabled:
        st.signins.end(token)
        return "this account is disabled or removed: sign in with another"
    return Principal(user, signin)


async def signed_in(request: Request) -> Principal:
    who = principal_of(request)
    if isinstance(who, str):
        raise HTTPException(401, who, headers={"WWW-Authenticate": "Bearer"})
    return who


_WORDS = {
    Permission.VIEW: "see the console",
    Permission.READ_RECORDS: "read session records",
    Permission.TREAT: "run a treatment",
    Permission.EMERGENCY_HALT: "halt the laser",
    Permission.ATTEST: "attest a relative contraindication",
    Permission.END_TEST_SPOT_PAUSE: "end a test-spot pause",
    Permission.SIGN_OFF_INCIDENTS: "sign off incidents",
    Permission.RECORD_INCIDENTS: "record incidents or tick a protocol's checklist",
    Permission.CALIBRATE: "calibrate",
    Permission.PROFILES: "manage profiles",
    Permission.MANAGE_USERS: "manage users",
    Permission.READ_FLEET: "read the fleet view",
}


def refuse_role(who: Principal, permission: Permission) -> HTTPException:
    return HTTPException(
        403,
        f"{who.name} ({who.role}) may not {_WORDS[permission]}: that needs the role "
        f"{' or '.join(roles_with(permission))}",
    )


def need(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Annotated[Principal, Depends(signed_in)]) -> Principal:
        if not allowed(who.role, permission):
            raise refuse_role(who, permission)
        return who

    return check
