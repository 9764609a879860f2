"""Schemas for clinic setups: which devices, how they are reached, what they say, what is allowed.

A *setup* names one laser, one cooling unit, one skin-temperature sensor and the hardware
interlock output, each with its transport and its wire protocol as data, plus the limits the
interlock enforces. Everything is validated strictly at load (`extra="forbid"`, ranges,
cross-field rules); nothing is validated at use.

Types are strict: a number field takes a number (an int where a float is meant, never a bool
or a string), a flag takes ``true``/``false``, a text field takes text. ``bool`` is an ``int``
in Python, so without this ``baudrate: true`` would be 1 baud. NaN and infinity are refused
everywhere. Limits that cannot protect skin are refused (``SKIN_TEMP_*``, ``Limits``).

Units are part of every field name (``fluence_j_cm2``, ``pulse_ms``, ``skin_temp_c``).
"""

from __future__ import annotations

import itertools
import re
import struct
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from device_profiles.clinical import (
    SKIN_LOW_BY_COOLING,
    TEST_SPOT_READ_AFTER_DAYS,
    TEST_SPOT_READ_AFTER_DAYS_MIN,
    CoolingMethod,
    SkinSensorView,
    TreatmentSite,
)

SPEC_VERSION = "1"

# The skin-temperature limits a setup may set (docs/profiles.md, "Bounds"; docs/limits.md,
# "Skin temperature").
#
# `skin_temp_c.high` is the hard ceiling for the post-pulse peak: any reading above it halts at
# once. Surface-temperature feedback practice aims for 40-45 degC after a pulse (CoolTouch), so
# the ceiling must sit above that; 44 degC is a threshold for hours, not for a transient
# (Henriques & Moritz 1947: hours to a burn at 44-45 degC, under an hour at 47 degC, about a
# minute at 55 degC). At most 50 degC: 5 degC above the feedback aim. Clinic default, review.
SKIN_TEMP_HIGH_MAX_C = 50.0
# The lowest `skin_temp_c.low` of any cooling method (cryogen); each method has its own bound
# (device_profiles.clinical.SKIN_LOW_BY_COOLING), checked against the cooler's method.
SKIN_TEMP_LOW_MIN_C = min(x.lowest_c for x in SKIN_LOW_BY_COOLING.values())
# `skin_baseline_max_c`, the pre-pulse baseline, is held for minutes between pulses: it stays
# below the 43 degC reference of the thermal dose (CEM43, Sapareto & Dewey 1984), where dose
# accrues by the minute. At most 40 degC. Clinic default, review.
SKIN_BASELINE_MAX_C = 40.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _refuse_bool(value: object) -> object:
    """A choice of numbers (``Literal[1, 2]``) takes ``True`` as 1 even in strict mode."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value


StopBits = Annotated[Literal[1, 2], BeforeValidator(_refuse_bool)]
ByteSize = Annotated[Literal[7, 8], BeforeValidator(_refuse_bool)]


def _iso_date(value: object) -> object:
    """A calendar date written ``2026-05-01`` (files read as YAML 1.2 keep it as text)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        raise ValueError(f"expected a date written YYYY-MM-DD, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a calendar date: {e}") from e


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class SkinType(StrEnum):
    """Fitzpatrick skin type, I (always burns) to VI (never burns). In files: "I" ... "VI"."""

    I = "I"  # noqa: E741 - the clinical name
    II = "II"
    III = "III"
    IV = "IV"
    V = "V"
    VI = "VI"

    @property
    def rank(self) -> int:
        """0 for type I ... 5 for type VI."""
        return list(SkinType).index(self)


# Strict mode takes only enum members from Python; files give the name ("III").
SkinTypeName = Annotated[SkinType, Field(strict=False)]


# --- transports -------------------------------------------------------------------------------


class SerialTransport(Strict):
    kind: Literal["serial"]
    port: str = Field(description="Device path or pyserial URL, e.g. /dev/ttyUSB0")
    baudrate: int = Field(115200, gt=0)
    bytesize: ByteSize = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: StopBits = 1
    timeout_ms: float = Field(50.0, gt=0, le=5000)


class ModbusTcpTransport(Strict):
    kind: Literal["modbus_tcp"]
    host: str
    port: int = Field(502, ge=0, le=65535)
    device_id: int = Field(1, ge=0, le=247)
    timeout_ms: float = Field(50.0, gt=0, le=5000)


class ModbusRtuTransport(Strict):
    kind: Literal["modbus_rtu"]
    port: str = Field(description="Device path or socket:// URL")
    baudrate: int = Field(19200, gt=0)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: StopBits = 1
    device_id: int = Field(1, ge=1, le=247)
    timeout_ms: float = Field(100.0, gt=0, le=5000)


ModbusTransport = Annotated[ModbusTcpTransport | ModbusRtuTransport, Field(discriminator="kind")]


# --- Modbus register maps ---------------------------------------------------------------------


RawWord = Annotated[int, Field(strict=True, ge=0, le=0xFFFF)]
"""A raw 16-bit register value as it is on the wire (write it in hex: 0x7FFF)."""

RawValue = Annotated[int, Field(strict=True, ge=0, le=0xFFFF_FFFF)]
"""A raw register value of 16 or 32 bits, as the device means it (words joined in its order)."""

RegisterTable = Literal["holding", "input", "coil", "discrete_input"]
"""Where a value lives on a Modbus device: holding registers (read with function code 3),
input registers (4), coils (1) and discrete inputs (2)."""

#: The Modbus function code that reads each table (Modbus Application Protocol V1.1b3, 6.1-6.4).
READ_FUNCTION: dict[RegisterTable, int] = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}
#: Largest read a request may ask for (V1.1b3, 6.1-6.4): 125 registers, 2000 bits.
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
_WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "bool": 1}
_BIT_TABLES = ("coil", "discrete_input")


class Sentinels(Strict):
    """Raw values a device puts in a register instead of a reading: a sensor fault, never a value.

    A pyrometer that cannot measure writes 0x7FFF (over its range) or 0x8000 (under it) where
    its temperature would be; read as numbers they are 327.67 and -327.68 degC. On a 32-bit
    register the sentinel is the 32-bit value (0x7FFFFFFF), words joined in the device's order.
    """

    over_range: RawValue | None = None
    under_range: RawValue | None = None

    @model_validator(mode="after")
    def _some_and_distinct(self) -> Sentinels:
        if self.over_range is None and self.under_range is None:
            raise ValueError("give over_range, under_range or both (or leave out sentinels)")
        if self.over_range == self.under_range:
            raise ValueError("over_range and under_range must be different raw values")
        return self

    def named(self) -> dict[int, str]:
        """Raw value -> fault name ("over-range", "under-range")."""
        out = {self.over_range: "over-range", self.under_range: "under-range"}
        return {raw: name for raw, name in out.items() if raw is not None}


