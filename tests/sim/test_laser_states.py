"""Issue 8 item 7: the simulated laser and the bridge's driver share one set of states.

The real ``LineLaserDriver`` talks to the real ``LaserModel`` through an in-memory line (no pty):
every state the model can be in, the driver reads as that same ``LaserState``.
"""

from __future__ import annotations

import time

from device_profiles.laser_state import LaserState
from device_profiles.schema import Setup
from firmware_bridge.drivers import LineLaserDriver
from firmware_bridge.transport import LineTransport
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.world import World
from tests.sim.conftest import make_scenario


class ModelLine(LineTransport):
    """A line transport whose far end is the laser model itself."""

    def __init__(self, model: LaserModel) -> None:
        self.model = model

    def request(self, line: str) -> str:
        reply = self.model.handle_line(line)
        assert reply is not None
        return reply

    def set_control_line(self, name: str, asserted: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_item7_every_state_the_simulated_laser_reports_the_driver_reads(setup: Setup) -> None:
    world = World(setup, make_scenario(), SimClock())
    model = LaserModel(world, setup.laser)
    driver = LineLaserDriver(setup.laser, ModelLine(model))
    seen = [driver.status().state]
    world.relay_closed = True
    driver.heartbeat()
    driver.arm()
    seen.append(driver.status().state)
    world.trigger_pressed = True  # the footswitch
    model.on_trigger(True)
    seen.append(driver.status().state)
    model.state = LaserState.FAULT  # the simulated laser has no fault of its own: force one
    seen.append(driver.status().state)
    assert seen == [LaserState.STANDBY, LaserState.READY, LaserState.FIRING, LaserState.FAULT]
    assert all(type(s) is LaserState for s in seen)
    model.state = LaserState.FIRING
    model.last_heartbeat = time.monotonic()
    driver.stop()
    assert driver.status().state is LaserState.STANDBY
