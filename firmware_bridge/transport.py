"""Transports move bytes and registers; they know nothing of lasers or limits.

Two small interfaces, one per wire family, each with one owner thread (neither pyserial
ports nor pymodbus clients are thread-safe):

- ``LineTransport``: a request line out, one reply line back (the laser's serial commands);
- ``RegisterTransport``: read a block of one Modbus table (holding or input registers, coils,
  discrete inputs), write a register, several registers or a coil.

Every failure of the wire becomes ``LinkLost`` (or ``ProtocolError`` for a garbled answer);
an exception reply from a Modbus device becomes ``DeviceRejected``. A Modbus reply is used
only after ``modbus_reply`` has checked that it answers the request (unit id, function code,
byte count, write echo); one that does not is a ``ProtocolError``, never data.

The bridge does not build its transports itself: a ``TransportFactory`` does, by default
``WireTransports`` (the real wires the profile names). ``firmware_bridge.virtual`` has the
in-process ones, the test double that behaves like these.
"""

from __future__ import annotations

import contextlib
import termios
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Protocol

import serial
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from device_profiles.schema import (
    BinaryFrameProtocol,
    ModbusRtuTransport,
    ModbusTcpTransport,
    RegisterTable,
    SerialTransport,
)
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.live import Dev
from firmware_bridge.modbus_reply import (
    READ_COILS,
    READ_DISCRETE_INPUTS,
    READ_HOLDING_REGISTERS,
    READ_INPUT_REGISTERS,
    REPLY_CLASSES,
    WRITE_MULTIPLE_REGISTERS,
    WRITE_SINGLE_COIL,
    WRITE_SINGLE_REGISTER,
    check_bits,
    check_coil_echo,
    check_header,
    check_read,
    check_register_echo,
    check_registers_echo,
)
from firmware_bridge.rtu_client import FramedSerialClient


def open_serial(cfg: SerialTransport) -> serial.Serial:
    """The profile's serial port, opened; ``LinkLost`` if it cannot be."""
    try:
        return serial.serial_for_url(
            cfg.port,
            baudrate=cfg.baudrate,
            bytesize=cfg.bytesize,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            timeout=cfg.timeout_ms / 1000.0,
            write_timeout=cfg.timeout_ms / 1000.0,
        )
    except (serial.SerialException, OSError, termios.error, ValueError) as e:
        raise LinkLost(f"cannot open {cfg.port}: {e}") from e


class LineTransport(ABC):
    """A request/reply line protocol. ``request`` returns the reply without terminator.

    ``opens`` counts how often the port was opened: a driver that must know who answers
    (the laser's identity) asks again whenever it moved."""

    opens: int = 0

    def ensure_open(self) -> None:  # noqa: B027 - a transport with no port has nothing to open
        """Open the port now if it is closed (the next request would open it anyway)."""

    @abstractmethod
    def request(self, line: str) -> str: ...

    @abstractmethod
    def set_control_line(self, name: str, asserted: bool) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class SerialLineTransport(LineTransport):
    """Lines over pyserial. Opens lazily and reopens after a lost link."""

    def __init__(self, cfg: SerialTransport, terminator: str) -> None:
        self._cfg = cfg
        self._term = terminator.encode()
        self._port: serial.Serial | None = None
        self._buf = bytearray()

    def _open(self) -> serial.Serial:
        if self._port is None:
            self._port = open_serial(self._cfg)
            self._buf.clear()
            self.opens += 1
        return self._port

    def ensure_open(self) -> None:
        self._open()

    def request(self, line: str) -> str:
        port = self._open()
        deadline = time.monotonic() + self._cfg.timeout_ms / 1000.0
        try:
            port.reset_input_buffer()
            self._buf.clear()
            port.write(line.encode("ascii") + self._term)
            while True:
                idx = self._buf.find(self._term)
                if idx >= 0:
                    raw = bytes(self._buf[:idx])
                    del self._buf[: idx + len(self._term)]
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkLost(f"no reply to {line!r} within {self._cfg.timeout_ms:g} ms")
                port.timeout = remaining
                chunk = port.read(max(1, port.in_waiting))
                self._buf.extend(chunk)
        except (serial.SerialException, OSError, termios.error) as e:
            self.close()
            raise LinkLost(f"serial link {self._cfg.port} failed: {e}") from e
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as e:
            raise ProtocolError(f"reply to {line!r} is not ASCII: {raw!r}") from e

    def set_control_line(self, name: str, asserted: bool) -> None:
        port = self._open()
        try:
            if name == "DTR":
                port.dtr = asserted
            elif name == "RTS":
                port.rts = asserted
            else:
                raise ValueError(f"unknown control line {name}")
        except (serial.SerialException, OSError, termios.error) as e:
            raise LinkLost(f"cannot drive {name} on {self._cfg.port}: {e}") from e

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                port.close()  # closing a dead port: nothing left to release


