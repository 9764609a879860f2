"""The driver layer: wire data in, named values with units out.

A contract suite: every test that touches a device runs once per backend (``line_to``:
virtual and a real pty; ``registers_to``: virtual and real Modbus TCP), against the same
in-process device, so the virtual transport is known to stand in for the wires.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from device_profiles.registers import decode, encode
from device_profiles.schema import ModbusDevice, Register, RegisterTable, SerialLineOutput, Setup
from firmware_bridge.drivers import (
    InterlockOutputDriver,
    LaserStatus,
    LineLaserDriver,
    RegisterDevice,
)
from firmware_bridge.errors import DeviceRejected, LinkLost, ProtocolError
from firmware_bridge.transport import RegisterTransport
from firmware_bridge.virtual import RegisterMap, VirtualLineTransport, VirtualRegisterTransport
from tests.firmware_bridge.backends import LineBackend, LineDevice, RegisterBackend

pytestmark = pytest.mark.timeout(20)

STATUS = "STATUS READY PULSES=12 F=120.0 PW=30.0 SPOT=3.0 RATE=1.00"
COOLER_MAP = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0}  # the bundled cooler's five registers

Answer = Callable[[str], str | None]
MakeLaser = Callable[[Answer], tuple[LineLaserDriver, LineDevice]]


@pytest.fixture
def laser(demo: Setup, line_to: LineBackend) -> MakeLaser:
    """The bundled laser's driver, talking over each backend to a device that answers so."""

    def make(answer: Answer) -> tuple[LineLaserDriver, LineDevice]:
        device = LineDevice(answer)
        return LineLaserDriver(demo.laser, line_to(device)), device

    return make


# --- the laser's serial command set -----------------------------------------------------------


