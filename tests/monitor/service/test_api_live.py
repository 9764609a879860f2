"""Issue 9 items 3 and 4: the live view over WebSocket (stale data visible), the OpenAPI
document, the records and the aftercare sheet read from a real session log."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from monitor.control.protocol import EventMessage
from monitor.record.sqlite_store import SessionLog
from monitor.service.roles import Role
from tests.monitor.service.conftest import Console, snapshot


def messages(ws: WebSocketTestSession, n: int) -> list[dict[str, Any]]:
    """The next ``n`` messages, a batch frame opened (one tick's messages come in one)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        frame = ws.receive_json()
        out += frame["messages"] if frame["type"] == "batch" else [frame]
    assert len(out) == n, out
    return out


def test_item4_live_pushes_snapshots_with_seq_and_time_and_events(console: Console) -> None:
    console.fake.events = [
        EventMessage.model_validate(
            {
                "v": 1,
                "type": "event",
                "seq": 3,
                "t_wall": time.time(),
                "session_id": "a" * 32,
                "kind": "trip",
                "payload": {"check": "skin_temp_high"},
            }
        )
    ]
    with console.client.websocket_connect("/ws/live", headers=console.as_(Role.AUDITOR)) as ws:
        first, snap = messages(ws, 2)
        assert first["type"] == "event" and first["kind"] == "trip"
        assert snap["type"] == "snapshot" and snap["seq"] == 1
        assert snap["session"]["state"] == "STANDBY" and snap["channel_connected"] is True
        assert abs(snap["t_wall"] - time.time()) < 5 and snap["sent_wall"] >= snap["t_wall"]
        console.fake.latest = snapshot(seq=2, state="HALTED")
        (nxt,) = messages(ws, 1)
        assert nxt["seq"] == 2 and nxt["session"]["state"] == "HALTED"


def test_item3_the_page_can_tell_stale_data_the_channel_down_is_said(console: Console) -> None:
    old = time.time() - 30
    console.fake.latest = snapshot(seq=7, t_wall=old)
    console.fake.connected = False
    console.fake.last_error = "cannot connect to control.sock"
    with console.client.websocket_connect("/ws/live", headers=console.as_(Role.OPERATOR)) as ws:
        msgs = messages(ws, 2)
    snap = next(m for m in msgs if m["type"] == "snapshot")
    down = next(m for m in msgs if m["type"] == "channel")
    assert snap["t_wall"] == old and snap["channel_connected"] is False  # old data, said so
    assert down["connected"] is False and "control.sock" in down["why"]
    r = console.client.get("/api/session/live", headers=console.as_(Role.OPERATOR))
    assert r.json()["age_s"] >= 29 and r.json()["channel_connected"] is False


def test_item6_live_refuses_the_unauthenticated_and_other_origins(console: Console) -> None:
    with pytest.raises(WebSocketDisconnect), console.client.websocket_connect("/ws/live") as ws:
        ws.receive_json()
    headers = {**console.as_(Role.OPERATOR), "origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect),
        console.client.websocket_connect("/ws/live", headers=headers) as ws,
    ):
        ws.receive_json()


def test_item4_every_route_is_in_the_openapi_document(console: Console) -> None:
    doc = console.client.get("/api/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/auth/sign-in", "/api/auth/sign-out", "/api/auth/me", "/api/users",
        "/api/users/{username}/disable", "/api/users/{username}/enable",
        "/api/contraindications", "/api/bridge", "/api/session", "/api/session/live",
        "/api/session/gate-preview", "/api/session/settings", "/api/session/arm",
        "/api/session/standby", "/api/session/emergency-halt", "/api/session/reset",
        "/api/session/test-spot-pause/end", "/api/session/end", "/api/sessions",
        "/api/sessions/{session_id}", "/api/sessions/{session_id}/aftercare", "/api/health",
    ):  # fmt: skip
        assert path in paths, path
    settings = doc["components"]["schemas"]["Settings"]
    assert set(settings["required"]) == {"fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz"}


def test_item5_pages_and_health_need_no_sign_in_and_refuse_framing(console: Console) -> None:
    page = console.client.get("/")
    assert page.status_code == 200 and "LaserGuard console" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    health = console.client.get("/api/health")
    assert health.json() == {"ok": True, "channel_connected": True}
    assert health.headers["cache-control"] == "no-store"


def _a_session(console: Console, contact: str) -> str:
    with SessionLog(console.db) as log:
        sid = log.start_session(
            operator="operator1",
            patient_id="PAT-0042",
            skin_type="III",
            profile_name="demo-ndyag-1064 v3",
            profile_digest="0" * 64,
            mode="demo",
        )
        log.append(
            sid,
            "patient_information",
            {
                "clinic": "Demo <Vein> Clinic",
                "emergency_contact": contact,
                "aftercare_instructions": "Cool compresses. No sun for 2 weeks.",
            },
        )
        log.end_session(sid, "ended by operator1")
    return sid


def test_item4_records_list_show_and_the_aftercare_sheet(console: Console) -> None:
    auditor = console.as_(Role.AUDITOR)
    assert console.client.get("/api/sessions", headers=auditor).json() == []  # no log yet
    sid = _a_session(console, "On-call nurse +00 000 000 000 <script>alert(1)</script>")
    listed = console.client.get("/api/sessions", headers=auditor).json()
    assert [s["session_id"] for s in listed] == [sid]
    shown = console.client.get(f"/api/sessions/{sid[:8]}", headers=auditor).json()
    assert shown["verified"] is True
    assert [e["kind"] for e in shown["events"]][1] == "patient_information"
    sheet = console.client.get(f"/api/sessions/{sid}/aftercare", headers=auditor)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/html")
    assert "+00 000 000 000" in sheet.text and "PAT-0042" in sheet.text
    assert "<script>alert" not in sheet.text and "&lt;script&gt;" in sheet.text
    assert "Demo &lt;Vein&gt; Clinic" in sheet.text
    missing = console.client.get("/api/sessions/ffffffff", headers=auditor)
    assert missing.status_code == 404 and "no session" in missing.json()["detail"]


def test_item4_a_damaged_log_is_refused_never_shown_in_part(console: Console) -> None:
    import sqlite3

    sid = _a_session(console, "+00 1")
    with sqlite3.connect(console.db) as c:
        c.execute("DROP TRIGGER IF EXISTS events_no_update")
        c.execute(
            "UPDATE events SET payload = replace(payload, 'Cool', 'Warm') WHERE kind = 'patient_information'"
        )
    r = console.client.get(f"/api/sessions/{sid}/aftercare", headers=console.as_(Role.OPERATOR))
    assert r.status_code == 409 and "verification" in r.json()["detail"]
