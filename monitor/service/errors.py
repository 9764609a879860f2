"""Every refused request is a 4xx with one sentence a person understands, and changes nothing.

- 401: not signed in, or the sign-in expired; 403: the role may not do this;
- 404: no such session (or none running); 409: the session refuses now (arming while halted,
  a reset while the cause persists, settings the gate refuses...): the bridge's own words;
- 413: a body over ``MAX_BODY_BYTES``; 422: a malformed body (its fields named);
- 429: too many failed sign-ins, or commands, for now (``Retry-After``);
- 503: the bridge cannot be reached (the channel is down); nothing was done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.control.client import ControlError

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "install_handlers", "status_of"]

MAX_BODY_BYTES = 64 * 1024

_STATUS = {
    "bad_request": 422,
    "refused": 409,
    "no_session": 409,
    "busy": 429,
    "unavailable": 503,
    "internal": 500,
}


def status_of(error: ControlError) -> int:
    return _STATUS.get(error.kind, 500)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _readable(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    listed = []
    for err in errors[:10]:
        if err.get("type") == "json_invalid":
            return "the request body is not valid JSON", [{"field": "body", "problem": "not JSON"}]
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            return "the request needs a JSON body", [{"field": "body", "problem": "missing"}]
        field = _field(tuple(err.get("loc", ())))
        problem = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            problem = "is not a field of this request"
        listed.append({"field": field, "problem": problem})
    sentence = "; ".join(f"{e['field']}: {e['problem']}" for e in listed)
    return f"the request is not valid: {sentence}", listed


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, listed = _readable(list(exc.errors()))
        return JSONResponse(status_code=422, content={"detail": detail, "errors": listed})

    @app.exception_handler(ControlError)
    async def refused(request: Request, exc: ControlError) -> JSONResponse:
        status = status_of(exc)
        body: dict[str, Any] = {"detail": str(exc), "kind": exc.kind}
        if exc.detail:
            body["gate"] = exc.detail
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        return JSONResponse(status_code=status, content=body, headers=headers)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, unread.
    Paths for which ``large(path)`` holds (a photo upload) may send up to ``large_limit``."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        *,
        large: Callable[[str], bool] | None = None,
        large_limit: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.default_limit = limit
        self.large = large
        self.large_limit = large_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.default_limit
        if self.large is not None and self.large(str(scope.get("path", ""))):
            limit = self.large_limit
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = f'{{"detail":"the request body is over {limit} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