def test_status_becomes_named_values_with_units(laser: MakeLaser) -> None:
    driver, device = laser(lambda _: STATUS)
    status = driver.status()
    assert device.received == ["STATUS?"]
    assert status == LaserStatus(
        state="READY",
        pulses=12,
        settings={"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0},
    )


def test_set_sends_the_profile_template_and_returns_the_confirmed_value(laser: MakeLaser) -> None:
    # The laser rounds to its own step: the confirmed value is what counts, not the request.
    driver, device = laser(lambda sent: "OK F=119.5" if sent.startswith("SET F") else "?")
    assert driver.set("fluence_j_cm2", 119.54) == 119.5
    assert device.received == ["SET F 119.5"]


@pytest.mark.parametrize(
    ("name", "value", "sent", "reply", "confirmed"),
    [
        ("pulse_ms", 30, "SET PW 30.0", "OK PW=30.0", 30.0),
        ("spot_mm", 2.5, "SET SPOT 2.5", "OK SPOT=2.5", 2.5),
        ("rep_rate_hz", 1.5, "SET RATE 1.50", "OK RATE=1.50", 1.5),
    ],
)
def test_every_setter_uses_its_own_command(
    laser: MakeLaser, name: str, value: float, sent: str, reply: str, confirmed: float
) -> None:
    driver, device = laser(lambda _: reply)
    assert driver.set(name, value) == confirmed
    assert device.received == [sent]


@pytest.mark.parametrize(
    ("call", "sent", "reply"),
    [
        (LineLaserDriver.arm, "ARM", "OK READY"),
        (LineLaserDriver.standby, "STANDBY", "OK STANDBY"),
        (LineLaserDriver.stop, "STOP", "OK STOPPED"),
        (LineLaserDriver.heartbeat, "HB", "OK HB"),
    ],
    ids=["arm", "standby", "stop", "heartbeat"],
)
def test_simple_commands_need_their_confirmation(
    laser: MakeLaser, call: Callable[[LineLaserDriver], None], sent: str, reply: str
) -> None:
    driver, device = laser(lambda _: reply)
    call(driver)
    assert device.received == [sent]
    # Another command's confirmation is not this one's.
    wrong, _ = laser(lambda _: "OK SOMETHING ELSE")
    with pytest.raises(ProtocolError, match=sent):
        call(wrong)


def test_an_error_reply_is_device_rejected_with_the_reason(laser: MakeLaser) -> None:
    driver, _ = laser(lambda _: "ERR interlock loop open")
    with pytest.raises(DeviceRejected) as exc:
        driver.arm()
    assert exc.value.command == "ARM"
    assert exc.value.reason == "interlock loop open"
    assert "interlock loop open" in str(exc.value)


def test_an_error_reply_to_a_setter_names_the_request(laser: MakeLaser) -> None:
    driver, _ = laser(lambda _: "ERR out of range")
    with pytest.raises(DeviceRejected) as exc:
        driver.set("fluence_j_cm2", 400)
    assert exc.value.command == "SET F 400.0"
    assert exc.value.reason == "out of range"


@pytest.mark.parametrize(
    "reply",
    [
        "STATUS WARMUP PULSES=1 F=120.0 PW=30.0 SPOT=3.0 RATE=1.00",  # a state it cannot be in
        "STATUS READY PULSES=12 F=120.0 PW=30.0",  # cut short
        STATUS + " EXTRA",  # the pattern must match the whole line
        "",
        "err lowercase is not the error reply",
    ],
    ids=["unknown-state", "truncated", "trailing", "empty", "not-an-error-line"],
)
def test_a_garbled_status_is_a_protocol_error(laser: MakeLaser, reply: str) -> None:
    driver, _ = laser(lambda _: reply)
    with pytest.raises(ProtocolError, match="unexpected reply to 'STATUS\\?'"):
        driver.status()


def test_a_malformed_number_in_status_is_a_protocol_error(laser: MakeLaser) -> None:
    driver, _ = laser(lambda _: STATUS.replace("F=120.0", "F=1.2.0"))
    with pytest.raises(ProtocolError, match="malformed number"):
        driver.status()


def test_a_malformed_confirmation_is_a_protocol_error(laser: MakeLaser) -> None:
    driver, _ = laser(lambda _: "OK F=12..5")
    with pytest.raises(ProtocolError, match="fluence_j_cm2"):
        driver.set("fluence_j_cm2", 12.5)


def test_a_lost_link_passes_through_the_driver(laser: MakeLaser) -> None:
    driver, device = laser(lambda _: None)  # a laser that does not answer
    with pytest.raises(LinkLost, match="no reply to 'STOP'"):
        driver.stop()
    assert device.received == ["STOP"]


# --- register encoding ------------------------------------------------------------------------

TEMP = Register(address=0, type="int16", scale=0.01, unit="degC")
FLOW = Register(address=1, type="uint16", scale=0.01, unit="L/min")
COUNT = Register(address=2, type="uint16", scale=1, unit="count")


@pytest.mark.parametrize(
    ("reg", "raw", "value"),
    [
        (TEMP, 0, 0.0),
        (TEMP, 2500, 25.0),
        (TEMP, 0xFFFF, -0.01),
        (TEMP, 0xFF38, -2.0),
        (TEMP, 0x7FFF, 327.67),
        (TEMP, 0x8000, -327.68),
        (FLOW, 0xFFFF, 655.35),
        (FLOW, 0x8000, 327.68),
        (COUNT, 0xFFFF, 65535),
    ],
)
def test_decode(reg: Register, raw: int, value: float) -> None:
    assert decode(reg, raw).value == pytest.approx(value)
    assert decode(reg, raw).fault is None  # no sentinels stated: every word is a number


@pytest.mark.parametrize(
    ("reg", "value", "raw"),
    [
        (TEMP, 8.0, 800),
        (TEMP, -0.01, 0xFFFF),
        (TEMP, -2.0, 0xFF38),
        (TEMP, -327.68, 0x8000),
        (TEMP, 4.004, 400),  # rounds to the register's step
        (FLOW, 655.35, 0xFFFF),
        (COUNT, 7, 7),
    ],
)
def test_encode(reg: Register, value: float, raw: int) -> None:
    assert encode(reg, value) == raw
    assert decode(reg, encode(reg, value)).value == pytest.approx(round(value, 2))


@pytest.mark.parametrize(
    ("reg", "value"),
    [(TEMP, 327.68), (TEMP, -327.69), (FLOW, -0.01), (FLOW, 655.36), (COUNT, 65536)],
)
def test_encode_refuses_what_does_not_fit(reg: Register, value: float) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode(reg, value)


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        encode(TEMP, math.nan)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_encode_refuses_infinity_with_value_error(value: float) -> None:
    with pytest.raises(ValueError):
        encode(TEMP, value)


# --- register devices -------------------------------------------------------------------------


def test_read_maps_one_block_to_names(demo: Setup, registers_to: RegisterBackend) -> None:
    cooler = RegisterMap({0: 0xFF38, 1: 150, 2: 800, 3: 0, 4: 41})
    reading = RegisterDevice(demo.cooler, registers_to(cooler)).read()
    assert cooler.reads == [(0, 5)]  # one request per poll
    assert reading.faults == {}
    assert reading.values == pytest.approx(
        {
            "plate_temp_c": -2.0,
            "flow_l_min": 1.5,
            "setpoint_c": 8.0,
            "fault_code": 0,
            "sample_counter": 41,
        }
    )


@pytest.mark.parametrize(
    ("gap", "reads"), [(0, [(10, 1), (13, 1)]), (2, [(10, 4)])], ids=["strict", "gap-allowed"]
)
def test_read_of_a_sparse_map_starts_at_its_first_address(
    registers_to: RegisterBackend, gap: int, reads: list[tuple[int, int]]
) -> None:
    """A gap is read across only where the profile says the device answers it
    (``read_gap_max``): a strict device refuses an address it does not have."""
    profile = ModbusDevice.model_validate(
        {
            "model": "pyrometer with a gap in its map",
            "transport": {"kind": "modbus_tcp", "host": "127.0.0.1"},
            "poll_period_ms": 10,
            "sample_counter": "n",
            "read_gap_max": gap,
            "registers": {
                "n": {"address": 13, "type": "uint16", "unit": "count"},
                "skin_temp_c": {"address": 10, "scale": 0.1, "unit": "degC"},
            },
        }
    )
    pyrometer = RegisterMap({10: 331, 11: 9999, 12: 9999, 13: 5})
    reading = RegisterDevice(profile, registers_to(pyrometer)).read()
    assert reading.values == pytest.approx({"skin_temp_c": 33.1, "n": 5})
    assert pyrometer.reads == reads


def test_write_encodes_a_writable_register(demo: Setup, registers_to: RegisterBackend) -> None:
    cooler = RegisterMap(COOLER_MAP)
    RegisterDevice(demo.cooler, registers_to(cooler)).write("setpoint_c", -1.5)
    assert cooler.writes == [(2, 0xFF6A)]


def test_a_register_the_profile_does_not_mark_writable_is_refused(
    demo: Setup, registers_to: RegisterBackend
) -> None:
    cooler = RegisterMap(COOLER_MAP)
    with pytest.raises(ValueError, match="plate_temp_c is not writable"):
        RegisterDevice(demo.cooler, registers_to(cooler)).write("plate_temp_c", 5.0)
    assert cooler.writes == []


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (400.0, "does not fit a int16"),
        (327.67, r"outside the register's range -5\.\.15"),
        (15.01, r"outside the register's range -5\.\.15"),
        (-5.01, r"outside the register's range -5\.\.15"),
    ],
)
def test_an_out_of_range_setpoint_is_refused_before_the_wire(
    demo: Setup, registers_to: RegisterBackend, value: float, match: str
) -> None:
    cooler = RegisterMap(COOLER_MAP)
    with pytest.raises(ValueError, match=match):
        RegisterDevice(demo.cooler, registers_to(cooler)).write("setpoint_c", value)
    assert cooler.writes == []


