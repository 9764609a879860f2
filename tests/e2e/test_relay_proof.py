"""Issue 13 item 4: the relay stuck closed is found, at standby, over the real wires.

A welded relay acknowledges every write and keeps the laser's remote-interlock loop closed:
while the laser obeys STOP nothing shows it. At every standby from READY the session opens
the relay first and waits for the laser to drop to STANDBY by itself; one that stays READY
raises ``relay_stuck_closed``, a halt reset only by name.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.session import Refused, State
from sim.scenario import Scenario
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e


def scenario(*events: dict[str, Any]) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "relay-proof",
            "description": "the footswitch goes down once the relay closes",
            "skin_type": "III",
            "settings": {"fluence_j_cm2": 120, "pulse_ms": 30, "spot_mm": 3, "rep_rate_hz": 1},
            "seed": 3,
            "events": [
                {"on": {"event": "relay_closed"}, "action": "trigger", "pressed": True},
                *events,
            ],
        }
    )


def test_issue13_item4_a_working_relay_passes_its_proof_at_standby(rig: Rig) -> None:
    session = rig.start(scenario(), speed=4.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None
    wait_for(lambda: rig.sim_events("pulse"), 5, "the first pulse")
    session.standby()
    assert session.state is State.STANDBY and not session.trips, session.trips
    # The relay opened first and the laser dropped by itself, before any STANDBY command.
    drop = next(e for e in rig.sim_events("state") if e["to"] == "STANDBY")
    assert drop["why"] == "interlock open"
    commands = [e for e in rig.sim_events("command") if e["line"] == "STANDBY"]
    assert commands and drop["t_wall"] < commands[0]["t_wall"]


def test_issue13_item4_a_welded_relay_is_found_at_standby_and_latched_until_reset(
    rig: Rig,
) -> None:
    welded = {"on": {"event": "pulse", "count": 1}, "action": "relay_stuck_closed"}
    session = rig.start(scenario(welded), speed=4.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None

    def welded() -> bool:
        return any(e["action"] == "relay_stuck_closed" for e in rig.sim_events("scenario"))

    wait_for(welded, 5, "the relay to weld")
    session.standby()
    wait_for(lambda: session.state is State.HALTED, 3, "the relay_stuck_closed halt")
    (trip,) = [t for t in session.trips if t.check == "relay_stuck_closed"]
    assert (
        "still reported FIRING" in trip.reason and "after the relay was written open" in trip.reason
    )
    assert rig.sim_events("relay_stuck")  # the relay was told to open, and did not
    # The laser was stopped by command all the same: no pulse after it reported STANDBY.
    wait_for(lambda: rig.sim.snapshot()["state"] == "STANDBY", 2, "the laser in STANDBY")
    standby = next(e for e in rig.sim_events("state") if e["to"] == "STANDBY")
    assert not [p for p in rig.sim_events("pulse") if p["t_wall"] > standby["t_wall"]]
    # Latched: acknowledging the halt does not clear it; naming it does (laser in STANDBY).
    with pytest.raises(Refused, match="relay_stuck_closed"):
        session.acknowledge("biomed-1", "looked at it")
    session.acknowledge("biomed-1", "relay module replaced", reset=["relay_stuck_closed"])
    assert session.state is State.STANDBY
    (reset,) = rig.logged("alarm_reset")
    assert reset.payload["check"] == "relay_stuck_closed"
    (logged,) = [e for e in rig.logged("trip") if e.payload["check"] == "relay_stuck_closed"]
    assert "relay" in logged.payload["reason"]
