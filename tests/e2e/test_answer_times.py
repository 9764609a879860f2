"""Device answer times measured live against the reaction-time budget, over real sockets.

The simulated sensor answers late (``sensor_slow``) but within its 30 ms timeout, with its
sample counter still moving: no other check notices. Only the measured answer time shows
that the worst case no longer meets the required reaction time.
"""

from __future__ import annotations

import json
import re

import pytest

from monitor.core.session import Refused, State
from sim.scenario import parse_scenario
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e

#: Well within the bundled sensor's 30 ms timeout and its 40 ms staleness limit (a read every
#: 12 + 5 ms), yet the worst case becomes 2 + 17 + 12 + 1 + 22.3 ≈ 54 ms > 50 ms: the wait for
#: the next read grows with the read itself (device_profiles/timing.py).
SLOW_ANSWER_MS = 12.0

SLOW_FROM_THE_START = parse_scenario(
    f"""
name: sensor-slow-from-start
description: The sensor answers late from its first request.
skin_type: III
settings: {{fluence_j_cm2: 120, pulse_ms: 30, spot_mm: 3, rep_rate_hz: 1}}
seed: 1
events:
  - {{t_s: 0, action: sensor_slow, answer_ms: {SLOW_ANSWER_MS}}}
"""
)


def measured_total_ms(reason: str) -> float:
    m = re.search(r"worst-case reaction time ([0-9.]+) ms exceeds the required 50 ms", reason)
    assert m is not None, reason
    return float(m.group(1))


@pytest.mark.timeout(60)
def test_item6_a_slow_sensor_refuses_arming_with_the_numbers(rig: Rig) -> None:
    session = rig.start(SLOW_FROM_THE_START)
    assert session.state is State.STANDBY  # connected: every answer came within its timeout
    assert session.request_settings(SETTINGS).ok
    with pytest.raises(Refused) as refused:
        session.arm()
    why = str(refused.value)
    assert "reaction_time_unmet" in why
    assert measured_total_ms(why) > 50
    m = re.search(r"sensor answers in up to ([0-9.]+) ms, the budget assumes 2\.5 ms", why)
    assert m is not None and float(m.group(1)) >= SLOW_ANSWER_MS
    assert rig.sim is not None and rig.sim.snapshot()["state"] == "STANDBY"
    assert rig.sim.snapshot()["relay_closed"] is False
    (logged,) = rig.logged("arm_refused")
    assert "reaction_time_unmet" in logged.payload["reason"]
    shown = json.loads(json.dumps(session.snapshot().as_dict(), allow_nan=False))[
        "reaction_time_ms"
    ]
    assert shown["required"] == 50 and shown["measured_worst_case"] > 50
    assert shown["answer_ms"]["sensor"]["recent_worst"] >= SLOW_ANSWER_MS
    assert shown["answer_ms"]["sensor"]["assumed"] == 2.5
    # Shown and logged as well, without blocking anything by itself.
    wait_for(lambda: "device_answer_slow" in session.loop.active_names(), 5, "the notice")
    assert any(w.check == "device_answer_slow" for w in session.warnings)


@pytest.mark.timeout(60)
def test_item6_a_sensor_turning_slow_while_armed_halts_until_it_is_prompt_again(
    rig: Rig,
) -> None:
    session = rig.start("normal")
    assert session.request_settings(SETTINGS).ok
    session.arm()
    sim = rig.sim
    assert sim is not None and sim.world is not None
    world = sim.world

    def answer_late(ms: float) -> None:
        world.sensor_answer_delay_s = ms / 1000.0

    sim.call(lambda: answer_late(SLOW_ANSWER_MS))
    trip = wait_for(
        lambda: next((t for t in session.trips if t.check == "reaction_time_exceeded"), None),
        5,
        "the halt",
    )
    assert session.state is State.HALTED
    assert measured_total_ms(trip.reason) > 50
    assert "sensor answers in up to" in trip.reason
    wait_for(lambda: rig.sim_events("stop_received"), 2, "the stop command")
    assert sim.snapshot()["state"] == "STANDBY"
    # The two routes are independent: the laser may confirm STOP before the relay opens.
    wait_for(lambda: sim.snapshot()["relay_closed"] is False, 2, "the relay to open")
    # The cause persists while the sensor is slow: no acknowledgement releases it.
    with pytest.raises(Refused, match="reaction_time_exceeded"):
        session.acknowledge("nurse-1", "checked the sensor")
    sim.call(lambda: answer_late(0.0))
    wait_for(lambda: not session.loop.halt_conditions_active(), 5, "prompt answers again")
    session.acknowledge("nurse-1", "sensor cable reseated; answers prompt again")
    session.arm()
    assert session.state is State.READY