@pytest.mark.parametrize(("value", "raw"), [(15.0, 1500), (-5.0, 0xFE0C), (15.004, 1500)])
def test_a_setpoint_on_the_border_of_its_range_is_written(
    demo: Setup, registers_to: RegisterBackend, value: float, raw: int
) -> None:
    cooler = RegisterMap(COOLER_MAP)
    RegisterDevice(demo.cooler, registers_to(cooler)).write("setpoint_c", value)
    assert cooler.writes == [(2, raw)]


# --- sentinels (issue 7 item 5) ---------------------------------------------------------------

SENSED = Register.model_validate(
    {
        "address": 0,
        "type": "int16",
        "scale": 0.01,
        "unit": "degC",
        "sentinels": {"over_range": 0x7FFF, "under_range": 0x8000},
    }
)


@pytest.mark.parametrize(
    ("raw", "fault"), [(0x7FFF, "over-range (0x7FFF)"), (0x8000, "under-range (0x8000)")]
)
def test_item5_sentinel_is_a_sensor_fault(
    demo: Setup, registers_to: RegisterBackend, raw: int, fault: str
) -> None:
    """0x7FFF is not 327.67 degC and 0x8000 is not -327.68 degC: NaN, and the fault's name."""
    sensor = RegisterMap({0: raw, 1: 12, 2: 0})
    reading = RegisterDevice(demo.sensor, registers_to(sensor)).read()
    assert math.isnan(reading.values["skin_temp_c"])
    assert reading.faults == {"skin_temp_c": fault}
    assert reading.values["sample_counter"] == 12  # the other registers are still values


