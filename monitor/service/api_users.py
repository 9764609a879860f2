"""Sign in, sign out, who am I; and the users (administrators only)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from monitor.service.auth import ABSOLUTE_S, COOKIE
from monitor.service.deps import Principal, ServiceState, get_state, need, signed_in
from monitor.service.models import SignInBody, UserBody
from monitor.service.roles import ROLE_PERMISSIONS, Permission
from monitor.service.users import UserError

__all__ = ["router"]

router = APIRouter(prefix="/api")
State = Annotated[ServiceState, Depends(get_state)]


def _me(who: Principal, st: ServiceState) -> dict[str, Any]:
    return {
        "username": who.name,
        "role": str(who.role),
        "permissions": sorted(str(p) for p in ROLE_PERMISSIONS[who.role]),
        "expires_in_s": round(st.signins.seconds_left(who.signin), 1),
    }


def _whole_s(seconds: float) -> int:
    """A wait said in whole seconds, rounded up: a wait of 0.4 s is "1 s", never "0 s"."""
    return math.ceil(seconds)


@router.post("/auth/sign-in", tags=["auth"], summary="Sign in with a name and password")
def sign_in(body: SignInBody, request: Request, response: Response, st: State) -> dict[str, Any]:
    """Sets the session cookie and returns the token (for ``Authorization: Bearer``).
    Failed sign-ins are slowed per name and per address (429 with ``Retry-After``)."""
    address = request.client.host if request.client is not None else "unknown"
    keys = (f"user:{body.username}", f"addr:{address}")
    wait = st.throttle.wait_s(*keys)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many failed sign-ins: try again in {_whole_s(wait)} s",
            headers={"Retry-After": str(_whole_s(wait))},
        )
    user = st.users.verify(body.username, body.password)
    if user is None:
        delay = st.throttle.failed(*keys)
        st.users.audit(address, "sign_in_failed", body.username[:64], "")
        raise HTTPException(
            401,
            f"wrong name or password (or the account is disabled); the next try waits {_whole_s(delay)} s",
            headers={"WWW-Authenticate": "Bearer"},
        )
    st.throttle.succeeded(*keys)
    signin = st.signins.create(user.username)
    st.users.audit(user.username, "sign_in", user.username, address)
    response.set_cookie(
        COOKIE,
        signin.token,
        max_age=int(ABSOLUTE_S),
        httponly=True,
        samesite="strict",
        path="/",
    )
    return {**_me(Principal(user, signin), st), "token": signin.token}


@router.post("/auth/sign-out", tags=["auth"], summary="End this sign-in")
def sign_out(
    request: Request, response: Response, who: Annotated[Principal, Depends(signed_in)], st: State
) -> dict[str, Any]:
    st.signins.end(who.signin.token)
    response.delete_cookie(COOKIE, path="/")
    return {"signed_out": who.name}


@router.get("/auth/me", tags=["auth"], summary="The signed-in user, role and permissions")
def me(who: Annotated[Principal, Depends(signed_in)], st: State) -> dict[str, Any]:
    return _me(who, st)


Admin = Annotated[Principal, Depends(need(Permission.MANAGE_USERS))]


@router.get("/users", tags=["users"], summary="Every user (administrators)")
def list_users(who: Admin, st: State) -> list[dict[str, object]]:
    return [u.as_dict() for u in st.users.list()]


@router.post("/users", tags=["users"], status_code=201, summary="Add a user (administrators)")
def add_user(body: UserBody, who: Admin, st: State) -> dict[str, object]:
    try:
        user = st.users.add(body.username, body.role, body.password, by=who.name)
    except UserError as e:
        status = 409 if "already exists" in str(e) else 422
        raise HTTPException(status, str(e)) from e
    return user.as_dict()


@router.post(
    "/users/{username}/disable", tags=["users"], summary="Disable a user; their sign-ins end"
)
def disable_user(username: str, who: Admin, st: State) -> dict[str, object]:
    if username == who.name:
        raise HTTPException(409, "you cannot disable your own account: ask another administrator")
    try:
        user = st.users.disable(username, by=who.name)
    except UserError as e:
        raise HTTPException(404 if str(e).startswith("no user") else 409, str(e)) from e
    st.signins.end_user(username)
    return user.as_dict()


@router.post("/users/{username}/enable", tags=["users"], summary="Enable a disabled user")
def enable_user(username: str, who: Admin, st: State) -> dict[str, object]:
    try:
        return st.users.enable(username, by=who.name).as_dict()
    except UserError as e:
        raise HTTPException(404, str(e)) from e