class Register(Strict):
    """One value in a device's register map: value = raw x scale + offset.

    ``table`` says where it lives (holding, input, coil, discrete_input) and so which function
    code reads it; ``type`` how its one or two 16-bit words hold it (a coil or discrete input
    is a ``bool``). A 32-bit value's two words are joined in the device's ``word_order`` and
    each word's bytes in its ``byte_order``. ``min`` and ``max`` (in ``unit``, only for a
    writable register) are what the device accepts: a write outside them is refused before it
    reaches the wire. ``sentinels`` are raw values that mean "no reading" (see `Sentinels`);
    a float32 that is NaN or infinite is one too. ``fault_mask`` makes the register a status
    word: its value is ``raw & fault_mask``, so a set fault bit is a non-zero fault code and
    the other bits (a "measuring" flag, a laser-pointer bit) are not.
    """

    address: int = Field(ge=0, le=65535)
    table: RegisterTable = "holding"
    type: RegisterType = "int16"
    scale: float = Field(1.0, gt=0)
    offset: float = 0.0
    unit: str
    writable: bool = False
    min: float | None = None
    max: float | None = None
    sentinels: Sentinels | None = None
    fault_mask: RawValue | None = Field(
        None, description="A status word: only these bits are faults (value = raw & mask)"
    )

    @property
    def words(self) -> int:
        """16-bit registers (or bits) the value takes on the wire."""
        return _WORDS[self.type]

    @property
    def is_bit(self) -> bool:
        return self.table in _BIT_TABLES

    @property
    def bits(self) -> int:
        """Width of the raw value."""
        return 1 if self.type == "bool" else 16 * self.words

    @property
    def raw_range(self) -> tuple[int, int]:
        """The steps ((value - offset) / scale) an integer type holds."""
        return {
            "int16": (-0x8000, 0x7FFF),
            "uint16": (0, 0xFFFF),
            "int32": (-0x8000_0000, 0x7FFF_FFFF),
            "uint32": (0, 0xFFFF_FFFF),
            "bool": (0, 1),
            "float32": (-0x8000_0000, 0x7FFF_FFFF),  # not a limit: float32 has its own
        }[self.type]

    def value_of(self, raw: int) -> float:
        """The number a raw value (16 or 32 bits, unsigned) stands for, sentinel or not."""
        if self.type == "float32":
            return float(struct.unpack(">f", raw.to_bytes(4, "big"))[0]) * self.scale + self.offset
        if self.type in ("int16", "int32") and raw >= 1 << (self.bits - 1):
            raw -= 1 << self.bits
        return raw * self.scale + self.offset

    def in_write_range(self, value: float) -> bool:
        """``value`` (on the register's grid) lies within ``min``..``max``.

        Half a step of slack: 1500 x 0.01 is 15.000000000000002, and is the bound 15.
        """
        slack = 0.0 if self.type == "float32" else self.scale / 2
        return (self.min is None or value >= self.min - slack) and (
            self.max is None or value <= self.max + slack
        )

    @model_validator(mode="after")
    def _range_is_for_writes(self) -> Register:
        if self.is_bit != (self.type == "bool"):
            raise ValueError(
                "coils and discrete inputs are type bool, and a bool is a coil or a discrete input"
            )
        if self.type == "bool" and (self.scale != 1 or self.offset != 0):
            raise ValueError("a bool has no scale or offset")
        if self.writable and self.table in ("input", "discrete_input"):
            raise ValueError(f"{self.table} registers are read-only in Modbus: not writable")
        if self.fault_mask is not None:
            if self.type not in ("uint16", "uint32"):
                raise ValueError("fault_mask needs an unsigned status word (uint16 or uint32)")
            if self.fault_mask == 0 or self.fault_mask >> self.bits:
                raise ValueError(
                    f"fault_mask 0x{self.fault_mask:X} must name bits of a {self.type}"
                )
            if self.writable or self.scale != 1 or self.offset != 0:
                raise ValueError("a status word with fault_mask is read-only, scale 1, offset 0")
        if self.sentinels is not None:
            for raw in self.sentinels.named():
                if raw >> self.bits:
                    raise ValueError(f"sentinel 0x{raw:X} does not fit a {self.type}")
        if self.address + self.words - 1 > 65535:
            raise ValueError(f"a {self.type} at {self.address} runs past address 65535")
        if (self.min is not None or self.max is not None) and not self.writable:
            raise ValueError("min and max limit writes: give them only on a writable register")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        if self.type != "float32":
            lo, hi = self.raw_range
            for name, bound in (("min", self.min), ("max", self.max)):
                if bound is not None and not lo <= round((bound - self.offset) / self.scale) <= hi:
                    raise ValueError(
                        f"{name} {bound:g} does not fit a {self.type} at scale {self.scale:g}"
                    )
        if self.sentinels is not None and self.writable:
            for raw, name in self.sentinels.named().items():
                if self.in_write_range(self.value_of(raw)):
                    raise ValueError(
                        f"{name} sentinel 0x{raw:04X} ({self.value_of(raw):g} {self.unit}) lies "
                        "inside the writable range: give min and max that exclude it"
                    )
        return self


@dataclass(frozen=True)
class ReadBlock:
    """One read request of a device's poll: ``count`` registers (or bits) from ``first``."""

    table: RegisterTable
    first: int
    count: int

    @property
    def function_code(self) -> int:
        return READ_FUNCTION[self.table]

    @property
    def reply_bytes(self) -> int:
        """The RTU reply frame: unit, function, byte count, data, CRC."""
        data = (self.count + 7) // 8 if self.table in _BIT_TABLES else 2 * self.count
        return 5 + data


class CounterFreshness(Strict):
    """A register the device changes with every new measurement (a sample counter)."""

    method: Literal["counter"]
    watch: str = Field(description="The counter register")


class HeartbeatFreshness(Strict):
    """A heartbeat or timestamp register the device's firmware changes on every cycle."""

    method: Literal["heartbeat"]
    watch: str = Field(description="The heartbeat or timestamp register")


class StuckValueFreshness(Strict):
    """No counter: a noisy measurement that stays bit-identical this long is frozen.

    Only for a register whose real signal is noisier than its resolution (docs/profiles.md,
    "Freshness"): a quiet, coarsely quantised signal would trip it on a healthy sensor.
    """

    method: Literal["stuck_value"]
    watch: str = Field(description="The noisy measurement watched for a frozen value")
    frozen_after_ms: float = Field(gt=0, le=10_000)


Freshness = Annotated[
    CounterFreshness | HeartbeatFreshness | StuckValueFreshness, Field(discriminator="method")
]


