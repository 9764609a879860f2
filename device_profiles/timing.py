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

A device worker whose read takes a poll period or longer falls behind and starts the next
read a whole period after the last one ended: the wait before the next read is then the
read time plus a period, not a period.

The budget's answer times are assumptions (``assumed_answer_ms``); the bridge measures the
real ones. ``reaction_budget(setup, measured)`` recomputes the worst case with a measured
answer time wherever it is slower than assumed (never faster: a quiet minute proves no
better worst case); ``LiveBudget`` gives the same total in plain arithmetic, for the
interlock loop's every cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from device_profiles.schema import (
    BinaryFrameProtocol,
    LaserProtocol,
    ModbusCoilOutput,
    ModbusDevice,
    ModbusRtuTransport,
    ModbusTcpTransport,
    SerialTransport,
    Setup,
    StuckValueFreshness,
)

MODBUS_TCP_NETWORK_MS = 0.5  # a switched local network, request and reply together
SERIAL_LINE_MS = 0.1  # dropping a control line: one ioctl
#: The devices whose answer times are assumed by the budget (and measured by the bridge).
DEVICES = ("sensor", "cooler", "laser", "interlock")


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
    """One poll of a device: each of its read requests (``read_blocks``) in turn."""
    return sum(modbus_ms(dev.transport, 8, b.reply_bytes, dev.response_ms) for b in dev.read_blocks)


def coil_write_ms(out: ModbusCoilOutput) -> float:
    return modbus_ms(out.transport, 8, 8, out.response_ms)


def _longest_request_ms(setup: Setup, who: str) -> float:
    """The longest single request a device puts on its wire (a read block, a write)."""
    out = setup.interlock_output
    if who == "interlock_output" and isinstance(out, ModbusCoilOutput):
        return coil_write_ms(out)
    dev: ModbusDevice | None = {
        "cooler": setup.cooler,
        "sensor": setup.sensor,
        "sensor2": setup.sensor2,
        "laser": setup.laser.modbus_device() if who == "laser" else None,
    }.get(who)
    if dev is None:
        return 0.0
    reads = [modbus_ms(dev.transport, 8, b.reply_bytes, dev.response_ms) for b in dev.read_blocks]
    writes = [modbus_ms(dev.transport, 8, 8, dev.response_ms)]  # a coil or register written
    return max(reads + writes)


def shared_line_wait_ms(setup: Setup, who: str, requests: int) -> float:
    """On an RTU port shared with other devices (issue 14), each of ``who``'s ``requests``
    may find another device's request on the wire and wait for it to end: the longest one."""
    rtu = setup.rtu_devices()
    mine = rtu.get(who)
    if mine is None:
        return 0.0
    others = [o for o, t in rtu.items() if o != who and t.port == mine.port]
    if not others:
        return 0.0
    return requests * max(_longest_request_ms(setup, o) for o in others)


def poll_wait_ms(period_ms: float, read_ms: float) -> float:
    """From a crossing just after a read's sample to the start of the next read.

    A read shorter than the period: the next starts a period after this one started. A read
    of a period or longer: the worker has fallen behind and waits a whole period after it.
    """
    return period_ms if read_ms < period_ms else read_ms + period_ms


LaserTxn = Literal["status", "heartbeat", "stop", "standby"]


def _laser_txn_ms(setup: Setup, what: LaserTxn) -> float:
    """One of the laser's transactions, by the kind of its remote interface.

    A line: the command and the longest reply line. Binary frames: the request frame and its
    reply frame (the status reply with its payload). Modbus: a status is the map's read; the
    heartbeat a register write and its read-back; a command a coil write, its read-back and
    the status read that verifies it.
    """
    laser = setup.laser
    proto, lt = laser.protocol, laser.transport
    if isinstance(proto, LaserProtocol) and isinstance(lt, SerialTransport):
        term = len(proto.terminator)
        send = getattr(proto, what).send
        return serial_ms(len(send) + term + proto.max_reply_bytes + term, lt) + laser.response_ms
    if isinstance(proto, BinaryFrameProtocol) and isinstance(lt, SerialTransport):
        payload = proto.payload_bytes(proto.status_fields) if what == "status" else 0
        frames = proto.frame_bytes(0) + proto.frame_bytes(payload)
        return serial_ms(frames, lt) + laser.response_ms
    if isinstance(lt, SerialTransport):
        raise ValueError(f"laser {laser.model}: {proto.kind} over a serial line")
    dev = laser.modbus_device()
    if what == "status":
        return read_block_ms(laser.modbus_device("status"))
    if what == "heartbeat":
        words = dev.registers["heartbeat"].words
        write = modbus_ms(lt, 9 + 2 * words if words > 1 else 8, 8, laser.response_ms)
        return write + modbus_ms(lt, 8, 5 + 2 * words, laser.response_ms)
    coil = modbus_ms(lt, 8, 8, laser.response_ms) + modbus_ms(lt, 8, 6, laser.response_ms)
    return coil + read_block_ms(laser.modbus_device("state"))


