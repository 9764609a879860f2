"""Issue 14 item 2: freshness without a sample counter.

The stuck-value detector (a noisy value bit-identical for longer than ``frozen_after_ms`` is
frozen) on its own clock: a frozen reading is known frozen on the first read after the
stated time and not before, and half an hour of a real noisy signal (seeded, quantised as the
register quantises it) never trips it. The setup rules and the budget line are in
``tests/device_profiles/test_freshness_rules.py``; the detector over the real wires in
``tests/e2e/test_industrial_devices.py``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from device_profiles.registers import saturate
from device_profiles.schema import ModbusDevice
from firmware_bridge.bridge import _RegisterWorker
from firmware_bridge.drivers import RegisterDevice
from firmware_bridge.live import SENSOR_CHANNELS, Ch, Dev, LiveState
from firmware_bridge.virtual import RegisterMap, VirtualRegisterTransport

FROZEN_AFTER_MS = 30.0
POLL_MS = 5.0
SESSION_POLLS = int(30 * 60 * 1000 / POLL_MS)  # a half-hour treatment


def profile(
    temp_type: str, scale: float = 1.0, frozen_after_ms: float = FROZEN_AFTER_MS
) -> ModbusDevice:
    return ModbusDevice.model_validate(
        {
            "model": "pyrometer without a counter",
            "transport": {"kind": "modbus_tcp", "host": "127.0.0.1"},
            "poll_period_ms": POLL_MS,
            "freshness": {
                "method": "stuck_value",
                "watch": "skin_temp_c",
                "frozen_after_ms": frozen_after_ms,
            },
            "registers": {
                "skin_temp_c": {"address": 0, "table": "input", "type": temp_type,
                                "scale": scale, "unit": "degC"},
                "fault_code": {"address": 2, "table": "input", "type": "uint16", "unit": "code"},
            },
        }
    )  # fmt: skip


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.events.append((kind, payload))


def worker(dev: ModbusDevice, sink: Sink) -> _RegisterWorker:
    device = RegisterDevice(dev, VirtualRegisterTransport(RegisterMap()))
    return _RegisterWorker(
        Dev.SENSOR, device, SENSOR_CHANNELS, LiveState(), sink, lambda ch, v: None
    )


def served(dev: ModbusDevice, temp_c: float) -> float:
    """What the bridge decodes from the register after the device's converter."""
    reg = dev.registers["skin_temp_c"]
    return reg.value_of(saturate(reg, temp_c))


def test_item2_a_frozen_value_is_frozen_after_its_stated_time_and_not_before() -> None:
    sink = Sink()
    dev = profile("float32")
    w = worker(dev, sink)
    frozen_at_ms = None
    for i in range(20):  # the sensor froze: the same float32 on every poll
        why = w._frozen({"skin_temp_c": 33.21875, "fault_code": 0.0}, int(i * POLL_MS * 1e6))
        if why is not None and frozen_at_ms is None:
            frozen_at_ms = i * POLL_MS
    assert frozen_at_ms is not None
    # Known on the first read after frozen_after_ms, never earlier.
    assert FROZEN_AFTER_MS < frozen_at_ms <= FROZEN_AFTER_MS + POLL_MS
    assert [k for k, _ in sink.events] == ["device_frozen"]  # said once, not every poll
    assert "skin_temp_c bit-identical at 33.2188" in sink.events[0][1]["reason"]


def test_item2_a_frozen_sensor_stores_unknown_with_the_reason() -> None:
    sink = Sink()
    dev = profile("float32", frozen_after_ms=0.001)
    w = worker(dev, sink)
    peer = RegisterMap(inputs={0: 0x4204, 1: 0xE000, 2: 0})  # 33.21875, never changing
    w.device = RegisterDevice(dev, VirtualRegisterTransport(peer))
    w.step()  # the first read: the value is new
    w.step()  # the same bits again: frozen
    assert math.isnan(w.live.value[Ch.SKIN_TEMP_C])
    fault = w.live.fault[Ch.SKIN_TEMP_C]
    assert fault is not None and "sensor frozen" in fault


@pytest.mark.parametrize(
    ("temp_type", "scale"), [("float32", 1.0), ("int16", 0.01)], ids=["float32", "int16-0.01"]
)
def test_item2_must_show_a_long_session_of_a_real_noisy_signal_never_trips_the_detector(
    temp_type: str, scale: float
) -> None:
    """A skin-surface pyrometer's noise (0.05 degC SD, as the simulator's) on a slowly
    drifting skin temperature, polled every 5 ms for half an hour, quantised by the register."""
    sink = Sink()
    dev = profile(temp_type, scale)
    w = worker(dev, sink)
    rng = random.Random(14)
    for i in range(SESSION_POLLS):
        skin = 32.0 + 2.0 * math.sin(i / 40_000) + rng.gauss(0.0, 0.05)
        value = served(dev, skin)
        assert w._frozen({"skin_temp_c": value, "fault_code": 0.0}, int(i * POLL_MS * 1e6)) is None
    assert sink.events == []
