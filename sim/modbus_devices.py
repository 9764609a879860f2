"""The cooling unit, the skin sensor and the relay module, as Modbus servers on TCP sockets.

Each device speaks Modbus TCP framing by default; ``framing="rtu"`` serves RTU frames
(CRC, no MBAP header) on the same kind of socket, which a serial client reaches through
pyserial's ``socket://HOST:PORT`` URL: the RTU code path of the bridge without a cable.

Each device is built from its register map in the setup profile, so a profile with another
map gets a simulator that speaks it. Each has a ``role`` (``sensor``, ``sensor2``, ``cooler``,
``interlock``: its endpoint's name) under which the world keeps its wire faults
(``sim.world.DeviceFaults``): silent for good or for a while, late, answering every request
with an exception, or with replies damaged on the wire (pymodbus' ``trace_packet`` hook
rewrites the bytes as they leave). The pymodbus ``action`` hook sees every request: on a
read it writes the model's value at that moment into the served registers, on a write it
hands the value to the model (only registers marked ``writable`` accept writes).

The devices are as strict as real ones, so that a bridge sending a malformed request fails
its tests rather than passing on a lenient simulator: an address outside the map, or a write
to a register not marked ``writable``, is exception 02; a written value outside the
register's ``min``..``max`` or equal to one of its sentinels is exception 03; malformed
requests (counts, byte counts, lengths, coil values) are refused by `sim.modbus_requests`.

A register holds ``round(value / scale)``, as int16 (two's complement) or uint16, clamped to
the type's range like a real device's converter: the codec is the bridge's own,
`device_profiles.registers`.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any, Literal, cast

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_profiles.registers import WordLayout, accepts, join, saturate, split
from device_profiles.schema import (
    Band,
    ModbusCoilOutput,
    ModbusDevice,
    ModbusRtuTransport,
    ModbusTcpTransport,
    Register,
    RegisterTable,
)
from sim.modbus_requests import STRICT_REQUESTS
from sim.world import DeviceFaults, SensorFaults, World

_COIL_CODES = (1, 5, 15)  # read, write single/multiple
#: The table each function code reaches (Modbus Application Protocol V1.1b3, 6).
_TABLE_OF: dict[int, RegisterTable] = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete_input",
    3: "holding",
    6: "holding",
    16: "holding",
    4: "input",
}
#: ``SimDevice``'s order of non-shared blocks: coils, discrete inputs, holding, input.
_SIM_TABLES: tuple[RegisterTable, ...] = ("coil", "discrete_input", "holding", "input")

#: A served skin value must come this far back inside the band before the next crossing is
#: recorded again (ten noise standard deviations: noise alone never re-arms it).
REARM_MARGIN_C = 0.5

Framing = Literal["tcp", "rtu"]
#: How the runner serves the sensor: a Modbus TCP socket, RTU frames on a socket (pyserial's
#: ``socket://``), or RTU frames on a pty at the line's baud rate (`sim.rtu_line`).
SensorLine = Literal["tcp", "rtu", "rtu_pty"]


def device_id_of(transport: Any) -> int:
    return (
        transport.device_id if isinstance(transport, ModbusTcpTransport | ModbusRtuTransport) else 1
    )


class _TcpServed:
    """A pymodbus server on a TCP socket around one `SimDevice`, TCP or RTU framed.

    Strict like a real device: malformed requests are refused by `sim.modbus_requests`
    (exception 03), and every exception reply sent is recorded (``modbus_exception``), so a
    test sees a bridge that sent something a real device would refuse.
    """

    role = "device"

    def __init__(self, world: World, framing: Framing = "tcp") -> None:
        self._server: ModbusTcpServer | None = None
        self.world = world
        self.host = "127.0.0.1"
        self.port = 0
        self.framing: Framing = framing
        self._wire_rng = random.Random(f"{world.scenario.seed}-{self.role}-wire")
        # Never set: a device that has gone silent keeps its requests waiting forever.
        self._silence = asyncio.Event()

    @property
    def faults(self) -> DeviceFaults:
        return self.world.devices[self.role]

    def sim_device(self) -> SimDevice:
        raise NotImplementedError

    def answering(self) -> bool:
        faults = self.faults
        return not faults.link_lost and time.monotonic() >= faults.silent_until_wall

    async def _misbehave(self) -> ExcCodes | None:
        """Before a request is served: stay silent (it is never answered) or refuse it."""
        if not self.answering():
            await self._silence.wait()
        code = self.faults.exception_code
        return None if code is None else ExcCodes(code)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Bytes on the wire; a reply is damaged here when the device's wire is."""
        mode = self.faults.garbage if sending else None
        if mode is None:
            return data
        if mode == "truncated":
            damaged = data[: len(data) // 2]
        else:
            damaged = bytes(self._wire_rng.randrange(256) for _ in range(len(data)))
        self.world.record("wire_damaged", device=self.role, mode=mode, t_wall=time.time())
        return damaged

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending and pdu.isError():
            self.world.record(
                "modbus_exception",
                device=self.role,
                function_code=pdu.function_code & 0x7F,
                exception_code=int(pdu.exception_code),
                t_wall=time.time(),
            )
        return pdu

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port); return the port."""
        framer = FramerType.RTU if self.framing == "rtu" else FramerType.SOCKET
        self._server = ModbusTcpServer(
            context=self.sim_device(),
            address=(host, port),
            framer=framer,
            custom_pdu=STRICT_REQUESTS,
            trace_pdu=self._trace_pdu,
            trace_packet=self._trace_packet,
        )
        await self._server.serve_forever(background=True)
        self.host = host
        listener = cast(asyncio.Server, self._server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])
        return self.port

    async def shutdown(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    @property
    def endpoint(self) -> dict[str, Any]:
        """What ``with_endpoints`` merges into the profile's transport."""
        if self.framing == "rtu":
            return {"kind": "modbus_rtu", "port": f"socket://{self.host}:{self.port}"}
        return {"host": self.host, "port": self.port}


