"""Every endpoint of the console's API, with a valid body and the permission it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from device_profiles.loader import load_contraindications
from monitor.service.roles import Permission

SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
ANSWERS = {q.id: False for q in load_contraindications().questions}
START = {"patient_id": "PAT-0042", "skin_type": "III", "answers": ANSWERS}
DETAILS = {
    "type": "burn_or_blister",
    "severity": 2,
    "body_site": "left calf, medial",
    "noticed_at": "2026-05-28T20:30:00Z",
    "noticed_by": "nurse-a",
    "actions_taken": "cooled 15 min, non-adherent dressing",
    "referral": "none",
}
OPEN = {"session_id": "abcd", "details": DETAILS}
FOLLOW_UP = {
    "session_id": "abcd",
    "due_by": "2026-06-01T12:00:00Z",
    "method": "phone call",
    "reason": "check the calf",
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permission: Permission | None  # None: any signed-in user
    body: dict[str, Any] | None = None
    command: str | None = None  # the channel command it sends

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = (
    Endpoint("POST", "/api/auth/sign-out", None),
    Endpoint("GET", "/api/auth/me", None),
    Endpoint("GET", "/api/users", Permission.MANAGE_USERS),
    Endpoint(
        "POST",
        "/api/users",
        Permission.MANAGE_USERS,
        {"username": "new.nurse", "role": "operator", "password": "a long enough password"},
    ),
    Endpoint("POST", "/api/users/operator1/disable", Permission.MANAGE_USERS),
    Endpoint("POST", "/api/users/operator1/enable", Permission.MANAGE_USERS),
    Endpoint("GET", "/api/contraindications", Permission.VIEW),
    Endpoint("GET", "/api/bridge", Permission.VIEW),
    Endpoint("GET", "/api/session/live", Permission.VIEW),
    Endpoint("GET", "/api/session", Permission.VIEW, command="session_info"),
    Endpoint("POST", "/api/session", Permission.TREAT, START, "start_session"),
    Endpoint("POST", "/api/session/gate-preview", Permission.TREAT, SETTINGS, "propose_settings"),
    Endpoint("POST", "/api/session/settings", Permission.TREAT, SETTINGS, "apply_settings"),
    Endpoint("POST", "/api/session/arm", Permission.TREAT, None, "arm"),
    Endpoint("POST", "/api/session/standby", Permission.TREAT, None, "standby"),
    Endpoint(
        "POST",
        "/api/session/emergency-halt",
        Permission.EMERGENCY_HALT,
        {"reason": "x"},
        "emergency_halt",
    ),
    Endpoint(
        "POST",
        "/api/session/reset",
        Permission.TREAT,
        {"condition": "skin_temp_high", "reason": "skin cooled"},
        "reset",
    ),
    Endpoint(
        "POST",
        "/api/session/test-spot-pause/end",
        Permission.END_TEST_SPOT_PAUSE,
        {"reason": "sites reviewed"},
        "end_test_spot_pause",
    ),
    Endpoint("POST", "/api/session/eye-shields", Permission.TREAT, None, "confirm_eye_shields"),
    Endpoint(
        "POST",
        "/api/session/protocol-steps",
        Permission.RECORD_INCIDENTS,
        {"check": "cooler_flow_low", "step": 1},
        "protocol_step",
    ),
    Endpoint("POST", "/api/session/end", Permission.TREAT, {"reason": "done"}, "end_session"),
    Endpoint("GET", "/api/protocols", Permission.VIEW),
    Endpoint("GET", "/api/incidents", Permission.READ_RECORDS),
    Endpoint("GET", "/api/incidents/abcd", Permission.READ_RECORDS),
    Endpoint("POST", "/api/incidents", Permission.RECORD_INCIDENTS, OPEN),
    Endpoint("POST", "/api/incidents/abcd/ticks", Permission.RECORD_INCIDENTS, {"step": 1}),
    Endpoint("POST", "/api/incidents/abcd/complete", Permission.SIGN_OFF_INCIDENTS, DETAILS),
    Endpoint(
        "POST",
        "/api/incidents/abcd/amend",
        Permission.SIGN_OFF_INCIDENTS,
        {"why": "blister at review", "changes": {"severity": 3}},
    ),
    Endpoint(
        "POST",
        "/api/incidents/abcd/close",
        Permission.SIGN_OFF_INCIDENTS,
        {"outcome": "no_injury", "reason": "skin checked"},
    ),
    Endpoint("POST", "/api/incidents/abcd/photos", Permission.RECORD_INCIDENTS),
    Endpoint("GET", "/api/incidents/abcd/photos/" + "0" * 64, Permission.READ_RECORDS),
    Endpoint("GET", "/api/followups", Permission.READ_RECORDS),
    Endpoint("POST", "/api/followups", Permission.RECORD_INCIDENTS, FOLLOW_UP),
    Endpoint(
        "POST",
        "/api/followups/abcd/outcome",
        Permission.RECORD_INCIDENTS,
        {"outcome": "resolved", "note": "healed"},
    ),
    Endpoint("GET", "/api/reports/session/abcd", Permission.READ_RECORDS),
    Endpoint("GET", "/api/reports/session/abcd/sheet/before", Permission.READ_RECORDS),
    Endpoint("GET", "/api/reports/clinic?from=2026-05-01&to=2026-06-01", Permission.READ_RECORDS),
    Endpoint("GET", "/api/sessions", Permission.READ_RECORDS),
    Endpoint("GET", "/api/sessions/abc", Permission.READ_RECORDS),
    Endpoint("GET", "/api/sessions/abc/aftercare", Permission.READ_RECORDS),
)
