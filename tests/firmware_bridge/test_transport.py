"""The transports over real wires: a pseudo-terminal and a pymodbus TCP server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_profiles.schema import ModbusTcpTransport, SerialTransport
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.transport import ModbusRegisterTransport, SerialLineTransport
from tests.firmware_bridge.pty_peer import TERM, PtyPeer, Reply

pytestmark = pytest.mark.timeout(20)

TIMEOUT_MS = 100.0


@pytest.fixture
def pty_link() -> Iterator[Callable[..., tuple[PtyPeer, SerialLineTransport]]]:
    made: list[tuple[PtyPeer, SerialLineTransport]] = []

    def make(
        answer: Callable[[bytes], Reply],
    ) -> tuple[PtyPeer, SerialLineTransport]:
        peer = PtyPeer(answer)
        cfg = SerialTransport(kind="serial", port=peer.path, timeout_ms=TIMEOUT_MS)
        made.append((peer, SerialLineTransport(cfg, "\r\n")))
        return made[-1]

    yield make
    for peer, transport in made:
        transport.close()
        peer.close()


def echo(line: bytes) -> bytes:
    return b"ECHO " + line + TERM


def test_a_request_gets_its_reply_line(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    peer, link = pty_link(echo)
    assert link.request("STATUS?") == "ECHO STATUS?"
    assert link.request("HB") == "ECHO HB"
    assert peer.received == [b"STATUS?", b"HB"]


def test_a_reply_split_over_two_writes_is_one_line(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    _, link = pty_link(lambda line: [b"OK REA", 0.02, b"DY" + TERM])
    assert link.request("ARM") == "OK READY"


def test_a_terminator_split_over_two_writes_is_found(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    _, link = pty_link(lambda line: [b"OK HB\r", 0.02, b"\n"])
    assert link.request("HB") == "OK HB"


def test_no_reply_is_link_lost_within_the_timeout(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    _, link = pty_link(lambda line: None)
    start = time.monotonic()
    with pytest.raises(LinkLost, match="no reply to 'STOP' within 100 ms"):
        link.request("STOP")
    elapsed = time.monotonic() - start
    assert 0.09 <= elapsed < 3 * TIMEOUT_MS / 1000


def test_a_reply_without_terminator_is_link_lost(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    _, link = pty_link(lambda line: b"OK HB")
    with pytest.raises(LinkLost):
        link.request("HB")


def test_a_late_reply_is_not_taken_for_the_next_one(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    def answer(line: bytes) -> Reply:
        if line == b"SLOW":  # answers after the bridge gave up waiting
            return [1.5 * TIMEOUT_MS / 1000, b"OK SLOW" + TERM]
        return echo(line)

    _, link = pty_link(answer)
    with pytest.raises(LinkLost):
        link.request("SLOW")
    time.sleep(3 * TIMEOUT_MS / 1000)  # the late reply is in the input buffer by now
    assert link.request("HB") == "ECHO HB"


def test_the_peer_hanging_up_is_link_lost(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    peer, link = pty_link(echo)
    assert link.request("HB") == "ECHO HB"
    peer.hang_up()
    start = time.monotonic()
    with pytest.raises(LinkLost):
        link.request("HB")
    assert time.monotonic() - start < 3 * TIMEOUT_MS / 1000
    # It stays lost (the port is gone), and says so at once rather than hanging.
    with pytest.raises(LinkLost):
        link.request("HB")


def test_the_peer_hanging_up_mid_request_is_link_lost(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    peer: PtyPeer

    def answer(line: bytes) -> None:
        peer.hang_up()

    peer, link = pty_link(answer)
    with pytest.raises(LinkLost):
        link.request("STATUS?")


def test_a_non_ascii_reply_is_a_protocol_error(
    pty_link: Callable[..., tuple[PtyPeer, SerialLineTransport]],
) -> None:
    _, link = pty_link(lambda line: b"OK \xb0C" + TERM if line == b"TEMP?" else echo(line))
    with pytest.raises(ProtocolError, match="not ASCII"):
        link.request("TEMP?")
    assert link.request("HB") == "ECHO HB"  # the link itself is fine


def test_a_port_that_does_not_exist_is_link_lost() -> None:
    cfg = SerialTransport(kind="serial", port="/dev/does-not-exist-0", timeout_ms=TIMEOUT_MS)
    link = SerialLineTransport(cfg, "\r\n")
    with pytest.raises(LinkLost, match="cannot open"):
        link.request("HB")
    link.close()
    link.close()  # closing twice is fine


# --- a Modbus device on loopback TCP ----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModbusServerThread:
    """A pymodbus TCP server with ten holding registers, in an event loop on its own thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.server: ModbusTcpServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modbus-server", daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the Modbus server did not start"
        self._wait_listening()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _main(self) -> None:
        device = SimDevice(
            id=1, simdata=[SimData(0, count=10, values=0, datatype=DataType.REGISTERS)]
        )
        self.server = ModbusTcpServer(context=device, address=("127.0.0.1", self.port))
        self.loop.call_soon(self._ready.set)
        await self.server.serve_forever()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            assert time.monotonic() < deadline, "the Modbus server is not listening"
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread.is_alive() and self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(5)  # type: ignore[no-untyped-call]
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()