class RegisterDevice(_TcpServed):
    """A device whose tables come from a profile's register map.

    Each table (holding and input registers, coils, discrete inputs) holds exactly the
    profile's registers, plus the gaps its ``read_gap_max`` says the device answers; every
    other address is exception 02. Values are laid out in the profile's word and byte order
    by the bridge's own codec. A write must cover whole registers (both words of a 32-bit
    one, in one request) or it is exception 02, as one Modbus transaction is all or nothing.
    """

    def __init__(
        self,
        profile: ModbusDevice,
        world: World,
        *,
        framing: Framing = "tcp",
        role: str | None = None,
    ) -> None:
        if role is not None:
            self.role = role
        super().__init__(world, framing)
        self.profile = profile
        self.device_id = device_id_of(profile.transport)
        self.layout = WordLayout.of(profile)
        # (table, address) -> (name, index of the word within the register)
        self.by_address: dict[tuple[RegisterTable, int], tuple[str, int]] = {
            (reg.table, reg.address + i): (name, i)
            for name, reg in profile.registers.items()
            for i in range(reg.words)
        }
        # What the device answers: its registers and the gaps its profile says it answers.
        self.answers: set[tuple[RegisterTable, int]] = {
            (b.table, a) for b in profile.read_blocks for a in range(b.first, b.first + b.count)
        }
        self.measurement_period_s = profile.sensor_response_ms / 1000.0
        self._last_measurement_s = -math.inf
        self._counter = 0
        # Raw words served in place of the model's value (a sentinel, a stuck converter).
        self.raw_overrides: dict[str, int] = {}

    def sim_device(self) -> SimDevice:
        tables: dict[RegisterTable, list[SimData]] = {t: [] for t in _SIM_TABLES}
        for block in self.profile.read_blocks:
            if reg_is_bits(block.table):
                # Bit addressing: bit b lives in bit b % 16 of register b // 16.
                words = range(block.first // 16, (block.first + block.count - 1) // 16 + 1)
                taken = {d.address for d in tables[block.table]}
                tables[block.table] += [
                    SimData(16 * w, values=0, datatype=DataType.BITS)
                    for w in words
                    if 16 * w not in taken
                ]
            else:
                tables[block.table].append(
                    SimData(block.first, count=block.count, values=0, datatype=DataType.REGISTERS)
                )
        for table, data in tables.items():
            if not data:  # pymodbus needs every table; the hook answers 01 for it (a table
                # the device does not have), so it must reach the hook: a plain block
                kind = DataType.BITS if reg_is_bits(table) else DataType.REGISTERS
                data.append(SimData(0, values=0, datatype=kind))
        simdata = cast(
            tuple[list[SimData], list[SimData], list[SimData], list[SimData]],
            tuple(tables[t] for t in _SIM_TABLES),
        )
        return SimDevice(
            id=self.device_id, simdata=simdata, use_bit_addressing=True, action=self._action
        )

    # Hooks for each device.
    def measure(self) -> None:
        """Take a new measurement (called at most once per sensor_response_ms)."""

    def values(self) -> dict[str, float]:
        return {}

    def write(self, name: str, value: float) -> None:
        del name, value

    def answer_delay_s(self) -> float:
        """Wall time a read's answer is held back after its value was taken (a slow device)."""
        return self.faults.answer_delay_s

    def served(self, names: set[str], raw: dict[str, int]) -> None:
        del names, raw

    def _maybe_measure(self) -> None:
        if self.world.t_s - self._last_measurement_s >= self.measurement_period_s:
            self._last_measurement_s = self.world.t_s
            self._counter = (self._counter + 1) % 65536
            self.measure()

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if (refused := await self._misbehave()) is not None:
            return refused
        self.world.advance()
        table = _TABLE_OF.get(function_code)
        if table is None or not any(t == table for t, _ in self.answers):
            return ExcCodes.ILLEGAL_FUNCTION  # a table the device does not have at all
        if set_values is not None:
            return self._written(table, address, [int(v) for v in set_values])
        if not self._mapped(table, address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        # A read, or the read-back pymodbus does to answer a write.
        self._maybe_measure()
        values = self.values()
        raw = {
            name: saturate(reg, values.get(name, 0.0))
            for name, reg in self.profile.registers.items()
        }
        raw.update(self.raw_overrides)
        for name, reg in self.profile.registers.items():
            if reg.table == table:
                self._put(reg, raw[name], start_address, current_registers)
        span = range(address, address + (count * 16 if reg_is_bits(table) else count))
        names = {self.by_address[(table, a)][0] for a in span if (table, a) in self.by_address}
        self.served(names, raw)
        if (delay_s := self.answer_delay_s()) > 0:
            await asyncio.sleep(delay_s)
        return None

    def _mapped(self, table: RegisterTable, address: int, count: int) -> bool:
        """A read covers only addresses the device answers. A bit read's count is not passed
        to the hook (only the words it spans), so its first bit is checked."""
        if reg_is_bits(table):
            return (table, address) in self.answers
        return all((table, a) in self.answers for a in range(address, address + count))

    def _put(self, reg: Register, raw: int, start: int, current: list[int]) -> None:
        if reg.is_bit:
            index, bit = reg.address // 16 - start, 1 << (reg.address % 16)
            current[index] = (current[index] | bit) if raw else (current[index] & ~bit)
            return
        for i, word in enumerate(split(reg, raw, self.layout)):
            current[reg.address + i - start] = word

    def _written(self, table: RegisterTable, address: int, words: list[int]) -> ExcCodes | None:
        """A write: all or nothing, to whole writable registers, values the device accepts."""
        plan: list[tuple[str, Register, int]] = []
        i = 0
        while i < len(words):
            cell = self.by_address.get((table, address + i))
            if cell is None:
                return ExcCodes.ILLEGAL_ADDRESS
            name, part = cell
            reg = self.profile.registers[name]
            if not reg.writable or part != 0 or i + reg.words > len(words):
                return ExcCodes.ILLEGAL_ADDRESS  # read-only, or half of a 32-bit value
            plan.append((name, reg, join(reg, words[i : i + reg.words], self.layout)))
            i += reg.words
        if not all(accepts(reg, raw) for _, reg, raw in plan):
            return ExcCodes.ILLEGAL_VALUE
        for name, reg, raw in plan:
            self.write(name, reg.value_of(raw))
        return None


def counter_of(profile: ModbusDevice) -> str | None:
    """The register the device moves with each measurement (a sample counter or a
    heartbeat), or None: a device judged by its value alone (``stuck_value``) or not at all."""
    fresh = profile.freshness_method
    return None if fresh is None or fresh.method == "stuck_value" else fresh.watch


def reg_is_bits(table: RegisterTable) -> bool:
    return table in ("coil", "discrete_input")


class SimSensor(RegisterDevice):
    """Infrared skin-surface sensor: the skin model's temperature plus seeded Gaussian noise.

    Each new measurement bumps its counter or heartbeat register; a frozen sensor keeps serving its last
    value and counter. The first served value outside the profile's skin band is recorded
    (``over_limit_served``) with its wall time: halt latency is measured from it. Once a
    served value is back inside the band by ``REARM_MARGIN_C``, the next crossing is
    recorded again, so repeated trials each get their own.

    ``force_skin`` makes the sensor serve a given value, without noise, from the next read
    on, whatever the skin model says (a benchmark's or a test's crossing at a chosen moment);
    ``force_skin_raw`` serves a raw word instead (a sentinel such as 0x7FFF, as a pyrometer
    does outside its measuring range); ``release_skin`` hands the register back to the model.

    A setup's second skin sensor is another `SimSensor` with ``role="sensor2"``: the same
    skin, its own noise, its own faults (``sim.world.SensorFaults``: frozen, stuck, offset,
    drifting, noisy and spiking).
    """

    role = "sensor"

    def __init__(
        self,
        profile: ModbusDevice,
        world: World,
        band: Band,
        *,
        noise_sd_c: float,
        seed: int,
        framing: Framing = "tcp",
        role: str = "sensor",
    ) -> None:
        super().__init__(profile, world, framing=framing, role=role)
        self.band = band
        self.noise_sd_c = noise_sd_c
        # The first sensor keeps the scenario's seed as it was; a second one draws its own.
        self._rng = random.Random(seed if role == "sensor" else f"{seed}-{role}")
        self.skin_temp_c = world.skin.temp_c
        self.over_limit_wall: float | None = None
        self._armed = True
        self.forced_c: float | None = None
        self.counter_name = counter_of(profile)

    def force_skin(self, temp_c: float) -> float:
        """Serve ``temp_c`` from the next read on; returns the wall time it took effect."""
        self.forced_c = float(temp_c)
        t_wall = time.time()
        self.world.record("skin_forced", value=self.forced_c, t_wall=t_wall)
        return t_wall

    def force_skin_raw(self, raw: int) -> float:
        """Serve the raw value ``raw`` as the skin temperature from the next read on."""
        bits = self.profile.registers["skin_temp_c"].bits
        if not 0 <= raw < 1 << bits:
            raise ValueError(f"a {bits}-bit register holds 0..{(1 << bits) - 1:#x}, not {raw:#x}")
        self.raw_overrides["skin_temp_c"] = raw
        t_wall = time.time()
        self.world.record("skin_forced_raw", raw=raw, t_wall=t_wall)
        return t_wall

    def release_skin(self) -> float:
        self.forced_c = None
        self.raw_overrides.pop("skin_temp_c", None)
        t_wall = time.time()
        self.world.record("skin_released", t_wall=t_wall)
        return t_wall

    @property
    def sensor_faults(self) -> SensorFaults:
        return self.world.sensors[self.role]

    def _maybe_measure(self) -> None:
        if not self.sensor_faults.frozen:
            super()._maybe_measure()

    def measure(self) -> None:
        faults = self.sensor_faults
        if faults.stuck:
            if faults.stuck_c is None:  # stuck at whatever it read last
                faults.stuck_c = self.skin_temp_c
            self.skin_temp_c = faults.stuck_c
            return
        rng = self._rng
        value = self.world.skin.temp_c + rng.gauss(0.0, self.noise_sd_c)
        value += faults.error_at(self.world.t_s)
        if faults.extra_noise_sd_c > 0:
            value += rng.gauss(0.0, faults.extra_noise_sd_c)
        if faults.spike_probability > 0 and rng.random() < faults.spike_probability:
            value += faults.spike_c
        self.skin_temp_c = value

    def values(self) -> dict[str, float]:
        skin = self.skin_temp_c if self.forced_c is None else self.forced_c
        out = {"skin_temp_c": skin, "fault_code": 0.0}
        if self.counter_name is not None:
            out[self.counter_name] = float(self._counter)
        return out

    def served(self, names: set[str], raw: dict[str, int]) -> None:
        if "skin_temp_c" not in names:
            return
        value = self.profile.registers["skin_temp_c"].value_of(raw["skin_temp_c"])
        if not self._armed:
            low, high = self.band.low + REARM_MARGIN_C, self.band.high - REARM_MARGIN_C
            self._armed = low <= value <= high
            return
        if not self.band.low <= value <= self.band.high:
            self._armed = False
            self.over_limit_wall = time.time()
            self.world.record(
                "over_limit_served", value=value, device=self.role, t_wall=self.over_limit_wall
            )


class SimCooler(RegisterDevice):
    """Contact-cooling chiller: plate temperature, flow, setpoint (writable), fault code.

    A failed chiller (scenario ``cooler_failure``) fails silently: its pump keeps the flow
    and it reports no fault code; only the plate temperature shows it. So do a chiller whose
    control runs away cold (``plate_runaway``) and a failing pump (``cooler_flow_loss``).

    The first served plate temperature outside the setup's trip band, or flow below its
    minimum, is recorded (``cooler_out_of_band_served``, with its wall time): the fault
    matrix measures the halt from it.
    """

    role = "cooler"

    def __init__(self, profile: ModbusDevice, world: World, *, framing: Framing = "tcp") -> None:
        super().__init__(profile, world, framing=framing)
        limits = world.setup.limits
        self.trip_band = (limits.cooler_plate_trip_c.low, limits.cooler_plate_trip_c.high)
        self.flow_min = limits.cooler_flow_l_min_min
        self.out_of_band_wall: float | None = None

    def served(self, names: set[str], raw: dict[str, int]) -> None:
        if self.out_of_band_wall is not None or not {"plate_temp_c", "flow_l_min"} <= names:
            return
        regs = self.profile.registers
        plate = regs["plate_temp_c"].value_of(raw["plate_temp_c"])
        flow = regs["flow_l_min"].value_of(raw["flow_l_min"])
        low, high = self.trip_band
        if not low <= plate <= high or flow < self.flow_min:
            self.out_of_band_wall = time.time()
            self.world.record(
                "cooler_out_of_band_served",
                plate_temp_c=plate,
                flow_l_min=flow,
                device=self.role,
                t_wall=self.out_of_band_wall,
            )

    def values(self) -> dict[str, float]:
        out = {
            "plate_temp_c": self.world.plate_temp_c() + self.world.plate_offset_c,
            "flow_l_min": self.world.flow_l_min(),
            "setpoint_c": self.world.plate.setpoint_c,
            "fault_code": 0.0,
        }
        if (counter := counter_of(self.profile)) is not None:
            out[counter] = float(self._counter)
        return out

    def write(self, name: str, value: float) -> None:
        if name == "setpoint_c":
            self.world.plate.set_setpoint(self.world.t_s, value)


class SimRelay(_TcpServed):
    """A one-channel relay module in the laser's remote-interlock loop.

    Energised (coil True) closes the loop and permits emission. Its watchdog opens the relay
    when no write has arrived for ``watchdog_ms`` of wall time, as the bridge's refresh
    stopping must never leave the laser able to fire.
    """

    role = "interlock"

    def __init__(self, profile: ModbusCoilOutput, world: World) -> None:
        super().__init__(world)
        self.profile = profile
        self.coil = profile.coil
        self.device_id = device_id_of(profile.transport)
        self.watchdog_s = profile.watchdog_ms / 1000.0
        self.last_write: float | None = None  # time.monotonic()
        # The coil as written (what the module reads back and echoes): a welded contact
        # (``world.relay_stuck_closed``) stays closed whatever this says.
        self.energised = False

    def sim_device(self) -> SimDevice:
        # Bit addressing: coil c lives in bit c % 16 of register c // 16.
        return SimDevice(
            id=self.device_id,
            simdata=[SimData(self.coil // 16, values=0, datatype=DataType.BITS)],
            use_bit_addressing=True,
            action=self._action,
        )

    def check_watchdog(self, now: float) -> None:
        if (
            self.world.relay_closed
            and self.last_write is not None
            and now - self.last_write > self.watchdog_s
        ):
            self.energised = False
            self.world.set_relay(False, "watchdog")

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        del start_address
        if (refused := await self._misbehave()) is not None:
            return refused
        self.world.advance()
        if function_code not in _COIL_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None:
            if address != self.coil or len(set_values) != 1:
                return ExcCodes.ILLEGAL_ADDRESS
            self.last_write = time.monotonic()
            self.energised = bool(set_values[0])
            self.world.set_relay(self.energised, "write")
            return None
        # A read, or the read-back pymodbus does to answer a write.
        if not address <= self.coil < address + count:
            return ExcCodes.ILLEGAL_ADDRESS
        bit = 1 << (self.coil % 16)
        current_registers[0] = bit if self.energised else 0
        return None