def laser_wire(setup: Setup) -> str:
    """How the laser is reached, in words, for the budget's table."""
    lt = setup.laser.transport
    if isinstance(lt, ModbusTcpTransport):
        return "over Modbus TCP"
    return f"at {lt.baudrate} baud"


def assumed_answer_ms(setup: Setup) -> dict[str, float]:
    """Per device, the longest transaction the budget assumes: wire time + ``response_ms``.

    The bridge measures each device's transactions against these (the laser's slowest of a
    status poll, a heartbeat and a stop; the relay's coil write; the devices' block read).
    """
    out = setup.interlock_output
    laser = max(_laser_txn_ms(setup, c) for c in ("status", "heartbeat", "stop"))
    relay = coil_write_ms(out) if isinstance(out, ModbusCoilOutput) else SERIAL_LINE_MS
    assumed = {
        "sensor": read_block_ms(setup.sensor),
        "cooler": read_block_ms(setup.cooler),
        "laser": laser,
        "interlock": relay,
    }
    if setup.sensor2 is not None:
        assumed["sensor2"] = read_block_ms(setup.sensor2)
    return assumed


def _slower(assumed: float, measured: float | None) -> float:
    """The measured time where it is slower than assumed; unknown (None, NaN) is assumed."""
    if measured is None or math.isnan(measured):
        return assumed
    return max(assumed, measured)


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
    assumed_answer_ms: Mapping[str, float]
    measured_answer_ms: Mapping[str, float]  # empty: the budget from the profile alone
    frozen: Step | None = None  # how long a frozen sensor passes for live, by its method

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

    def slower_than_assumed(self) -> list[str]:
        """Measured answer times above the budget's assumption, in words."""
        return [
            f"{dev} answers in up to {ms:.1f} ms, the budget assumes {self.assumed_answer_ms[dev]:.1f} ms"
            for dev, ms in self.measured_answer_ms.items()
            if ms > self.assumed_answer_ms[dev]
        ]

    def format(self) -> str:
        measured = bool(self.measured_answer_ms)
        what = "with the measured answer times" if measured else "from the profile"
        lines = [f"worst case from a real skin-temperature crossing to the laser's stop, {what}:"]
        for title, steps, total in (
            ("detection", self.detection, self.detection_ms),
            ("stop command route", self.stop_route, self.stop_route_ms),
            ("relay route", self.relay_route, self.relay_route_ms),
        ):
            lines.append(f"  {title:<22} {total:8.2f} ms")
            lines += [f"    {s.name:<20} {s.ms:8.2f} ms  {s.why}" for s in steps]
        if measured:
            verdict = "OK" if self.ok else "EXCEEDS the requirement"
        else:
            verdict = "OK" if self.ok else "EXCEEDS the requirement: the bridge refuses to start"
        if self.frozen is not None:
            lines.append(f"  {'frozen sensor':<22} {self.frozen.ms:8.2f} ms  {self.frozen.why}")
        lines.append(
            f"  total (detection + slower route) {self.total_ms:.2f} ms "
            f"/ required {self.required_ms:g} ms: {verdict}"
        )
        lines.append("  answer times assumed per device (measured live by the bridge: a slower")
        lines.append("  answer is reported; a total over the requirement refuses arming or halts):")
        for dev, ms in self.assumed_answer_ms.items():
            seen = self.measured_answer_ms.get(dev)
            tail = "" if seen is None else f"  measured {seen:.2f} ms"
            lines.append(f"    {dev:<20} {ms:8.2f} ms{tail}")
        return "\n".join(lines)


