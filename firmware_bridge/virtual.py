"""In-process transports: the bridge's test double, as python-can's ``virtual`` bus is.

A virtual transport connects a driver to a device that lives in this process, with no pty
and no socket in between. A line device (the laser) is a plain function: one request line
in, one reply line out, or None for no reply. A register device is any object with the
three methods of ``RegisterPeer``; ``RegisterMap`` is one held in memory. Nothing above the
transport is replaced: drivers, device workers and the halt path run as they do over real
wires, and they see the same failures, with the same exceptions:

- no reply (the line device returns None, a register device raises ``NoAnswer``), or a
  reply that came later than the transport's timeout (it is dropped, as a serial port's
  late bytes are): ``LinkLost``;
- a line reply that is not ASCII, a register read answered with the wrong number of words
  or with a word outside 0..0xFFFF: ``ProtocolError``;
- a Modbus exception (the device raises ``ModbusRefusal``): ``DeviceRejected``, worded as
  over a socket ("Modbus exception 2").

One contract suite (``tests/firmware_bridge``) runs the drivers over these and over a pty
and a Modbus TCP socket, so a test written against a virtual transport means the same on a
real wire.

Threads: like a serial port or a pymodbus client, each transport has one owner thread. Calls
into a device are serialised by a lock, under which a test thread may also inspect it. Each
device has its own lock unless one is shared (``VirtualTransports(lock=...)``): devices that
share state (a laser that watches its relay) then see one call at a time, as the
simulator's single event loop does; but a device that stalls under a shared lock stalls the
others too, so share one only between devices that answer at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from device_profiles.schema import (
    BinaryFrameProtocol,
    ModbusRtuTransport,
    ModbusTcpTransport,
    RegisterTable,
    SerialTransport,
)
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.live import Dev
from firmware_bridge.transport import FrameTransport, LineTransport, RegisterTransport

T = TypeVar("T")

LinePeer = Callable[[str], str | None]
"""A line device: the request line (no terminator) in, its reply line out; None: no reply."""

CONTROL_LINES = ("DTR", "RTS")
WORD_MAX = 0xFFFF

#: Modbus exception codes a device answers with (Modbus Application Protocol V1.1b3, §7).
ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3


class NoAnswer(Exception):
    """Raised by a virtual register device that does not answer this request."""


class ModbusRefusal(Exception):
    """Raised by a virtual register device to answer with a Modbus exception ``code``."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(f"Modbus exception {code}" + (f": {why}" if why else ""))
        self.code = code


class RegisterPeer(Protocol):
    """A register device on the far side of a ``VirtualRegisterTransport``."""

    def read_registers(self, address: int, count: int) -> list[int]: ...

    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]:
        """Input registers, coils or discrete inputs (holding: ``read_registers``)."""
        ...

    def write_register(self, address: int, raw: int) -> None: ...

    def write_registers(self, address: int, words: list[int]) -> None: ...

    def write_coil(self, address: int, value: bool) -> None: ...