class ModbusDevice(Strict):
    """A Modbus device whose register map is data.

    Registers of one table that lie next to each other (at most ``read_gap_max`` unused
    addresses apart) are read in one request, up to the Modbus limit of 125 registers (2000
    bits) per request; each request has the transport's ``timeout_ms`` as its own deadline.
    ``byte_order`` and ``word_order`` say how the device lays out a 32-bit value: big/big is
    ABCD (the Modbus convention), word_order little is CDAB ("word-swapped").
    """

    model: str
    transport: ModbusTransport
    response_ms: float = Field(
        2.0, ge=0, le=1000, description="Worst-case time the device takes to answer (vendor spec)"
    )
    poll_period_ms: float = Field(gt=0, le=10_000)
    registers: dict[str, Register]
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    read_gap_max: int = Field(
        0,
        ge=0,
        le=16,
        description="Unused addresses a request may span between two registers (the device "
        "must answer them; a strict one refuses an address it does not have)",
    )
    sample_counter: str | None = Field(
        None,
        description="Register that the device increments with every new measurement; "
        "a counter that stops moving makes the data stale even when the link answers. "
        "Short for freshness: {method: counter, register: NAME}.",
    )
    freshness: Freshness | None = Field(
        None, description="How new data is told from old (counter, heartbeat or stuck_value)"
    )
    sensor_response_ms: float = Field(
        0.0, ge=0, description="Time from a real change to a new value in the register."
    )

    @model_validator(mode="after")
    def _counter_is_a_register(self) -> ModbusDevice:
        if self.sample_counter is not None and self.freshness is not None:
            raise ValueError("give sample_counter or freshness, not both")
        fresh = self.freshness_method
        if fresh is not None:
            where = "sample_counter" if self.sample_counter is not None else "freshness.watch"
            if fresh.watch not in self.registers:
                raise ValueError(f"{where} {fresh.watch!r} is not in registers")
            if self.registers[fresh.watch].is_bit:
                raise ValueError(f"{where} {fresh.watch!r} is a bit: it cannot show new data")
        for table in READ_FUNCTION:
            taken: dict[int, str] = {}
            for name, reg in self.registers.items():
                if reg.table != table:
                    continue
                for a in range(reg.address, reg.address + reg.words):
                    if a in taken:
                        raise ValueError(
                            f"registers {taken[a]} and {name} share an address ({table} {a})"
                        )
                    taken[a] = name
        return self

    @property
    def freshness_method(
        self,
    ) -> CounterFreshness | HeartbeatFreshness | StuckValueFreshness | None:
        """The freshness method, with ``sample_counter`` read as a counter."""
        if self.sample_counter is not None:
            return CounterFreshness(method="counter", watch=self.sample_counter)
        return self.freshness

    @property
    def read_blocks(self) -> tuple[ReadBlock, ...]:
        """The requests of one poll: as few as the map allows, in table and address order."""
        blocks: list[ReadBlock] = []
        for table in READ_FUNCTION:
            spans = sorted(
                (r.address, r.address + r.words)
                for r in self.registers.values()
                if r.table == table
            )
            limit = MAX_READ_BITS if table in _BIT_TABLES else MAX_READ_REGISTERS
            first = end = -1
            for lo, hi in spans:
                if first >= 0 and lo - end <= self.read_gap_max and hi - first <= limit:
                    end = max(end, hi)
                    continue
                if first >= 0:
                    blocks.append(ReadBlock(table, first, end - first))
                first, end = lo, hi
            if first >= 0:
                blocks.append(ReadBlock(table, first, end - first))
        return tuple(blocks)

    @property
    def read_span(self) -> tuple[int, int]:
        """(first address, count) of a device read in one holding-register request."""
        blocks = self.read_blocks
        if len(blocks) != 1 or blocks[0].table != "holding":
            raise ValueError(f"{self.model} is not read in one holding-register request")
        return blocks[0].first, blocks[0].count


class Cooler(ModbusDevice):
    """The cooling unit: a Modbus device, and how it cools the skin (``method``): limit rows
    published for another cooling method never judge this setup's treatments, and the method
    bounds how low the skin may go (``device_profiles.clinical.SKIN_LOW_BY_COOLING``)."""

    method: CoolingMethod = Field(strict=False)


class SkinSensor(ModbusDevice):
    """The skin-temperature sensor: a Modbus device, and what it can see (``view``). A sensor
    that cannot measure skin (a pyrometer aimed through a window its band does not pass) is
    refused at load (``device_profiles.clinical.view_problem``)."""

    view: SkinSensorView


# --- the laser's serial command set -----------------------------------------------------------

LASER_SETTINGS = ("fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz")


class Command(Strict):
    """A request line and the reply that confirms it.

    ``send`` is a ``str.format`` template (``{value}`` for setters). ``reply`` is a regular
    expression that must match the whole reply line; named groups become values.
    """

    send: str
    reply: str

    @model_validator(mode="after")
    def _reply_compiles(self) -> Command:
        try:
            re.compile(self.reply)
        except re.error as e:
            raise ValueError(f"reply pattern does not compile: {e}") from e
        return self


class LaserProtocol(Strict):
    kind: Literal["serial_commands"]
    terminator: str = "\r\n"
    status: Command = Field(
        description="Reply groups: state, pulses and every setting; optionally delivered_j"
    )
    set: dict[str, Command] = Field(description="One setter per setting name")
    arm: Command
    standby: Command
    stop: Command
    heartbeat: Command
    # A service mode for calibration: single test shots into an energy meter, no patient
    # session. Optional; a laser that has one lists all three.
    service_on: Command | None = Field(None, description="Enter service mode (from STANDBY)")
    service_off: Command | None = Field(None, description="Leave service mode")
    service_shot: Command | None = Field(
        None, description="Fire one test shot at the current settings, in service mode"
    )
    identify: Command | None = Field(
        None,
        description="Asks the laser who it is; the reply pattern states the answer this "
        "profile's laser gives (model, serial number). Sent whenever the port was opened, "
        "before any other command: a re-enumerated adapter may lead to another device.",
    )
    error_reply: str = Field("ERR (?P<reason>.*)", description="A device-reported error line")
    max_reply_bytes: int = Field(
        96, gt=0, le=4096, description="Longest reply line, for the wire-time budget"
    )

    @model_validator(mode="after")
    def _covers_settings(self) -> LaserProtocol:
        missing = set(LASER_SETTINGS) - set(self.set)
        if missing:
            raise ValueError(f"no setter for {sorted(missing)}")
        for name, cmd in self.set.items():
            if "value" not in re.compile(cmd.reply).groupindex:
                raise ValueError(f"set.{name}.reply needs a (?P<value>...) group")
            try:
                cmd.send.format(value=1.0)
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"set.{name}.send must use only {{value}}: {e!r}") from e
        groups = set(re.compile(self.status.reply).groupindex)
        needed = {"state", "pulses", *LASER_SETTINGS}
        if not needed <= groups:
            raise ValueError(f"status reply lacks groups {sorted(needed - groups)}")
        service = {
            "service_on": self.service_on,
            "service_off": self.service_off,
            "service_shot": self.service_shot,
        }
        given = sorted(name for name, cmd in service.items() if cmd is not None)
        if given and len(given) != len(service):
            absent = sorted(set(service) - set(given))
            raise ValueError(
                "a service mode needs service_on, service_off and service_shot: "
                f"{', '.join(given)} given, {', '.join(absent)} missing"
            )
        return self

    @property
    def has_service_mode(self) -> bool:
        return self.service_shot is not None

    @property
    def reports_delivered_energy(self) -> bool:
        """The status reply carries the last pulse's delivered energy (an optional group
        ``delivered_j``, in joules, from the laser's own energy monitor): watched in treatment."""
        return "delivered_j" in re.compile(self.status.reply).groupindex


# --- lasers that are not line-based (issue 14 item 4) -----------------------------------------

#: The named values of a Modbus laser's register map, besides the four settings.
MODBUS_LASER_STATUS = ("state", "pulses")
MODBUS_LASER_COMMANDS = ("arm", "standby", "stop")


class LaserIdentity(Strict):
    """A register the laser identifies itself by (a model code, a serial number) and the
    value this profile's laser holds there."""

    name: str = Field(description="The register's name in the map")
    value: RawValue


