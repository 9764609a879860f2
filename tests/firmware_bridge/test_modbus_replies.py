"""Issue 7 item 4: a Modbus reply that does not answer its request is a protocol error, never data.

Every device here is a hand-written peer on a real socket (``modbus_peer``), reached by the
real pymodbus client through the bridge's transport: Modbus TCP, and RTU framing over
pyserial's ``socket://`` URL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from device_profiles.schema import ModbusRtuTransport, ModbusTcpTransport, Setup, SkinType
from firmware_bridge.bridge import _RegisterWorker
from firmware_bridge.drivers import RegisterDevice
from firmware_bridge.errors import BridgeError, DeviceRejected, ProtocolError
from firmware_bridge.live import SENSOR_CHANNELS, Ch, Dev, LiveState
from firmware_bridge.transport import ModbusRegisterTransport
from monitor.core.checks import INDEX, CheckEngine
from tests.firmware_bridge.modbus_peer import (
    Framing,
    ModbusPeer,
    Request,
    registers_pdu,
)

pytestmark = pytest.mark.timeout(20)

TIMEOUT_MS = 100.0
UNIT = 1
SOCKET_URL_CLOSE_S = 0.3
VALUES = [3300, 7, 0]  # what the device holds at addresses 0..2 (33.00 degC, counter 7, no fault)


def transport_to(peer: ModbusPeer) -> ModbusRegisterTransport:
    cfg: ModbusTcpTransport | ModbusRtuTransport
    if peer.framing == "tcp":
        cfg = ModbusTcpTransport(
            kind="modbus_tcp",
            host="127.0.0.1",
            port=peer.port,
            device_id=UNIT,
            timeout_ms=TIMEOUT_MS,
        )
    else:
        cfg = ModbusRtuTransport(
            kind="modbus_rtu",
            port=f"socket://127.0.0.1:{peer.port}",
            device_id=UNIT,
            timeout_ms=TIMEOUT_MS,
        )
    return ModbusRegisterTransport(cfg)


def honest(peer: ModbusPeer, request: Request) -> bytes:
    """What a correct device answers (FC3 reads of VALUES, FC5/FC6 echoes)."""
    if request.function_code == 3:
        values = VALUES[request.address : request.address + request.word]
        return peer.reply(request, registers_pdu(3, values))
    return peer.reply(request, request.pdu)  # a single write is echoed


Lie = Callable[[ModbusPeer, Request], bytes | None]


@pytest.fixture
def device() -> Iterator[Callable[[Lie, Framing], tuple[ModbusPeer, ModbusRegisterTransport]]]:
    """A peer that tells ``lie`` once, then answers honestly; and the bridge's transport to it."""
    made: list[tuple[ModbusPeer, ModbusRegisterTransport]] = []

    def make(lie: Lie, framing: Framing) -> tuple[ModbusPeer, ModbusRegisterTransport]:
        told = [False]
        peer: ModbusPeer

        def answer(request: Request) -> bytes | None:
            if told[0]:
                return honest(peer, request)
            told[0] = True
            return lie(peer, request)

        peer = ModbusPeer(answer, framing)
        made.append((peer, transport_to(peer)))
        return made[-1]

    yield make
    for peer, transport in made:
        transport.close()
        peer.close()


# --- lies told in answer to a read of three holding registers (FC3) ----------------------------

READ_LIES: dict[str, tuple[Lie, str]] = {
    "fc4-reply-to-fc3": (
        lambda p, r: p.reply(r, registers_pdu(4, VALUES)),
        "function code 4, the request was function code 3",
    ),
    "fc16-reply-to-fc3": (
        lambda p, r: p.reply(r, bytes([16]) + (0).to_bytes(2, "big") + (3).to_bytes(2, "big")),
        "function code 16",
    ),
    "exception-for-another-function": (
        lambda p, r: p.reply(r, bytes([0x84, 0x02])),
        "function code 132, the request was function code 3",
    ),
    "short-byte-count": (
        lambda p, r: p.reply(r, registers_pdu(3, VALUES[:2])),
        "byte count 4 with 4 data bytes, expected 6",
    ),
    "odd-byte-count": (
        lambda p, r: p.reply(r, registers_pdu(3, VALUES, byte_count=5)[:-1]),
        "byte count 5 with 5 data bytes, expected 6",
    ),
}
TCP_ONLY_READ_LIES: dict[str, tuple[Lie, str]] = {
    # An RTU frame's length comes from its byte count: these only exist with an MBAP length.
    "frame-longer-than-byte-count": (
        lambda p, r: p.reply(r, registers_pdu(3, [*VALUES, 0xDEAD], byte_count=6)),
        "byte count 6 with 8 data bytes, expected 6",
    ),
    "byte-count-past-the-frame": (
        lambda p, r: p.reply(r, registers_pdu(3, VALUES[:2], byte_count=6)),
        "byte count 6 with 4 data bytes, expected 6",
    ),
}
READ_CASES = [
    pytest.param(framing, lie, match, id=f"{framing}-{name}")
    for framing in ("tcp", "rtu")
    for name, (lie, match) in (READ_LIES | (TCP_ONLY_READ_LIES if framing == "tcp" else {})).items()
]


