"""Issue 11 item 1: the energy-meter driver against hostile meters on a real pseudo-terminal.

Each meter here is a thread on the far side of a pty that answers what a broken, lying or
flooding meter would; the driver talks to it through the real ``SerialLineTransport``. The
honest simulated meter is in tests/firmware_bridge/test_meter_over_sim.py.
"""

from __future__ import annotations

import os
import pty
import select
import threading
import tty
from collections.abc import Callable, Iterator
from datetime import date

import pytest

from device_profiles.loader import load_meter
from device_profiles.meter import MeterDescription
from firmware_bridge.errors import (
    DeviceRejected,
    LinkLost,
    MeterOverRange,
    NoPulseMeasured,
    ProtocolError,
)
from firmware_bridge.meter import EnergyMeterDriver, meter_transport

pytestmark = pytest.mark.timeout(30)

Answer = Callable[[str], bytes | None]


class MeterPeer:
    """A meter on the slave side of a pty: ``answer(line)`` gives the bytes it sends back
    (terminator included), or None to stay silent."""

    def __init__(self, answer: Answer, terminator: bytes) -> None:
        self.answer = answer
        self.terminator = terminator
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="meter-peer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.01)
                if not ready:
                    continue
                buf += os.read(self.master, 4096)
                while self.terminator in buf:
                    raw, buf = buf.split(self.terminator, 1)
                    line = raw.decode("ascii")
                    self.received.append(line)
                    reply = self.answer(line)
                    if reply is not None:
                        view = memoryview(reply)
                        while view and not self._stop.is_set():
                            # A flood larger than the pty's buffer: write what fits, wait.
                            _, writable, _ = select.select([], [self.master], [], 0.05)
                            if writable:
                                view = view[os.write(self.master, view) :]
        finally:
            os.close(self.master)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.slave)


MakeMeter = Callable[..., tuple[EnergyMeterDriver, MeterPeer]]


@pytest.fixture
def meter() -> Iterator[MakeMeter]:
    made: list[tuple[EnergyMeterDriver, MeterPeer]] = []

    def make(
        name: str, answers: dict[str, str | bytes | None], *, timeout_ms: float = 150.0
    ) -> tuple[EnergyMeterDriver, MeterPeer]:
        desc: MeterDescription = load_meter(name).description
        desc = desc.model_copy(
            update={"transport": desc.transport.model_copy(update={"timeout_ms": timeout_ms})}
        )
        term = desc.terminator.encode()

        def answer(line: str) -> bytes | None:
            reply = answers.get(line, answers.get("*"))
            if reply is None:
                return None
            return reply if isinstance(reply, bytes) else reply.encode() + term

        peer = MeterPeer(answer, term)
        driver = EnergyMeterDriver(desc, meter_transport(desc, peer.path))
        made.append((driver, peer))
        return driver, peer

    yield make
    for driver, peer in made:
        driver.close()
        peer.close()


# --- an honest meter's replies, read right --------------------------------------------------


def test_item1_an_ophir_dialogue_reads_values_in_joules(meter: MakeMeter) -> None:
    driver, peer = meter(
        "ophir-style",
        {
            "$II": "*NOVA2 612345 1.26",
            "$HI": "*PY 654321 PE50BF-C 80000001",
            "$WL1064": "*",
            "$WL": "*1064",
            "$EF": "*1",
            "$SE": "*1.412E+00",
        },
    )
    ident = driver.identify()
    assert (ident.model, ident.serial, ident.firmware) == ("NOVA2", "612345", "1.26")
    head = driver.head_info()
    assert (head.head_type, head.head_serial, head.calibrated) == ("PE50BF-C", "654321", None)
    assert driver.set_wavelength(1064.0) == 1064.0
    assert driver.set_range_auto() is False  # the Ophir description lists no auto range
    assert driver.wait_pulse_energy_j(1.0) == pytest.approx(1.412)
    assert peer.received == ["$II", "$HI", "$WL1064", "$WL", "$EF", "$SE"]


def test_item1_a_scpi_head_reports_its_calibration_date(meter: MakeMeter) -> None:
    driver, _ = meter("scpi-style", {"SYST:SENS:IDN?": "ES245C,23070712,15-Mar-2024,2,1,290"})
    head = driver.head_info()
    assert (head.head_type, head.calibrated) == ("ES245C", date(2024, 3, 15))


# --- a meter that refuses, overflows, lies or floods ----------------------------------------


def test_item1_a_question_mark_reply_is_a_refusal_with_the_meters_reason(
    meter: MakeMeter,
) -> None:
    driver, _ = meter("ophir-style", {"$SE": "?NO HEAD CONNECTED", "$II": "?"})
    with pytest.raises(DeviceRejected) as exc:
        driver.read_energy_j()
    assert exc.value.reason == "NO HEAD CONNECTED" and exc.value.command == "$SE"
    with pytest.raises(DeviceRejected):
        driver.identify()


@pytest.mark.parametrize(
    ("name", "command", "reply"),
    [("ophir-style", "$SE", "*OVER"), ("scpi-style", "MEAS:ENER?", "9.900000E+37")],
)
def test_item1_an_over_range_reading_is_never_a_number(
    meter: MakeMeter, name: str, command: str, reply: str
) -> None:
    """SCPI's 9.9E37 also matches the energy pattern: it must not become 9.9e37 J."""
    driver, _ = meter(name, {command: reply})
    with pytest.raises(MeterOverRange) as exc:
        driver.read_energy_j()
    assert exc.value.reply == reply