class ModbusLaserProtocol(Strict):
    """A laser whose remote interface is Modbus: settings, status and commands as registers.

    ``registers`` is a register map as a Modbus device has it (``Register``). Required names:

    - ``state`` (a code, ``states`` maps it to STANDBY/READY/FIRING/FAULT) and ``pulses``;
    - each setting (``fluence_j_cm2``, ``pulse_ms``, ``spot_mm``, ``rep_rate_hz``), writable:
      a write is read back and the read-back value is the confirmed one;
    - ``arm``, ``standby``, ``stop``: writable coils; a command is the coil written 1 and
      read back, then the state read: a STOP is confirmed only when the laser reads STANDBY
      and its emission bit (if any) is clear;
    - ``heartbeat``: a writable register the bridge writes a new count to every period.

    Optional: ``status_word`` with a ``fault_mask`` (a set fault bit reads as FAULT),
    ``emission`` (a discrete input, set while the laser emits: FIRING whatever ``state``
    says), ``delivered_j`` (the last pulse's energy). A laser that refuses a command answers
    with a Modbus exception (04, SERVER DEVICE FAILURE), which is a ``DeviceRejected``.
    """

    kind: Literal["modbus_registers"]
    registers: dict[str, Register]
    states: dict[int, Literal["STANDBY", "READY", "FIRING", "FAULT"]] = Field(
        strict=False, description="Code in the state register -> state"
    )
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    read_gap_max: int = Field(0, ge=0, le=16)
    identify: LaserIdentity | None = None

    @model_validator(mode="after")
    def _complete(self) -> ModbusLaserProtocol:
        regs = self.registers
        needed = (*MODBUS_LASER_STATUS, *LASER_SETTINGS, *MODBUS_LASER_COMMANDS, "heartbeat")
        missing = [n for n in needed if n not in regs]
        if missing:
            raise ValueError(f"registers lack {missing}")
        for name in (*LASER_SETTINGS, "heartbeat"):
            if not regs[name].writable or regs[name].is_bit:
                raise ValueError(f"{name} must be a writable register")
        for name in MODBUS_LASER_COMMANDS:
            if regs[name].table != "coil" or not regs[name].writable:
                raise ValueError(f"{name} must be a writable coil (a command)")
        if "emission" in regs and not regs["emission"].is_bit:
            raise ValueError("emission must be a bit (a coil or a discrete input)")
        if "status_word" in regs and regs["status_word"].fault_mask is None:
            raise ValueError("status_word needs a fault_mask (which bits are faults)")
        if sorted(set(self.states.values())) != sorted(("STANDBY", "READY", "FIRING", "FAULT")):
            raise ValueError("states must name a code for each of STANDBY, READY, FIRING, FAULT")
        if self.identify is not None and self.identify.name not in regs:
            raise ValueError(f"identify.name {self.identify.name!r} is not in registers")
        return self

    def part(self, part: Literal["all", "status", "state"]) -> dict[str, Register]:
        """The registers a status poll reads (``status``), or that verify a command (``state``)."""
        if part == "all":
            return dict(self.registers)
        if part == "state":
            names = {"state", "status_word", "emission"}
            return {n: r for n, r in self.registers.items() if n in names}
        commands = {*MODBUS_LASER_COMMANDS, "heartbeat"}
        return {n: r for n, r in self.registers.items() if n not in commands}

    @property
    def has_service_mode(self) -> bool:
        return False

    @property
    def reports_delivered_energy(self) -> bool:
        return "delivered_j" in self.registers


FrameFieldType = Literal["uint8", "int16", "uint16", "int32", "uint32", "float32"]
FIELD_BYTES: dict[str, int] = {
    "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "float32": 4,
}  # fmt: skip


class FrameField(Strict):
    """One value in a binary frame's payload: value = raw x scale."""

    name: str
    type: FrameFieldType
    scale: float = Field(1.0, gt=0)


class FrameCommand(Strict):
    """A binary request (its command byte) and the command byte of the reply that confirms
    it. A setter's request and reply carry the value as ``value`` (one field)."""

    code: int = Field(strict=True, ge=0, le=0xFF)
    reply: int = Field(strict=True, ge=0, le=0xFF)


class FrameSetter(FrameCommand):
    type: FrameFieldType
    scale: float = Field(1.0, gt=0)


class BinaryFrameProtocol(Strict):
    """A serial laser that speaks binary frames, described as data.

    Every frame, request or reply: ``start_byte``, a length byte (the bytes of command and
    payload), the command byte, the payload, the checksum over length, command and payload
    (``crc16_modbus``: two bytes, low byte first; ``xor8``: one byte). Payload fields are in
    ``byte_order``. The status reply's payload is ``status_fields`` in order (``state``, a
    code that ``states`` names; ``pulses``; each setting; optionally ``delivered_j``). A
    refusal is a frame with command ``error_reply`` whose payload is the reason in ASCII.
    ``identify``'s reply payload must be ``identity`` (ASCII) exactly.
    """

    kind: Literal["binary_frames"]
    start_byte: int = Field(strict=True, ge=0, le=0xFF)
    checksum: Literal["crc16_modbus", "xor8"]
    byte_order: Literal["big", "little"] = "big"
    status: FrameCommand
    status_fields: list[FrameField]
    states: dict[int, Literal["STANDBY", "READY", "FIRING", "FAULT"]] = Field(strict=False)
    set: dict[str, FrameSetter]
    arm: FrameCommand
    standby: FrameCommand
    stop: FrameCommand
    heartbeat: FrameCommand
    error_reply: int = Field(strict=True, ge=0, le=0xFF)
    identify: FrameCommand | None = None
    identity: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _complete(self) -> BinaryFrameProtocol:
        missing = set(LASER_SETTINGS) - set(self.set)
        if missing:
            raise ValueError(f"no setter for {sorted(missing)}")
        names = [f.name for f in self.status_fields]
        if len(set(names)) != len(names):
            raise ValueError("status_fields repeat a name")
        lacking = {"state", "pulses", *LASER_SETTINGS} - set(names)
        if lacking:
            raise ValueError(f"status_fields lack {sorted(lacking)}")
        if sorted(set(self.states.values())) != sorted(("STANDBY", "READY", "FIRING", "FAULT")):
            raise ValueError("states must name a code for each of STANDBY, READY, FIRING, FAULT")
        if (self.identify is None) != (self.identity is None):
            raise ValueError("identify and identity go together")
        if self.identity is not None and not self.identity.isascii():
            raise ValueError("identity is ASCII text")
        commands = [self.status, self.arm, self.standby, self.stop, self.heartbeat]
        commands += list(self.set.values()) + ([self.identify] if self.identify else [])
        codes = [c.code for c in commands]
        if len(set(codes)) != len(codes):
            raise ValueError("two commands share a command byte")
        if self.error_reply in {c.reply for c in commands}:
            raise ValueError("error_reply is also a command's reply byte")
        if self.payload_bytes(self.status_fields) > 250:
            raise ValueError("the status payload is longer than a length byte can say")
        return self

    @staticmethod
    def payload_bytes(fields: list[FrameField]) -> int:
        return sum(FIELD_BYTES[f.type] for f in fields)

    @property
    def checksum_bytes(self) -> int:
        return 2 if self.checksum == "crc16_modbus" else 1

    def frame_bytes(self, payload_bytes: int) -> int:
        """A whole frame: start, length, command, payload, checksum."""
        return 3 + payload_bytes + self.checksum_bytes

    @property
    def has_service_mode(self) -> bool:
        return False

    @property
    def reports_delivered_energy(self) -> bool:
        return any(f.name == "delivered_j" for f in self.status_fields)


AnyLaserProtocol = Annotated[
    LaserProtocol | ModbusLaserProtocol | BinaryFrameProtocol, Field(discriminator="kind")
]
LaserTransport = Annotated[
    SerialTransport | ModbusTcpTransport | ModbusRtuTransport, Field(discriminator="kind")
]


