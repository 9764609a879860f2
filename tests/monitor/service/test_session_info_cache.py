"""Issue 9, the flood: ``GET /api/session`` asks the bridge (whose control thread lives in the
safety process) once per change of the session, not once per request, and never answers
with a description older than the last command, event or ``MAX_AGE_S``."""

from __future__ import annotations

import time

from monitor.control.client import ControlError, ControlUnavailable
from monitor.control.protocol import EventMessage
from monitor.service.roles import Role
from monitor.service.session_info import MAX_AGE_S, SessionInfoCache
from tests.monitor.service.conftest import Console, FakeControl


def _asked(console: Console) -> int:
    return console.fake.commands().count("session_info")


def _event(seq: int) -> EventMessage:
    return EventMessage.model_validate(
        {
            "v": 1,
            "type": "event",
            "seq": seq,
            "t_wall": time.time(),
            "session_id": "a" * 32,
            "kind": "eye_shields_confirmed",
            "payload": {},
        }
    )


def test_a_flood_of_session_requests_asks_the_bridge_once(console: Console) -> None:
    auth = console.as_(Role.AUDITOR)
    answers = [console.client.get("/api/session", headers=auth) for _ in range(50)]
    assert {r.status_code for r in answers} == {200}
    assert all(r.json()["session_id"] == "a" * 32 for r in answers)
    assert _asked(console) == 1


def test_a_command_sent_makes_the_next_request_ask_again(console: Console) -> None:
    auth = console.as_(Role.OPERATOR)
    console.client.get("/api/session", headers=auth)
    console.fake.replies["session_info"] = {"session_id": "a" * 32, "eye_shields_confirmed_by": "x"}
    r = console.client.post("/api/session/eye-shields", headers=auth)
    assert r.status_code == 200
    after = console.client.get("/api/session", headers=auth).json()
    assert after["eye_shields_confirmed_by"] == "x"  # not the description from before
    assert _asked(console) == 2


def test_an_event_from_the_bridge_makes_the_next_request_ask_again(console: Console) -> None:
    auth = console.as_(Role.AUDITOR)
    console.client.get("/api/session", headers=auth)
    console.fake.replies["session_info"] = {"session_id": "b" * 32}
    console.fake.events.append(_event(7))  # e.g. a session started from another console
    assert console.client.get("/api/session", headers=auth).json()["session_id"] == "b" * 32
    assert console.client.get("/api/session", headers=auth).json()["session_id"] == "b" * 32
    assert _asked(console) == 2


def test_an_answer_is_kept_no_longer_than_max_age() -> None:
    now = [100.0]
    cache = SessionInfoCache(clock=lambda: now[0])
    fake = FakeControl()
    cache.get(fake)
    now[0] += MAX_AGE_S / 2
    cache.get(fake)
    assert fake.commands() == ["session_info"]
    now[0] += MAX_AGE_S
    cache.get(fake)
    assert fake.commands() == ["session_info", "session_info"]


def test_no_session_is_kept_like_an_answer_but_a_lost_channel_is_asked_again() -> None:
    fake = FakeControl()
    cache = SessionInfoCache()
    fake.replies["session_info"] = ControlError("no_session", "no session is running")
    for _ in range(3):
        try:
            cache.get(fake)
        except ControlError as e:
            assert e.kind == "no_session"
    assert fake.commands() == ["session_info"]
    cache.changed()
    fake.replies["session_info"] = ControlUnavailable("the bridge's control channel is down")
    for _ in range(3):
        try:
            cache.get(fake)
        except ControlError as e:
            assert e.kind == "unavailable"
    assert fake.commands() == ["session_info"] * 4  # each request tried the channel itself


def test_without_a_session_the_page_gets_404_every_time(console: Console) -> None:
    console.fake.replies["session_info"] = ControlError("no_session", "no session is running")
    auth = console.as_(Role.AUDITOR)
    for _ in range(3):
        r = console.client.get("/api/session", headers=auth)
        assert r.status_code == 404 and "no session" in r.json()["detail"]
