"""Issue 8 item 6: one contract for every transport, virtual and real.

What a driver may rely on, checked over each backend (``line_to``: virtual and a real pty;
``registers_to``: virtual and real Modbus TCP) against the same in-process device, including
devices that misbehave: silent, late, garbled, refusing, or sending too few registers. The
last part runs the driver against the simulator's own laser model, virtually and on a pty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from device_profiles.schema import Setup
from firmware_bridge.drivers import LineLaserDriver
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.virtual import RegisterMap
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.world import World
from tests.firmware_bridge.backends import TIMEOUT_MS, LineBackend, LineDevice, RegisterBackend
from tests.sim.conftest import make_scenario

pytestmark = pytest.mark.timeout(20)

LATE_S = 1.5 * TIMEOUT_MS / 1000
# A lost link must be known well within a few timeouts: the worker then trips.
IN_TIME_S = 3 * TIMEOUT_MS / 1000


def echo(line: str) -> str:
    return f"ECHO {line}"


# --- lines ------------------------------------------------------------------------------------


def test_item6_a_request_gets_its_reply_line(line_to: LineBackend) -> None:
    device = LineDevice(echo)
    link = line_to(device)
    assert link.request("STATUS?") == "ECHO STATUS?"
    assert link.request("HB") == "ECHO HB"
    assert device.received == ["STATUS?", "HB"]


def test_item6_a_device_that_does_not_answer_is_link_lost_in_time(line_to: LineBackend) -> None:
    link = line_to(LineDevice(lambda _: None))
    start = time.monotonic()
    with pytest.raises(LinkLost, match="no reply to 'STOP'"):
        link.request("STOP")
    assert time.monotonic() - start < IN_TIME_S


def test_item6_a_late_reply_is_link_lost_and_not_taken_for_the_next(line_to: LineBackend) -> None:
    def stalls_once(line: str) -> str:
        if line == "SLOW":
            time.sleep(LATE_S)  # answers after the bridge gave up waiting
        return echo(line)

    link = line_to(LineDevice(stalls_once))
    with pytest.raises(LinkLost):
        link.request("SLOW")
    time.sleep(2 * LATE_S)  # over a wire, the late reply is in the input buffer by now
    assert link.request("HB") == "ECHO HB"


def test_item6_a_non_ascii_reply_is_a_protocol_error_on_a_good_link(line_to: LineBackend) -> None:
    link = line_to(LineDevice(lambda line: "OK 36 °C" if line == "TEMP?" else echo(line)))
    with pytest.raises(ProtocolError, match="not ASCII"):
        link.request("TEMP?")
    assert link.request("HB") == "ECHO HB"  # the link itself is fine


def test_item6_a_second_line_in_one_answer_is_not_taken_for_the_next_reply(
    line_to: LineBackend,
) -> None:
    chatty = LineDevice(lambda line: f"{echo(line)}\r\nOK UNASKED")
    link = line_to(chatty)
    assert link.request("HB") == "ECHO HB"
    time.sleep(0.02)  # over a wire, the unasked line is in the input buffer by now
    assert link.request("STATUS?") == "ECHO STATUS?"


def test_item6_an_unknown_control_line_is_a_value_error(line_to: LineBackend) -> None:
    link = line_to(LineDevice(echo))
    with pytest.raises(ValueError, match="unknown control line CTS"):
        link.set_control_line("CTS", True)


def test_item6_a_closed_line_reopens_on_the_next_request(line_to: LineBackend) -> None:
    link = line_to(LineDevice(echo))
    assert link.request("HB") == "ECHO HB"
    link.close()
    link.close()  # twice is fine
    assert link.request("HB") == "ECHO HB"


# --- registers --------------------------------------------------------------------------------


@pytest.fixture
def device() -> RegisterMap:
    return RegisterMap({0: 3300, 1: 7, 2: 0, 3: 0xFFFF}, coils=[0])


def test_item6_read_and_write_registers(registers_to: RegisterBackend, device: RegisterMap) -> None:
    link = registers_to(device)
    assert link.read_registers(0, 4) == [3300, 7, 0, 0xFFFF]
    link.write_register(2, 0xFF38)
    assert link.read_registers(1, 2) == [7, 0xFF38]
    link.write_coil(0, True)
    link.write_coil(0, False)
    assert device.reads == [(0, 4), (1, 2)]
    assert device.writes == [(2, 0xFF38)]
    assert device.coil_writes == [(0, True), (0, False)]


@pytest.mark.parametrize(("address", "count"), [(20, 2), (3, 2)], ids=["outside", "straddling"])
def test_item6_an_address_outside_the_map_is_device_rejected_not_a_lost_link(
    registers_to: RegisterBackend, device: RegisterMap, address: int, count: int
) -> None:
    link = registers_to(device)
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        link.read_registers(address, count)
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        link.write_register(address + count, 1)
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        link.write_coil(5, True)
    assert link.read_registers(0, 2) == [3300, 7]  # a refusal is not a lost link


def test_item6_a_silent_device_is_link_lost_in_time_and_comes_back(
    registers_to: RegisterBackend, device: RegisterMap
) -> None:
    link = registers_to(device)
    assert link.read_registers(0, 1) == [3300]
    device.answering = False  # unplugged
    for call in (lambda: link.read_registers(0, 1), lambda: link.write_coil(0, False)):
        start = time.monotonic()
        with pytest.raises(LinkLost):
            call()
        assert time.monotonic() - start < IN_TIME_S
    device.answering = True
    assert link.read_registers(0, 2) == [3300, 7]


class ShortChanging(RegisterMap):
    """A device that answers a read with one register fewer than it was asked for."""

    def read_registers(self, address: int, count: int) -> list[int]:
        return super().read_registers(address, count)[:-1]


def test_item6_a_reply_with_too_few_registers_is_a_protocol_error(
    registers_to: RegisterBackend,
) -> None:
    link = registers_to(ShortChanging({0: 1, 1: 2, 2: 3}))
    with pytest.raises(ProtocolError, match="expected"):
        link.read_registers(0, 3)


# --- the simulator's laser, virtually and on a pty --------------------------------------------


@pytest.fixture
def sim_laser(demo: Setup, line_to: LineBackend) -> Iterator[tuple[LineLaserDriver, World]]:
    """The driver talking to the simulator's laser model (its whole state machine)."""
    world = World(demo, make_scenario(), SimClock(speed=1.0))
    model = LaserModel(world, demo.laser)
    yield LineLaserDriver(demo.laser, line_to(model.handle_line)), world