def modbus(port: int) -> ModbusRegisterTransport:
    cfg = ModbusTcpTransport(kind="modbus_tcp", host="127.0.0.1", port=port, timeout_ms=TIMEOUT_MS)
    return ModbusRegisterTransport(cfg)


@pytest.fixture
def server() -> Iterator[ModbusServerThread]:
    srv = ModbusServerThread(free_port())
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ModbusServerThread) -> Iterator[ModbusRegisterTransport]:
    transport = modbus(server.port)
    yield transport
    transport.close()


def test_read_registers(client: ModbusRegisterTransport) -> None:
    assert client.read_registers(0, 10) == [0] * 10
    assert client.read_registers(4, 2) == [0, 0]


def test_write_a_register_and_read_it_back(client: ModbusRegisterTransport) -> None:
    client.write_register(2, 800)
    client.write_register(3, 0xFF38)  # -2.00 degC as an int16
    assert client.read_registers(0, 5) == [0, 0, 800, 0xFF38, 0]


def test_write_a_coil(client: ModbusRegisterTransport) -> None:
    client.write_coil(0, True)
    assert client.read_registers(0, 1) == [1]  # shared block: coil 0 is bit 0 of register 0
    client.write_coil(0, False)
    assert client.read_registers(0, 1) == [0]


@pytest.mark.parametrize(("address", "count"), [(20, 2), (8, 5)], ids=["outside", "straddling"])
def test_an_address_outside_the_map_is_device_rejected(
    client: ModbusRegisterTransport, address: int, count: int
) -> None:
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        client.read_registers(address, count)
    assert client.read_registers(0, 2) == [0, 0]  # a refusal is not a lost link


def test_a_write_outside_the_map_is_device_rejected(client: ModbusRegisterTransport) -> None:
    with pytest.raises(DeviceRejected):
        client.write_register(50, 1)


def test_nothing_listening_is_link_lost() -> None:
    transport = modbus(free_port())
    start = time.monotonic()
    try:
        with pytest.raises(LinkLost, match="cannot connect"):
            transport.read_registers(0, 1)
        with pytest.raises(LinkLost):
            transport.write_coil(0, False)
    finally:
        transport.close()
    assert time.monotonic() - start < 3 * TIMEOUT_MS / 1000


def test_a_server_stopped_mid_session_is_link_lost_not_a_hang(
    server: ModbusServerThread, client: ModbusRegisterTransport
) -> None:
    assert client.read_registers(0, 2) == [0, 0]
    server.stop()
    for _ in range(2):  # the broken connection, then the refused reconnect
        start = time.monotonic()
        with pytest.raises(LinkLost):
            client.read_registers(0, 2)
        assert time.monotonic() - start < 3 * TIMEOUT_MS / 1000


def test_the_link_comes_back_when_the_device_does() -> None:
    first = ModbusServerThread(free_port())
    transport = modbus(first.port)
    try:
        transport.write_register(1, 7)
        first.stop()
        with pytest.raises(LinkLost):
            transport.read_registers(0, 2)
        second = ModbusServerThread(first.port)
        try:
            assert transport.read_registers(0, 2) == [0, 0]  # a fresh device, a fresh map
        finally:
            second.stop()
    finally:
        transport.close()


def test_a_device_that_accepts_but_never_answers_is_link_lost_in_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        transport = modbus(int(listener.getsockname()[1]))
        try:
            start = time.monotonic()
            with pytest.raises(LinkLost):
                transport.read_registers(0, 2)
            assert time.monotonic() - start < 3 * TIMEOUT_MS / 1000
        finally:
            transport.close()
        conn, _ = listener.accept()  # the connection the client made, still unanswered
        conn.close()
