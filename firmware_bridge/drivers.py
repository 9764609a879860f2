"""Drivers built from a profile: wire data in, named values with units out.

No limits and no decisions here: the interlock decides. A driver only knows how a device
of its profile speaks.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from device_profiles.laser_state import LaserState
from device_profiles.registers import WordLayout, decode, encode, join, split
from device_profiles.schema import (
    LASER_SETTINGS,
    Command,
    Laser,
    LaserProtocol,
    ModbusCoilOutput,
    ModbusDevice,
    Register,
    SerialLineOutput,
)
from firmware_bridge.errors import DeviceRejected, ProtocolError
from firmware_bridge.transport import LineTransport, RegisterTransport


@dataclass(frozen=True)
class LaserStatus:
    state: LaserState
    pulses: int
    settings: dict[str, float]
    # The last pulse's delivered energy, when the profile's status reports it (its own
    # energy monitor); None otherwise.
    delivered_j: float | None = None


class LaserDriver(ABC):
    """A laser's remote interface, as its profile describes it: what the bridge may ask.

    Every kind (``serial_commands``: `LineLaserDriver`; ``modbus_registers`` and
    ``binary_frames``: `firmware_bridge.laser_drivers`) keeps the same promises: the identity
    is checked whenever the port or connection was (re)opened, before any other request; a
    reply that does not fit is a ``ProtocolError``, silence is ``LinkLost``, a refusal is
    ``DeviceRejected``; ``stop`` returns only once the laser confirmed it.
    """

    profile: Laser
    # What the laser answered to its identify command at the last (re)connection (its
    # model and serial number, as the profile's reply pattern accepts them); None before
    # that, or for a laser without one. A calibration certificate records it, and arming
    # compares it with the certificate's (monitor.calibration.basis).
    identity: str | None = None

    @abstractmethod
    def status(self) -> LaserStatus: ...

    @abstractmethod
    def set(self, name: str, value: float) -> float:
        """Set one setting; returns the value the laser confirmed."""

    @abstractmethod
    def arm(self) -> None: ...

    @abstractmethod
    def standby(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def heartbeat(self) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Release the port or connection (the next request opens it again)."""

    def service_on(self) -> None:
        raise ValueError(f"laser {self.profile.model!r} has no service mode in its profile")

    def service_off(self) -> None:
        raise ValueError(f"laser {self.profile.model!r} has no service mode in its profile")

    def service_shot(self) -> None:
        raise ValueError(f"laser {self.profile.model!r} has no service mode in its profile")


class LineLaserDriver(LaserDriver):
    """The laser's serial command set (``serial_commands``), as its profile describes it."""

    def __init__(self, profile: Laser, transport: LineTransport) -> None:
        if not isinstance(profile.protocol, LaserProtocol):
            raise ValueError(f"laser {profile.model} does not speak serial command lines")
        self.profile = profile
        self.transport = transport
        self.proto = proto = profile.protocol
        self._status_re = re.compile(proto.status.reply)
        self._error_re = re.compile(proto.error_reply)
        self._reply_re = {
            name: re.compile(cmd.reply)
            for name, cmd in [
                ("arm", proto.arm),
                ("standby", proto.standby),
                ("stop", proto.stop),
                ("heartbeat", proto.heartbeat),
            ]
        }
        self._set_re = {name: re.compile(cmd.reply) for name, cmd in proto.set.items()}
        self._identified_at = -1  # the transport's ``opens`` when the laser was identified

    def _identify(self) -> None:
        """Whenever the port was opened (again), ask who answers before anything else: after
        a lost link an adapter may come back under the same path leading to another device."""
        ident = self.proto.identify
        if ident is None:
            return
        self.transport.ensure_open()
        if self.transport.opens == self._identified_at:
            return
        reply = self.transport.request(ident.send)
        if re.fullmatch(ident.reply, reply) is None:
            raise ProtocolError(
                f"the device on the laser's port answers {reply[:80]!r} to {ident.send!r}, "
                f"not the profile's laser ({ident.reply}): refusing to talk to it"
            )
        self.identity = reply
        self._identified_at = self.transport.opens

    def _transact(self, line: str, pattern: re.Pattern[str]) -> re.Match[str]:
        self._identify()
        reply = self.transport.request(line)
        limit = self.proto.max_reply_bytes
        if len(reply) > limit:
            # A flood is no reply: refused in bounded words, whatever the device sent.
            # Kept as evidence as the session log keeps any long text: a prefix, the size
            # and the hash of the whole reply.
            raw = reply.encode("utf-8", "surrogatepass")
            raise ProtocolError(
                f"reply to {line!r} is longer than the profile's max_reply_bytes {limit}: "
                f"{reply[:80]!r}… ({len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()})"
            )
        m = pattern.fullmatch(reply)
        if m is not None:
            return m
        err = self._error_re.fullmatch(reply)
        if err is not None:
            raise DeviceRejected(line, err.groupdict().get("reason") or reply)
        raise ProtocolError(f"unexpected reply to {line!r}: {reply!r}")

    def _simple(self, name: str, cmd: Command) -> None:
        self._transact(cmd.send, self._reply_re[name])

    def status(self) -> LaserStatus:
        m = self._transact(self.proto.status.send, self._status_re)
        try:
            state = LaserState(m["state"])
        except ValueError as e:
            raise ProtocolError(f"unknown laser state {m['state']!r} in {m.group(0)!r}") from e
        delivered = m.groupdict().get("delivered_j")
        try:
            return LaserStatus(
                state=state,
                pulses=int(m["pulses"]),
                settings={name: float(m[name]) for name in LASER_SETTINGS},
                delivered_j=None if delivered is None else float(delivered),
            )
        except ValueError as e:
            raise ProtocolError(f"status reply has a malformed number: {m.group(0)!r}") from e

    def set(self, name: str, value: float) -> float:
        """Set one setting; returns the value the laser confirmed."""
        cmd = self.proto.set[name]
        m = self._transact(cmd.send.format(value=value), self._set_re[name])
        try:
            return float(m["value"])
        except (IndexError, ValueError) as e:
            raise ProtocolError(f"confirmation of {name} is malformed: {m.group(0)!r}") from e

    def arm(self) -> None:
        self._simple("arm", self.proto.arm)

    def standby(self) -> None:
        self._simple("standby", self.proto.standby)

    def stop(self) -> None:
        self._simple("stop", self.proto.stop)

    def heartbeat(self) -> None:
        self._simple("heartbeat", self.proto.heartbeat)

    # A service mode for calibration (optional in the profile): test shots, no session.

    def close(self) -> None:
        self.transport.close()

    def _service(self, name: str) -> None:
        cmd = getattr(self.proto, name)
        if cmd is None:
            raise ValueError(f"laser {self.profile.model!r} has no service mode in its profile")
        self._transact(cmd.send, re.compile(cmd.reply))

    def service_on(self) -> None:
        self._service("service_on")

    def service_off(self) -> None:
        self._service("service_off")

    def service_shot(self) -> None:
        """One test shot at the current settings (in service mode)."""
        self._service("service_shot")