def reaction_budget(setup: Setup, measured: Mapping[str, float] | None = None) -> ReactionBudget:
    """The worst case from the profile; with ``measured`` (device name → recent worst answer
    time in ms), each answer time slower than assumed replaces the assumption."""
    sensor, out = setup.sensor, setup.interlock_output
    assumed = assumed_answer_ms(setup)
    seen = {
        d: float(measured[d])
        for d in assumed
        if measured is not None and measured.get(d) is not None and not math.isnan(measured[d])
    }

    def why(dev: str, text: str) -> str:
        if dev in seen and seen[dev] > assumed[dev]:
            return f"measured {seen[dev]:.2f} ms (assumed {assumed[dev]:.2f} ms)"
        return text

    def detection_of(name: str, dev: ModbusDevice) -> tuple[Step, ...]:
        read = _slower(read_block_ms(dev), seen.get(name))
        wait = poll_wait_ms(dev.poll_period_ms, read)
        wait_why = (
            "a crossing just after a read waits a period"
            if wait == dev.poll_period_ms
            else "the read outlasts the period: the next starts a period after it ends"
        )
        shared = shared_line_wait_ms(setup, name, len(dev.read_blocks))
        sharing = (
            (Step("shared line", shared, "another device's request may be on the wire"),)
            if shared
            else ()
        )
        return (
            Step(f"{name} response", dev.sensor_response_ms, f"{name}.sensor_response_ms"),
            Step("poll period", wait, wait_why),
            *sharing,
            Step(f"{name} read", read, why(name, "request + reply + device answer time")),
            Step(
                "check cycle",
                1000.0 / setup.loop.rate_hz,
                f"one loop cycle at {setup.loop.rate_hz:g} Hz",
            ),
        )

    # Two skin sensors: a crossing may show on either first; the slower path is the worst case.
    paths = [detection_of("sensor", sensor)]
    if setup.sensor2 is not None:
        paths.append(detection_of("sensor2", setup.sensor2))
    detection = max(paths, key=lambda steps: sum(s.ms for s in steps))
    in_flight = max(_laser_txn_ms(setup, "status"), _laser_txn_ms(setup, "heartbeat"))
    stop_route = (
        Step(
            "laser in flight",
            _slower(in_flight, seen.get("laser")),
            why("laser", "a status poll or heartbeat must finish first"),
        ),
        Step(
            "stop command",
            _slower(_laser_txn_ms(setup, "stop"), seen.get("laser")),
            why("laser", laser_wire(setup)),
        ),
    )
    relay = seen.get("interlock")
    if isinstance(out, ModbusCoilOutput):
        coil = _slower(coil_write_ms(out), relay)
        relay_route: tuple[Step, ...] = (
            Step(
                "relay in flight", coil, why("interlock", "a watchdog refresh may be on the wire")
            ),
            Step("relay opens", coil, why("interlock", "coil write + module answer time")),
        )
        if shared := shared_line_wait_ms(setup, "interlock_output", 1):
            relay_route += (
                Step("shared line", shared, "another device's request may be on the wire"),
            )
    else:
        line_ms = _slower(SERIAL_LINE_MS, relay)
        relay_route = (
            Step("control line", line_ms, why("interlock", f"{out.line} drop: one ioctl")),
        )
    return ReactionBudget(
        detection,
        stop_route,
        relay_route,
        setup.limits.required_reaction_ms,
        assumed,
        seen,
        frozen_sensor_step(setup, _slower(read_block_ms(sensor), seen.get("sensor"))),
    )


