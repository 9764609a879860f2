"""Issue 9 item 6: a malformed or refused request is a 4xx in one sentence, and changes nothing."""

from __future__ import annotations

import pytest

from monitor.control.client import ControlError, ControlUnavailable
from monitor.service.deps import CommandLimiter
from monitor.service.roles import Role
from tests.monitor.service.conftest import Console
from tests.monitor.service.endpoints import ANSWERS, ENDPOINTS, SETTINGS, START

WITH_BODY = [ep for ep in ENDPOINTS if ep.body is not None and ep.method == "POST"]
ROLE_FOR = {
    "/api/users": Role.ADMIN,
    "/api/session/test-spot-pause/end": Role.CLINICIAN,
}

MALFORMED = [
    ("/api/session/gate-preview", {**SETTINGS, "fluence_j_cm2": "120"}, "fluence_j_cm2"),
    ("/api/session/gate-preview", {k: v for k, v in SETTINGS.items() if k != "spot_mm"}, "spot_mm"),
    ("/api/session/settings", {**SETTINGS, "power_w": 5}, "power_w: is not a field"),
    ("/api/session/settings", {**SETTINGS, "rep_rate_hz": None}, "rep_rate_hz"),
    ("/api/session", {**START, "patient_id": "Jane Smith"}, "patient_id"),
    ("/api/session", {**START, "patient_id": ""}, "patient_id"),
    ("/api/session", {**START, "skin_type": "VII"}, "skin_type"),
    ("/api/session", {**START, "melanin_index": 150}, "melanin_index"),
    ("/api/session", {**START, "answers": {**ANSWERS, "pregnancy": "no"}}, "answers.pregnancy"),
    ("/api/session", {k: v for k, v in START.items() if k != "answers"}, "answers"),
    ("/api/session", {**START, "site": "arm"}, "site"),
    ("/api/session", {**START, "site": 3}, "site"),
    ("/api/session", {**START, "test_spots": [{"done_on": "2026-01-01"}]}, "test_spots.0"),
    ("/api/session", {**START, "test_spots": "legs"}, "test_spots"),
    ("/api/session/protocol-steps", {"check": "cooler_flow_low", "step": "1"}, "step"),
    ("/api/session/protocol-steps", {"check": "cooler_flow_low", "step": 0}, "step"),
    ("/api/session/protocol-steps", {"step": 1}, "check"),
    ("/api/session/reset", {"condition": "skin_temp_high"}, "reason"),
    ("/api/session/reset", {"condition": "skin_temp_high", "reason": "   "}, "reason"),
    ("/api/session/reset", {"condition": "DROP TABLE", "reason": "x"}, "condition"),
    ("/api/session/emergency-halt", {"reason": "x" * 501}, "reason"),
    ("/api/session/test-spot-pause/end", {}, "reason"),
    ("/api/users", {"username": "x", "role": "root", "password": "a long password"}, "role"),
    ("/api/users", {"username": "x", "role": "operator"}, "password"),
]


def _role(path: str) -> Role:
    return ROLE_FOR.get(path, Role.CLINICIAN)


@pytest.mark.parametrize("ep", WITH_BODY, ids=str)
def test_item6_a_body_that_is_not_json_is_422_and_sends_nothing(
    one_app: Console, ep: object
) -> None:
    console = one_app
    path = ep.path  # type: ignore[attr-defined]
    headers = {**console.as_(_role(path)), "content-type": "application/json"}
    r = console.client.post(path, content=b'{"reason": "x", ', headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "the request body is not valid JSON"
    assert console.fake.calls == []


@pytest.mark.parametrize(("path", "body", "named"), MALFORMED, ids=lambda x: str(x)[:40])
def test_item6_a_malformed_body_is_422_naming_the_field_and_changes_nothing(
    one_app: Console, path: str, body: dict[str, object], named: str
) -> None:
    console = one_app
    users_before = [u.as_dict() for u in console.users.list()]
    r = console.client.post(path, json=body, headers=console.as_(_role(path)))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the request is not valid: ") and named in detail, detail
    assert console.fake.calls == []
    assert [u.as_dict() for u in console.users.list()] == users_before


def test_item6_nan_settings_are_refused(one_app: Console) -> None:
    console = one_app
    raw = b'{"fluence_j_cm2": NaN, "pulse_ms": 30, "spot_mm": 3, "rep_rate_hz": 1}'
    r = console.client.post(
        "/api/session/settings",
        content=raw,
        headers={**console.as_(Role.OPERATOR), "content-type": "application/json"},
    )
    assert r.status_code == 422 and "fluence_j_cm2" in r.json()["detail"]
    assert console.fake.calls == []


def test_item6_a_body_over_64_kib_is_413_unread(one_app: Console) -> None:
    console = one_app
    r = console.client.post(
        "/api/session/emergency-halt",
        content=b'{"reason": "' + b"x" * 70_000 + b'"}',
        headers={**console.as_(Role.OPERATOR), "content-type": "application/json"},
    )
    assert r.status_code == 413 and "over 65536 bytes" in r.json()["detail"]
    assert console.fake.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ControlError("refused", "arming needs STANDBY (now HALTED)"), 409),
        (ControlError("no_session", "no session is running: start one first"), 409),
        (ControlError("bad_request", "not answered: pregnancy"), 422),
        (ControlError("busy", "too many commands queued: try again"), 429),
        (ControlUnavailable("the bridge's control channel is not connected"), 503),
    ],
    ids=lambda x: str(x)[:30],
)
def test_item6_the_bridges_refusal_is_its_own_words_with_the_right_status(
    one_app: Console, error: ControlError, status: int
) -> None:
    console = one_app
    console.fake.replies["arm"] = error
    try:
        r = console.client.post("/api/session/arm", headers=console.as_(Role.OPERATOR))
    finally:
        del console.fake.replies["arm"]
    assert r.status_code == status
    assert r.json()["detail"] == str(error)