class Laser(Strict):
    model: str
    wavelength_nm: float = Field(gt=200, lt=11_000)
    transport: LaserTransport
    response_ms: float = Field(
        2.0, ge=0, le=1000, description="Worst-case time the device takes to answer (vendor spec)"
    )
    protocol: AnyLaserProtocol
    poll_period_ms: float = Field(gt=0, le=1000)
    heartbeat_period_ms: float = Field(gt=0)
    heartbeat_timeout_ms: float = Field(
        gt=0, description="The laser drops to STANDBY by itself after this long without one"
    )

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> Laser:
        if self.heartbeat_period_ms * 2 > self.heartbeat_timeout_ms:
            raise ValueError("heartbeat_timeout_ms must be at least twice heartbeat_period_ms")
        modbus = self.protocol.kind == "modbus_registers"
        if modbus == isinstance(self.transport, SerialTransport):
            wanted = "a Modbus transport" if modbus else "a serial transport"
            raise ValueError(f"a {self.protocol.kind} laser needs {wanted}")
        return self

    def modbus_device(self, part: Literal["all", "status", "state"] = "all") -> ModbusDevice:
        """A Modbus laser's register map as a Modbus device (its reads, its budget).

        ``status``: what a status poll reads (not the command coils nor the heartbeat);
        ``state``: what verifies a command (the state, the status word, the emission bit)."""
        proto = self.protocol
        if not isinstance(proto, ModbusLaserProtocol) or isinstance(
            self.transport, SerialTransport
        ):
            raise ValueError(f"laser {self.model} is not reached over Modbus")
        return ModbusDevice(
            model=self.model,
            transport=self.transport,
            response_ms=self.response_ms,
            poll_period_ms=self.poll_period_ms,
            registers=proto.part(part),
            byte_order=proto.byte_order,
            word_order=proto.word_order,
            read_gap_max=proto.read_gap_max,
        )


# --- the hardware interlock output ------------------------------------------------------------


class ModbusCoilOutput(Strict):
    """A coil on a relay module; energised (True) permits emission. Wired fail-safe."""

    kind: Literal["modbus_coil"]
    model: str
    transport: ModbusTransport
    response_ms: float = Field(
        2.0, ge=0, le=1000, description="Worst-case time the device takes to answer (vendor spec)"
    )
    coil: int = Field(ge=0, le=65535)
    refresh_period_ms: float = Field(gt=0)
    watchdog_ms: float = Field(
        gt=0, description="The module opens the relay by itself when not refreshed this long"
    )

    @model_validator(mode="after")
    def _watchdog_fits(self) -> ModbusCoilOutput:
        if self.refresh_period_ms * 2 > self.watchdog_ms:
            raise ValueError("watchdog_ms must be at least twice refresh_period_ms")
        return self


class SerialLineOutput(Strict):
    """A control line of the laser's serial port drives the relay; asserted permits emission."""

    kind: Literal["serial_line"]
    line: Literal["DTR", "RTS"]


InterlockOutput = Annotated[ModbusCoilOutput | SerialLineOutput, Field(discriminator="kind")]


# --- the energy meter for calibration ---------------------------------------------------------


class EnergyMeterSetup(Strict):
    """The energy meter a setup calibrates its laser with (optional).

    ``device`` is a meter description (``device_profiles/meter.py``): a bundled name
    (``ophir-style``) or a path relative to the setup file; the loader resolves and
    validates it. ``port`` moves the meter (the description's own port otherwise).
    ``head_calibrated`` is the date of the meter head's own calibration, for a meter that
    cannot report it (the loader refuses a setup whose meter cannot report it and that does
    not state it); the head is due again ``head_calibration_interval_days`` later.
    """

    device: str = Field(min_length=1)
    port: str | None = Field(None, min_length=1)
    head_calibrated: IsoDate | None = None
    head_calibration_interval_days: int = Field(
        gt=0, le=3650, description="The meter head's own recalibration interval (its vendor's)"
    )


# --- calibration policy -----------------------------------------------------------------------

#: 21 CFR 1040.11(a): a medical laser's delivered output must be measurable within +-20 %.
OUTPUT_TOLERANCE_FRACTION = 0.20
OUTPUT_TOLERANCE_SOURCE = "21 CFR 1040.11(a): delivered output measurable within +-20 %"


def _distinct_ascending(values: list[float], what: str) -> None:
    if sorted(set(values)) != values:
        raise ValueError(f"{what} must be distinct and in ascending order, not {values}")


class DailyCheck(Strict):
    """The operator's short check at the start of each treatment day (vendors ask for one).

    With ``required`` arming is refused on a day without a passing daily check (or a
    passing full calibration) of this laser.
    """

    required: bool
    spot_mm: float = Field(gt=0, le=50)
    energies_j: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, max_length=2)
    shots_per_point: int = Field(5, ge=2, le=50)

    @model_validator(mode="after")
    def _ordered(self) -> DailyCheck:
        _distinct_ascending(self.energies_j, "daily_check.energies_j")
        return self


class ReferenceCheck(Strict):
    """A temperature reading checked against a reference thermometer, point by point.

    The offset (reading - reference) must lie within ``tolerance_c`` at every point. A
    reading *below* the reference is the dangerous direction: the skin (or plate) is hotter
    than shown, so an upper limit trips late.
    """

    points: int = Field(ge=1, le=5, description="Reference temperatures to check against")
    tolerance_c: float = Field(gt=0, le=5)
    sample_s: float = Field(2.0, gt=0, le=60, description="Readings averaged per point")
    source: str = Field(min_length=1, description="Citation, or 'clinic default, review'")


class CalibrationPolicy(Strict):
    """How the laser's output is calibrated and how long a calibration holds.

    A setup with this block needs an ``energy_meter`` and a laser with a service mode; arming
    is then refused without a passing calibration that has not expired (and, with
    ``daily_check.required``, without today's daily check). The sweep fires
    ``shots_per_point`` shots at each energy of ``energies_j`` for each spot of
    ``spot_sizes_mm`` into the meter; a point passes when its mean is within
    ``tolerance_fraction`` of the set energy.
    """

    interval_days: int = Field(gt=0, le=3650, description="A calibration holds this long")
    warning_days: int = Field(ge=0, le=365, description="Warn this long before it expires")
    interval_source: str = Field(min_length=1, description="Vendor schedule, or clinic default")
    tolerance_fraction: float = Field(OUTPUT_TOLERANCE_FRACTION, gt=0, le=OUTPUT_TOLERANCE_FRACTION)
    tolerance_source: str = Field(OUTPUT_TOLERANCE_SOURCE, min_length=1)
    spot_sizes_mm: list[Annotated[float, Field(gt=0, le=50)]] = Field(min_length=1, max_length=6)
    energies_j: list[Annotated[float, Field(gt=0)]] = Field(min_length=2, max_length=12)
    shots_per_point: int = Field(5, ge=2, le=50)
    shot_timeout_s: float = Field(2.0, gt=0, le=30, description="Wait for the meter's reading")
    daily_check: DailyCheck
    skin_sensor: ReferenceCheck
    plate: ReferenceCheck

    @model_validator(mode="after")
    def _sweep(self) -> CalibrationPolicy:
        _distinct_ascending(self.spot_sizes_mm, "calibration.spot_sizes_mm")
        _distinct_ascending(self.energies_j, "calibration.energies_j")
        if self.warning_days >= self.interval_days:
            raise ValueError(
                f"warning_days {self.warning_days} must be below interval_days {self.interval_days}"
            )
        return self

    @property
    def top_energy_j(self) -> float:
        """The highest energy a calibration or daily check fires."""
        return max(*self.energies_j, *self.daily_check.energies_j)

    @property
    def low_energy_j(self) -> float:
        return min(*self.energies_j, *self.daily_check.energies_j)


# --- limits -------------------------------------------------------------------------------------


