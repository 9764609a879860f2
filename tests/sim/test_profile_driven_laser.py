"""Issue 14 item 5: the simulated line laser speaks the command set its profile describes,
not one fixed in code: a clinic's own laser (other commands, other replies, another
terminator) runs against the simulator with no code, and a reply pattern the simulator
cannot answer is refused with its command's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles.loader import load
from device_profiles.schema import LaserProtocol
from firmware_bridge.drivers import LineLaserDriver
from firmware_bridge.errors import DeviceRejected
from firmware_bridge.virtual import VirtualLineTransport
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.laser_lines import LineCommandSet, ReplyNotRenderable, render, request_pattern
from sim.world import World
from tests.sim.conftest import make_scenario
from tests.sim.own_laser import own_laser_setup


def test_item5_the_simulator_speaks_a_clinics_own_command_set(tmp_path: Path) -> None:
    setup = load(own_laser_setup(tmp_path)).setup
    world = World(setup, make_scenario(), SimClock(speed=1.0))
    model = LaserModel(world, setup.laser)
    link = VirtualLineTransport(model.handle_line, terminator="\n")
    driver = LineLaserDriver(setup.laser, link)
    with pytest.raises(DeviceRejected, match="INTERLOCK OPEN"):
        driver.arm()  # answered "NAK INTERLOCK OPEN", the profile's error reply
    world.set_relay(True, "test")
    driver.heartbeat()
    assert driver.set("spot_mm", 3.004) == 3.0
    assert driver.set("fluence_j_cm2", 119.54) == 119.5
    driver.arm()
    status = driver.status()
    assert (status.state, status.pulses, status.settings["spot_mm"]) == ("READY", 0, 3.0)
    driver.stop()
    assert driver.status().state == "STANDBY"
    assert model.handle_line("STATUS?") == "NAK UNKNOWN COMMAND"  # the bundled set's word


def test_item5_request_templates_and_reply_patterns_both_ways() -> None:
    assert request_pattern("SET F {value:.1f}").fullmatch("SET F 120.0")["value"] == "120.0"
    assert request_pattern("SET F {value:.1f}").fullmatch("SET PW 1.0") is None
    line = render("status", r"S (?P<state>A|B) N=(?P<n>\d+)(?: E=[0-9.]+)?\s*", {"state": "B"})
    assert line == "S B N=0"


def test_item5_a_reply_the_simulator_cannot_render_is_refused_naming_the_command() -> None:
    proto = load("demo-ndyag-1064").setup.laser.protocol
    assert isinstance(proto, LaserProtocol)
    broken = proto.model_copy(update={"heartbeat": proto.heartbeat.model_copy(
        update={"reply": "OK HB(?=!)"}
    )})  # fmt: skip
    commands = LineCommandSet(broken)
    with pytest.raises(ReplyNotRenderable, match="cannot answer heartbeat"):
        commands.reply("heartbeat")
