"""Issue 14 (also): two devices on one RTU port, each with its unit id.

The sensor (unit 1) and the cooler (unit 2) answer on one simulated RS-485 line (a pty at
115200 baud, ``sim.rtu_line``); their workers poll from two threads at once. The bridge's
wires share one client and one lock for the port, so each request gets its own device's
reply; the setup refuses two devices with one unit id or different line settings on a
port, and the reaction budget counts the wait for the other device's request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer

from device_profiles.loader import load
from device_profiles.schema import ModbusRtuTransport, Setup
from device_profiles.timing import LiveBudget, reaction_budget
from firmware_bridge.drivers import RegisterDevice
from firmware_bridge.errors import BridgeError
from firmware_bridge.live import Dev
from firmware_bridge.transport import WireTransports
from sim.clock import SimClock
from sim.modbus_devices import SimCooler, SimSensor
from sim.modbus_requests import STRICT_REQUESTS
from sim.rtu_line import PtyRtuLine
from sim.world import World
from tests.sim.conftest import make_scenario

pytestmark = pytest.mark.timeout(30)


def on_one_line(port: str, sensor_id: int = 1, cooler_id: int = 2, **cooler: Any) -> Setup:
    demo = load("demo-ndyag-1064").setup
    data = demo.model_dump()
    # 8N2: 11-bit characters as 8E1 (a pty refuses parity in its termios settings).
    rtu = {"kind": "modbus_rtu", "port": port, "baudrate": 115200, "parity": "N", "stopbits": 2}
    rtu["timeout_ms"] = 100.0
    data["sensor"]["transport"] = {**rtu, "device_id": sensor_id}
    data["cooler"]["transport"] = {**rtu, "device_id": cooler_id, **cooler}
    return Setup.model_validate(data)


def test_item_shared_rtu_two_devices_with_one_unit_id_on_a_port_are_refused() -> None:
    with pytest.raises(ValidationError, match="each needs its own device_id"):
        on_one_line("/dev/ttyUSB0", sensor_id=1, cooler_id=1)
    with pytest.raises(ValidationError, match="share the RTU port /dev/ttyUSB0 but not"):
        on_one_line("/dev/ttyUSB0", baudrate=19200)


def test_item_shared_rtu_the_budget_counts_the_other_devices_request() -> None:
    setup = on_one_line("/dev/ttyUSB0")
    budget = reaction_budget(setup)
    shared = [s for s in budget.detection if s.name == "shared line"]
    assert shared and shared[0].ms > 0  # the cooler's longest request, per sensor request
    nan = float("nan")
    assert LiveBudget(setup).total_ms(nan, nan, nan) == pytest.approx(budget.total_ms)


class Line:
    """A sensor (unit 1) and a cooler (unit 2) behind one RTU server, on one pty line."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.path = self._run(self._open())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _open(self) -> str:
        setup = on_one_line("/dev/null")
        world = World(setup, make_scenario(), SimClock(speed=1.0))
        sensor = SimSensor(setup.sensor, world, setup.limits.skin_temp_c, noise_sd_c=0.05, seed=1)
        cooler = SimCooler(setup.cooler, world)
        self.server = ModbusTcpServer(
            context=[sensor.sim_device(), cooler.sim_device()],
            address=("127.0.0.1", 0),
            framer=FramerType.RTU,
            custom_pdu=STRICT_REQUESTS,
        )
        await self.server.serve_forever(background=True)
        port = int(self.server.transport.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        self.line = PtyRtuLine(115200)
        return await self.line.open("127.0.0.1", port)

    def close(self) -> None:
        async def down() -> None:
            await self.line.close()
            await self.server.shutdown()  # type: ignore[no-untyped-call]

        self._run(down())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def line() -> Iterator[Line]:
    served = Line()
    yield served
    served.close()


def test_item_shared_rtu_two_workers_on_one_port_each_get_their_own_devices_replies(
    line: Line,
) -> None:
    setup = on_one_line(line.path)
    wires = WireTransports()
    assert isinstance(setup.sensor.transport, ModbusRtuTransport)
    assert isinstance(setup.cooler.transport, ModbusRtuTransport)
    sensor = RegisterDevice(setup.sensor, wires.registers(Dev.SENSOR, setup.sensor.transport))
    cooler = RegisterDevice(setup.cooler, wires.registers(Dev.COOLER, setup.cooler.transport))
    errors: list[BaseException] = []
    readings: dict[str, list[float]] = {"sensor": [], "cooler": []}

    def poll(name: str, device: RegisterDevice, register: str) -> None:
        try:
            for _ in range(40):
                readings[name].append(device.read().values[register])
        except BridgeError as e:
            errors.append(e)

    threads = [
        threading.Thread(target=poll, args=("sensor", sensor, "skin_temp_c")),
        threading.Thread(target=poll, args=("cooler", cooler, "plate_temp_c")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    sensor.transport.close()
    cooler.transport.close()
    assert not errors, errors[0]
    assert len(readings["sensor"]) == len(readings["cooler"]) == 40
    # The contact-cooled skin reads about 11 degC with noise; the plate its 5 degC start:
    # never one device's reply taken for the other's.
    assert all(8.0 < v < 40.0 for v in readings["sensor"])
    assert len(set(readings["sensor"])) > 1
    assert all(4.5 < v < 5.5 for v in readings["cooler"])
