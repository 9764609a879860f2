"""The backends of the driver contract suite: one device, carried by each kind of wire.

A test names a device (a line function, or a register device such as ``RegisterMap``) and
gets the transport the bridge would use to reach it over each backend in turn:

- ``virtual``: ``firmware_bridge.virtual``, the device called in this thread;
- ``pty``: the real ``SerialLineTransport`` on a pseudo-terminal, the device answering on
  the master end (``PtyPeer``);
- ``tcp``: the real ``ModbusRegisterTransport`` (pymodbus client) over a loopback socket,
  the device behind a Modbus TCP peer that decodes each request frame and frames its answer.

The device object is the same on every backend, so what it recorded (lines received,
registers read and written) is asserted the same way whatever carried it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyModbusTCP.server import DataHandler, ModbusServer

from device_profiles.schema import ModbusTcpTransport, SerialTransport
from firmware_bridge.transport import (
    LineTransport,
    ModbusRegisterTransport,
    RegisterTransport,
    SerialLineTransport,
)
from firmware_bridge.virtual import (
    ILLEGAL_FUNCTION,
    ILLEGAL_VALUE,
    LinePeer,
    ModbusRefusal,
    NoAnswer,
    RegisterPeer,
    VirtualLineTransport,
    VirtualRegisterTransport,
)
from tests.firmware_bridge.modbus_peer import ModbusPeer, Request, registers_pdu
from tests.firmware_bridge.pty_peer import TERM, PtyPeer

LINE_BACKENDS = ("virtual", "pty")
#: ``pymodbustcp``: the device behind another Modbus implementation's server (pyModbusTCP),
#: so the bridge's client is held to the protocol, not to pymodbus' reading of it (issue 14
#: item 6).
REGISTER_BACKENDS = ("virtual", "tcp", "pymodbustcp")
TIMEOUT_MS = 100.0
UNIT = 1
COIL_ON, COIL_OFF = 0xFF00, 0x0000


class LineDevice:
    """A line device that answers with ``answer(line)`` and records every line it received."""

    def __init__(self, answer: Callable[[str], str | None]) -> None:
        self.answer = answer
        self.received: list[str] = []

    def __call__(self, line: str) -> str | None:
        self.received.append(line)
        return self.answer(line)


def _over_pty(peer: LinePeer) -> Callable[[bytes], bytes | None]:
    def answer(raw: bytes) -> bytes | None:
        reply = peer(raw.decode("ascii", errors="replace"))
        return None if reply is None else reply.encode("utf-8") + TERM

    return answer


def _bits_pdu(function_code: int, bits: list[int]) -> bytes:
    packed = sum(1 << i for i, b in enumerate(bits) if b).to_bytes((len(bits) + 7) // 8, "little")
    return bytes([function_code, len(packed)]) + packed


def _over_modbus(device: RegisterPeer) -> Callable[[ModbusPeer, Request], bytes | None]:
    """A register device's answers as Modbus frames: FC1-4 reads, FC5, FC6 and FC16 echoed
    writes."""

    def answer(peer: ModbusPeer, request: Request) -> bytes | None:
        fc = request.function_code
        try:
            if fc == 3:
                pdu = registers_pdu(3, device.read_registers(request.address, request.word))
            elif fc == 4:
                words = device.read_table("input", request.address, request.word)
                pdu = registers_pdu(4, words)
            elif fc in (1, 2):
                table = "coil" if fc == 1 else "discrete_input"
                pdu = _bits_pdu(fc, device.read_table(table, request.address, request.word))
            elif fc == 16:
                count, data = request.word, request.pdu[6:]
                words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * count, 2)]
                device.write_registers(request.address, words)
                pdu = request.pdu[:5]
            elif fc == 6:
                device.write_register(request.address, request.word)
                pdu = request.pdu
            elif fc == 5 and request.word in (COIL_ON, COIL_OFF):
                device.write_coil(request.address, request.word == COIL_ON)
                pdu = request.pdu
            else:
                raise ModbusRefusal(ILLEGAL_VALUE if fc == 5 else ILLEGAL_FUNCTION)
        except ModbusRefusal as e:
            pdu = bytes([fc | 0x80, e.code])
        except NoAnswer:
            return None
        return peer.reply(request, pdu)

    return answer


@dataclass
class LineBackend:
    """Connects line devices over one backend; closes everything it made."""

    kind: str
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self, peer: LinePeer) -> LineTransport:
        transport: LineTransport
        if self.kind == "virtual":
            transport = VirtualLineTransport(peer, timeout_ms=TIMEOUT_MS)
            self._closers.append(transport.close)
            return transport
        far = PtyPeer(_over_pty(peer))
        cfg = SerialTransport(kind="serial", port=far.path, timeout_ms=TIMEOUT_MS)
        transport = SerialLineTransport(cfg, TERM.decode())
        self._closers += [transport.close, far.close]
        return transport

    def close(self) -> None:
        for close in self._closers:
            close()


class _PeerHandler(DataHandler):  # type: ignore[misc]  # pyModbusTCP has no type hints
    """pyModbusTCP's server asks this for every request; the register device answers.

    A refusal is the device's exception code; a device that does not answer is held until
    the bridge's deadline has passed, then refused (pyModbusTCP always answers)."""

    def __init__(self, device: RegisterPeer) -> None:
        super().__init__()
        self.device = device

    def _do(self, fn: Callable[[], list[int] | None]) -> DataHandler.Return:
        try:
            data = fn()
        except ModbusRefusal as e:
            return DataHandler.Return(exp_code=e.code)
        except NoAnswer:
            time.sleep(2 * TIMEOUT_MS / 1000)
            return DataHandler.Return(exp_code=4)
        return DataHandler.Return(exp_code=0, data=data)

    def read_h_regs(self, address: int, count: int, srv_info: object) -> DataHandler.Return:
        return self._do(lambda: self.device.read_registers(address, count))

    def read_i_regs(self, address: int, count: int, srv_info: object) -> DataHandler.Return:
        return self._do(lambda: self.device.read_table("input", address, count))

    def read_coils(self, address: int, count: int, srv_info: object) -> DataHandler.Return:
        return self._do(lambda: self.device.read_table("coil", address, count))

    def read_d_inputs(self, address: int, count: int, srv_info: object) -> DataHandler.Return:
        return self._do(lambda: self.device.read_table("discrete_input", address, count))

    def write_h_regs(self, address: int, words: list[int], srv_info: object) -> DataHandler.Return:
        def write() -> None:
            if len(words) == 1:
                self.device.write_register(address, words[0])
            else:
                self.device.write_registers(address, list(words))

        return self._do(write)

    def write_coils(self, address: int, bits: list[bool], srv_info: object) -> DataHandler.Return:
        def write() -> None:
            for i, bit in enumerate(bits):
                self.device.write_coil(address + i, bool(bit))

        return self._do(write)


