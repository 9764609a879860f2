"""Faults on the Modbus wire, end to end: the simulator on real sockets, the real bridge and
interlock, a real SQLite session log."""

from __future__ import annotations

import pytest

from monitor.core.session import State
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("raw", "words"), [(0x7FFF, "over-range (0x7FFF)"), (0x8000, "under-range (0x8000)")]
)
def test_item5_sensor_sentinel_halts_with_its_reason(rig: Rig, raw: int, words: str) -> None:
    """The pyrometer writes its over/under-range word: a sensor fault, not 327.67 degC."""
    session = rig.start("normal", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None
    wait_for(lambda: rig.sim.snapshot()["relay_closed"], 2, "the relay to close")
    rig.sim.force_skin_raw(raw)
    wait_for(lambda: session.state is State.HALTED, 5, "the halt on the sentinel")
    trip = session.trips[0]
    assert trip.check == "skin_temp_invalid"
    assert f"sensor reports {words}" in trip.reason
    assert "327" not in trip.reason and "nan" not in trip.reason
    wait_for(lambda: rig.sim_events("stop_received"), 2, "the stop at the laser")
    wait_for(lambda: not rig.sim.snapshot()["relay_closed"], 2, "the relay to open")
    (logged,) = [e for e in rig.logged("trip") if e.payload["check"] == "skin_temp_invalid"]
    assert f"sensor reports {words}" in logged.payload["reason"]
    # The bridge lives on: the sensor is read again once it measures, and a person may
    # then release the halt.
    rig.sim.release_skin()
    wait_for(lambda: not session.loop.halt_conditions_active(), 5, "the condition to clear")
    session.acknowledge("nurse-1", "sensor window cleaned; reading again")
    assert session.state is State.STANDBY


def test_a_treatment_sends_nothing_a_strict_device_refuses(rig: Rig) -> None:
    """The simulated devices answer a malformed request with an exception and record it."""
    session = rig.start("normal", speed=3.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None
    wait_for(
        lambda: rig.sim.snapshot()["pulses"] >= 3 or session.trips, 10, "three pulses or a trip"
    )
    assert not session.trips, session.trips
    session.end("test finished")
    assert rig.sim_events("relay"), "the relay was never written"
    assert rig.sim_events("modbus_exception") == []
