"""The worst-case reaction time of a setup, computed from its profile.

From a real skin-temperature crossing to the laser's stop, each step at its worst:

1. the sensor's own response (``sensor.sensor_response_ms``);
2. the crossing lands just after a poll: a whole poll period, then the read transaction;
3. one interlock-loop cycle;
4. the halt route: the laser worker may be inside a transaction (a status poll) that must end
   first, then the stop transaction; the relay route likewise (a refresh in flight, then the
   coil write). Both routes must make it: the budget takes the slower.

A transaction's time is its wire time (request and reply bytes at the baud rate, 11-bit
characters and the t3.5 silences on Modbus RTU; nothing on TCP over a local network) plus
the device's worst-case answer time (``response_ms``). Ptys and loopback have no wire time:
this is the budget of the real wires the profile names.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.schema import (
    ModbusCoilOutput,
    ModbusDevice,
    ModbusRtuTransport,
    ModbusTcpTransport,
    SerialTransport,
    Setup,
)

MODBUS_TCP_NETWORK_MS = 0.5  # a switched local network, request and reply together


def char_bits(t: SerialTransport | ModbusRtuTransport) -> int:
    bytesize = t.bytesize if isinstance(t, SerialTransport) else 8
    return 1 + bytesize + (0 if t.parity == "N" else 1) + t.stopbits


def serial_ms(n_bytes: int, t: SerialTransport | ModbusRtuTransport) -> float:
    return n_bytes * char_bits(t) * 1000.0 / t.baudrate


def rtu_silence_ms(t: ModbusRtuTransport) -> float:
    """t3.5; fixed at 1.75 ms above 19200 baud (Modbus over serial line, 2.5.1.1)."""
    return 1.75 if t.baudrate > 19200 else 3.5 * 11 * 1000.0 / t.baudrate


def modbus_ms(
    t: ModbusTcpTransport | ModbusRtuTransport, request: int, reply: int, response: float
) -> float:
    """One Modbus transaction; ``request``/``reply`` are RTU frame sizes in bytes."""
    if isinstance(t, ModbusTcpTransport):
        return MODBUS_TCP_NETWORK_MS + response
    return serial_ms(request + reply, t) + 2 * rtu_silence_ms(t) + response


def read_block_ms(dev: ModbusDevice) -> float:
    _, count = dev.read_span
    return modbus_ms(dev.transport, 8, 5 + 2 * count, dev.response_ms)


def coil_write_ms(out: ModbusCoilOutput) -> float:
    return modbus_ms(out.transport, 8, 8, out.response_ms)


@dataclass(frozen=True)
class Step:
    name: str
    ms: float
    why: str


@dataclass(frozen=True)
class ReactionBudget:
    detection: tuple[Step, ...]
    stop_route: tuple[Step, ...]
    relay_route: tuple[Step, ...]
    required_ms: float

    @property
    def detection_ms(self) -> float:
        return sum(s.ms for s in self.detection)

    @property
    def stop_route_ms(self) -> float:
        return sum(s.ms for s in self.stop_route)

    @property
    def relay_route_ms(self) -> float:
        return sum(s.ms for s in self.relay_route)

    @property
    def total_ms(self) -> float:
        return self.detection_ms + max(self.stop_route_ms, self.relay_route_ms)

    @property
    def ok(self) -> bool:
        return self.total_ms <= self.required_ms

    def format(self) -> str:
        lines = ["worst case from a real skin-temperature crossing to the laser's stop:"]
        for title, steps, total in (
            ("detection", self.detection, self.detection_ms),
            ("stop command route", self.stop_route, self.stop_route_ms),
            ("relay route", self.relay_route, self.relay_route_ms),
        ):
            lines.append(f"  {title:<22} {total:8.2f} ms")
            lines += [f"    {s.name:<20} {s.ms:8.2f} ms  {s.why}" for s in steps]
        verdict = "OK" if self.ok else "EXCEEDS the requirement: the bridge refuses to start"
        lines.append(
            f"  total (detection + slower route) {self.total_ms:.2f} ms "
            f"/ required {self.required_ms:g} ms: {verdict}"
        )
        return "\n".join(lines)


def reaction_budget(setup: Setup) -> ReactionBudget:
    sensor, laser, out = setup.sensor, setup.laser, setup.interlock_output
    proto, lt = laser.protocol, laser.transport
    term = len(proto.terminator)
    detection = (
        Step("sensor response", sensor.sensor_response_ms, "sensor.sensor_response_ms"),
        Step("poll period", sensor.poll_period_ms, "a crossing just after a read waits a period"),
        Step("sensor read", read_block_ms(sensor), "request + reply + device answer time"),
        Step(
            "check cycle",
            1000.0 / setup.loop.rate_hz,
            f"one loop cycle at {setup.loop.rate_hz:g} Hz",
        ),
    )

    def laser_txn(send: str) -> float:
        return serial_ms(len(send) + term + proto.max_reply_bytes + term, lt) + laser.response_ms

    in_flight = max(laser_txn(proto.status.send), laser_txn(proto.heartbeat.send))
    stop_route = (
        Step("laser in flight", in_flight, "a status poll or heartbeat must finish first"),
        Step("stop command", laser_txn(proto.stop.send), f"at {lt.baudrate} baud"),
    )
    if isinstance(out, ModbusCoilOutput):
        relay_route: tuple[Step, ...] = (
            Step("relay in flight", coil_write_ms(out), "a watchdog refresh may be on the wire"),
            Step("relay opens", coil_write_ms(out), "coil write + module answer time"),
        )
    else:
        relay_route = (Step("control line", 0.1, f"{out.line} drop: one ioctl"),)
    return ReactionBudget(detection, stop_route, relay_route, setup.limits.required_reaction_ms)
