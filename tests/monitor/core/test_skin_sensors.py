"""Two redundant skin sensors: when is a disagreement a fault (issue 13 item 3)?

The time apart is an up-down count: a single agreeing sample must not restart it, or a sensor
that reads 8 °C low would never halt while pulses, sampled at different moments by the two
sensors, bring its reading across the other's now and then."""

from __future__ import annotations

from device_profiles.loader import load
from firmware_bridge.live import Ch
from monitor.core.skin_sensors import SkinSensors
from tests.monitor.core.live_values import healthy

DUAL = load("demo-ndyag-1064-dual-sensor").setup
MS = 1_000_000


def run(pattern: list[tuple[int, float]], cycles: int) -> tuple[bool, int]:
    """Feed ``pattern`` (ms, second sensor's reading) repeatedly at 1 kHz; the first sensor
    reads 22 °C. Returns (halted, at ms)."""
    sensors = SkinSensors(DUAL)
    live = healthy(0)
    t_ms = 0
    for _ in range(cycles):
        for duration_ms, second in pattern:
            live.store(Ch.SKIN_TEMP_2_C, second)
            for _ in range(duration_ms):
                t_ms += 1
                sensors.update(live, t_ms * MS)
                if sensors.disagreement:
                    return True, t_ms
    return False, t_ms


def test_item3_a_steady_disagreement_halts_after_its_time() -> None:
    halted, at_ms = run([(1000, 30.0)], 1)
    assert halted and 100 < at_ms <= 102  # max_ms 100 in the bundled dual-sensor setup


def test_item3_a_sensor_that_crosses_the_other_now_and_then_still_halts() -> None:
    # Apart 60 ms, agreeing 40 ms, at 10 Hz: a restarted timer would never reach 100 ms.
    halted, at_ms = run([(60, 30.0), (40, 22.5)], 20)
    assert halted and at_ms < 1000


def test_item3_healthy_sensors_apart_only_for_post_pulse_transients_never_halt() -> None:
    # Apart 20 ms after each pulse (one sensor saw the peak), agreeing 80 ms: for a minute.
    halted, _ = run([(20, 30.0), (80, 22.3)], 600)
    assert not halted