@dataclass(frozen=True)
class Reading:
    """One poll of a register device: every register's value, and which ones are faults."""

    values: dict[str, float]
    faults: dict[str, str]  # register name -> what the device reported instead of a value


class RegisterDevice:
    """A Modbus device whose register map is its profile.

    A poll reads the profile's blocks (``ModbusDevice.read_blocks``: as few requests as the
    map allows, each with the transport's own deadline) and decodes every register with the
    one codec, in the device's word and byte order. A write goes only to a register marked
    writable, in one transaction however many words it takes, and is read back: a device
    that acknowledged a write but holds another value is a ``ProtocolError``.
    """

    def __init__(self, profile: ModbusDevice, transport: RegisterTransport) -> None:
        self.profile = profile
        self.transport = transport
        self.blocks = profile.read_blocks
        self.layout = WordLayout.of(profile)
        self._regs = list(profile.registers.items())

    def read(self) -> Reading:
        got: dict[tuple[str, int], int] = {}
        for block in self.blocks:
            words = self.transport.read_table(block.table, block.first, block.count)
            got.update(((block.table, block.first + i), w) for i, w in enumerate(words))
        decoded = {name: decode(reg, self._raw(reg, got)) for name, reg in self._regs}
        return Reading(
            values={name: d.value for name, d in decoded.items()},
            faults={name: d.fault for name, d in decoded.items() if d.fault is not None},
        )

    def _raw(self, reg: Register, got: dict[tuple[str, int], int]) -> int:
        words = [got[(reg.table, reg.address + i)] for i in range(reg.words)]
        return join(reg, words, self.layout)

    def write(self, name: str, value: float) -> None:
        reg = self.profile.registers[name]
        if not reg.writable:
            raise ValueError(f"register {name} is not writable in profile {self.profile.model}")
        raw = encode(reg, value)
        words = split(reg, raw, self.layout)
        if reg.table == "coil":
            self.transport.write_coil(reg.address, bool(raw))
        elif len(words) == 1:
            self.transport.write_register(reg.address, words[0])
        else:
            self.transport.write_registers(reg.address, words)
        back = self.transport.read_table(reg.table, reg.address, reg.words)
        if back != words:
            raise ProtocolError(f"{name} at {self.profile.model}: wrote {words}, read back {back}")


class InterlockOutputDriver:
    """The hardware halt path: permit (True) energises the relay in the remote-interlock loop."""

    def __init__(
        self,
        profile: ModbusCoilOutput | SerialLineOutput,
        *,
        registers: RegisterTransport | None = None,
        line: LineTransport | None = None,
    ) -> None:
        self.profile = profile
        self._registers = registers
        self._line = line
        if isinstance(profile, ModbusCoilOutput) and registers is None:
            raise ValueError("a Modbus coil output needs a register transport")
        if isinstance(profile, SerialLineOutput) and line is None:
            raise ValueError("a serial-line output needs the laser's line transport")

    def set_permit(self, permit: bool) -> None:
        if isinstance(self.profile, ModbusCoilOutput):
            assert self._registers is not None
            self._registers.write_coil(self.profile.coil, permit)
        else:
            assert self._line is not None
            self._line.set_control_line(self.profile.line, permit)

    def close(self) -> None:
        """Release a Modbus relay's connection; a serial line belongs to the laser's port."""
        if self._registers is not None:
            self._registers.close()
