"""Issue 8 item 7: one register codec for the bridge and the simulated devices.

The bridge's drivers and the simulator's Modbus devices used to carry their own
``round(value / scale)`` and two's-complement code. Now both use ``device_profiles.registers``:
what a simulated device serves, the bridge reads back as the same value; what the bridge
writes, a simulated device accepts; and a device's saturated converter lands on its
sentinel, which the bridge reads as a fault, never as a temperature.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.loader import load
from device_profiles.registers import accepts, decode, encode, saturate
from device_profiles.schema import Register, Sentinels

SETUP = load("demo-ndyag-1064").setup
BUNDLED = {
    f"{dev}.{name}": reg
    for dev, regs in (("sensor", SETUP.sensor.registers), ("cooler", SETUP.cooler.registers))
    for name, reg in regs.items()
}
SKIN = SETUP.sensor.registers["skin_temp_c"]


@st.composite
def registers(draw: st.DrawFn) -> Register:
    kind = draw(st.sampled_from(["int16", "uint16"]))
    scale = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0]))
    lo_raw, hi_raw = (-0x8000, 0x7FFF) if kind == "int16" else (0, 0xFFFF)
    a, b = sorted(draw(st.integers(lo_raw, hi_raw)) for _ in range(2))
    sentinels = draw(st.sampled_from([None, (0x7FFF, 0x8000), (0xFFFF, None)]))
    writable = draw(st.booleans()) and sentinels is None  # a writable range must skip them
    return Register(
        address=0,
        type=kind,
        scale=scale,
        unit="u",
        writable=writable,
        min=a * scale if writable else None,
        max=b * scale if writable else None,
        sentinels=None
        if sentinels is None
        else Sentinels(over_range=sentinels[0], under_range=sentinels[1]),
    )


@settings(max_examples=300, deadline=None)
@given(reg=registers(), value=st.floats(-700.0, 140_000.0))
def test_item7_what_the_bridge_writes_a_device_accepts_and_reads_back(
    reg: Register, value: float
) -> None:
    try:
        word = encode(reg, value)
    except ValueError:
        # Refused before the wire. The device would have refused the nearest word too,
        # unless it lies outside the type (the bridge refuses to wrap it around).
        raw = round(value / reg.scale)
        lo, hi = reg.raw_range
        if lo <= raw <= hi:
            assert not accepts(reg, raw & 0xFFFF)
        return
    assert accepts(reg, word)
    served = decode(reg, word)
    assert served.fault is None
    assert served.value == pytest.approx(value, abs=reg.scale / 2 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(BUNDLED)), value=st.floats(-1000.0, 1000.0))
def test_item7_what_a_simulated_device_serves_the_bridge_reads_as_the_same_value(
    name: str, value: float
) -> None:
    reg = BUNDLED[name]
    word = saturate(reg, value)
    assert 0 <= word <= 0xFFFF
    read = decode(reg, word)
    lo, hi = (reg.value_of(x & 0xFFFF) for x in reg.raw_range)
    if read.fault is not None:  # only a value at the end of the range lands on a sentinel
        assert math.isnan(read.value)
        assert value >= hi - reg.scale / 2 or value <= lo + reg.scale / 2
    elif lo <= value <= hi:
        assert read.value == pytest.approx(value, abs=reg.scale / 2 + 1e-9)
    else:
        assert read.value == (hi if value > hi else lo)  # the converter saturates


@pytest.mark.parametrize(
    ("value", "fault"), [(400.0, "over-range (0x7FFF)"), (-400.0, "under-range (0x8000)")]
)
def test_item7_a_sensor_driven_past_its_range_serves_a_fault_not_a_temperature(
    value: float, fault: str
) -> None:
    word = saturate(SKIN, value)
    assert math.isnan(decode(SKIN, word).value)
    assert decode(SKIN, word).fault == fault
    with pytest.raises(ValueError, match="does not fit"):
        encode(SKIN.model_copy(update={"writable": True}), value)


def test_item7_the_simulated_devices_use_the_one_codec() -> None:
    import sim.modbus_devices as devices

    assert devices.saturate is saturate and devices.accepts is accepts
    assert not hasattr(devices, "to_raw") and not hasattr(devices, "from_raw")
