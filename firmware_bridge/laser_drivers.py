"""Lasers that are not line-based (issue 14 item 4): Modbus registers, binary frames.

Both keep the promises of ``LaserDriver``: the identity is checked on every new connection
before any other request, anything that does not fit the profile is a ``ProtocolError``
(a halt), and ``stop`` returns only once the laser *reads* stopped.

- `ModbusLaserDriver`: a command is a coil written 1 and read back (the transport also
  checks the write's echo); the state is then read, so a laser that acknowledges STOP and
  keeps READY (or its emission bit set) is a ``ProtocolError``, retried by the halt path. A
  setting is written and read back: the read-back is the confirmed value. The heartbeat is
  a new count in the heartbeat register every period.
- `FrameLaserDriver`: each request is a frame; the reply must be a frame of the profile
  (start byte, length, checksum: ``device_profiles.frames``) with the command's reply byte,
  or the error reply with its reason.

`make_laser_driver` picks the driver by the profile's ``protocol.kind``.
"""

from __future__ import annotations

from device_profiles.frames import FrameError, build, pack, parse, unpack
from device_profiles.laser_state import LaserState
from device_profiles.registers import join
from device_profiles.schema import (
    LASER_SETTINGS,
    BinaryFrameProtocol,
    FrameCommand,
    FrameField,
    Laser,
    LaserProtocol,
    ModbusLaserProtocol,
    SerialTransport,
)
from firmware_bridge.drivers import LaserDriver, LaserStatus, LineLaserDriver, RegisterDevice
from firmware_bridge.errors import DeviceRejected, ProtocolError
from firmware_bridge.live import Dev
from firmware_bridge.transport import (
    FrameTransport,
    LineTransport,
    RegisterTransport,
    TransportFactory,
)


class ModbusLaserDriver(LaserDriver):
    """A laser whose remote interface is a Modbus register map (``modbus_registers``)."""

    def __init__(self, profile: Laser, transport: RegisterTransport) -> None:
        if not isinstance(profile.protocol, ModbusLaserProtocol):
            raise ValueError(f"laser {profile.model} is not a Modbus laser")
        self.profile = profile
        self.proto = profile.protocol
        self.transport = transport
        self.device = RegisterDevice(profile.modbus_device(), transport)
        self.status_device = RegisterDevice(profile.modbus_device("status"), transport)
        self.state_device = RegisterDevice(profile.modbus_device("state"), transport)
        self._identified_at = -1
        self._beat = 0

    def _identify(self) -> None:
        ident = self.proto.identify
        if ident is None:
            return
        self.transport.ensure_open()
        if self.transport.opens == self._identified_at:
            return
        reg = self.proto.registers[ident.name]
        words = self.transport.read_table(reg.table, reg.address, reg.words)
        got = join(reg, words, self.device.layout)
        if got != ident.value:
            raise ProtocolError(
                f"the device on the laser's connection holds 0x{got:X} in {ident.name}, "
                f"not the profile's laser (0x{ident.value:X}): refusing to talk to it"
            )
        self.identity = f"{ident.name}=0x{got:X}"
        self._identified_at = self.transport.opens

    def _status_of(self, values: dict[str, float], faults: dict[str, str]) -> LaserStatus:
        if faults:
            raise ProtocolError(f"laser status unreadable: {faults}")
        return LaserStatus(
            state=self._judge_state(values),
            pulses=int(values["pulses"]),
            settings={name: values[name] for name in LASER_SETTINGS},
            delivered_j=values.get("delivered_j"),
        )

    def status(self) -> LaserStatus:
        self._identify()
        reading = self.status_device.read()
        return self._status_of(reading.values, reading.faults)

    def _state(self) -> LaserState:
        """The state alone (state register, fault bits, emission): what verifies a command."""
        reading = self.state_device.read()
        if reading.faults:
            raise ProtocolError(f"laser state unreadable: {reading.faults}")
        return self._judge_state(reading.values)

    def _judge_state(self, values: dict[str, float]) -> LaserState:
        code = int(values["state"])
        if code != values["state"] or code not in self.proto.states:
            raise ProtocolError(f"unknown laser state code {values['state']:g}")
        state = LaserState(self.proto.states[code])
        if values.get("status_word", 0.0) != 0.0:
            state = LaserState.FAULT
        if values.get("emission", 0.0) != 0.0:
            state = LaserState.FIRING  # it emits, whatever the state register says
        return state

    def _write(self, name: str, value: float) -> None:
        self._identify()
        try:
            self.device.write(name, value)
        except DeviceRejected as e:
            raise DeviceRejected(name, e.reason) from e
        except ValueError as e:  # the profile's range or type refuses it before the wire
            raise DeviceRejected(name, str(e)) from e

    def set(self, name: str, value: float) -> float:
        """Written and read back (``RegisterDevice.write``): the read-back is confirmed."""
        self._write(name, value)
        reg = self.proto.registers[name]
        words = self.transport.read_table(reg.table, reg.address, reg.words)
        return reg.value_of(join(reg, words, self.device.layout))

    def _command(self, name: str) -> LaserState:
        """The command coil written 1 and read back, then the state it left."""
        self._write(name, 1.0)
        return self._state()

    def arm(self) -> None:
        state = self._command("arm")
        if not state.can_emit:
            raise DeviceRejected("arm", f"the laser reads {state} after ARM")

    def standby(self) -> None:
        state = self._command("standby")
        if state.can_emit:
            raise ProtocolError(f"the laser reads {state} after STANDBY")

    def stop(self) -> None:
        state = self._command("stop")
        if state is not LaserState.STANDBY:
            raise ProtocolError(f"the laser acknowledged STOP but reads {state}")

    def heartbeat(self) -> None:
        self._beat = (self._beat + 1) % 0x8000
        self._write("heartbeat", float(self._beat))

    def close(self) -> None:
        self.transport.close()