@pytest.mark.parametrize(("framing", "lie", "match"), READ_CASES)
def test_item4_a_read_reply_that_does_not_answer_the_request_is_a_protocol_error(
    device: Callable[[Lie, Framing], tuple[ModbusPeer, ModbusRegisterTransport]],
    framing: Framing,
    lie: Lie,
    match: str,
) -> None:
    peer, transport = device(lie, framing)
    with pytest.raises(ProtocolError, match=match):
        transport.read_registers(0, 3)
    # The link is dropped and made afresh: the next honest reply is read, not leftovers.
    assert transport.read_registers(0, 3) == VALUES
    assert [r.function_code for r in peer.requests] == [3, 3]


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
def test_item4_a_reply_from_another_unit_is_never_data(
    device: Callable[[Lie, Framing], tuple[ModbusPeer, ModbusRegisterTransport]],
    framing: Framing,
) -> None:
    # pymodbus 3.16's framer already drops a frame from another unit, so this ends as a
    # timeout (LinkLost); `modbus_reply.check_header` holds the same rule should that change.
    _, transport = device(lambda p, r: p.reply(r, registers_pdu(3, VALUES), unit=9), framing)
    start = time.monotonic()
    with pytest.raises(BridgeError):
        transport.read_registers(0, 3)
    # A lost serial link closes the port; pyserial's socket:// handler sleeps 0.3 s in close()
    # ("give the server some time"), which a real serial port does not.
    close_s = SOCKET_URL_CLOSE_S if framing == "rtu" else 0.0
    assert time.monotonic() - start < 3 * TIMEOUT_MS / 1000 + close_s
    assert transport.read_registers(0, 3) == VALUES


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
def test_item4_a_true_exception_reply_is_still_a_refusal(
    device: Callable[[Lie, Framing], tuple[ModbusPeer, ModbusRegisterTransport]],
    framing: Framing,
) -> None:
    _, transport = device(lambda p, r: p.reply(r, bytes([0x83, 0x02])), framing)
    with pytest.raises(DeviceRejected, match="Modbus exception 2"):
        transport.read_registers(0, 3)


# --- lies told in answer to writes (FC5 coil, FC6 register) ----------------------------------


def echo_with(value: int) -> Lie:
    return lambda p, r: p.reply(r, r.pdu[:3] + value.to_bytes(2, "big"))


WRITE_CASES = [
    pytest.param(
        "coil",
        echo_with(0x1234),
        "value 0x1234, sent address 0 value 0xFF00",
        id="coil-echo-0x1234",
    ),
    pytest.param(
        "coil", echo_with(0x0000), "value 0x0000, sent address 0 value 0xFF00", id="coil-echo-off"
    ),
    pytest.param(
        "coil",
        lambda p, r: p.reply(r, bytes([6]) + r.pdu[1:]),
        "function code 6, the request was function code 5",
        id="coil-answered-as-fc6",
    ),
    pytest.param(
        "coil",
        lambda p, r: p.reply(r, bytes([5]) + (1).to_bytes(2, "big") + r.pdu[3:5]),
        "address 1",
        id="coil-echo-other-address",
    ),
    pytest.param(
        "register",
        echo_with(0x7FFF),
        "value 32767, sent address 2 value 800",
        id="register-echo-other-value",
    ),
    pytest.param(
        "register",
        lambda p, r: p.reply(r, bytes([3, 2]) + (800).to_bytes(2, "big")),
        "function code 3, the request was function code 6",
        id="register-answered-as-fc3",
    ),
]


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
@pytest.mark.parametrize(("what", "lie", "match"), WRITE_CASES)
def test_item4_a_write_echo_that_does_not_match_is_a_protocol_error(
    device: Callable[[Lie, Framing], tuple[ModbusPeer, ModbusRegisterTransport]],
    framing: Framing,
    what: str,
    lie: Lie,
    match: str,
) -> None:
    _, transport = device(lie, framing)
    write: Callable[[], None] = (
        (lambda: transport.write_coil(0, True))
        if what == "coil"
        else (lambda: transport.write_register(2, 800))
    )
    with pytest.raises(ProtocolError, match=match):
        write()
    write()  # an honest echo is accepted


# --- the bridge: a protocol error trips the device's link and delivers nothing ----------------


def test_item4_a_wrong_function_code_trips_the_sensor_link_and_delivers_no_data(
    demo: Setup,
) -> None:
    """The sensor answers every read with FC4 and believable values: none may be used."""
    peer = ModbusPeer(lambda r: peer.reply(r, registers_pdu(4, VALUES)))
    sensor = demo.sensor.model_copy(
        update={
            "transport": ModbusTcpTransport(
                kind="modbus_tcp", host="127.0.0.1", port=peer.port, timeout_ms=TIMEOUT_MS
            )
        }
    )
    live = LiveState()
    events: list[tuple[str, dict[str, Any]]] = []
    telemetry: list[tuple[int, float]] = []
    worker = _RegisterWorker(
        Dev.SENSOR,
        RegisterDevice(sensor, ModbusRegisterTransport(sensor.transport)),
        SENSOR_CHANNELS,
        live,
        lambda kind, payload: events.append((kind, payload)),
        lambda ch, v: telemetry.append((ch, v)),
    )
    try:
        for _ in range(3):
            worker.step()
    finally:
        worker.finish()
        peer.close()
    assert len(peer.requests) == 3
    assert not live.link_ok[Dev.SENSOR]
    assert "function code 4" in (live.link_error[Dev.SENSOR] or "")
    assert math.isnan(live.value[Ch.SKIN_TEMP_C])  # 33.00 degC was never taken
    assert telemetry == []
    assert [kind for kind, _ in events] == ["link_lost"]  # once, not once per poll
    engine = CheckEngine(demo, SkinType.III)
    active = engine.evaluate(live, time.perf_counter_ns(), emission_permitted=True)
    assert active[INDEX["sensor_link"]]
    assert "function code 4" in engine.reason(INDEX["sensor_link"], live)
    assert np.isnan(live.value[Ch.SENSOR_FAULT_CODE])