@pytest.mark.parametrize(("raw", "value"), [(0x7FFE, 327.66), (0x8001, -327.67), (0, 0.0)])
def test_item5_words_next_to_a_sentinel_are_values(raw: int, value: float) -> None:
    assert decode(SENSED, raw).value == pytest.approx(value)
    assert decode(SENSED, raw).fault is None


def test_item5_a_sentinel_is_never_written() -> None:
    reg = SENSED.model_copy(update={"writable": True})
    with pytest.raises(ValueError, match="encodes to a sentinel, 0x7FFF"):
        encode(reg, 327.67)
    with pytest.raises(ValueError, match="encodes to a sentinel, 0x8000"):
        encode(reg, -327.68)
    assert encode(reg, 327.66) == 0x7FFE


# --- the interlock output ---------------------------------------------------------------------


class Closing(RegisterTransport):
    """Passes every call to ``inner``; notes whether the driver closed it."""

    def __init__(self, inner: RegisterTransport) -> None:
        self.inner = inner
        self.closed = False

    def read_table(self, table: RegisterTable, address: int, count: int) -> list[int]:
        return self.inner.read_table(table, address, count)

    def write_register(self, address: int, raw: int) -> None:
        self.inner.write_register(address, raw)

    def write_registers(self, address: int, words: list[int]) -> None:
        self.inner.write_registers(address, words)

    def write_coil(self, address: int, value: bool) -> None:
        self.inner.write_coil(address, value)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_a_coil_output_writes_the_profile_coil(demo: Setup, registers_to: RegisterBackend) -> None:
    relay = RegisterMap(coils=[0])
    transport = Closing(registers_to(relay))
    out = InterlockOutputDriver(demo.interlock_output, registers=transport)
    out.set_permit(True)
    assert relay.coils == {0: True}
    out.set_permit(False)
    assert relay.coils == {0: False}
    assert relay.coil_writes == [(0, True), (0, False)]
    out.close()
    assert transport.closed


def test_a_coil_the_relay_does_not_have_is_refused(
    demo: Setup, registers_to: RegisterBackend
) -> None:
    relay = RegisterMap(coils=[1])  # a module wired on another channel than the profile says
    out = InterlockOutputDriver(demo.interlock_output, registers=registers_to(relay))
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        out.set_permit(True)
    assert relay.coils == {1: False}


def test_a_serial_line_output_drives_the_line_and_leaves_the_port_open(
    line_to: LineBackend,
) -> None:
    laser = LineDevice(lambda _: "OK HB")
    line = line_to(laser)
    out = InterlockOutputDriver(SerialLineOutput(kind="serial_line", line="DTR"), line=line)
    if line_to.kind == "pty":
        # A pty has no control lines: driving DTR fails loudly (a lost link), never silently.
        with pytest.raises(LinkLost, match="cannot drive DTR"):
            out.set_permit(True)
    else:
        assert isinstance(line, VirtualLineTransport)
        out.set_permit(True)
        assert line.control_lines == {"DTR": True}
        out.set_permit(False)
        assert line.control_lines == {"DTR": False}
    out.close()
    assert line.request("HB") == "OK HB"  # the port belongs to the laser: still open
    assert laser.received == ["HB"]


def test_an_output_without_its_transport_is_refused(demo: Setup) -> None:
    line = VirtualLineTransport(lambda _: "")
    registers = VirtualRegisterTransport(RegisterMap())
    with pytest.raises(ValueError, match="register transport"):
        InterlockOutputDriver(demo.interlock_output, line=line)
    with pytest.raises(ValueError, match="line transport"):
        InterlockOutputDriver(SerialLineOutput(kind="serial_line", line="RTS"), registers=registers)
