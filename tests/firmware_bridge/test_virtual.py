"""Issue 8 item 6: the bridge takes a transport factory, and the virtual one stands in for the
wires: the whole bridge (workers, relay refresh, the halt path) runs against devices in this
process, with no pty and no socket. What only the virtual transport does is tested here too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from device_profiles.schema import SerialLineOutput, Setup
from firmware_bridge.bridge import Bridge
from firmware_bridge.errors import LinkLost, ProtocolError
from firmware_bridge.live import Ch, Dev
from firmware_bridge.transport import (
    ModbusRegisterTransport,
    SerialLineTransport,
    WireTransports,
)
from firmware_bridge.virtual import (
    RegisterMap,
    VirtualLineTransport,
    VirtualRegisterTransport,
    VirtualTransports,
)
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.world import World
from tests.sim.conftest import make_scenario

pytestmark = pytest.mark.timeout(30)


def wait_for(cond: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(0.002)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Sampling(RegisterMap):
    """A register device that takes a new sample for every read (its counter moves on)."""

    def __init__(self, registers: dict[int, int], counter_address: int) -> None:
        super().__init__(registers)
        self.counter_address = counter_address

    def read_registers(self, address: int, count: int) -> list[int]:
        if self.answering:
            self.registers[self.counter_address] = (
                self.registers[self.counter_address] + 1
            ) % 65536
        return super().read_registers(address, count)


class Relay(RegisterMap):
    """The relay module in the remote-interlock loop: its coil opens and closes the world's."""

    def __init__(self, world: World, coil: int) -> None:
        super().__init__(coils=[coil])
        self.world = world

    def write_coil(self, address: int, value: bool) -> None:
        super().write_coil(address, value)
        self.world.set_relay(value, "write")


class Rig:
    """The bundled setup's bridge with the simulator's laser model and in-memory Modbus devices,
    wired by ``VirtualTransports`` (one lock: laser and relay share the simulated world)."""

    def __init__(self, setup: Setup) -> None:
        self.world = World(setup, make_scenario(), SimClock(speed=1.0))
        self.laser = LaserModel(self.world, setup.laser)
        # 33.00 degC skin; cooler: plate 8 degC, flow 2 L/min, setpoint 8 degC, no fault.
        self.sensor = Sampling({0: 3300, 1: 0, 2: 0}, counter_address=1)
        self.cooler = Sampling({0: 800, 1: 200, 2: 800, 3: 0, 4: 0}, counter_address=4)
        self.relay = Relay(self.world, coil=0)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.transports = VirtualTransports(
            laser=self.laser.handle_line,
            sensor=self.sensor,
            cooler=self.cooler,
            interlock=self.relay,
            lock=threading.Lock(),
        )
        self.bridge = Bridge(
            setup, on_event=lambda k, p: self.events.append((k, p)), transports=self.transports
        )

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@pytest.fixture
def rig(demo: Setup) -> Iterator[Rig]:
    r = Rig(demo)
    try:
        yield r
    finally:
        r.bridge.close()


def test_item6_the_bridge_runs_its_devices_over_virtual_transports(rig: Rig) -> None:
    """The profile's addresses (/dev/ttyUSB0, 127.0.0.1:15020-15022) are never opened: every
    device answers through the factory, and the bridge polls, arms and halts as over wires."""
    b = rig.bridge
    b.start()
    wait_for(lambda: all(b.live.link_ok[b.live.present]), 5, "every device's link up")
    assert set(rig.transports.made) == {d for d in Dev if b.live.present[d]}
    assert b.live.value[Ch.SKIN_TEMP_C] == pytest.approx(33.0)
    assert b.live.value[Ch.PLATE_TEMP_C] == pytest.approx(8.0)
    assert b.live.laser_state() == "STANDBY"
    assert rig.sensor.reads[0] == (0, 3) and rig.cooler.reads[0] == (0, 5)

    b.set_permit(True)
    b.wait_relay_closed(2.0)
    assert rig.world.relay_closed
    b.arm()
    wait_for(lambda: b.live.laser_state() == "READY", 2, "the laser READY")

    b.halt("test halt")
    wait_for(lambda: b.stop_confirmed_t_ns and b.relay_opened_t_ns, 2, "both halt routes")
    assert rig.laser.state == "STANDBY"
    assert not rig.world.relay_closed
    assert rig.relay.coils == {0: False}
    assert "halt_requested" in rig.kinds() and "halt_stop_confirmed" in rig.kinds()