class FrameTransport(ABC):
    """A binary request frame out, one whole reply frame back (a ``binary_frames`` laser).

    The transport knows only where a frame starts and how long it is (start byte, length
    byte, checksum size, from the profile); the driver checks the checksum and the content.
    No reply at all is ``LinkLost``; a reply that does not start with the start byte, or
    stops short of its length, is a ``ProtocolError``. ``opens`` as on ``LineTransport``."""

    opens: int = 0

    def ensure_open(self) -> None:  # noqa: B027 - a transport with no port has nothing to open
        """Open the port now if it is closed."""

    @abstractmethod
    def request(self, frame: bytes) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...


class SerialFrameTransport(FrameTransport):
    """Binary frames over pyserial. Opens lazily and reopens after a lost link."""

    def __init__(self, cfg: SerialTransport, proto: BinaryFrameProtocol) -> None:
        self._cfg = cfg
        self._proto = proto
        self._port: serial.Serial | None = None

    def _open(self) -> serial.Serial:
        if self._port is None:
            self._port = open_serial(self._cfg)
            self.opens += 1
        return self._port

    def ensure_open(self) -> None:
        self._open()

    def _read(self, port: serial.Serial, n: int, deadline: float) -> bytes:
        got = bytearray()
        while len(got) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            port.timeout = remaining
            got += port.read(n - len(got))
        return bytes(got)

    def request(self, frame: bytes) -> bytes:
        port = self._open()
        what = f"frame {frame[:8].hex(' ')}"
        deadline = time.monotonic() + self._cfg.timeout_ms / 1000.0
        try:
            port.reset_input_buffer()
            port.write(frame)
            head = self._read(port, 2, deadline)
            if not head:
                raise LinkLost(f"no reply to {what} within {self._cfg.timeout_ms:g} ms")
            if head[0] != self._proto.start_byte:
                raise ProtocolError(
                    f"reply to {what} starts with 0x{head[0]:02X}, not the start byte "
                    f"0x{self._proto.start_byte:02X}: garbage on the line"
                )
            if len(head) < 2 or head[1] < 1:
                raise ProtocolError(f"short reply to {what}: {head.hex(' ')}")
            rest = head[1] + self._proto.checksum_bytes
            body = self._read(port, rest, deadline)
        except (serial.SerialException, OSError, termios.error) as e:
            self.close()
            raise LinkLost(f"serial link {self._cfg.port} failed: {e}") from e
        if len(body) < rest:
            raise ProtocolError(
                f"short reply to {what}: {2 + len(body)} of {2 + rest} bytes "
                f"({(head + body)[:16].hex(' ')}) within {self._cfg.timeout_ms:g} ms"
            )
        return head + body

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                port.close()  # closing a dead port: nothing left to release


