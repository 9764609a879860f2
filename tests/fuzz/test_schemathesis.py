"""Issue 16 item 5: Schemathesis against the console's own OpenAPI document: no 5xx on any
endpoint, with no sign-in and signed in as each role (the bridge is the API tests' fake
channel; the fleet store is not configured, so the fleet routes answer in words too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings

from monitor.service.auth import Throttle
from monitor.service.roles import Role
from tests.fuzz.settings import examples, tried
from tests.monitor.service.conftest import Console

_console: Console | None = None


def _app() -> object:
    global _console
    if _console is None:
        import tempfile

        _console = Console(Path(tempfile.mkdtemp(prefix="lg-schemathesis-")))
    return _console.app


schema = schemathesis.openapi.from_asgi("/api/openapi.json", _app())


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    assert _console is not None
    with _console.client:
        yield _console


# In the normal suite: nobody, and the clinician, whose permissions reach every parser (treat,
# attest, record and sign off incidents, read the fleet). The longer run (``python -m
# tests.fuzz``) adds a role that treats and the one that reads no records. The others'
# refusals are the same code (tests/monitor/service/test_api_roles.py covers each).
ROLES = [None, Role.CLINICIAN]
if "LASERGUARD_FUZZ_EXAMPLES" in os.environ:
    ROLES += [Role.OPERATOR, Role.ADMIN]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: "nobody" if r is None else r.value)
@schema.parametrize()
@settings(max_examples=max(3, examples() // 20), deadline=None)
def test_item5_no_endpoint_answers_5xx(
    case: schemathesis.Case, role: Role | None, console: Console
) -> None:
    tried()
    console.reset()
    console.state.throttle = Throttle()  # fuzzed sign-ins fail by design; each case starts clean
    headers = {} if role is None else console.as_(role)
    response = case.call(headers=headers)
    assert response.status_code < 500, (
        f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    )
