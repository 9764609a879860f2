"""Issue 9 items 5 and 6: every endpoint refuses the unauthenticated (401) and every role that
lacks its permission (403), before anything reaches the bridge."""

from __future__ import annotations

import pytest

from monitor.service.roles import ROLE_PERMISSIONS, Permission, Role
from tests.monitor.service.conftest import Console
from tests.monitor.service.endpoints import ENDPOINTS, Endpoint


@pytest.mark.parametrize("ep", ENDPOINTS, ids=str)
def test_item6_every_endpoint_refuses_without_a_sign_in(one_app: Console, ep: Endpoint) -> None:
    console = one_app
    r = console.client.request(ep.method, ep.path, json=ep.body)
    assert r.status_code == 401, r.text
    assert r.json()["detail"] == "sign in first"
    assert console.fake.calls == []


@pytest.mark.parametrize("ep", ENDPOINTS, ids=str)
def test_item6_every_endpoint_refuses_a_forged_or_ended_token(
    one_app: Console, ep: Endpoint
) -> None:
    console = one_app
    r = console.client.request(
        ep.method, ep.path, json=ep.body, headers={"Authorization": "Bearer forged"}
    )
    assert r.status_code == 401
    assert "sign in again" in r.json()["detail"]
    assert console.fake.calls == []


REFUSALS = [
    (ep, role)
    for ep in ENDPOINTS
    if ep.permission is not None
    for role in Role
    if ep.permission not in ROLE_PERMISSIONS[role]
]


@pytest.mark.parametrize(("ep", "role"), REFUSALS, ids=lambda x: str(x))
def test_item5_every_role_refusal_is_403_in_words_and_changes_nothing(
    one_app: Console, ep: Endpoint, role: Role
) -> None:
    console = one_app
    users_before = [u.as_dict() for u in console.users.list()]
    r = console.client.request(ep.method, ep.path, json=ep.body, headers=console.as_(role))
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert f"({role.value}) may not" in detail and "needs the role" in detail
    assert console.fake.calls == []
    assert [u.as_dict() for u in console.users.list()] == users_before


ALLOWED = [
    (ep, role)
    for ep in ENDPOINTS
    for role in Role
    if ep.permission is None or ep.permission in ROLE_PERMISSIONS[role]
]


@pytest.mark.parametrize(("ep", "role"), ALLOWED, ids=lambda x: str(x))
def test_item5_every_role_with_the_permission_gets_through(
    one_app: Console, ep: Endpoint, role: Role
) -> None:
    console = one_app
    r = console.client.request(ep.method, ep.path, json=ep.body, headers=console.as_(role))
    assert r.status_code not in (401, 403), r.text
    if ep.command is not None:
        assert console.fake.commands() == [ep.command]
        who = getattr(console.fake.calls[0], "who", None)
        assert who in (None, f"{role.value}1")  # every action goes to the log with its user


def test_item5_the_auditor_reads_and_changes_nothing(console: Console) -> None:
    perms = ROLE_PERMISSIONS[Role.AUDITOR]
    assert perms == {Permission.VIEW, Permission.READ_RECORDS, Permission.READ_FLEET}
    for ep in ENDPOINTS:
        if ep.method == "POST" and ep.permission is not None:
            assert ep.permission not in perms, ep


def test_item5_an_attestation_is_a_clinicians_and_names_the_signed_in_clinician(
    console: Console,
) -> None:
    body = {
        "patient_id": "PAT-0042",
        "skin_type": "III",
        "answers": {},
        "attestation": {"statement": "INR in range", "covers": ["anticoagulants"]},
    }
    r = console.client.post("/api/session", json=body, headers=console.as_(Role.OPERATOR))
    assert r.status_code == 403 and "attest" in r.json()["detail"]
    assert console.fake.calls == []
    r = console.client.post("/api/session", json=body, headers=console.as_(Role.CLINICIAN))
    assert r.status_code == 201, r.text
    cmd = console.fake.calls[0]
    assert cmd.attestation.clinician == "clinician1"  # type: ignore[attr-defined]
    assert cmd.who == "clinician1"  # type: ignore[attr-defined]