def test_item6_a_virtual_sensor_that_goes_silent_is_a_lost_link(rig: Rig) -> None:
    b = rig.bridge
    b.start()
    wait_for(lambda: b.live.link_ok[Dev.SENSOR], 5, "the sensor's link up")
    rig.sensor.answering = False
    wait_for(lambda: not b.live.link_ok[Dev.SENSOR], 2, "the sensor's link down")
    assert "no reply" in str(b.live.link_error[Dev.SENSOR])
    assert ("link_lost", "sensor") in [(k, p.get("device")) for k, p in rig.events]
    rig.sensor.answering = True
    wait_for(lambda: b.live.link_ok[Dev.SENSOR], 2, "the sensor back")


def test_item6_a_laser_that_answers_garbage_is_a_protocol_error_and_a_lost_link(
    demo: Setup,
) -> None:
    sensor = Sampling({0: 3300, 1: 0, 2: 0}, counter_address=1)
    cooler = Sampling({0: 800, 1: 200, 2: 800, 3: 0, 4: 0}, counter_address=4)
    events: list[tuple[str, dict[str, Any]]] = []
    transports = VirtualTransports(
        laser=lambda line: "\x00" * 64 if line == "STATUS?" else "OK HB",
        sensor=sensor,
        cooler=cooler,
        interlock=RegisterMap(coils=[0]),
    )
    bridge = Bridge(demo, on_event=lambda k, p: events.append((k, p)), transports=transports)
    with bridge:
        wait_for(lambda: any(k == "laser_protocol_error" for k, _ in events), 2, "the error")
        assert not bridge.live.link_ok[Dev.LASER]
        assert bridge.live.laser_state() == "UNKNOWN"


def test_item6_a_serial_line_interlock_is_driven_and_opened_by_a_halt(demo: Setup) -> None:
    """The serial-line halt route (DTR), which no pty can carry (a pty has no control lines),
    runs end to end over the virtual line: permit raises DTR, a halt drops it."""
    setup = demo.model_copy(
        update={"interlock_output": SerialLineOutput(kind="serial_line", line="DTR")}
    )
    dtr: list[bool] = []
    world = World(setup, make_scenario(), SimClock(speed=1.0))
    laser = LaserModel(world, setup.laser)
    transports = VirtualTransports(
        laser=laser.handle_line,
        sensor=Sampling({0: 3300, 1: 0, 2: 0}, counter_address=1),
        cooler=Sampling({0: 800, 1: 200, 2: 800, 3: 0, 4: 0}, counter_address=4),
        on_control_line=lambda name, on: dtr.append(on),
    )
    with Bridge(setup, on_event=lambda k, p: None, transports=transports) as bridge:
        bridge.set_permit(True)
        bridge.wait_relay_closed(2.0)
        assert dtr[-1] is True
        bridge.halt("test halt")
        wait_for(lambda: bridge.relay_opened_t_ns, 2, "the line dropped")
        assert dtr[-1] is False
        line = transports.made[Dev.LASER]
        assert isinstance(line, VirtualLineTransport) and line.control_lines == {"DTR": False}


def test_item6_without_a_factory_the_bridge_builds_the_profiles_wires(demo: Setup) -> None:
    bridge = Bridge(demo, on_event=lambda k, p: None)  # built, not started: nothing is opened
    assert isinstance(bridge.laser.transport, SerialLineTransport)
    assert isinstance(WireTransports().registers(Dev.SENSOR, demo.sensor.transport),
                      ModbusRegisterTransport)  # fmt: skip