class _Wire:
    """What both virtual transports share: the device lock and the reply deadline."""

    def __init__(self, name: str, timeout_ms: float, lock: threading.Lock | None) -> None:
        if not timeout_ms > 0:
            raise ValueError(f"timeout_ms must be positive, not {timeout_ms}")
        self.name = name
        self.timeout_ms = timeout_ms
        self.lock = lock if lock is not None else threading.Lock()
        self.closed = False

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` on the device, under its lock; a late answer is no answer."""
        self.closed = False  # like the real transports: reopened by the next transaction
        with self.lock:
            start = time.monotonic()
            try:
                result = fn()
            except NoAnswer:
                raise LinkLost(self.no_reply(what)) from None
            late = (time.monotonic() - start) * 1000.0 > self.timeout_ms
        if late:
            raise LinkLost(self.no_reply(what))
        return result

    def no_reply(self, what: str) -> str:
        return f"no reply to {what} from {self.name} within {self.timeout_ms:g} ms"


class VirtualLineTransport(LineTransport):
    """Request lines to an in-process line device; control lines are kept, not driven.

    The device's reply is what it would send before its terminator: a reply that holds the
    terminator is cut there, and the rest is dropped, as the serial transport drops bytes
    left over from an earlier answer. ``on_control_line`` (optional) is told every control
    line change, under the device lock: a virtual relay wired to the laser's DTR.
    """

    def __init__(
        self,
        peer: LinePeer,
        *,
        terminator: str = "\r\n",
        timeout_ms: float = 100.0,
        name: str = "virtual line device",
        lock: threading.Lock | None = None,
        on_control_line: Callable[[str, bool], None] | None = None,
    ) -> None:
        if not terminator:
            raise ValueError("a line transport needs a terminator")
        self.peer = peer
        self.terminator = terminator
        self._wire = _Wire(name, timeout_ms, lock)
        self.control_lines: dict[str, bool] = {}
        self._on_control_line = on_control_line

    @property
    def closed(self) -> bool:
        return self._wire.closed

    def ensure_open(self) -> None:
        if self._wire.closed or self.opens == 0:
            self.opens += 1
            self._wire.closed = False

    def request(self, line: str) -> str:
        self.ensure_open()
        reply = self._wire.call(repr(line), lambda: self.peer(line))
        if reply is None:
            raise LinkLost(self._wire.no_reply(repr(line)))
        reply = reply.split(self.terminator, 1)[0]
        if not reply.isascii():
            raise ProtocolError(f"reply to {line!r} is not ASCII: {reply.encode()!r}")
        return reply

    def set_control_line(self, name: str, asserted: bool) -> None:
        if name not in CONTROL_LINES:
            raise ValueError(f"unknown control line {name}")

        def drive() -> None:
            self.control_lines[name] = asserted
            if self._on_control_line is not None:
                self._on_control_line(name, asserted)

        self._wire.call(f"{name} {'on' if asserted else 'off'}", drive)

    def close(self) -> None:
        self._wire.closed = True


class VirtualRegisterTransport(RegisterTransport):
    """Holding registers and coils of an in-process register device.

    A read's answer is checked as ``modbus_reply`` checks a frame: exactly ``count`` words,
    each a 16-bit word, or it is a ``ProtocolError``, never data.
    """

    def __init__(
        self,
        peer: RegisterPeer,
        *,
        timeout_ms: float = 100.0,
        name: str = "virtual register device",
        lock: threading.Lock | None = None,
    ) -> None:
        self.peer = peer
        self._wire = _Wire(name, timeout_ms, lock)

    @property
    def closed(self) -> bool:
        return self._wire.closed

    def ensure_open(self) -> None:
        if self._wire.closed or self.opens == 0:
            self.opens += 1
            self._wire.closed = False

    def _transact(self, what: str, fn: Callable[[], T]) -> T:
        self.ensure_open()
        try:
            return self._wire.call(what, fn)
        except ModbusRefusal as e:
            raise DeviceRejected(what, f"Modbus exception {e.code}") from e

    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]:
        bits = table in ("coil", "discrete_input")
        noun = {"holding": "registers", "input": "input registers"}.get(
            table, table.replace("_", " ") + "s"
        )
        what = f"read {count} {noun} at {address}"
        if table == "holding":
            words = list(self._transact(what, lambda: self.peer.read_registers(address, count)))
        else:
            words = list(self._transact(what, lambda: self.peer.read_table(table, address, count)))
        if len(words) != count:
            raise ProtocolError(
                f"{what} at {self._wire.name}: {len(words)} {noun} in the reply, expected {count}"
            )
        top = 1 if bits else WORD_MAX
        bad = [w for w in words if not (isinstance(w, int) and 0 <= w <= top)]
        if bad:
            kind = "bit" if bits else "16-bit word"
            raise ProtocolError(f"{what} at {self._wire.name}: {bad[0]!r} is not a {kind}")
        return words

    def write_registers(self, address: int, words: list[int]) -> None:
        if not words or any(not 0 <= w <= WORD_MAX for w in words):
            raise ValueError(f"{words} do not fit registers")  # as pymodbus refuses to send them
        what = f"write {len(words)} registers at {address}"
        self._transact(what, lambda: self.peer.write_registers(address, list(words)))

    def write_register(self, address: int, raw: int) -> None:
        if not 0 <= raw <= WORD_MAX:
            raise ValueError(f"{raw} does not fit a register")  # as pymodbus refuses to send it
        what = f"write register {address}"
        self._transact(what, lambda: self.peer.write_register(address, raw))

    def write_coil(self, address: int, value: bool) -> None:
        what = f"write coil {address}"
        self._transact(what, lambda: self.peer.write_coil(address, value))

    def close(self) -> None:
        self._wire.closed = True


FramePeer = Callable[[bytes], bytes | None]
"""A binary-framed device: the request frame in, its reply bytes out; None: no reply."""


class VirtualFrameTransport(FrameTransport):
    """Binary frames to an in-process device. The reply bytes are returned as the device
    gave them, checked only as the serial transport checks them (the start byte, the length
    its length byte says): the driver checks the rest."""

    def __init__(
        self,
        peer: FramePeer,
        proto: BinaryFrameProtocol,
        *,
        timeout_ms: float = 100.0,
        name: str = "virtual framed device",
        lock: threading.Lock | None = None,
    ) -> None:
        self.peer = peer
        self.proto = proto
        self._wire = _Wire(name, timeout_ms, lock)

    def ensure_open(self) -> None:
        if self._wire.closed or self.opens == 0:
            self.opens += 1
            self._wire.closed = False

    def request(self, frame: bytes) -> bytes:
        self.ensure_open()
        what = f"frame {frame[:8].hex(' ')}"
        reply = self._wire.call(what, lambda: self.peer(frame))
        if not reply:
            raise LinkLost(self._wire.no_reply(what))
        if reply[0] != self.proto.start_byte:
            raise ProtocolError(f"reply to {what} starts with 0x{reply[0]:02X}: garbage")
        if len(reply) < 2 or len(reply) < 2 + reply[1] + self.proto.checksum_bytes:
            raise ProtocolError(f"short reply to {what}: {reply[:16].hex(' ')}")
        return reply[: 2 + reply[1] + self.proto.checksum_bytes]

    def close(self) -> None:
        self._wire.closed = True


class RegisterMap:
    """A register device held in memory, strict like a real one.

    ``registers`` maps each address the device has to its raw word (holding registers);
    ``inputs`` its input registers, ``discrete_inputs`` its discrete inputs (address to bit);
    ``coils`` lists its coils. A read or write outside them is exception 02 (illegal address).
    Input registers and discrete inputs are read-only, as in Modbus. ``answering``
    False makes it silent (a device unplugged). Every transaction is recorded, so a test
    sees what reached the device whichever transport carried it.
    """

    def __init__(
        self,
        registers: dict[int, int] | None = None,
        coils: Iterable[int] = (),
        *,
        inputs: dict[int, int] | None = None,
        discrete_inputs: dict[int, bool] | None = None,
    ) -> None:
        self.registers = dict(registers or {})
        self.inputs = dict(inputs or {})
        self.discrete_inputs = dict(discrete_inputs or {})
        self.coils: dict[int, bool] = dict.fromkeys(coils, False)
        self.answering = True
        self.reads: list[tuple[int, int]] = []  # holding registers
        self.table_reads: list[tuple[str, int, int]] = []  # every read, with its table
        self.writes: list[tuple[int, int]] = []
        self.coil_writes: list[tuple[int, bool]] = []

    def _answer(self) -> None:
        if not self.answering:
            raise NoAnswer

    def read_registers(self, address: int, count: int) -> list[int]:
        self._answer()
        self.reads.append((address, count))
        return self.read_table("holding", address, count)

    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]:
        self._answer()
        self.table_reads.append((table, address, count))
        tables: dict[str, dict[int, int] | dict[int, bool]] = {
            "holding": self.registers,
            "input": self.inputs,
            "coil": self.coils,
            "discrete_input": self.discrete_inputs,
        }
        source = tables[table]
        wanted = range(address, address + count)
        missing = [a for a in wanted if a not in source]
        if missing:
            raise ModbusRefusal(ILLEGAL_ADDRESS, f"no {table} at {missing[0]}")
        return [int(source[a]) for a in wanted]

    def write_registers(self, address: int, words: list[int]) -> None:
        self._answer()
        missing = [a for a in range(address, address + len(words)) if a not in self.registers]
        if missing:
            raise ModbusRefusal(ILLEGAL_ADDRESS, f"no register at {missing[0]}")
        for i, word in enumerate(words):
            self.writes.append((address + i, word))
            self.registers[address + i] = word

    def write_register(self, address: int, raw: int) -> None:
        self._answer()
        if address not in self.registers:
            raise ModbusRefusal(ILLEGAL_ADDRESS, f"no register at {address}")
        self.writes.append((address, raw))
        self.registers[address] = raw

    def write_coil(self, address: int, value: bool) -> None:
        self._answer()
        if address not in self.coils:
            raise ModbusRefusal(ILLEGAL_ADDRESS, f"no coil at {address}")
        self.coil_writes.append((address, value))
        self.coils[address] = value


class VirtualTransports:
    """A ``TransportFactory`` that wires each device of a setup to an in-process peer.

    The profile's timeout of each device is kept (its reaction-time budget is computed from
    it); its address is ignored. ``lock``: one lock for every device, for peers that share
    state (see the module's note on threads); by default each device has its own. ``made``
    holds each transport built, by device, for a test to look at.
    """

    def __init__(
        self,
        *,
        laser: LinePeer,
        sensor: RegisterPeer,
        cooler: RegisterPeer,
        interlock: RegisterPeer | None = None,
        laser_registers: RegisterPeer | None = None,
        laser_frames: FramePeer | None = None,
        on_control_line: Callable[[str, bool], None] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.lock = lock
        self._laser = laser
        self._registers: dict[Dev, RegisterPeer | None] = {
            Dev.SENSOR: sensor,
            Dev.COOLER: cooler,
            Dev.INTERLOCK: interlock,
            Dev.LASER: laser_registers,
        }
        self._laser_frames = laser_frames
        self._on_control_line = on_control_line
        self.made: dict[
            Dev, VirtualLineTransport | VirtualRegisterTransport | VirtualFrameTransport
        ] = {}

    def line(self, device: Dev, cfg: SerialTransport, terminator: str) -> VirtualLineTransport:
        if device is not Dev.LASER:
            raise ValueError(f"no virtual line device for the {device.name.lower()}")
        made = VirtualLineTransport(
            self._laser,
            terminator=terminator,
            timeout_ms=cfg.timeout_ms,
            name="virtual laser",
            lock=self.lock,
            on_control_line=self._on_control_line,
        )
        self.made[device] = made
        return made

    def registers(
        self, device: Dev, cfg: ModbusTcpTransport | ModbusRtuTransport
    ) -> VirtualRegisterTransport:
        peer = self._registers.get(device)
        if peer is None:
            raise ValueError(f"no virtual register device for the {device.name.lower()}")
        made = VirtualRegisterTransport(
            peer, timeout_ms=cfg.timeout_ms, name=f"virtual {device.name.lower()}", lock=self.lock
        )
        self.made[device] = made
        return made

    def frames(
        self, device: Dev, cfg: SerialTransport, proto: BinaryFrameProtocol
    ) -> VirtualFrameTransport:
        if device is not Dev.LASER or self._laser_frames is None:
            raise ValueError(f"no virtual framed device for the {device.name.lower()}")
        made = VirtualFrameTransport(
            self._laser_frames, proto, timeout_ms=cfg.timeout_ms, name="virtual laser",
            lock=self.lock,
        )  # fmt: skip
        self.made[device] = made
        return made
