"""Issue 14 item 4: the lasers that are not line-based keep the driver contract.

Each against the simulator's own laser model, served from the bundled profile over a real
wire (the binary-framed laser on a pty, the Modbus laser on a TCP socket, pymodbus server
and client): STOP goes first and is verified, the identity is checked before any command,
and a reply that is garbage, short or has a bad checksum is a typed error (ProtocolError:
the laser worker halts on it), never data.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import threading
import tty
from collections.abc import Callable, Iterator

import pytest

from device_profiles.frames import FrameError, build, crc16_modbus, frame_length, parse, xor8
from device_profiles.loader import load
from device_profiles.schema import BinaryFrameProtocol, Laser, ModbusTcpTransport, SerialTransport
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.laser_drivers import FrameLaserDriver, ModbusLaserDriver
from firmware_bridge.transport import ModbusRegisterTransport, SerialFrameTransport
from firmware_bridge.virtual import VirtualFrameTransport
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.laser_frames import FrameLaserFront
from sim.laser_modbus import SimModbusLaser
from sim.world import World
from tests.sim.conftest import make_scenario

pytestmark = pytest.mark.timeout(30)

FrameAnswer = Callable[[bytes], bytes | None]


@pytest.fixture(scope="module")
def binary_laser() -> Laser:
    return load("demo-ndyag-1064-binary-laser").setup.laser


@pytest.fixture(scope="module")
def modbus_laser() -> Laser:
    return load("demo-ndyag-1064-modbus-laser").setup.laser


def _model(name: str, events: list[str] | None = None) -> tuple[LaserModel, World]:
    setup = load(name).setup
    heard = events if events is not None else []
    world = World(setup, make_scenario(), SimClock(speed=1.0), lambda kind, **_: heard.append(kind))
    return LaserModel(world, setup.laser), world


# --- the frame codec ----------------------------------------------------------------------


def test_item4_crc16_modbus_and_xor8_are_the_published_checksums() -> None:
    # CRC-16/MODBUS check value of "123456789" is 0x4B37 (the CRC catalogue's "check").
    assert crc16_modbus(b"123456789") == 0x4B37
    assert xor8(bytes([0x01, 0x02, 0x04])) == 0x07


def test_item4_a_frame_with_a_bad_checksum_or_length_is_a_frame_error(
    binary_laser: Laser,
) -> None:
    proto = binary_laser.protocol
    assert isinstance(proto, BinaryFrameProtocol)
    frame = build(proto, 0x90, b"\x01\x02")
    assert parse(proto, frame) == (0x90, b"\x01\x02")
    bad = frame[:-1] + bytes([frame[-1] ^ 0xFF])
    with pytest.raises(FrameError, match="bad checksum"):
        parse(proto, bad)
    with pytest.raises(FrameError, match="length byte says"):
        parse(proto, frame + b"\x00")
    with pytest.raises(FrameError, match="not 0xA5"):
        frame_length(proto, b"\x5a\x01")


# --- the binary-framed laser, virtually and on a pty -------------------------------------


class FramePtyPeer:
    """A framed device on the master end of a pty: each whole frame is answered by
    ``answer`` (its bytes written as given: garbage, a half frame, or nothing)."""

    def __init__(self, proto: BinaryFrameProtocol, answer: FrameAnswer) -> None:
        self.proto = proto
        self.answer = answer
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.01)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 1024)
            except OSError:  # the driver closed its end
                continue
            start = buf.find(bytes([self.proto.start_byte]))
            buf = b"" if start < 0 else buf[start:]
            while len(buf) >= 2 and len(buf) >= (n := frame_length(self.proto, buf[:2])):
                frame, buf = buf[:n], buf[n:]
                reply = self.answer(frame)
                if reply:
                    os.write(self.master, reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(params=["virtual", "pty"])
def frames_to(
    request: pytest.FixtureRequest, binary_laser: Laser
) -> Iterator[Callable[[FrameAnswer], FrameLaserDriver]]:
    proto = binary_laser.protocol
    assert isinstance(proto, BinaryFrameProtocol)
    closers: list[Callable[[], None]] = []

    def connect(answer: FrameAnswer) -> FrameLaserDriver:
        if request.param == "virtual":
            transport = VirtualFrameTransport(answer, proto, timeout_ms=100)
            return FrameLaserDriver(binary_laser, transport)
        peer = FramePtyPeer(proto, answer)
        cfg = SerialTransport(kind="serial", port=peer.path, timeout_ms=100)
        real = SerialFrameTransport(cfg, proto)
        closers.extend([real.close, peer.close])
        return FrameLaserDriver(binary_laser, real)

    yield connect
    for close in closers:
        close()


def test_item4_the_binary_laser_arms_only_with_heartbeat_and_relay_and_stops(
    frames_to: Callable[[FrameAnswer], FrameLaserDriver],
) -> None:
    model, world = _model("demo-ndyag-1064-binary-laser")
    front = FrameLaserFront(model, model_profile(world))
    driver = frames_to(front.handle)
    with pytest.raises(DeviceRejected, match="INTERLOCK OPEN"):
        driver.arm()
    world.set_relay(True, "test")
    driver.heartbeat()
    assert driver.set("fluence_j_cm2", 119.54) == pytest.approx(119.5)
    driver.arm()
    status = driver.status()
    assert (status.state, status.pulses) == ("READY", 0)
    assert status.settings["fluence_j_cm2"] == pytest.approx(119.5)
    with pytest.raises(DeviceRejected, match="NOT IN STANDBY"):
        driver.set("fluence_j_cm2", 100.0)
    driver.stop()
    assert driver.status().state == "STANDBY"


def model_profile(world: World) -> Laser:
    return world.setup.laser


def _damaged(front: FrameLaserFront, how: str) -> FrameAnswer:
    def answer(frame: bytes) -> bytes | None:
        reply = front.handle(frame)
        if reply is None or frame[2] == 0x01:  # the identity is answered truly
            return reply
        if how == "garbage":
            return b"\x00\x13\x37" + reply
        if how == "short":
            return reply[: len(reply) // 2]
        if how == "bad checksum":
            return reply[:-1] + bytes([reply[-1] ^ 0x55])
        return build(front.proto, 0x77, b"")  # "wrong reply": another command's byte

    return answer


@pytest.mark.parametrize("how", ["garbage", "short", "bad checksum", "wrong reply"])
def test_item4_a_damaged_frame_from_the_binary_laser_is_a_protocol_error(
    frames_to: Callable[[FrameAnswer], FrameLaserDriver], how: str
) -> None:
    model, world = _model("demo-ndyag-1064-binary-laser")
    driver = frames_to(_damaged(FrameLaserFront(model, world.setup.laser), how))
    for call in (driver.status, driver.heartbeat, driver.stop):
        with pytest.raises(ProtocolError):
            call()


def test_item4_a_binary_laser_that_never_answers_stop_is_link_lost(
    frames_to: Callable[[FrameAnswer], FrameLaserDriver],
) -> None:
    model, world = _model("demo-ndyag-1064-binary-laser")
    driver = frames_to(FrameLaserFront(model, world.setup.laser).handle)
    model.break_stop("none")
    with pytest.raises(LinkLost):
        driver.stop()
    driver.heartbeat()  # every other command is still answered


def test_item4_another_device_on_the_binary_lasers_port_gets_no_command(
    frames_to: Callable[[FrameAnswer], FrameLaserDriver],
) -> None:
    model, world = _model("demo-ndyag-1064-binary-laser")
    front = FrameLaserFront(model, world.setup.laser)
    heard: list[int] = []

    def impostor(frame: bytes) -> bytes | None:
        heard.append(frame[2])
        if frame[2] == 0x01:
            return build(front.proto, 0x81, b"DIODE-810 SN 9")
        return front.handle(frame)

    driver = frames_to(impostor)
    with pytest.raises(ProtocolError, match="identifies as"):
        driver.stop()
    assert heard == [0x01]  # the identity question, nothing else


# --- the Modbus laser over a real socket --------------------------------------------------


class ServedModbusLaser:
    """The simulator's Modbus laser on a loopback TCP socket, its loop on a thread."""

    def __init__(self, name: str) -> None:
        self.events: list[str] = []
        self.model, self.world = _model(name, self.events)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.sim = SimModbusLaser(self.model, self.world.setup.laser, self.world)
        self.port = asyncio.run_coroutine_threadsafe(self.sim.serve(), self.loop).result(5)

    def call(self, fn: Callable[[], object]) -> None:
        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def close(self) -> None:
        async def down() -> None:
            await self.sim.shutdown()
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:  # a request held by a laser that never answers
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[tuple[ServedModbusLaser, ModbusLaserDriver]]:
    served = ServedModbusLaser("demo-ndyag-1064-modbus-laser")
    laser = served.world.setup.laser
    assert isinstance(laser.transport, ModbusTcpTransport)
    cfg = laser.transport.model_copy(update={"port": served.port, "timeout_ms": 200.0})
    transport = ModbusRegisterTransport(cfg)
    driver = ModbusLaserDriver(laser.model_copy(update={"transport": cfg}), transport)
    yield served, driver
    transport.close()
    served.close()