def test_item6_a_factory_without_the_device_is_refused_by_name(demo: Setup) -> None:
    transports = VirtualTransports(laser=lambda _: None, sensor=RegisterMap(), cooler=RegisterMap())
    with pytest.raises(ValueError, match="no virtual register device for the interlock"):
        Bridge(demo, on_event=lambda k, p: None, transports=transports)


# --- what only the virtual transport does -----------------------------------------------------


class Lying(RegisterMap):
    def read_registers(self, address: int, count: int) -> list[int]:
        return [70000, -1][:count]


def test_item6_a_word_that_is_not_16_bits_is_a_protocol_error() -> None:
    link = VirtualRegisterTransport(Lying())
    with pytest.raises(ProtocolError, match="70000 is not a 16-bit word"):
        link.read_registers(0, 2)


def test_item6_a_device_that_stalls_does_not_hold_up_the_others(demo: Setup) -> None:
    """Each device has its own lock unless one is shared: a stalled sensor is its own lost
    link, and the laser (the STOP of a halt) answers meanwhile."""
    release = threading.Event()

    class Stalled(RegisterMap):
        def read_registers(self, address: int, count: int) -> list[int]:
            release.wait(5)
            return super().read_registers(address, count)

    transports = VirtualTransports(
        laser=lambda _: "OK STOPPED", sensor=Stalled({0: 0, 1: 0, 2: 0}), cooler=RegisterMap()
    )
    sensor = transports.registers(Dev.SENSOR, demo.sensor.transport)
    laser = transports.line(Dev.LASER, demo.laser.transport, "\r\n")
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            sensor.read_registers(0, 3)
        except LinkLost as e:
            outcome.append(e)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.05)  # the sensor's read is stuck in the device now
        start = time.monotonic()
        assert laser.request("STOP") == "OK STOPPED"
        assert time.monotonic() - start < 0.05
    finally:
        release.set()
        poller.join(5)
    assert outcome and "no reply" in str(outcome[0])  # answered, but far too late


def test_issue15_a_halt_during_the_heartbeat_sends_stop_before_the_status_poll(demo: Setup) -> None:
    """A STOP waits behind at most the one laser transaction in flight. The laser's status
    poll and heartbeat fall due together here (same period), and the halt comes while the
    heartbeat is on the wire: the next line must be STOP, not the status poll that was due."""
    setup = demo.model_copy(
        update={"laser": demo.laser.model_copy(update={"poll_period_ms": 50.0})}
    )
    world = World(setup, make_scenario(), SimClock(speed=1.0))
    laser = LaserModel(world, setup.laser)
    commands = laser.commands
    assert commands is not None
    seen: list[str] = []
    trap = threading.Event()
    halt: list[Callable[[], None]] = []

    def handle_line(line: str) -> str | None:
        hit = commands.match(line.strip())
        seen.append(hit[0] if hit is not None else line)
        if trap.is_set() and seen[-1] == "heartbeat":
            trap.clear()
            seen.append("<halt>")
            halt[0]()
        return laser.handle_line(line)

    transports = VirtualTransports(
        laser=handle_line,
        sensor=Sampling({0: 3300, 1: 0, 2: 0}, counter_address=1),
        cooler=Sampling({0: 800, 1: 200, 2: 800, 3: 0, 4: 0}, counter_address=4),
        interlock=Relay(world, coil=0),
        lock=threading.Lock(),
    )
    with Bridge(setup, on_event=lambda k, p: None, transports=transports) as b:
        halt.append(lambda: b.halt("a halt while the heartbeat is on the wire"))
        wait_for(lambda: all(b.live.link_ok[b.live.present]), 5, "every device's link up")
        trap.set()
        wait_for(lambda: b.stop_confirmed_t_ns, 2, "the STOP confirmed")
    assert "status" in seen[: seen.index("<halt>")]  # the poll ran before the halt
    assert seen[seen.index("<halt>") + 1] == "stop"  # and not before the STOP
