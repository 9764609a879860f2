"""A real InterlockLoop thread at 1000 Hz over a LiveState the test writes, no devices.

Waits poll against a generous deadline; nothing here asserts how fast the machine is.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from device_profiles.loader import load
from device_profiles.schema import Setup, SkinType
from firmware_bridge.live import Ch, Dev, LiveState
from monitor.core.checks import INDEX, CheckEngine
from monitor.core.interlock import InterlockLoop
from tests.monitor.core.live_values import IN_RANGE

_DEMO: Setup = load("demo-ndyag-1064").setup
# The feeder plays a noiseless sensor (values the tests store and hold): the stuck-sensor
# check, which a held value would raise, is off here (its own tests: test_redundant_sensors).
SETUP = _DEMO.model_copy(
    update={"limits": _DEMO.limits.model_copy(update={"sensor_stuck_ms": None})}
)
RATE_HZ = 1000.0
DEADLINE_S = 5.0  # generous: these waits normally end within tens of ms


def wait_until(cond: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.001)


class Feeder(threading.Thread):
    """Plays the device workers: marks the devices in ``fresh`` as freshly sampled."""

    def __init__(self, live: LiveState) -> None:
        super().__init__(name="test-feeder", daemon=True)
        self.live = live
        self.fresh = set(Dev)
        self.rounds = 0
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            for dev in tuple(self.fresh):
                self.live.mark_fresh(dev)
            self.rounds += 1
            time.sleep(0.001)

    def stop(self) -> None:
        self._finished.set()
        self.join(timeout=2)


class Recorder:
    """Stands in for the bridge's halt and the session's condition handler."""

    def __init__(self, loop_cycles: Callable[[], int]) -> None:
        self._cycles = loop_cycles
        self.halts: list[tuple[str, int]] = []  # (reason, loop cycle at the call)
        self.conditions: list[tuple[int, bool]] = []

    def halt(self, reason: str) -> None:
        self.halts.append((reason, self._cycles()))

    def on_condition(self, index: int, active: bool) -> None:
        self.conditions.append((index, active))


class Rig:
    def __init__(self) -> None:
        self.live = LiveState()
        for ch, value in IN_RANGE.items():
            self.live.store(ch, value)
        for dev in Dev:
            self.live.link_up(dev)
            self.live.mark_fresh(dev)
        self.feeder = Feeder(self.live)
        self.rec = Recorder(lambda: self.loop.cycles)
        self.loop = InterlockLoop(
            CheckEngine(SETUP, SkinType.III),
            self.live,
            rate_hz=RATE_HZ,
            halt=self.rec.halt,
            on_condition=self.rec.on_condition,
            ring_samples=SETUP.loop.ring_samples,
        )

    def start(self) -> None:
        self.feeder.start()
        wait_until(lambda: self.feeder.rounds > 0, "the feeder's first round")
        self.loop.start()

    def run_cycles(self, n: int) -> None:
        """Let the loop evaluate at least ``n`` more cycles."""
        target = self.loop.cycles + n
        wait_until(lambda: self.loop.cycles >= target, f"{n} more loop cycles")

    def close(self) -> None:
        self.loop.stop()
        self.feeder.stop()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    r.start()
    try:
        yield r
    finally:
        r.close()


def test_all_in_range_never_halts(rig: Rig) -> None:
    rig.run_cycles(300)

    assert rig.rec.halts == []
    assert rig.rec.conditions == []
    assert not rig.loop.halt_conditions_active()
    assert rig.loop.active_names() == []
    assert not rig.loop.halted


def test_skin_too_hot_halts_once_then_clears(rig: Rig) -> None:
    hot = INDEX["skin_temp_high"]
    rig.run_cycles(20)

    rig.live.store(Ch.SKIN_TEMP_C, 49.0)  # above the 48 °C hard ceiling
    wait_until(lambda: rig.rec.halts, "the halt")
    rig.run_cycles(100)  # the condition persists for many cycles

    assert [reason for reason, _ in rig.rec.halts] == ["interlock trip"]
    assert rig.rec.conditions == [(hot, True)]
    assert rig.loop.halt_conditions_active()
    assert rig.loop.active_names() == ["skin_temp_high"]
    assert rig.loop.halted

    rig.live.store(Ch.SKIN_TEMP_C, 25.0)
    wait_until(lambda: (hot, False) in rig.rec.conditions, "the condition to clear")
    rig.run_cycles(20)

    assert rig.rec.conditions == [(hot, True), (hot, False)]
    assert not rig.loop.halt_conditions_active()
    assert rig.loop.active_names() == []
    assert len(rig.rec.halts) == 1
    assert rig.loop.halted  # latched until a person acknowledges


def test_a_second_condition_while_halted_is_reported_but_not_halted_again(rig: Rig) -> None:
    rig.live.store(Ch.SKIN_TEMP_C, 49.0)  # above the 48 °C hard ceiling
    wait_until(lambda: rig.rec.halts, "the halt")
    rig.live.store(Ch.FLOW_L_MIN, 0.1)
    wait_until(lambda: (INDEX["cooler_flow_low"], True) in rig.rec.conditions, "the flow condition")
    rig.run_cycles(20)

    assert len(rig.rec.halts) == 1
    assert sorted(rig.loop.active_names()) == ["cooler_flow_low", "skin_temp_high"]


def test_warning_alone_does_not_halt(rig: Rig) -> None:
    rig.live.store(Ch.PLATE_TEMP_C, 20.0)  # outside treatment band, inside trip band
    wait_until(
        lambda: (INDEX["cooler_plate_warn"], True) in rig.rec.conditions, "the plate warning"
    )
    rig.run_cycles(50)

    assert rig.rec.halts == []
    assert rig.loop.active_names() == ["cooler_plate_warn"]
    assert not rig.loop.halt_conditions_active()


def test_stale_sensor_trips_on_the_first_cycle_past_its_limit(rig: Rig) -> None:
    stale_ns = int(SETUP.limits.stale_ms["sensor"] * 1e6)
    rig.run_cycles(20)

    rig.feeder.fresh.discard(Dev.SENSOR)  # the sensor stops; cooler and laser keep reporting
    wait_until(lambda: rig.rec.halts, "the halt")
    rig.run_cycles(10)

    assert rig.rec.conditions == [(INDEX["sensor_stale"], True)]
    assert rig.loop.active_names() == ["sensor_stale"]
    # Judge by the loop's own clock (its per-cycle timestamps), not by wall-clock speed:
    # the cycle that halted saw the sample older than the limit, the one before did not.
    (_, k), ring = rig.rec.halts[0], len(rig.loop.skin_t_ns)
    last_fresh = int(rig.live.fresh_ns[Dev.SENSOR])
    assert rig.loop.skin_t_ns[k % ring] - last_fresh > stale_ns
    assert rig.loop.skin_t_ns[(k - 1) % ring] - last_fresh <= stale_ns
    # And, generously, it did not take anywhere near a second.
    assert rig.loop.skin_t_ns[k % ring] - last_fresh < 1_000_000_000


def test_lateness_reports_cycles_and_finite_percentiles(rig: Rig) -> None:
    rig.run_cycles(200)
    stats = rig.loop.lateness()

    assert stats.cycles >= 200
    values = [stats.p50_ms, stats.p99_ms, stats.p999_ms, stats.max_ms]
    assert all(math.isfinite(x) for x in values)
    assert values == sorted(values)
    assert 0 <= stats.missed <= stats.cycles
    assert stats.realtime == "SCHED_OTHER (not requested)"
    assert set(stats.as_dict()) == {
        "cycles", "p50_ms", "p99_ms", "p999_ms", "max_ms", "missed", "realtime"
    }  # fmt: skip


def test_recent_skin_returns_what_was_stored(rig: Rig) -> None:
    for value in (30.0, 31.0, 32.5):
        rig.live.store(Ch.SKIN_TEMP_C, value)
        rig.run_cycles(30)
    age_s, skin_c = rig.loop.recent_skin(1.0)

    assert len(age_s) == len(skin_c) > 0
    assert age_s[-1] == 0.0
    assert np.all(np.diff(age_s) >= 0)  # oldest first
    assert np.all(age_s >= -1.0)
    seen = list(dict.fromkeys(skin_c.tolist()))  # distinct values in the order they appear
    assert seen[-3:] == [30.0, 31.0, 32.5]
    assert set(seen) <= {IN_RANGE[Ch.SKIN_TEMP_C], 30.0, 31.0, 32.5}

    short_age, _ = rig.loop.recent_skin(0.005)
    assert 0 < len(short_age) < len(age_s)
    assert np.all(short_age >= -0.005)


def test_stop_joins_the_thread(rig: Rig) -> None:
    rig.run_cycles(10)
    rig.loop.stop()

    assert not rig.loop.is_alive()
    cycles = rig.loop.cycles
    time.sleep(0.02)
    assert rig.loop.cycles == cycles
    rig.loop.stop()  # twice is harmless


def test_unstarted_loop_has_no_history() -> None:
    loop = InterlockLoop(
        CheckEngine(SETUP, SkinType.III),
        LiveState(),
        rate_hz=RATE_HZ,
        halt=lambda reason: None,
        on_condition=lambda index, active: None,
    )
    age_s, skin_c = loop.recent_skin(1.0)
    assert len(age_s) == len(skin_c) == 0
    assert loop.lateness().cycles == 0
    assert loop.active_names() == []
    loop.stop()  # never started: returns at once