def test_item6_the_simulated_laser_arms_only_with_heartbeat_and_relay(
    sim_laser: tuple[LineLaserDriver, World],
) -> None:
    driver, world = sim_laser
    with pytest.raises(DeviceRejected, match="INTERLOCK OPEN"):
        driver.arm()
    world.set_relay(True, "test")
    with pytest.raises(DeviceRejected, match="NO HEARTBEAT"):
        driver.arm()
    driver.heartbeat()
    assert driver.set("fluence_j_cm2", 119.54) == 119.5
    driver.arm()
    status = driver.status()
    assert (status.state, status.pulses) == ("READY", 0)
    assert status.settings["fluence_j_cm2"] == 119.5
    driver.stop()
    assert driver.status().state == "STANDBY"


def test_item6_the_simulated_laser_refuses_settings_while_ready(
    sim_laser: tuple[LineLaserDriver, World],
) -> None:
    driver, world = sim_laser
    world.set_relay(True, "test")
    driver.heartbeat()
    driver.arm()
    with pytest.raises(DeviceRejected, match="NOT IN STANDBY"):
        driver.set("fluence_j_cm2", 100.0)


def test_item6_a_simulated_laser_that_never_answers_stop_is_link_lost(
    sim_laser: tuple[LineLaserDriver, World],
) -> None:
    driver, world = sim_laser
    assert world.laser is not None
    world.laser.break_stop("none")
    with pytest.raises(LinkLost, match="STOP"):
        driver.stop()
    driver.heartbeat()  # every other command is still answered
