"""The console's FastAPI application: REST under ``/api``, the live view at ``/ws/live``, the
pages from ``static/`` at ``/``. The OpenAPI document is ``/api/openapi.json``.

``create_app(port, users, db_path)`` wires a ``ControlPort`` (the channel to the bridge, or a
fake in an API test), the users store and the session log's path; ``python -m
monitor.service`` runs it under uvicorn (``__main__``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from device_profiles.loader import load_contraindications
from device_profiles.schema import Contraindications
from monitor.incidents.photos import MAX_PHOTO_BYTES
from monitor.service import (
    api_fleet,
    api_incidents,
    api_records,
    api_reports,
    api_session,
    api_users,
    live,
)
from monitor.service.deps import ServiceState
from monitor.service.errors import BodyLimit, install_handlers
from monitor.service.port import ControlPort
from monitor.service.users import UserStore

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """\
The LaserGuard treatment console. Every route but `/api/health` needs a sign-in
(`POST /api/auth/sign-in`: a cookie for the page, or the token as `Authorization: Bearer`).
Refusals are 4xx with `{"detail": "one sentence"}`: 401 not signed in, 403 wrong role,
409 the session refuses now (its own words), 422 a malformed body, 429 slow down.
Live data: the WebSocket `/ws/live` (snapshots at 20 Hz, events). Nothing here can widen a
limit or arm past the settings gate: the bridge's session judges every command.
"""

_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),  # no page may frame the arm and halt buttons
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: headers against framing and sniffing; API answers are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += _SECURITY_HEADERS
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    port: ControlPort,
    users: UserStore,
    db_path: str | Path,
    *,
    form: Contraindications | None = None,
    static_dir: Path = STATIC_DIR,
) -> FastAPI:
    app = FastAPI(
        title="LaserGuard console",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # the Swagger page loads scripts from the internet; the clinic has none
        redoc_url=None,
    )
    app.state.laserguard = ServiceState(
        port=port,
        users=users,
        db_path=Path(db_path),
        form=form if form is not None else load_contraindications(),
    )
    install_handlers(app)

    @app.get("/api/health", tags=["service"], summary="The service answers (no sign-in needed)")
    def health() -> dict[str, Any]:
        return {"ok": True, "channel_connected": port.connected}

    app.include_router(api_users.router)
    app.include_router(api_session.router)
    app.include_router(api_records.router)
    app.include_router(api_incidents.router)
    app.include_router(api_reports.router)
    app.include_router(api_fleet.router)
    app.include_router(live.router)
    app.mount("/", StaticFiles(directory=static_dir, html=True), name="pages")
    app.add_middleware(
        BodyLimit, large=api_incidents.photo_upload_path, large_limit=MAX_PHOTO_BYTES + 1024
    )
    app.add_middleware(SecurityHeaders)
    return app