def test_item6_the_gates_refusal_carries_its_violations(one_app: Console) -> None:
    console = one_app
    gate = {"ok": False, "explanation": "fluence 900 J/cm² is above the maximum", "violations": []}
    console.fake.replies["apply_settings"] = ControlError(
        "refused", "the settings do not pass the gate: fluence 900 J/cm² is above the maximum", gate
    )
    try:
        r = console.client.post(
            "/api/session/settings",
            json={**SETTINGS, "fluence_j_cm2": 900.0},
            headers=console.as_(Role.OPERATOR),
        )
    finally:
        del console.fake.replies["apply_settings"]
    assert r.status_code == 409
    assert r.json()["gate"]["explanation"].startswith("fluence 900")


def test_item6_a_flood_of_commands_gets_429_and_the_emergency_halt_still_goes(
    console: Console,
) -> None:
    console.state.limiter = CommandLimiter(rate=0.001, burst=5)  # no refill during the test
    headers = console.as_(Role.OPERATOR)
    codes = [
        console.client.post("/api/session/gate-preview", json=SETTINGS, headers=headers).status_code
        for _ in range(8)
    ]
    assert codes == [200] * 5 + [429] * 3
    sent = len(console.fake.calls)
    r = console.client.post("/api/session/emergency-halt", json={}, headers=headers)
    assert r.status_code == 200
    assert console.fake.commands()[sent:] == ["emergency_halt"]


def test_item6_no_session_running_is_404_on_get_session(one_app: Console) -> None:
    console = one_app
    console.fake.replies["session_info"] = ControlError("no_session", "no session is running")
    try:
        r = console.client.get("/api/session", headers=console.as_(Role.AUDITOR))
    finally:
        del console.fake.replies["session_info"]
    assert r.status_code == 404 and r.json()["detail"] == "no session is running"


def test_item1_the_site_and_test_spots_reach_the_bridge_as_given(console: Console) -> None:
    spot = {
        "done_on": "2026-03-02", "read_on": "2026-03-16", "read_by": "Dr. Vega",
        "site": "legs", "wavelength_nm": 1064, "fluence_j_cm2": 100.0, "pulse_ms": 30.0,
        "spot_mm": 3.0, "result": "no_reaction",
    }  # fmt: skip
    body = {**START, "site": "periorbital", "test_spots": [spot]}
    r = console.client.post("/api/session", json=body, headers=console.as_(Role.OPERATOR))
    assert r.status_code == 201, r.text
    (cmd,) = console.fake.calls
    assert str(cmd.site) == "periorbital"  # type: ignore[attr-defined]
    (sent,) = cmd.test_spots  # type: ignore[attr-defined]
    assert sent.read_by == "Dr. Vega" and sent.fluence_j_cm2 == 100.0


def test_item1_a_clinical_start_without_a_site_is_409_in_the_sessions_words(
    console: Console,
) -> None:
    words = "a clinical session states the treatment site: one of face, periorbital, legs, body"
    console.fake.replies["start_session"] = ControlError(
        "refused", f"the session was not started: {words}"
    )
    r = console.client.post("/api/session", json=START, headers=console.as_(Role.OPERATOR))
    assert r.status_code == 409
    assert r.json()["detail"].endswith(words)
    (cmd,) = console.fake.calls
    assert cmd.site is None  # type: ignore[attr-defined]