class _QuickServer(ModbusServer):  # type: ignore[misc]
    """pyModbusTCP's server, polling for shutdown every 10 ms (socketserver's default 0.5 s
    made each test's teardown half a second)."""

    def _serve(self) -> None:
        try:
            self._evt_running.set()
            self._service.serve_forever(poll_interval=0.01)
        finally:
            self._service.server_close()
            self._evt_running.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegisterBackend:
    """Connects register devices over one backend; closes everything it made."""

    kind: str
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self, device: RegisterPeer) -> RegisterTransport:
        transport: RegisterTransport
        if self.kind == "virtual":
            transport = VirtualRegisterTransport(device, timeout_ms=TIMEOUT_MS)
            self._closers.append(transport.close)
            return transport
        if self.kind == "pymodbustcp":
            port = _free_port()
            server = _QuickServer("127.0.0.1", port, no_block=True, data_hdl=_PeerHandler(device))
            server.start()
            cfg = ModbusTcpTransport(
                kind="modbus_tcp", host="127.0.0.1", port=port, device_id=UNIT,
                timeout_ms=TIMEOUT_MS,
            )  # fmt: skip
            transport = ModbusRegisterTransport(cfg)
            self._closers += [transport.close, server.stop]
            return transport
        serve = _over_modbus(device)
        far: ModbusPeer
        far = ModbusPeer(lambda request: serve(far, request), "tcp")
        cfg = ModbusTcpTransport(
            kind="modbus_tcp", host="127.0.0.1", port=far.port, device_id=UNIT,
            timeout_ms=TIMEOUT_MS,
        )  # fmt: skip
        transport = ModbusRegisterTransport(cfg)
        self._closers += [transport.close, far.close]
        return transport

    def close(self) -> None:
        for close in self._closers:
            close()
