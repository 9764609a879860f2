"""The console's API against a fake control channel (a unit test of the service layer): the
users store is real (a small Argon2id cost), the session log is a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from pydantic import BaseModel

from monitor.control.client import ControlError
from monitor.control.protocol import EventMessage, SnapshotMessage
from monitor.service.app import create_app
from monitor.service.roles import Role
from monitor.service.users import UserStore

PASSWORD = "correct horse battery"
# Argon2id all the same, at a cost a test suite can pay many times over.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def snapshot(
    seq: int = 1, state: str | None = "STANDBY", t_wall: float | None = None
) -> SnapshotMessage:
    session = None
    if state is not None:
        session = {
            "session_id": "a" * 32,
            "t_s": 1.0,
            "state": state,
            "laser_state": "STANDBY",
            "skin_type": "III",
            "skin_temp_c": 31.2,
            "plate_temp_c": 5.0,
            "flow_l_min": 2.0,
            "settings": {
                "fluence_j_cm2": 120.0,
                "pulse_ms": 30.0,
                "spot_mm": 3.0,
                "rep_rate_hz": 1.0,
            },
            "pulses": 0.0,
            "pulses_out_of_limits": 0,
            "links": {"sensor": True, "cooler": True, "laser": True, "interlock": True},
            "permit": False,
            "active_conditions": [],
            "trips": [],
            "warnings": [],
            "test_spots": None,
            "reaction_time_ms": {},
            "limits": {"skin_temp_c": [2.0, 44.0]},
        }
    return SnapshotMessage.model_validate(
        {
            "v": 1,
            "type": "snapshot",
            "seq": seq,
            "t_wall": time.time() if t_wall is None else t_wall,
            "bridge": {
                "setup": "demo-ndyag-1064 v3",
                "mode": "demo",
                "pid": 1,
                "session_id": None if session is None else session["session_id"],
                "console_attached": True,
                "heartbeat_timeout_s": 1.0,
                "snapshot_hz": 20.0,
            },
            "session": session,
            "alarms": [],
            "trips_total": 0,
            "warnings_total": 0,
        }
    )


class FakeControl:
    """A ``ControlPort`` that records every command and answers from a table."""

    def __init__(self) -> None:
        self.connected = True
        self.latest: SnapshotMessage | None = snapshot()
        self.calls: list[BaseModel] = []
        self.replies: dict[str, dict[str, Any] | ControlError] = {
            "end_session": {"session_id": "a" * 32, "state": "ENDED", "trips": []},
            "session_info": {"session_id": "a" * 32, "skin_type": "III"},
        }
        self.events: list[EventMessage] = []
        self.last_error: str | None = None

    def call(self, command: BaseModel, timeout_s: float = 15.0) -> dict[str, Any]:
        self.calls.append(command)
        reply = self.replies.get(str(getattr(command, "cmd", "")), {"state": "STANDBY"})
        if isinstance(reply, ControlError):
            raise reply
        return dict(reply)

    def events_since(self, seq: int) -> list[EventMessage]:
        return [e for e in self.events if e.seq > seq]

    def commands(self) -> list[str]:
        return [str(getattr(c, "cmd", "")) for c in self.calls]


class Console:
    """The app, its fake channel, one signed-in token per role."""

    def __init__(self, tmp: Path) -> None:
        self.fake = FakeControl()
        self.db = tmp / "log.sqlite3"
        self.users = UserStore(tmp / "users.sqlite3", hasher=FAST_HASHER)
        for role in Role:
            self.users.add(f"{role.value}1", role, PASSWORD, by="test")
        self.app = create_app(self.fake, self.users, self.db)
        self.client = TestClient(self.app)
        self.tokens: dict[Role, str] = {}

    @property
    def state(self) -> Any:
        return self.app.state.laserguard

    def sign_in(self, role: Role) -> str:
        if role not in self.tokens:
            r = self.client.post(
                "/api/auth/sign-in", json={"username": f"{role.value}1", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            self.tokens[role] = r.json()["token"]
            self.client.cookies.clear()  # each request says who it is (Bearer) or is nobody
        return self.tokens[role]

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sign_in(role)}"}

    def reset(self) -> None:
        """Back to the start between tests that share one app: users enabled, no calls."""
        for u in self.users.list():
            if u.disabled:
                self.users.enable(u.username, by="test")
        self.tokens = {}  # a test may have signed out or been disabled
        self.fake.calls.clear()
        self.state.session_info.changed()  # the next GET /api/session asks the bridge again
        self.client.cookies.clear()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path)
    with c.client:
        yield c


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    c = Console(tmp_path_factory.mktemp("console"))
    with c.client:
        yield c


@pytest.fixture
def one_app(shared: Console) -> Console:
    """The module's app, reset: for the many requests that change nothing lasting."""
    shared.reset()
    return shared
