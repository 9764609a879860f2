"""Issue 14 items 4 and 5: every bundled setup, as a clinic would write its own, runs in CI
with no code of its own: the simulator serves what the profile describes (the laser's wire
and command set, every register map), the real bridge talks to it over real ptys and
sockets, and the cooling-failure scenario ends in a halt: STOP received by the laser, the
relay open. A new bundled file is in this test by being in the folder."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.loader import bundled_names, load
from monitor.core.session import State
from tests.e2e.conftest import SETTINGS, Rig, wait_for
from tests.sim.own_laser import own_laser_setup

pytestmark = pytest.mark.timeout(90)


#: A clinic's own file with its own laser command set (tests/sim/own_laser.py), beside the
#: bundled ones: it needs no code either.
OWN = "clinic-own-laser"


@pytest.fixture(params=[*bundled_names(), OWN])
def bundled_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    name = str(request.param)
    loaded = load(own_laser_setup(tmp_path) if name == OWN else name)
    # A setup that requires a calibration refuses to arm before one is run; its devices are
    # what this test is about, so it runs here without that policy (the calibration itself:
    # tests/monitor/calibration, tests/e2e/test_console_channel.py).
    setup = loaded.setup.model_copy(update={"calibration": None})
    r = Rig(dataclasses.replace(loaded, setup=setup), tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_item5_every_bundled_setup_runs_the_cooling_failure_to_a_halt(bundled_rig: Rig) -> None:
    session = bundled_rig.start("cooling-failure", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 30, "the cooling-failure halt")
    checks = {t.check for t in session.trips}
    assert checks & {"skin_temp_high", "cooler_plate_high"}, session.trips
    assert not checks & {"laser_link", "laser_stale", "sensor_link", "device_fault"}, checks
    wait_for(lambda: bundled_rig.sim_events("stop_received"), 2, "the stop at the laser")
    assert bundled_rig.sim is not None
    wait_for(lambda: not bundled_rig.sim.snapshot()["relay_closed"], 2, "the relay to open")
    wait_for(lambda: bundled_rig.sim.snapshot()["state"] == "STANDBY", 2, "the laser in STANDBY")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        # The Modbus laser's STOP is verified at once: the state read after the coil says
        # FIRING, so the STOP itself fails and is sent again.
        ("demo-ndyag-1064-modbus-laser", "had not confirmed STOP"),
        # The binary laser confirms STOP with a frame; its status then says FIRING.
        ("demo-ndyag-1064-binary-laser", "still reported FIRING"),
    ],
    ids=["modbus", "binary"],
)
def test_item4_a_laser_that_lies_about_stop_is_caught_and_the_relay_cuts_the_beam(
    tmp_path: Path, name: str, why: str
) -> None:
    """laser-ignores-stop on the lasers that are not line-based: the laser acknowledges STOP
    and keeps firing with a stuck interlock input; the halt names it, and no pulse is
    fired after the relay opened."""
    rig = Rig(load(name), tmp_path)
    try:
        session = rig.start("laser-ignores-stop", speed=2.0)
        assert session.request_settings(SETTINGS).ok
        session.arm()
        wait_for(lambda: session.state is State.HALTED, 30, "the frozen-sensor halt")
        wait_for(
            lambda: any(t.check == "laser_did_not_stop" for t in session.trips),
            5,
            "laser_did_not_stop",
        )
        trip = next(t for t in session.trips if t.check == "laser_did_not_stop")
        assert why in trip.reason, trip.reason
        assert rig.sim is not None
        wait_for(lambda: not rig.sim.snapshot()["relay_closed"], 2, "the relay to open")
        opened = next(e for e in rig.sim_events("relay") if not e["closed"])["t_wall"]
        time.sleep(1.5)  # the laser keeps "firing" into an open loop
        late = [p for p in rig.sim_events("pulse") if p["t_wall"] > opened]
        assert not late, late
        assert len(rig.sim_events("stop_received")) >= 3  # sent again while it lies
    finally:
        rig.close()