@pytest.mark.parametrize(
    "reply",
    ["*1.2E+00 J", "\x15#@!~", "*", "1.2E+00", "*OVER9000", "*nan", "*inf", "*1.0E999"],
    ids=["unit-suffix", "line-noise", "empty", "no-prefix", "over-ish", "nan", "inf", "overflow"],
)
def test_item1_a_garbled_energy_is_a_protocol_error(meter: MakeMeter, reply: str) -> None:
    driver, _ = meter("ophir-style", {"$SE": reply})
    with pytest.raises(ProtocolError):
        driver.read_energy_j()


def test_item1_a_silent_meter_is_a_lost_link(meter: MakeMeter) -> None:
    driver, _ = meter("ophir-style", {})
    with pytest.raises(LinkLost):
        driver.read_energy_j()


def test_item1_a_one_megabyte_line_is_refused_with_a_bounded_message(meter: MakeMeter) -> None:
    flood = b"*" + b"9" * (1 << 20) + b"\r\n"
    driver, _ = meter("ophir-style", {"$SE": flood, "$II": "*NOVA2 612345"}, timeout_ms=5000)
    with pytest.raises(ProtocolError) as exc:
        driver.read_energy_j()
    message = str(exc.value)
    assert "1048577 characters" in message and "max_reply_bytes 128" in message
    assert len(message) < 300
    assert driver.identify().model == "NOVA2"  # the next exchange is clean


def test_item1_a_non_ascii_reply_is_a_protocol_error(meter: MakeMeter) -> None:
    driver, _ = meter("ophir-style", {"$SE": b"*1.0\xff\xfeE+00\r\n"})
    with pytest.raises(ProtocolError):
        driver.read_energy_j()


def test_item1_a_meter_that_keeps_its_wavelength_is_a_refusal(meter: MakeMeter) -> None:
    driver, _ = meter("ophir-style", {"$WL1064": "*", "$WL": "*532"})
    with pytest.raises(DeviceRejected, match="the meter kept 532 nm"):
        driver.set_wavelength(1064.0)


def test_item1_a_scpi_meter_that_refuses_silently_is_asked_why(meter: MakeMeter) -> None:
    driver, peer = meter(
        "scpi-style",
        {"*IDN?": None, "SYST:ERR?": '-113,"Undefined header"'},
    )
    with pytest.raises(DeviceRejected, match="-113, Undefined header"):
        driver.identify()
    assert peer.received == ["*IDN?", "SYST:ERR?"]


def test_item1_a_scpi_meter_with_an_empty_error_queue_lost_its_link(meter: MakeMeter) -> None:
    driver, _ = meter("scpi-style", {"MEAS:ENER?": None, "SYST:ERR?": '0,"No error"'})
    with pytest.raises(LinkLost):
        driver.read_energy_j()


def test_item1_a_scpi_wavelength_refusal_carries_the_queued_reason(meter: MakeMeter) -> None:
    driver, _ = meter(
        "scpi-style",
        {
            "SENS:CORR:WAV 1064.0;:SENS:CORR:WAV?": "5.320000E+02",
            "SYST:ERR?": '-222,"Data out of range"',
        },
    )
    with pytest.raises(DeviceRejected, match=r"kept 532 nm \(-222, Data out of range\)"):
        driver.set_wavelength(1064.0)


def test_item1_an_unreadable_calibration_date_is_a_protocol_error(meter: MakeMeter) -> None:
    driver, _ = meter("scpi-style", {"SYST:SENS:IDN?": "ES245C,23070712,31-Foo-2024,2,1,290"})
    with pytest.raises(ProtocolError, match="31-Foo-2024"):
        driver.head_info()


def test_item1_no_pulse_in_time_is_no_pulse_measured(meter: MakeMeter) -> None:
    driver, peer = meter("ophir-style", {"$EF": "*0"})
    with pytest.raises(NoPulseMeasured, match=r"no pulse within 0\.3 s"):
        driver.wait_pulse_energy_j(0.3)
    assert "$SE" not in peer.received
    assert 2 <= peer.received.count("$EF") <= 6  # polled about every 100 ms, not flooded


def test_item1_a_pulse_before_the_shot_is_discarded_even_over_range(meter: MakeMeter) -> None:
    flags = iter(["*1", "*0"])
    driver, peer = meter("ophir-style", {"$SE": "*OVER"})
    peer.answer = lambda line: (next(flags) if line == "$EF" else "*OVER").encode() + b"\r\n"
    assert driver.discard_pending() is True
    assert driver.discard_pending() is False
    assert peer.received == ["$EF", "$SE", "$EF"]


def test_item1_a_wavelength_that_is_not_a_number_is_never_sent(meter: MakeMeter) -> None:
    driver, peer = meter("ophir-style", {})
    for nm in (float("nan"), -1.0, 0.0):
        with pytest.raises(ValueError):
            driver.set_wavelength(nm)
    assert peer.received == []