class FrameLaserDriver(LaserDriver):
    """A serial laser that speaks binary frames (``binary_frames``)."""

    def __init__(self, profile: Laser, transport: FrameTransport) -> None:
        if not isinstance(profile.protocol, BinaryFrameProtocol):
            raise ValueError(f"laser {profile.model} does not speak binary frames")
        self.profile = profile
        self.proto = profile.protocol
        self.transport = transport
        self._identified_at = -1

    def _identify(self) -> None:
        cmd, identity = self.proto.identify, self.proto.identity
        if cmd is None or identity is None:
            return
        self.transport.ensure_open()
        if self.transport.opens == self._identified_at:
            return
        payload = self._exchange("identify", cmd, b"")
        if payload != identity.encode("ascii"):
            raise ProtocolError(
                f"the device on the laser's port identifies as {payload[:80]!r}, not the "
                f"profile's laser ({identity!r}): refusing to talk to it"
            )
        self.identity = identity
        self._identified_at = self.transport.opens

    def _exchange(self, what: str, cmd: FrameCommand, payload: bytes) -> bytes:
        reply = self.transport.request(build(self.proto, cmd.code, payload))
        try:
            code, body = parse(self.proto, reply)
        except FrameError as e:
            raise ProtocolError(f"reply to {what}: {e}") from e
        if code == cmd.reply:
            return body
        if code == self.proto.error_reply:
            reason = body.decode("ascii", errors="replace")[:120]
            raise DeviceRejected(what, reason)
        raise ProtocolError(f"reply to {what} has command 0x{code:02X}, not 0x{cmd.reply:02X}")

    def _transact(self, what: str, cmd: FrameCommand, payload: bytes = b"") -> bytes:
        self._identify()
        return self._exchange(what, cmd, payload)

    def status(self) -> LaserStatus:
        body = self._transact("status", self.proto.status)
        try:
            values = unpack(self.proto, self.proto.status_fields, body)
        except FrameError as e:
            raise ProtocolError(f"status reply: {e}") from e
        code = int(values["state"])
        if code != values["state"] or code not in self.proto.states:
            raise ProtocolError(f"unknown laser state code {values['state']:g}")
        return LaserStatus(
            state=LaserState(self.proto.states[code]),
            pulses=int(values["pulses"]),
            settings={name: values[name] for name in LASER_SETTINGS},
            delivered_j=values.get("delivered_j"),
        )

    def set(self, name: str, value: float) -> float:
        setter = self.proto.set[name]
        field = [FrameField(name="value", type=setter.type, scale=setter.scale)]
        try:
            payload = pack(self.proto, field, {"value": value})
        except ValueError as e:
            raise DeviceRejected(name, str(e)) from e
        body = self._transact(f"set {name}", setter, payload)
        try:
            return unpack(self.proto, field, body)["value"]
        except FrameError as e:
            raise ProtocolError(f"confirmation of {name}: {e}") from e

    def _simple(self, name: str) -> None:
        cmd: FrameCommand = getattr(self.proto, name)
        self._transact(name, cmd)

    def arm(self) -> None:
        self._simple("arm")

    def standby(self) -> None:
        self._simple("standby")

    def stop(self) -> None:
        self._simple("stop")

    def heartbeat(self) -> None:
        self._simple("heartbeat")

    def close(self) -> None:
        self.transport.close()


def make_laser_driver(
    laser: Laser, wires: TransportFactory
) -> tuple[LaserDriver, LineTransport | None]:
    """The laser's driver on its transport; the line transport too for a line laser (a
    serial_line interlock output drives a control line of that port)."""
    proto, transport = laser.protocol, laser.transport
    if isinstance(proto, LaserProtocol) and isinstance(transport, SerialTransport):
        line = wires.line(Dev.LASER, transport, proto.terminator)
        return LineLaserDriver(laser, line), line
    if isinstance(proto, BinaryFrameProtocol) and isinstance(transport, SerialTransport):
        return FrameLaserDriver(laser, wires.frames(Dev.LASER, transport, proto)), None
    if isinstance(proto, ModbusLaserProtocol) and not isinstance(transport, SerialTransport):
        return ModbusLaserDriver(laser, wires.registers(Dev.LASER, transport)), None
    raise ValueError(f"laser {laser.model}: {proto.kind} over {transport.kind} is not supported")
