"""Issue 14 item 6: the simulator answers as a real device does, checked by another Modbus
implementation (pyModbusTCP's client, not pymodbus) over a real socket.

An address outside the profile's map is 02 ILLEGAL DATA ADDRESS, a value the register does
not accept (outside its range, a coil value other than 0xFF00/0x0000, a count over the
specification's limit) is 03 ILLEGAL DATA VALUE, a table or function the device does not
have is 01 ILLEGAL FUNCTION; good requests get the profile's values. The other direction,
the bridge's client polling pyModbusTCP's server, is the ``pymodbustcp`` backend of the
driver contract suite (tests/firmware_bridge/backends.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from pyModbusTCP.client import ModbusClient
from pyModbusTCP.constants import EXP_DATA_ADDRESS, EXP_DATA_VALUE, EXP_ILLEGAL_FUNCTION

from device_profiles.loader import load
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.laser_modbus import SimModbusLaser
from sim.modbus_devices import SimCooler
from sim.world import World
from tests.sim.conftest import make_scenario

pytestmark = pytest.mark.timeout(30)


class Served:
    """Simulated devices of one setup on loopback sockets, their asyncio loop on a thread."""

    def __init__(self, setup_name: str) -> None:
        setup = load(setup_name).setup
        self.world = World(setup, make_scenario(), SimClock(speed=1.0))
        self.laser = LaserModel(self.world, setup.laser)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.cooler = SimCooler(setup.cooler, self.world)
        self.modbus_laser = (
            SimModbusLaser(self.laser, setup.laser, self.world)
            if setup.laser.protocol.kind == "modbus_registers"
            else None
        )
        self.ports = {"cooler": self._serve(self.cooler)}
        if self.modbus_laser is not None:
            self.ports["laser"] = self._serve(self.modbus_laser)

    def _serve(self, device: SimCooler | SimModbusLaser) -> int:
        return asyncio.run_coroutine_threadsafe(device.serve(), self.loop).result(5)

    def client(self, device: str) -> ModbusClient:
        return ModbusClient("127.0.0.1", self.ports[device], unit_id=1, auto_open=True, timeout=2)

    def close(self) -> None:
        async def down() -> None:
            await self.cooler.shutdown()
            if self.modbus_laser is not None:
                await self.modbus_laser.shutdown()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served("demo-ndyag-1064-modbus-laser")
    yield s
    s.close()


def test_item6_another_client_reads_the_simulated_cooler_as_its_profile_says(
    served: Served,
) -> None:
    c = served.client("cooler")
    words = c.read_holding_registers(0, 5)
    assert words is not None, c.last_except_as_txt
    plate_c, flow_l_min = words[0] / 100, words[1] / 100  # int16 and uint16 at 0.01
    assert 0.0 < plate_c < 30.0 and flow_l_min > 0.5
    c.close()


@pytest.mark.parametrize(
    ("address", "count"), [(10, 1), (3, 3)], ids=["outside the map", "running past its end"]
)
def test_item6_a_read_outside_the_map_is_exception_02(
    served: Served, address: int, count: int
) -> None:
    c = served.client("cooler")
    assert c.read_holding_registers(address, count) is None
    assert c.last_except == EXP_DATA_ADDRESS, c.last_except_as_txt
    c.close()


def test_item6_a_write_to_a_read_only_register_is_exception_02(served: Served) -> None:
    c = served.client("cooler")
    assert not c.write_single_register(0, 100)  # plate_temp_c: measured, not writable
    assert c.last_except == EXP_DATA_ADDRESS, c.last_except_as_txt
    c.close()


def test_item6_a_value_outside_the_registers_range_is_exception_03(served: Served) -> None:
    c = served.client("cooler")
    assert not c.write_single_register(2, 9900)  # setpoint 99 degC, the map allows -5..15
    assert c.last_except == EXP_DATA_VALUE, c.last_except_as_txt
    assert c.write_single_register(2, 800)  # 8 degC is taken
    assert c.read_holding_registers(2, 1) == [800]
    c.close()


def test_item6_a_table_the_device_does_not_have_is_exception_01(served: Served) -> None:
    c = served.client("cooler")
    assert c.read_input_registers(0, 1) is None  # the cooler's map has no input registers
    assert c.last_except == EXP_ILLEGAL_FUNCTION, c.last_except_as_txt
    assert c.custom_request(bytes([0x41, 0x00])) is None  # a function code no device has
    assert c.last_except == EXP_ILLEGAL_FUNCTION, c.last_except_as_txt
    c.close()


def test_item6_malformed_requests_are_exception_03(served: Served) -> None:
    c = served.client("laser")
    # 126 registers: above the specification's 125 per read.
    assert c.custom_request(bytes([0x03, 0x00, 0x00, 0x00, 126])) is None
    assert c.last_except == EXP_DATA_VALUE, c.last_except_as_txt
    # A coil written 0x1234: only 0xFF00 (on) and 0x0000 (off) are coil values.
    assert c.custom_request(bytes([0x05, 0x00, 0x02, 0x12, 0x34])) is None
    assert c.last_except == EXP_DATA_VALUE, c.last_except_as_txt
    c.close()


def test_item6_another_client_stops_the_modbus_laser_through_its_stop_coil(
    served: Served,
) -> None:
    c = served.client("laser")
    assert c.read_input_registers(4, 2) == [0x1064, 0x0001]  # the identity, uint32 big-endian
    assert c.write_single_coil(2, True)
    assert c.read_coils(2, 1) == [True]
    assert c.read_input_registers(0, 1) == [0]  # STANDBY
    assert c.read_discrete_inputs(0, 1) == [False]  # no emission
    c.close()
