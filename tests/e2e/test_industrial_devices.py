"""Issue 14 items 1 and 2 over the real wires: the bundled setup with industrial devices
(``demo-ndyag-1064-ir``: a float32 input-register pyrometer, word-swapped, without a sample
counter; a chiller with a status word; a relay module on coils at unit id 3), the simulator
serving that same map on Modbus TCP sockets, the real bridge and a real SQLite log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, load
from monitor.core.session import State
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.timeout(90)

IR_SETUP = "demo-ndyag-1064-ir"


@pytest.fixture(scope="module")
def ir_loaded() -> LoadedSetup:
    return load(IR_SETUP)


@pytest.fixture
def ir_rig(ir_loaded: LoadedSetup, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(ir_loaded, tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_item1_must_show_cooling_failure_halts_with_industrial_devices(ir_rig: Rig) -> None:
    session = ir_rig.start("cooling-failure", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 30, "the cooling-failure halt")
    checks = {t.check for t in session.trips}
    assert checks & {"skin_temp_high", "cooler_plate_high"}, session.trips
    assert not checks & {"sensor_stale", "sensor_link", "device_fault"}, checks
    wait_for(lambda: ir_rig.sim_events("stop_received"), 2, "the stop at the laser")
    assert ir_rig.sim is not None
    wait_for(lambda: not ir_rig.sim.snapshot()["relay_closed"], 2, "the relay (unit 3) to open")
    # The float32 was read as a temperature (a word-swapped misread gives values like 1e-38
    # or 1e+38): a contact-cooled skin warming pulse by pulse, every reading plausible.
    session.recorder.flush()
    _t, ch, val = ir_rig.log.telemetry(session.session_id)
    skin = val[ch == 0]
    assert 5.0 < skin.min() < 20.0 and 25.0 < skin.max() < 50.0


def test_item2_must_show_a_frozen_pyrometer_halts_within_its_stated_time(ir_rig: Rig) -> None:
    """sensor-freeze: the pyrometer keeps answering with its last float32 from 5 s on. With
    no counter, only the stuck-value detector can see it: the halt names it, and comes
    within frozen_after_ms + a poll + the halt route of the freeze."""
    session = ir_rig.start("sensor-freeze", speed=1.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 15, "the frozen-sensor halt")
    trip = session.trips[0]
    assert trip.check == "skin_temp_invalid", trip
    assert "frozen" in trip.reason and "skin_temp_c bit-identical" in trip.reason
    frozen = ir_rig.logged("device_frozen")
    assert frozen and frozen[0].payload["device"] == "sensor"
    # Stated: frozen after 30 ms, noticed within frozen_after + poll (35 ms, the profile's
    # refusal rule), then the halt. Measured from the freeze on the simulator's clock to the
    # stop the laser received, with a generous margin for a loaded CI machine.
    (freeze,) = [e for e in ir_rig.sim_events("scenario") if e["action"] == "sensor_freeze"]
    stop = ir_rig.sim_events("stop_received")[0]
    assert stop["t_wall"] - freeze["t_wall"] < 0.035 + 0.25


def test_item2_must_show_a_noisy_pyrometer_never_trips_the_detector_in_a_normal_session(
    ir_rig: Rig,
) -> None:
    session = ir_rig.start("normal", speed=1.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert ir_rig.sim is not None
    time.sleep(8.0)  # ~1600 polls of the pyrometer
    assert session.state is State.READY, session.trips
    assert not ir_rig.logged("device_frozen")
    assert ir_rig.sim.snapshot()["pulses"] >= 5