class RegisterTransport(ABC):
    """One Modbus device's tables. A read returns 16-bit words, or bits as 0 and 1.

    ``opens`` counts the connections made: a driver that must know who answers (a Modbus
    laser's identity) asks again whenever it moved."""

    opens: int = 0

    def ensure_open(self) -> None:  # noqa: B027 - a transport with no port has nothing to open
        """Connect now if not connected (the next request would connect anyway)."""

    def read_registers(self, address: int, count: int) -> list[int]:
        """Holding registers (function code 3)."""
        return self.read_table("holding", address, count)

    @abstractmethod
    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]: ...

    @abstractmethod
    def write_register(self, address: int, raw: int) -> None: ...

    @abstractmethod
    def write_registers(self, address: int, words: list[int]) -> None:
        """Several holding registers in one transaction (function code 16): a 32-bit value's
        two words land together, never half old and half new."""

    @abstractmethod
    def write_coil(self, address: int, value: bool) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class ModbusRegisterTransport(RegisterTransport):
    """A Modbus device's tables over a pymodbus sync client (TCP or RTU).

    On RTU the client is `FramedSerialClient`, which reads a reply by its frame length
    instead of pymodbus' polling of ``in_waiting`` (`firmware_bridge.rtu_client`)."""

    def __init__(
        self, cfg: ModbusTcpTransport | ModbusRtuTransport, line: SharedRtuLine | None = None
    ) -> None:
        self._cfg = cfg
        timeout_s = cfg.timeout_ms / 1000.0
        self._client: Any
        # One request at a time on the wire: the line's lock when devices share an RTU port
        # (each worker thread then waits for the other's transaction), else this one's own.
        self._lock = line.lock if line is not None else threading.Lock()
        if line is not None:
            self._where = f"{cfg.port} unit {cfg.device_id}"
            self._client = line.client
        elif isinstance(cfg, ModbusTcpTransport):
            self._where = f"{cfg.host}:{cfg.port}"
            # retries=0: a missed answer is lost communication, never silently retried.
            self._client = ModbusTcpClient(
                cfg.host, port=cfg.port, timeout=timeout_s, retries=0, reconnect_delay=0
            )
        else:
            self._where = cfg.port
            self._client = FramedSerialClient(
                cfg.port,
                baudrate=cfg.baudrate,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        self._device_id = cfg.device_id
        if line is not None:
            return  # the line's client has our reply classes already
        # Replies are decoded by our classes, which keep what pymodbus' own would discard
        # (byte count, frame length, the raw coil echo) so that `modbus_reply` can check it.
        for reply_class in REPLY_CLASSES:
            self._client.register(reply_class)

    def ensure_open(self) -> None:
        if not self._client.connected:
            if not self._client.connect():
                raise LinkLost(f"cannot connect to {self._where}")
            self.opens += 1

    def _call(self, what: str, function_code: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One transaction; the reply is returned only once it is known to answer this request."""
        where = f"{what} at {self._where}"
        with self._lock:
            try:
                self.ensure_open()
                reply = fn(*args, device_id=self._device_id, **kwargs)
            except ModbusException as e:
                self._client.close()
                raise LinkLost(f"{where}: {e}") from e
            except OSError as e:
                self._client.close()
                raise LinkLost(f"{where}: {e}") from e
        with self._garbled():
            check_header(where, reply, function_code, self._device_id)
        if reply.isError():
            raise DeviceRejected(what, f"Modbus exception {getattr(reply, 'exception_code', '?')}")
        return reply

    @contextlib.contextmanager
    def _garbled(self) -> Iterator[None]:
        """A reply that does not fit its request is raised as ``ProtocolError``.

        Bytes that came after a garbled reply cannot be trusted to start the next one. On TCP
        the connection is dropped, so the next transaction starts on a fresh one. On a serial
        line pymodbus discards whatever is waiting before it sends the next request, and the
        RTU CRC guards the rest, so the port stays open.
        """
        try:
            yield
        except ProtocolError:
            if isinstance(self._cfg, ModbusTcpTransport):
                self._client.close()
            raise

    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]:
        code, fn, noun = {
            "holding": (READ_HOLDING_REGISTERS, self._client.read_holding_registers, "registers"),
            "input": (READ_INPUT_REGISTERS, self._client.read_input_registers, "input registers"),
            "coil": (READ_COILS, self._client.read_coils, "coils"),
            "discrete_input": (
                READ_DISCRETE_INPUTS,
                self._client.read_discrete_inputs,
                "discrete inputs",
            ),
        }[table]
        what = f"read {count} {noun} at {address}"
        reply = self._call(what, code, fn, address, count=count)
        with self._garbled():
            if table in ("coil", "discrete_input"):
                return check_bits(f"{what} at {self._where}", reply, count)
            return check_read(f"{what} at {self._where}", reply, count)

    def write_registers(self, address: int, words: list[int]) -> None:
        what = f"write {len(words)} registers at {address}"
        reply = self._call(
            what, WRITE_MULTIPLE_REGISTERS, self._client.write_registers, address, list(words)
        )
        with self._garbled():
            check_registers_echo(f"{what} at {self._where}", reply, address, len(words))

    def write_register(self, address: int, raw: int) -> None:
        what = f"write register {address}"
        reply = self._call(what, WRITE_SINGLE_REGISTER, self._client.write_register, address, raw)
        with self._garbled():
            check_register_echo(f"{what} at {self._where}", reply, address, raw)

    def write_coil(self, address: int, value: bool) -> None:
        what = f"write coil {address}"
        reply = self._call(what, WRITE_SINGLE_COIL, self._client.write_coil, address, value)
        with self._garbled():
            check_coil_echo(f"{what} at {self._where}", reply, address, value)

    def close(self) -> None:
        with self._lock:
            self._client.close()


class SharedRtuLine:
    """One RTU serial port that several devices (each its own unit id) share: one client,
    one lock, so that one request is on the wire at a time, as RS-485 allows."""

    def __init__(self, cfg: ModbusRtuTransport) -> None:
        self.port = cfg.port
        self.lock = threading.Lock()
        self.client = FramedSerialClient(
            cfg.port,
            baudrate=cfg.baudrate,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            timeout=cfg.timeout_ms / 1000.0,
            retries=0,
            reconnect_delay=0,
        )
        for reply_class in REPLY_CLASSES:
            self.client.register(reply_class)


class TransportFactory(Protocol):
    """Builds the transport of each device of a setup, from its part of the profile."""

    def line(self, device: Dev, cfg: SerialTransport, terminator: str) -> LineTransport: ...

    def registers(
        self, device: Dev, cfg: ModbusTcpTransport | ModbusRtuTransport
    ) -> RegisterTransport: ...

    def frames(
        self, device: Dev, cfg: SerialTransport, proto: BinaryFrameProtocol
    ) -> FrameTransport:
        """A binary-framed device's port (the ``binary_frames`` laser)."""
        ...


class WireTransports:
    """The real wires: pyserial for a serial line, pymodbus for Modbus TCP and RTU.

    Devices whose profiles name the same RTU port share it (`SharedRtuLine`): the setup has
    checked that they agree on the line's settings and differ in unit id."""

    def __init__(self) -> None:
        self._rtu_lines: dict[str, SharedRtuLine] = {}

    def shared_line(self, cfg: ModbusRtuTransport) -> SharedRtuLine:
        if cfg.port not in self._rtu_lines:
            self._rtu_lines[cfg.port] = SharedRtuLine(cfg)
        return self._rtu_lines[cfg.port]

    def line(self, device: Dev, cfg: SerialTransport, terminator: str) -> SerialLineTransport:
        del device  # the profile's transport says all there is to say
        return SerialLineTransport(cfg, terminator)

    def registers(
        self, device: Dev, cfg: ModbusTcpTransport | ModbusRtuTransport
    ) -> ModbusRegisterTransport:
        del device
        if isinstance(cfg, ModbusRtuTransport):
            return ModbusRegisterTransport(cfg, self.shared_line(cfg))
        return ModbusRegisterTransport(cfg)

    def frames(
        self, device: Dev, cfg: SerialTransport, proto: BinaryFrameProtocol
    ) -> SerialFrameTransport:
        del device
        return SerialFrameTransport(cfg, proto)
