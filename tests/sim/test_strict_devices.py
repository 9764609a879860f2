"""Issue 7 item 7: the simulated devices refuse what a real device refuses.

Raw Modbus frames over a real socket to the running simulator: exception 02 (illegal data
address) for an address outside the device's map or a register it does not let be written,
exception 03 (illegal data value) for a count, byte count, length or value a device refuses.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from device_profiles.loader import with_endpoints
from device_profiles.schema import ModbusCoilOutput, Setup
from firmware_bridge.errors import DeviceRejected
from firmware_bridge.transport import ModbusRegisterTransport
from sim.runner import SimRunner
from tests.firmware_bridge.modbus_peer import rtu_frame, tcp_frame
from tests.sim.conftest import make_scenario

RunSim = Callable[..., SimRunner]
pytestmark = pytest.mark.timeout(30)

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3


def word(value: int) -> bytes:
    return value.to_bytes(2, "big")


class RawTcp:
    """A Modbus TCP client that sends exactly the bytes it is given."""

    def __init__(self, endpoint: dict[str, Any]) -> None:
        self.sock = socket.create_connection((endpoint["host"], endpoint["port"]), timeout=2)
        self.tid = 0

    def ask(self, pdu: bytes, unit: int = 1) -> bytes:
        """Send one request PDU (function code first); return the reply PDU."""
        self.tid += 1
        self.sock.sendall(tcp_frame(self.tid, unit, pdu))
        header = self._recv(7)
        assert int.from_bytes(header[0:2], "big") == self.tid
        assert header[6] == unit
        return self._recv(int.from_bytes(header[4:6], "big") - 1)

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "the device closed the connection"
            buf += chunk
        return buf

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[dict[str, Any]], RawTcp]]:
    clients: list[RawTcp] = []

    def connect(endpoint: dict[str, Any]) -> RawTcp:
        clients.append(RawTcp(endpoint))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


def refused(fc: int, code: int) -> bytes:
    return bytes([fc | 0x80, code])


def exceptions(runner: SimRunner, device: str) -> list[tuple[int, int]]:
    return [
        (e["function_code"], e["exception_code"])
        for e in runner.events()
        if e["kind"] == "modbus_exception" and e["device"] == device
    ]


# --- the relay module -------------------------------------------------------------------------


def test_item7_a_coil_written_with_0x1234_is_refused_and_the_relay_stays_open(
    setup: Setup, run_sim: RunSim, raw: Callable[[dict[str, Any]], RawTcp]
) -> None:
    out = setup.interlock_output
    assert isinstance(out, ModbusCoilOutput)
    runner = run_sim(make_scenario())
    relay = raw(runner.endpoints["interlock"])
    for value in (0x1234, 0x0001, 0xFFFF, 0x00FF):
        assert relay.ask(bytes([5]) + word(out.coil) + word(value)) == refused(5, ILLEGAL_VALUE)
    assert runner.snapshot()["relay_closed"] is False
    assert not [e for e in runner.events() if e["kind"] == "relay"]
    # Only 0xFF00 closes it, and is echoed back.
    on = bytes([5]) + word(out.coil) + word(0xFF00)
    assert relay.ask(on) == on
    assert runner.snapshot()["relay_closed"] is True
    assert exceptions(runner, "interlock") == [(5, ILLEGAL_VALUE)] * 4


@pytest.mark.parametrize(
    ("pdu", "reply"),
    [
        pytest.param(bytes([5]) + word(7) + word(0xFF00), refused(5, ILLEGAL_ADDRESS), id="other-coil"),
        pytest.param(bytes([5]) + word(0) + b"\xff", refused(5, ILLEGAL_VALUE), id="truncated-write"),
        pytest.param(bytes([5]) + word(0), refused(5, ILLEGAL_VALUE), id="write-without-value"),
        pytest.param(bytes([5]), refused(5, ILLEGAL_VALUE), id="function-code-alone"),
        pytest.param(bytes([1]) + word(0) + word(0), refused(1, ILLEGAL_VALUE), id="read-0-coils"),
        pytest.param(bytes([1]) + word(0) + word(2001), refused(1, ILLEGAL_VALUE), id="read-2001-coils"),
        pytest.param(bytes([1]) + word(5) + word(1), refused(1, ILLEGAL_ADDRESS), id="read-other-coil"),
        pytest.param(bytes([3]) + word(0) + word(1), refused(3, ILLEGAL_FUNCTION), id="registers-of-a-relay"),
        pytest.param(
            bytes([15]) + word(0) + word(1) + bytes([2, 1, 0]),
            refused(15, ILLEGAL_VALUE),
            id="multiple-coils-byte-count",
        ),
    ],
)  # fmt: skip
def test_item7_the_relay_refuses_malformed_requests(
    run_sim: RunSim, raw: Callable[[dict[str, Any]], RawTcp], pdu: bytes, reply: bytes
) -> None:
    runner = run_sim(make_scenario())
    assert raw(runner.endpoints["interlock"]).ask(pdu) == reply
    assert runner.snapshot()["relay_closed"] is False


# --- the cooler (a register device) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("pdu", "reply"),
    [
        pytest.param(bytes([3]) + word(0) + word(0), refused(3, ILLEGAL_VALUE), id="read-0"),
        pytest.param(bytes([3]) + word(0) + word(126), refused(3, ILLEGAL_VALUE), id="read-126"),
        pytest.param(bytes([3]) + word(0) + word(2000), refused(3, ILLEGAL_VALUE), id="read-2000"),
        pytest.param(bytes([3]) + word(0), refused(3, ILLEGAL_VALUE), id="truncated-read"),
        pytest.param(bytes([3]) + word(0) + word(1) + b"\x00", refused(3, ILLEGAL_VALUE), id="read-too-long"),
        pytest.param(bytes([3]) + word(10) + word(1), refused(3, ILLEGAL_ADDRESS), id="read-outside-map"),
        pytest.param(bytes([3]) + word(3) + word(5), refused(3, ILLEGAL_ADDRESS), id="read-straddling"),
        pytest.param(bytes([6]) + word(0) + word(500), refused(6, ILLEGAL_ADDRESS), id="write-plate-temp"),
        pytest.param(bytes([6]) + word(50) + word(1), refused(6, ILLEGAL_ADDRESS), id="write-outside-map"),
        pytest.param(bytes([6]) + word(2), refused(6, ILLEGAL_VALUE), id="truncated-write"),
        pytest.param(bytes([6]) + word(2) + word(0x7FFF), refused(6, ILLEGAL_VALUE), id="setpoint-0x7FFF"),
        pytest.param(bytes([6]) + word(2) + word(0x8000), refused(6, ILLEGAL_VALUE), id="setpoint-0x8000"),
        pytest.param(bytes([6]) + word(2) + word(1501), refused(6, ILLEGAL_VALUE), id="setpoint-15.01"),
        pytest.param(bytes([6]) + word(2) + word(0xFE0B), refused(6, ILLEGAL_VALUE), id="setpoint--5.01"),
        pytest.param(
            bytes([16]) + word(2) + word(1) + bytes([4]) + word(800) + word(0),
            refused(16, ILLEGAL_VALUE),
            id="multiple-byte-count",
        ),
        pytest.param(
            bytes([16]) + word(2) + word(0) + bytes([0]), refused(16, ILLEGAL_VALUE), id="multiple-0"
        ),
        pytest.param(
            bytes([16]) + word(2) + word(1) + bytes([2]) + word(0x7FFF),
            refused(16, ILLEGAL_VALUE),
            id="multiple-setpoint-0x7FFF",
        ),
        pytest.param(bytes([5]) + word(0) + word(0xFF00), refused(5, ILLEGAL_FUNCTION), id="coil-of-a-cooler"),
    ],
)  # fmt: skip
def test_item7_the_cooler_refuses_what_a_real_device_refuses(
    setup: Setup,
    run_sim: RunSim,
    raw: Callable[[dict[str, Any]], RawTcp],
    pdu: bytes,
    reply: bytes,
) -> None:
    runner = run_sim(make_scenario())
    cooler = raw(runner.endpoints["cooler"])
    assert cooler.ask(pdu) == reply
    assert exceptions(runner, "cooler") == [(reply[0] & 0x7F, reply[1])]
    # Nothing was taken: the setpoint is what the scenario started with.
    setpoint = setup.cooler.registers["setpoint_c"]
    read = cooler.ask(bytes([3]) + word(setpoint.address) + word(1))
    assert read == bytes([3, 2]) + word(500)


@pytest.mark.parametrize(("raw_value", "setpoint_c"), [(1500, 15.0), (0xFE0C, -5.0), (800, 8.0)])
def test_item7_a_setpoint_inside_the_range_is_taken(
    setup: Setup,
    run_sim: RunSim,
    raw: Callable[[dict[str, Any]], RawTcp],
    raw_value: int,
    setpoint_c: float,
) -> None:
    runner = run_sim(make_scenario())
    cooler = raw(runner.endpoints["cooler"])
    write = bytes([6]) + word(setup.cooler.registers["setpoint_c"].address) + word(raw_value)
    assert cooler.ask(write) == write
    assert runner.world is not None and runner.world.plate.setpoint_c == pytest.approx(setpoint_c)
    assert exceptions(runner, "cooler") == []


def test_item7_a_bridge_that_writes_a_sentinel_is_told_so(setup: Setup, run_sim: RunSim) -> None:
    """Past the driver's own check (a bridge bug): the device refuses, the bridge hears it."""
    runner = run_sim(make_scenario())
    cooler = with_endpoints(setup, runner.endpoints).cooler
    transport = ModbusRegisterTransport(cooler.transport)
    try:
        with pytest.raises(DeviceRejected, match="Modbus exception 3"):
            transport.write_register(cooler.registers["setpoint_c"].address, 0x7FFF)
        transport.write_register(cooler.registers["setpoint_c"].address, 800)
    finally:
        transport.close()
    assert exceptions(runner, "cooler") == [(6, ILLEGAL_VALUE)]


# --- RTU framing --------------------------------------------------------------------------


def test_item7_over_rtu_a_bad_count_is_refused_and_a_truncated_request_is_ignored(
    run_sim: RunSim,
) -> None:
    runner = run_sim(make_scenario(), sensor_framing="rtu")
    endpoint = runner.endpoints["sensor"]
    host, port = endpoint["port"].removeprefix("socket://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(rtu_frame(1, bytes([3]) + word(0) + word(126)))
        assert sock.recv(64) == rtu_frame(1, refused(3, ILLEGAL_VALUE))
        # A frame cut short fails its CRC: a real serial device stays silent, and so does this.
        sock.sendall(rtu_frame(1, bytes([3]) + word(0) + word(3))[:-3])
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(64)
