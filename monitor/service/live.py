"""``/ws/live``: the session's snapshots and events, pushed to the page as they come.

Messages (JSON text frames):

- ``{"type": "snapshot", "seq", "t_wall", "bridge", "session", "alarms", ...,
  "channel_connected", "sent_wall"}``: the bridge's snapshot (``SNAPSHOT_HZ``, 20 a second),
  ``t_wall`` the time of its data. A page shows its data as stale when ``t_wall`` is old
  (``docs/console.md`` suggests 0.5 s) or when no message came for that long.
- ``{"type": "event", "seq", "t_wall", "session_id", "kind", "payload"}``: each event the
  session records, in order (on connecting, the ones the service still holds).
- ``{"type": "channel", "connected": false, "t_wall", "why"}``: once a second while the
  bridge cannot be reached.
- ``{"type": "batch", "messages": [...]}``: what one tick has for a page when that is more
  than one message (events, then the snapshot), in one frame, in order. One frame per page
  per tick, however many events came: a frame's sending was the flooded service's largest
  cost after its requests.

Signed-in users with the ``view`` permission only (the cookie, or ``Authorization: Bearer``);
a page from another origin is refused. A page that does not take its messages within
``SEND_TIMEOUT_S`` is closed: one stuck browser holds up nobody else. An open live view keeps
its sign-in from going idle.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from monitor.control.client import KEPT_EVENTS
from monitor.control.protocol import SNAPSHOT_HZ, EventMessage
from monitor.service.deps import principal_of, state_of
from monitor.service.roles import Permission, allowed

__all__ = ["router", "snapshot_json"]

router = APIRouter()
SEND_TIMEOUT_S = 2.0
RECHECK_SIGNIN_S = 30.0
_PERIOD_S = 1.0 / SNAPSHOT_HZ
#: The last snapshot encoded: (the message, channel_connected, its JSON without the closing
#: brace). One tuple, replaced whole, so the request threads and the event loop can share it.
_encoded: tuple[Any, bool, str] = (None, False, "")


def _same_origin(origin: str, host: str | None) -> bool:
    return host is not None and urlsplit(origin).netloc == host


def snapshot_json(msg: Any, connected: bool) -> str:
    """The snapshot and ``channel_connected`` as JSON without its closing brace (the caller
    adds its own last field), encoded once per snapshot whatever the number of pages and
    requests."""
    global _encoded
    held, was_connected, text = _encoded
    if held is not msg or was_connected != connected:
        body = msg.model_dump(mode="json")
        body["channel_connected"] = connected
        text = json.dumps(body)[:-1]
        _encoded = (msg, connected, text)
    return text


#: Each event's JSON, encoded once for all pages: (the event, its text) by ``id`` of the
#: event, which the entry holds so the id is not reused while the entry is kept.
_event_texts: OrderedDict[int, tuple[EventMessage, str]] = OrderedDict()
_KEPT_EVENT_TEXTS = 2 * KEPT_EVENTS


def _event_text(ev: EventMessage) -> str:
    held = _event_texts.get(id(ev))
    if held is not None and held[0] is ev:
        return held[1]
    text = json.dumps(ev.model_dump(mode="json"))
    _event_texts[id(ev)] = (ev, text)
    while len(_event_texts) > _KEPT_EVENT_TEXTS:
        _event_texts.popitem(last=False)
    return text


def _snapshot_text(msg: Any, connected: bool) -> str:
    return f'{snapshot_json(msg, connected)},"sent_wall":{time.time()}}}'


def _frame(texts: list[str]) -> str:
    """One message as itself, several as a batch (each already JSON)."""
    if len(texts) == 1:
        return texts[0]
    return '{"type":"batch","messages":[' + ",".join(texts) + "]}"


@router.websocket("/ws/live")
async def live(ws: WebSocket) -> None:
    st = state_of(ws)
    who = principal_of(ws)
    origin = ws.headers.get("origin")
    if isinstance(who, str) or not allowed(who.role, Permission.VIEW):
        await ws.close(code=1008, reason=who if isinstance(who, str) else "not allowed")
        return
    if origin is not None and not _same_origin(origin, ws.headers.get("host")):
        await ws.close(code=1008, reason="a page from another origin")
        return
    await ws.accept()
    last_snap = -1
    last_event = 0
    last_down = 0.0
    last_check = time.monotonic()
    try:
        while True:
            port = st.port
            snap = port.latest
            connected = port.connected
            sends: list[str] = []
            for ev in port.events_since(last_event):
                sends.append(_event_text(ev))
                last_event = ev.seq
            if snap is not None and snap.seq != last_snap:
                sends.append(_snapshot_text(snap, connected))
                last_snap = snap.seq
            now = time.time()
            if not connected and now - last_down >= 1.0:
                last_down = now
                why = getattr(port, "last_error", None) or "the bridge cannot be reached"
                sends.append(
                    json.dumps({"type": "channel", "connected": False, "t_wall": now, "why": why})
                )
            if sends:
                await asyncio.wait_for(ws.send_text(_frame(sends)), SEND_TIMEOUT_S)
            if time.monotonic() - last_check > RECHECK_SIGNIN_S:
                last_check = time.monotonic()
                again = principal_of(ws)  # uses the token: an open live view is not idle
                if isinstance(again, str):
                    await ws.close(code=1008, reason=again)
                    return
            await asyncio.sleep(_PERIOD_S)
    except (TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
        # The page went away, or did not take its messages in time: close it, and only it.
        try:
            await ws.close(code=1011)
        except (RuntimeError, OSError, WebSocketDisconnect):
            return  # already closed by the other side