class Range(Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.min <= self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SettingsLimit(Strict):
    """Allowed settings for some skin types over a range of spot sizes and pulse widths.

    A row applies to a setting when the skin type is listed and both the spot size and the
    pulse width lie in the row's ranges (borders included): ``device_profiles.limits.applies``,
    the one statement of that rule. A ``contraindicated`` row refuses
    every setting it applies to; its fluence and rate default to nothing allowed.
    """

    skin_types: list[SkinTypeName] = Field(min_length=1)
    spot_mm: Range
    pulse_ms: Range
    # Where and under which cooling the row's numbers were published. Left out: every site,
    # every method (a clinic's inline row); the bundled tables state both.
    sites: list[Annotated[TreatmentSite, Field(strict=False)]] = Field(
        default_factory=lambda: list(TreatmentSite), min_length=1
    )
    cooling: list[Annotated[CoolingMethod, Field(strict=False)]] = Field(
        default_factory=lambda: list(CoolingMethod), min_length=1
    )
    fluence_j_cm2: Range = Field(default_factory=lambda: Range(min=0.0, max=0.0))
    rep_rate_hz_max: float = Field(0.0, ge=0)
    cooling_required: bool = False
    contraindicated: bool = False
    test_spot_required: bool = False
    source: str = Field(min_length=1, description="Citation, or 'clinic default, review'")

    @model_validator(mode="after")
    def _allowed_or_contraindicated(self) -> SettingsLimit:
        for name, values in (("sites", self.sites), ("cooling", self.cooling)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {[str(v) for v in values]}")
        if self.spot_mm.min <= 0:
            raise ValueError(f"spot_mm.min {self.spot_mm.min:g} must be above 0")
        if self.pulse_ms.min <= 0:
            raise ValueError(f"pulse_ms.min {self.pulse_ms.min:g} must be above 0")
        if self.contraindicated:
            if self.fluence_j_cm2.max != 0 or self.rep_rate_hz_max != 0:
                raise ValueError("a contraindicated row allows no fluence and no rate: omit them")
        elif self.rep_rate_hz_max <= 0 or self.fluence_j_cm2.max <= 0:
            raise ValueError("rep_rate_hz_max and fluence_j_cm2.max must be above 0")
        return self

    @property
    def ceiling_j_cm2(self) -> float:
        """The highest fluence the row allows (0 when contraindicated)."""
        return 0.0 if self.contraindicated else self.fluence_j_cm2.max


class WavelengthRange(Strict):
    min: float = Field(gt=200, lt=11_000)
    max: float = Field(gt=200, lt=11_000)

    @model_validator(mode="after")
    def _ordered(self) -> WavelengthRange:
        if not self.min <= self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class LimitTableFile(Strict):
    """One laser family's limits by skin type, spot size and pulse width (a bundled data file).

    Validated at load against the invariants in ``device_profiles.limits``.
    """

    spec: Literal["1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str
    wavelength_nm: float | WavelengthRange = Field(
        description="One wavelength, or {min, max} for a family (940/980 nm diodes)"
    )
    rows: list[SettingsLimit] = Field(min_length=1)

    @property
    def wavelength_range(self) -> tuple[float, float]:
        w = self.wavelength_nm
        return (w, w) if isinstance(w, float | int) else (w.min, w.max)

    @model_validator(mode="after")
    def _invariants(self) -> LimitTableFile:
        from device_profiles.limits import invariant_errors

        errors = invariant_errors(self.rows, f"limit table {self.name}")
        if errors:
            raise ValueError("\n".join(errors))
        return self


class Band(Strict):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if not self.low < self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self


class SkinTempBand(Band):
    """The hard skin-temperature band: any reading outside it halts at once. ``high`` is the
    ceiling for the post-pulse peak; ``low`` is bounded by the cooling method (checked by
    ``Setup``, which knows the cooler). One that cannot protect skin is refused."""

    @model_validator(mode="after")
    def _protects_skin(self) -> SkinTempBand:
        if self.high > SKIN_TEMP_HIGH_MAX_C:
            raise ValueError(
                f"high {self.high:g} degC cannot protect skin: at most {SKIN_TEMP_HIGH_MAX_C:g} "
                "degC (the post-pulse peak: feedback systems aim for 40-45 degC, CoolTouch)"
            )
        if self.low < SKIN_TEMP_LOW_MIN_C:
            raise ValueError(
                f"low {self.low:g} degC cannot protect skin: at least {SKIN_TEMP_LOW_MIN_C:g} "
                "degC with cryogen cooling, -2 degC with any other (skin freezes at about -2 degC)"
            )
        return self


class ThermalDoseLimits(Strict):
    """Thermal dose from the measured skin-surface temperature (``monitor.core.dose_meter``).

    CEM43 (Sapareto & Dewey 1984) is validated for moderate rises over a 37-39 degC baseline
    (Dewhirst et al. 2003), not for millisecond heating: by default it is a trend, a warning
    at ``cem43_warn_min``. A profile may set ``cem43_halt_min``, a halting limit; the
    skin-temperature band stays the hard limit either way.
    """

    cem43_warn_min: float = Field(
        2.0,
        gt=0,
        description="CEM43 [min] at one treatment area that raises thermal_dose_warn",
    )
    cem43_halt_min: float | None = Field(
        None, gt=0, description="CEM43 [min] at one treatment area that halts (none: trend only)"
    )
    source: str = Field(
        "warning at 2 CEM43: van Rhoon et al. 2013 (below 2 CEM43 in uncontrolled conditions); "
        "clinic default, review",
        min_length=1,
    )

    @model_validator(mode="after")
    def _warn_before_halt(self) -> ThermalDoseLimits:
        if self.cem43_halt_min is not None and self.cem43_halt_min < self.cem43_warn_min:
            raise ValueError(
                f"cem43_halt_min {self.cem43_halt_min:g} is below cem43_warn_min "
                f"{self.cem43_warn_min:g}: the warning would never come first"
            )
        return self


class SensorDisagreement(Strict):
    """Two skin sensors that read further apart than ``tolerance_c`` for longer than
    ``max_ms`` halt: one of them is wrong, and nobody can tell which."""

    tolerance_c: float = Field(gt=0, le=10)
    max_ms: float = Field(gt=0, le=10_000)
    source: str = Field(min_length=1)


class Limits(Strict):
    skin_temp_c: SkinTempBand
    skin_temp_source: str
    skin_baseline_max_c: float = Field(
        description="The pre-pulse baseline (the lowest skin temperature between two pulses) "
        "above this halts: heat is building up, or the cooling is lost"
    )
    test_spot_read_after_days: int = Field(
        TEST_SPOT_READ_AFTER_DAYS,
        ge=TEST_SPOT_READ_AFTER_DAYS_MIN,
        le=365,
        description="A test spot counts once it was read at least this many days after it "
        "was done (vendor guidance: 1-2 weeks)",
    )
    hysteresis_c: float = Field(
        0.5,
        ge=0,
        le=5,
        description="A temperature alarm clears only this far back inside its band",
    )
    cooler_plate_temp_c: Band = Field(
        description="Treatment band: outside it arming is refused and a warning is shown"
    )
    cooler_plate_trip_c: Band = Field(
        description="Outside this wider band the plate no longer protects the skin: halt"
    )
    cooler_flow_l_min_min: float = Field(
        gt=0, description="Coolant flow below this halts (0 could never trip)"
    )
    stale_ms: dict[Literal["sensor", "cooler", "laser"], Annotated[float, Field(gt=0)]]
    required_reaction_ms: float = Field(gt=0)
    thermal_dose: ThermalDoseLimits = Field(default_factory=ThermalDoseLimits)
    sensor_disagreement: SensorDisagreement | None = Field(
        None, description="Needed (and allowed) only with a second skin sensor (sensor2)"
    )
    sensor_stuck_ms: float | None = Field(
        None,
        gt=0,
        description="A skin reading bit-identical for this long while the sensor's sample "
        "counter moves is a stuck sensor: halt (none: not checked)",
    )
    table: str | None = Field(
        None,
        description="A limit table: a bundled name (nd-yag-1064) or a path relative to the "
        "setup file. The loader fills `settings` from it; give one of the two.",
    )
    settings: list[SettingsLimit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _every_type_covered(self) -> Limits:
        if not self.settings:
            raise ValueError("limits need `table` (a limit table) or inline `settings` rows")
        from device_profiles.limits import invariant_errors

        errors = invariant_errors(self.settings, f"limit table {self.table or 'limits.settings'}")
        if errors:
            raise ValueError("\n".join(errors))
        warn, trip = self.cooler_plate_temp_c, self.cooler_plate_trip_c
        if not (trip.low <= warn.low and warn.high <= trip.high):
            raise ValueError("cooler_plate_trip_c must contain cooler_plate_temp_c")
        if set(self.stale_ms) != {"sensor", "cooler", "laser"}:
            raise ValueError("stale_ms needs sensor, cooler and laser")
        # A frozen sensor is noticed only once its data is stale_ms old: no setup can promise
        # a faster reaction than that.
        if self.stale_ms["sensor"] > self.required_reaction_ms:
            raise ValueError(
                f"stale_ms.sensor {self.stale_ms['sensor']:g} ms is above required_reaction_ms "
                f"{self.required_reaction_ms:g} ms: a frozen sensor would be noticed too late"
            )
        base = self.skin_baseline_max_c
        if not self.skin_temp_c.low < base < self.skin_temp_c.high:
            raise ValueError(
                f"skin_baseline_max_c {base:g} degC must lie inside skin_temp_c "
                f"({self.skin_temp_c.low:g}-{self.skin_temp_c.high:g} degC)"
            )
        if base > SKIN_BASELINE_MAX_C:
            raise ValueError(
                f"skin_baseline_max_c {base:g} degC cannot protect skin: at most "
                f"{SKIN_BASELINE_MAX_C:g} degC (a baseline is held for minutes; thermal dose "
                "accrues by the minute towards 43 degC, Sapareto & Dewey 1984)"
            )
        # A plate allowed to run warmer than the skin ceiling heats the skin towards a burn.
        if self.cooler_plate_trip_c.high > self.skin_temp_c.high:
            raise ValueError(
                f"cooler_plate_trip_c.high {self.cooler_plate_trip_c.high:g} degC is above "
                f"skin_temp_c.high {self.skin_temp_c.high:g} degC: the plate would heat the skin"
            )
        return self


class Loop(Strict):
    rate_hz: float = Field(gt=0, le=10_000)
    ring_samples: int = Field(1024, ge=16)


class Clinic(Strict):
    """Who runs the treatment and what the patient is told: part of every session record."""

    name: str = Field(min_length=1)
    emergency_contact: str = Field(
        min_length=1, description="Who the patient calls after treatment, with a number"
    )
    aftercare_instructions: str = Field(min_length=1)


class RecordAnchor(Strict):
    """The key that signs this laser's checkpoints of its session log's head.

    Only the public half is in the profile (made by ``laserguard keys init``): whoever checks
    a log trusts the profile, not a key file beside the log.
    """

    public_key: str = Field(
        pattern=r"^ed25519:[0-9a-f]{64}$",
        description="ed25519: and the 32-byte public key in hex",
    )


#: Why a setup with ``inline_meter`` is refused (docs/calibration.md, "Drift in treatment").
INLINE_METER_REFUSAL = (
    "inline_meter: watching delivered energy in treatment with an in-line energy meter is not "
    "supported yet; only a laser whose status reports delivered_j is watched: remove the block "
    "(the calibration and the daily check remain this laser's output checks)"
)


class Setup(Strict):
    """A clinic setup: the devices beside one laser, and the limits for it."""

    spec: Literal["1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str
    laser: Laser
    cooler: Cooler
    sensor: SkinSensor
    # A SkinSensor like the first: its reading feeds the same checks, so it states what it
    # sees and is refused at load by the same rule when it cannot see skin (issue 12, item 6).
    sensor2: SkinSensor | None = Field(
        None,
        description="A second, redundant skin sensor on the same spot, with its own view: the "
        "hotter reading is checked against the high limit, the colder against the low one, and "
        "a disagreement beyond limits.sensor_disagreement halts",
    )
    interlock_output: InterlockOutput
    limits: Limits
    loop: Loop
    clinic: Clinic | None = None
    energy_meter: EnergyMeterSetup | None = None
    calibration: CalibrationPolicy | None = None
    anchor: RecordAnchor | None = None
    # An energy meter in line during treatment, to watch delivered energy per pulse for a
    # laser that does not report it: not built yet. The name is reserved so that a setup
    # asking for it is refused in words, never loaded as if it were watched.
    inline_meter: Any = Field(None, description=INLINE_METER_REFUSAL)

    @model_validator(mode="after")
    def _no_inline_meter_yet(self) -> Setup:
        if self.inline_meter is not None:
            raise ValueError(INLINE_METER_REFUSAL)
        return self

    @model_validator(mode="after")
    def _calibrated_with_a_meter(self) -> Setup:
        if self.calibration is None:
            return self
        if self.energy_meter is None:
            raise ValueError("calibration needs an energy_meter to calibrate the laser with")
        if not self.laser.protocol.has_service_mode:
            raise ValueError(
                "calibration needs the laser's service mode (laser.protocol.service_on, "
                "service_off, service_shot): test shots are fired without a patient session"
            )
        return self

    def rtu_devices(self) -> dict[str, ModbusRtuTransport]:
        """Every device reached over Modbus RTU, by its name in the setup."""
        out = self.interlock_output
        transports = {
            "laser": self.laser.transport,
            "cooler": self.cooler.transport,
            "sensor": self.sensor.transport,
            "sensor2": None if self.sensor2 is None else self.sensor2.transport,
            "interlock_output": out.transport if isinstance(out, ModbusCoilOutput) else None,
        }
        return {k: t for k, t in transports.items() if isinstance(t, ModbusRtuTransport)}

    @model_validator(mode="after")
    def _shared_rtu_lines(self) -> Setup:
        """Devices on one RTU port share its wire: one baud rate, parity and stop bits, and a
        unit id each (two devices answering one id would both reply, garbling the line)."""
        by_port: dict[str, list[tuple[str, ModbusRtuTransport]]] = {}
        for who, t in self.rtu_devices().items():
            by_port.setdefault(t.port, []).append((who, t))
        for port, users in by_port.items():
            (first, ft), *others = users
            for who, t in others:
                if (t.baudrate, t.parity, t.stopbits) != (ft.baudrate, ft.parity, ft.stopbits):
                    raise ValueError(
                        f"{first} and {who} share the RTU port {port} but not its settings "
                        "(baudrate, parity, stopbits): one wire has one"
                    )
            ids = [t.device_id for _, t in users]
            if len(set(ids)) != len(ids):
                names = ", ".join(who for who, _ in users)
                raise ValueError(
                    f"{names} share the RTU port {port}: each needs its own device_id, not {ids}"
                )
        return self

    @model_validator(mode="after")
    def _line_output_on_a_line_laser(self) -> Setup:
        out = self.interlock_output
        if isinstance(out, SerialLineOutput) and self.laser.protocol.kind != "serial_commands":
            raise ValueError(
                f"a serial_line interlock output drives a line of the laser's command port: "
                f"a {self.laser.protocol.kind} laser has none here; use a modbus_coil relay"
            )
        return self

    @model_validator(mode="after")
    def _channels_present(self) -> Setup:
        if "skin_temp_c" not in self.sensor.registers:
            raise ValueError("sensor.registers needs skin_temp_c")
        for name in ("plate_temp_c", "flow_l_min", "fault_code"):
            if name not in self.cooler.registers:
                raise ValueError(f"cooler.registers needs {name}")
        if "fault_code" not in self.sensor.registers:
            raise ValueError("sensor.registers needs fault_code (0 = no fault)")
        fresh = self.sensor.freshness_method
        if fresh is None:
            raise ValueError(
                "the sensor needs a way to tell new data from old (sample_counter, or "
                "freshness: counter, heartbeat or stuck_value; docs/profiles.md, Freshness): "
                "a frozen sensor would otherwise pass as a live one"
            )
        for who, dev in (("sensor", self.sensor), ("cooler", self.cooler)):
            stuck = dev.freshness_method
            if not isinstance(stuck, StuckValueFreshness):
                continue
            # Frozen on the read after frozen_after_ms: at worst one poll period later.
            noticed_ms = stuck.frozen_after_ms + dev.poll_period_ms
            if noticed_ms > self.limits.required_reaction_ms:
                raise ValueError(
                    f"{who}.freshness.frozen_after_ms {stuck.frozen_after_ms:g} ms + poll period "
                    f"{dev.poll_period_ms:g} ms = {noticed_ms:g} ms is above required_reaction_ms "
                    f"{self.limits.required_reaction_ms:g} ms: a frozen {who} would be noticed "
                    "too late"
                )
            reg = dev.registers[stuck.watch]
            if reg.fault_mask is not None or (reg.table != "holding" and reg.table != "input"):
                raise ValueError(
                    f"{who}.freshness.watch {stuck.watch!r} must be a measured value, "
                    "not a status word or a bit"
                )
        floor = SKIN_LOW_BY_COOLING[self.cooler.method]
        if self.limits.skin_temp_c.low < floor.lowest_c:
            raise ValueError(
                f"limits.skin_temp_c.low {self.limits.skin_temp_c.low:g} degC is below the "
                f"{floor.lowest_c:g} degC that {self.cooler.method} cooling allows: "
                f"{floor.source}"
            )
        if self.sensor2 is not None:
            for name in ("skin_temp_c", "fault_code"):
                if name not in self.sensor2.registers:
                    raise ValueError(f"sensor2.registers needs {name}")
            if self.sensor2.freshness_method is None:
                raise ValueError(
                    "sensor2 needs a way to tell new data from old (sample_counter or freshness)"
                )
            if self.limits.sensor_disagreement is None:
                raise ValueError(
                    "a second skin sensor needs limits.sensor_disagreement (tolerance_c, max_ms)"
                )
        elif self.limits.sensor_disagreement is not None:
            raise ValueError("limits.sensor_disagreement needs a second skin sensor (sensor2)")
        return self


# --- pre-treatment risk assessment -------------------------------------------------------------


class Restrictions(Strict):
    """How a relative contraindication narrows the limits. Restrictions only ever tighten."""

    test_spot_only: bool = Field(
        False, description="Test spots first: single pulses at reduced fluence until reviewed"
    )
    fluence_factor: float = Field(
        1.0, gt=0, le=1, description="Every fluence ceiling is multiplied by this"
    )
    max_rep_rate_hz: float | None = Field(None, gt=0, description="A lower rate ceiling")
    test_spot_pulses: int | None = Field(
        None,
        ge=1,
        le=20,
        description="With test_spot_only: how many pulses before the pause that a clinician "
        "ends after reviewing the test sites",
    )

    @property
    def any(self) -> bool:
        return self != Restrictions()

    def combine(self, other: Restrictions) -> Restrictions:
        """The stricter of both, field by field."""
        rates = [r for r in (self.max_rep_rate_hz, other.max_rep_rate_hz) if r is not None]
        spots = [n for n in (self.test_spot_pulses, other.test_spot_pulses) if n is not None]
        return Restrictions(
            test_spot_only=self.test_spot_only or other.test_spot_only,
            fluence_factor=min(self.fluence_factor, other.fluence_factor),
            max_rep_rate_hz=min(rates) if rates else None,
            test_spot_pulses=min(spots) if spots else None,
        )


ContraKind = Literal["absolute", "relative"]


def _kind_problem(kind: ContraKind, restrictions: Restrictions) -> str | None:
    if kind == "absolute" and restrictions.any:
        return "an absolute contraindication refuses; no restrictions"
    if kind == "relative" and not restrictions.any:
        return "a relative contraindication needs restrictions"
    if restrictions.test_spot_only != (restrictions.test_spot_pulses is not None):
        return "test_spot_only and test_spot_pulses go together"
    return None


class WavelengthRule(Strict):
    """A question whose weight depends on the laser: at these wavelengths it is of this kind
    (a recent tan refuses at 532-755 nm, where melanin absorbs strongly, and restricts at
    1064 nm)."""

    wavelength_nm: WavelengthRange
    kind: ContraKind
    restrictions: Restrictions = Field(default_factory=Restrictions)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _restrictions_fit_kind(self) -> WavelengthRule:
        problem = _kind_problem(self.kind, self.restrictions)
        if problem is not None:
            raise ValueError(problem)
        return self


class Contraindication(Strict):
    """One pre-treatment question. ``present`` (answered yes) refuses or restricts arming.

    ``by_wavelength`` overrides ``kind`` (and its restrictions) for the lasers in a range;
    ``at(wavelength_nm)`` gives the kind that applies (with no wavelength: the strictest).
    ``sites``: the question concerns only treatments there (venous reflux: the legs); a yes
    elsewhere does not count. Left out: every site.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    question: str = Field(min_length=1)
    kind: ContraKind
    restrictions: Restrictions = Field(default_factory=Restrictions)
    by_wavelength: list[WavelengthRule] = Field(default_factory=list)
    sites: list[Annotated[TreatmentSite, Field(strict=False)]] | None = Field(None, min_length=1)
    advice: str = Field(min_length=1, description="What the clinician does about it")
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _restrictions_fit_kind(self) -> Contraindication:
        problem = _kind_problem(self.kind, self.restrictions)
        if problem is not None:
            raise ValueError(f"{self.id}: {problem}")
        for a, b in itertools.combinations(self.by_wavelength, 2):
            wa, wb = a.wavelength_nm, b.wavelength_nm
            if wa.min <= wb.max and wb.min <= wa.max:
                raise ValueError(f"{self.id}: by_wavelength ranges overlap")
        return self

    def at(self, wavelength_nm: float | None) -> tuple[ContraKind, Restrictions, str]:
        """(kind, restrictions, source) for a laser at ``wavelength_nm``. None (not known):
        the strictest over every wavelength (absolute if any rule is)."""
        if wavelength_nm is None:
            rules = [(r.kind, r.restrictions, r.source) for r in self.by_wavelength]
            for kind, restrictions, source in rules:
                if kind == "absolute":
                    return kind, restrictions, f"{source} (laser wavelength not known)"
            combined = self.restrictions
            for _, restrictions, _ in rules:
                combined = combined.combine(restrictions)
            return self.kind, combined, self.source
        for r in self.by_wavelength:
            if r.wavelength_nm.min <= wavelength_nm <= r.wavelength_nm.max:
                return r.kind, r.restrictions, r.source
        return self.kind, self.restrictions, self.source

    def concerns(self, site: TreatmentSite | None) -> bool:
        """Whether a yes counts for a treatment at ``site`` (None, not known: it counts)."""
        return self.sites is None or site is None or site in self.sites


class Contraindications(Strict):
    spec: Literal["1"]
    version: int = Field(ge=1)
    questions: list[Contraindication] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Contraindications:
        ids = [q.id for q in self.questions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"question ids used twice: {dupes}")
        return self