def frozen_sensor_step(setup: Setup, read_ms: float) -> Step | None:
    """How long a sensor that stopped measuring (its link still answering) passes for live,
    until the check that notices it trips; the halt routes follow as for a crossing."""
    fresh = setup.sensor.freshness_method
    cycle = 1000.0 / setup.loop.rate_hz
    if fresh is None:
        return None
    if isinstance(fresh, StuckValueFreshness):
        ms = fresh.frozen_after_ms + setup.sensor.poll_period_ms + read_ms + cycle
        why = (
            f"{fresh.watch} bit-identical for frozen_after_ms {fresh.frozen_after_ms:g}, "
            "+ a poll, its read and a check cycle"
        )
        return Step("frozen sensor", ms, why)
    stale = setup.limits.stale_ms["sensor"]
    why = f"{fresh.method} {fresh.watch} unmoved for stale_ms.sensor {stale:g}, + a check cycle"
    return Step("frozen sensor", stale + cycle, why)


def pulse_to_standby_ms(setup: Setup, laser_ms: float | None = None) -> float:
    """Worst case from a pulse to the laser in STANDBY, when LaserGuard counts test spots.

    The pulse lands just after a status poll; the laser worker polls again at most a poll
    period and one worker period later (its polls follow its own schedule), a heartbeat may
    go first, and the status that shows the pulse is followed by the standby command. With
    ``laser_ms`` (the laser's measured answer time), a slower answer replaces the assumed one.
    """
    laser = setup.laser
    worker_period_ms = min(laser.poll_period_ms, laser.heartbeat_period_ms)
    transactions: tuple[LaserTxn, ...] = ("heartbeat", "status", "standby")
    return (
        laser.poll_period_ms
        + worker_period_ms
        + sum(_slower(_laser_txn_ms(setup, what), laser_ms) for what in transactions)
    )


class LiveBudget:
    """``reaction_budget(setup, measured).total_ms`` in plain float arithmetic: the interlock
    loop recomputes it every cycle from the measured answer times (NaN: not yet measured)."""

    def __init__(self, setup: Setup) -> None:
        sensor, out = setup.sensor, setup.interlock_output
        self.required_ms = setup.limits.required_reaction_ms
        self.assumed = assumed_answer_ms(setup)
        self._cycle_ms = 1000.0 / setup.loop.rate_hz
        self._fixed_ms = sensor.sensor_response_ms + self._cycle_ms
        self._period_ms = sensor.poll_period_ms
        self._read_ms = read_block_ms(sensor)
        self._fixed_ms += shared_line_wait_ms(setup, "sensor", len(sensor.read_blocks))
        second = setup.sensor2
        self._second: tuple[float, float, float] | None = (
            None
            if second is None
            else (
                second.sensor_response_ms
                + shared_line_wait_ms(setup, "sensor2", len(second.read_blocks)),
                second.poll_period_ms,
                read_block_ms(second),
            )
        )
        self._in_flight_ms = max(_laser_txn_ms(setup, "status"), _laser_txn_ms(setup, "heartbeat"))
        self._stop_ms = _laser_txn_ms(setup, "stop")
        self._coil = isinstance(out, ModbusCoilOutput)
        self._relay_ms = coil_write_ms(out) if isinstance(out, ModbusCoilOutput) else SERIAL_LINE_MS
        self._relay_line_ms = shared_line_wait_ms(setup, "interlock_output", 1)

    def total_ms(
        self,
        sensor_ms: float,
        laser_ms: float,
        interlock_ms: float,
        sensor2_ms: float = math.nan,
    ) -> float:
        # ``x > y`` is False for NaN: an unmeasured device keeps its assumed time.
        read = sensor_ms if sensor_ms > self._read_ms else self._read_ms
        detection = self._fixed_ms + poll_wait_ms(self._period_ms, read) + read
        if self._second is not None:  # the slower of the two sensors' paths
            response, period, assumed = self._second
            read2 = sensor2_ms if sensor2_ms > assumed else assumed
            detection2 = response + self._cycle_ms + poll_wait_ms(period, read2) + read2
            detection = detection2 if detection2 > detection else detection
        in_flight = laser_ms if laser_ms > self._in_flight_ms else self._in_flight_ms
        stop = laser_ms if laser_ms > self._stop_ms else self._stop_ms
        relay = interlock_ms if interlock_ms > self._relay_ms else self._relay_ms
        relay_route = 2 * relay + self._relay_line_ms if self._coil else relay
        stop_route = in_flight + stop
        return detection + (stop_route if stop_route > relay_route else relay_route)