def test_item4_the_modbus_laser_arms_with_heartbeat_and_relay_and_stop_is_verified(
    served: tuple[ServedModbusLaser, ModbusLaserDriver],
) -> None:
    sim, driver = served
    with pytest.raises(DeviceRejected, match="Modbus exception 4"):
        driver.arm()  # the relay is open: the laser refuses the ARM coil
    sim.call(lambda: sim.world.set_relay(True, "test"))
    driver.heartbeat()
    assert driver.set("fluence_j_cm2", 119.54) == pytest.approx(119.5)
    driver.arm()
    status = driver.status()
    assert (status.state, status.pulses) == ("READY", 0)
    with pytest.raises(DeviceRejected, match="fluence_j_cm2"):
        driver.set("fluence_j_cm2", 100.0)  # refused while armed (exception 04)
    with pytest.raises(DeviceRejected, match="outside the register's range"):
        driver.set("spot_mm", 50.0)  # the profile's range: never sent
    driver.stop()
    assert driver.status().state == "STANDBY"


def test_item4_a_modbus_laser_that_acknowledges_stop_and_stays_ready_is_caught(
    served: tuple[ServedModbusLaser, ModbusLaserDriver],
) -> None:
    sim, driver = served
    sim.call(lambda: sim.world.set_relay(True, "test"))
    driver.heartbeat()
    driver.arm()
    sim.call(lambda: sim.model.break_stop("lie"))
    with pytest.raises(ProtocolError, match="acknowledged STOP but reads READY"):
        driver.stop()
    sim.call(lambda: sim.model.break_stop(None))
    driver.stop()  # retried, as the halt path does: now it holds
    assert driver.status().state == "STANDBY"


def test_item4_a_modbus_laser_that_never_answers_stop_is_link_lost(
    served: tuple[ServedModbusLaser, ModbusLaserDriver],
) -> None:
    sim, driver = served
    driver.heartbeat()
    sim.call(lambda: sim.model.break_stop("none"))
    with pytest.raises(LinkLost):
        driver.stop()


def test_item4_another_device_at_the_modbus_lasers_address_gets_no_command(
    served: tuple[ServedModbusLaser, ModbusLaserDriver],
) -> None:
    sim, driver = served
    sim.sim.identity = 0x08100002  # another laser answers at this address
    with pytest.raises(ProtocolError, match="not the profile's laser"):
        driver.stop()
    assert "stop_received" not in sim.events
