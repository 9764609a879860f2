"""Issue 8 item 4: the checks are wired by name, not by position.

Each check gets a live state that makes it, and only it, active. The same states then run
against ``CHECKS`` in other orders and with a check inserted at the front: the same names
fire, with the same severities, because the engine looks every slot up by name when it
starts. A check that is declared but not wired (or wired but not declared) refuses to start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import monitor.core.checks as checks_module
from device_profiles.clinical import CoolingMethod
from device_profiles.laser_state import LaserState
from device_profiles.loader import load
from device_profiles.schema import Band, Limits, Setup, SkinTempBand, SkinType, ThermalDoseLimits
from firmware_bridge.live import ANSWER_WINDOW, Ch, Dev, LiveState
from monitor.core.checks import CHECKS, CheckEngine, CheckSpec, Severity
from tests.monitor.core.live_values import healthy

SETUP: Setup = load("demo-ndyag-1064").setup
STALE_MS = SETUP.limits.stale_ms

# A valid profile nests the plate's treatment band inside its trip band, so a plate past the
# trip band is past the treatment band too and cooler_plate_trip never fires alone there. To
# prove the trip check's own wiring, this engine's treatment band is wider than its trip band
# (built without validation: no profile may say this).
WIDE_WARN = SETUP.model_copy(
    update={
        "limits": SETUP.limits.model_copy(
            update={"cooler_plate_temp_c": Band.model_construct(low=-40.0, high=40.0)}
        )
    }
)

#: Changes a healthy live state so that one check fires; returns whether the laser may emit.
Recipe = Callable[[CheckEngine, LiveState, int], bool]


def store(ch: Ch, value: float, *, permitted: bool = False) -> Recipe:
    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        live.store(ch, value)
        return permitted

    return go


def stale(dev: Dev) -> Recipe:
    limit_ms = STALE_MS["sensor" if dev is Dev.SENSOR2 else dev.name.lower()]

    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        live.fresh_ns[dev] = now - int((limit_ms + 1.0) * 1e6)
        return False

    return go


def link_down(dev: Dev) -> Recipe:
    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        live.link_down(dev, "no reply")
        return False

    return go


def rising_peaks(engine: CheckEngine, live: LiveState, now: int) -> bool:
    """Firing, each post-pulse peak higher than the last: the next one passes the 48 °C
    ceiling. The skin cools to 20 °C between pulses (the baseline stays low)."""
    live.store(Ch.LASER_STATE, LaserState.FIRING.code)
    peaks = [34.0, 38.0, 41.0, 44.0, 46.0, 47.5]
    for k, peak in enumerate(peaks, start=1):
        t = now - (len(peaks) - k) * 1_000_000_000
        live.store(Ch.SKIN_TEMP_C, 20.0)  # the trough before the pulse
        live.fresh_ns[:] = t - 500_000_000
        engine.evaluate(live, t - 500_000_000, emission_permitted=True)
        live.store(Ch.LASER_PULSES, float(k))
        live.store(Ch.SKIN_TEMP_C, peak)
        live.fresh_ns[:] = t
        engine.evaluate(live, t, emission_permitted=True)
    return True


def warm_baseline(engine: CheckEngine, live: LiveState, now: int) -> bool:
    """Firing at 1 Hz; after the last pulse the skin cools only to 31 °C, and the next pulse
    is due: the baseline before it would be above the 30 °C limit."""
    live.store(Ch.LASER_STATE, LaserState.FIRING.code)
    last = now - 950_000_000  # the next pulse is due 50 ms from now
    for k, t in enumerate((last - 2_000_000_000, last - 1_000_000_000, last), start=1):
        live.store(Ch.SKIN_TEMP_C, 22.0)
        engine.evaluate(live, t - 300_000_000, emission_permitted=True)
        live.store(Ch.LASER_PULSES, float(k))
        live.store(Ch.SKIN_TEMP_C, 36.0)
        engine.evaluate(live, t, emission_permitted=True)
    live.store(Ch.SKIN_TEMP_C, 31.0)
    return True


def frozen_for(ms: float) -> Recipe:
    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        live.store(Ch.SKIN_TEMP_C, -5.0)
        engine.evaluate(live, now - int(ms * 1e6), emission_permitted=True)
        return True

    return go


def slow_tail(*, permitted: bool) -> Recipe:
    """The sensor's median answer is prompt (no notice), its slowest quarter breaks the
    reaction-time budget (29 ms within a 30 ms timeout: only the budget sees it)."""

    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        for k in range(ANSWER_WINDOW):
            live.record_answer(Dev.SENSOR, 29.0 if k % 8 < 3 else 0.8)
        return permitted

    return go


def slow_cooler(engine: CheckEngine, live: LiveState, now: int) -> bool:
    for _ in range(ANSWER_WINDOW):
        live.record_answer(Dev.COOLER, 9.0)  # the cooler is not on the reaction path
    return True


def stop_never_confirmed(engine: CheckEngine, live: LiveState, now: int) -> bool:
    live.halt_ns = now - engine.stop_grace_ns - 1_000_000
    live.stop_confirmed_ns = 0
    return True  # while a halt is latched the loop counts the emission as permitted


DUAL: Setup = load("demo-ndyag-1064-dual-sensor").setup
# A dose limit below its warning level, so that the halting check can fire alone (built
# without validation: no profile may say this).
HALT_ONLY_DOSE = SETUP.model_copy(
    update={
        "limits": SETUP.limits.model_copy(
            update={
                "thermal_dose": ThermalDoseLimits.model_construct(
                    cem43_warn_min=1e9, cem43_halt_min=1.0, source="test"
                )
            }
        )
    }
)


def sensors_apart(engine: CheckEngine, live: LiveState, now: int) -> bool:
    """The second sensor reads 3 °C above the first, for longer than the allowed time."""
    live.store(Ch.SKIN_TEMP_2_C, 25.0)
    engine.evaluate(live, now - int(0.2e9), emission_permitted=False)
    return False


def stuck_reading(engine: CheckEngine, live: LiveState, now: int) -> bool:
    """Fresh samples keep coming (counter moving), the reading never changes."""
    limit_ns = int(SETUP.limits.sensor_stuck_ms * 1e6)  # type: ignore[operator]
    for t in range(now - 2 * limit_ns, now, 5_000_000):
        live.fresh_ns[:] = t
        engine.evaluate(live, t, emission_permitted=False)
    live.fresh_ns[:] = now
    return False


def dose_of(cem43_min: float) -> Recipe:
    """The current treatment area has had ``cem43_min`` at 43 °C (the reading is healthy now)."""

    def go(engine: CheckEngine, live: LiveState, now: int) -> bool:
        engine.dose.add(43.0, now - int(cem43_min * 60e9) - 1)
        engine.dose.add(43.0, now - 1)
        return False

    return go


def relay_stuck(engine: CheckEngine, live: LiveState, now: int) -> bool:
    engine.relay_stuck.latch(now, "stayed READY 80 ms after the relay was written open")
    return False


RECIPES: dict[str, Recipe] = {
    "skin_temp_high": store(Ch.SKIN_TEMP_C, 48.5, permitted=True),
    "skin_temp_low": store(Ch.SKIN_TEMP_C, 1.5),
    "skin_baseline_high": warm_baseline,
    "skin_frozen": frozen_for(150.0),
    "cooler_plate_high": store(Ch.PLATE_TEMP_C, 16.0, permitted=True),
    "skin_too_warm_to_arm": store(Ch.SKIN_TEMP_C, 31.0),
    "skin_temp_invalid": store(Ch.SKIN_TEMP_C, float("nan")),
    "sensor_stale": stale(Dev.SENSOR),
    "cooler_stale": stale(Dev.COOLER),
    "laser_stale": stale(Dev.LASER),
    "sensor_link": link_down(Dev.SENSOR),
    "cooler_link": link_down(Dev.COOLER),
    "laser_link": link_down(Dev.LASER),
    "interlock_link": link_down(Dev.INTERLOCK),
    "device_fault": store(Ch.COOLER_FAULT_CODE, 7.0),
    "cooler_plate_trip": store(Ch.PLATE_TEMP_C, 31.0),
    "cooler_flow_low": store(Ch.FLOW_L_MIN, 0.3),
    "settings_readback": store(Ch.FLUENCE_J_CM2, 221.0, permitted=True),
    "laser_fault": store(Ch.LASER_STATE, LaserState.FAULT.code),
    "unexpected_emission": store(Ch.LASER_STATE, LaserState.READY.code),
    "cooler_plate_warn": store(Ch.PLATE_TEMP_C, 20.0),
    "settings_not_approved": store(Ch.FLUENCE_J_CM2, 221.0),
    "skin_temp_trend": rising_peaks,
    "device_answer_slow": slow_cooler,
    "reaction_time_unmet": slow_tail(permitted=False),
    "reaction_time_exceeded": slow_tail(permitted=True),
    "laser_did_not_stop": stop_never_confirmed,
    "sensor2_stale": stale(Dev.SENSOR2),
    "sensor2_link": link_down(Dev.SENSOR2),
    "sensor_disagreement": sensors_apart,
    "sensor_stuck": stuck_reading,
    "thermal_dose_warn": dose_of(3.0),
    "thermal_dose_high": dose_of(2.0),
    "relay_stuck_closed": relay_stuck,
}
# Cryogen cooling: the skin may dip to -10 °C for a spurt, never stay below freezing. The
# bundled 1064 nm rows are for contact cooling: here they stand for cryogen ones.
CRYOGEN = SETUP.model_copy(
    update={
        "cooler": SETUP.cooler.model_copy(update={"method": CoolingMethod.CRYOGEN}),
        "limits": SETUP.limits.model_copy(
            update={
                "skin_temp_c": SkinTempBand(low=-10.0, high=48.0),
                "settings": [
                    r.model_copy(update={"cooling": [CoolingMethod.CRYOGEN]})
                    for r in SETUP.limits.settings
                ],
            }
        ),
    }
)
SETUP_FOR = {
    "cooler_plate_trip": WIDE_WARN,
    "skin_frozen": CRYOGEN,
    "sensor2_stale": DUAL,
    "sensor2_link": DUAL,
    "sensor_disagreement": DUAL,
    "thermal_dose_high": HALT_ONLY_DOSE,
}
DECLARED = [c.name for c in CHECKS]
SEVERITY = {c.name: c.severity for c in CHECKS}


def fire(name: str) -> tuple[set[str], CheckEngine]:
    """A fresh engine (built from ``CHECKS`` as it is now), one healthy state changed by the
    recipe for ``name``; the names of the checks active after one evaluation."""
    engine = CheckEngine(SETUP_FOR.get(name, SETUP), SkinType.III)
    now = time.perf_counter_ns()
    live = healthy(now)
    permitted = RECIPES[name](engine, live, now)
    active = engine.evaluate(live, now, emission_permitted=permitted)
    order = checks_module.CHECKS  # the order this test may have patched in
    return {order[i].name for i in np.flatnonzero(active)}, engine


@pytest.mark.parametrize("name", DECLARED)
def test_item4_every_check_fires_alone(name: str) -> None:
    assert name in RECIPES, f"{name} has no live state that fires it alone: add one here"
    fired, engine = fire(name)
    assert fired == {name}
    assert bool(engine.halt_mask[engine.index[name]]) == (SEVERITY[name] is Severity.HALT)


def test_item4_every_recipe_is_for_a_declared_check() -> None:
    assert sorted(RECIPES) == sorted(DECLARED)


def reordered(how: str) -> tuple[CheckSpec, ...]:
    if how == "reversed":
        return tuple(reversed(CHECKS))
    if how == "last check first":
        return (CHECKS[-1], *CHECKS[:-1])
    return tuple(sorted(CHECKS, key=lambda c: c.name))


@pytest.mark.parametrize("how", ["reversed", "last check first", "by name"])
def test_item4_the_order_of_checks_changes_no_check_that_fires(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(checks_module, "CHECKS", reordered(how))
    for name in DECLARED:
        fired, engine = fire(name)
        assert fired == {name}, f"with CHECKS {how}, the state for {name} fired {fired}"
        assert bool(engine.halt_mask[engine.index[name]]) == (SEVERITY[name] is Severity.HALT)
        assert bool(engine.blocks_arming[engine.index[name]]) == (SEVERITY[name] >= Severity.WARN)


SETPOINT_HIGH = CheckSpec("cooler_setpoint_high", Severity.HALT, "chiller set above 30 °C")


@pytest.fixture
def setpoint_check_first(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new band check inserted at the front of CHECKS: one declaration, one band slot."""
    original = checks_module.band_slots

    def with_setpoint(limits: Limits) -> tuple[checks_module.BandSlot, ...]:
        slot = checks_module.BandSlot(
            SETPOINT_HIGH.name, Ch.COOLER_SETPOINT_C, -np.inf, 30.0, 0.0, nan_raises=False
        )
        return (*original(limits), slot)

    monkeypatch.setattr(checks_module, "CHECKS", (SETPOINT_HIGH, *CHECKS))
    monkeypatch.setattr(checks_module, "band_slots", with_setpoint)
    yield


@pytest.mark.usefixtures("setpoint_check_first")
def test_item4_a_check_inserted_at_the_front_rewires_nothing() -> None:
    for name in DECLARED:
        fired, engine = fire(name)
        assert fired == {name}, f"with a check inserted first, the state for {name} fired {fired}"
        assert bool(engine.halt_mask[engine.index[name]]) == (SEVERITY[name] is Severity.HALT)
    # ... and the new check fires, alone, as a halt.
    engine = CheckEngine(SETUP, SkinType.III)
    now = time.perf_counter_ns()
    live = healthy(now)
    live.store(Ch.COOLER_SETPOINT_C, 35.0)
    active = engine.evaluate(live, now, emission_permitted=True)
    assert [engine.checks[i].name for i in np.flatnonzero(active)] == ["cooler_setpoint_high"]
    assert (active & engine.halt_mask).any()


def test_item4_a_declared_check_nothing_evaluates_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forgotten = CheckSpec("plate_frost", Severity.HALT, "cooling plate frozen")
    monkeypatch.setattr(checks_module, "CHECKS", (forgotten, *CHECKS))
    with pytest.raises(
        ValueError, match=r"declared in CHECKS but never evaluated: \['plate_frost'\]"
    ):
        CheckEngine(SETUP, SkinType.III)


def test_item4_an_evaluated_check_nobody_declared_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        checks_module, "CHECKS", tuple(c for c in CHECKS if c.name != "device_fault")
    )
    with pytest.raises(
        ValueError, match=r"evaluated but not declared in CHECKS: \['device_fault'\]"
    ):
        CheckEngine(SETUP, SkinType.III)


def test_item4_a_check_wired_twice_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    original = checks_module.band_slots

    def also_a_band(limits: Limits) -> tuple[checks_module.BandSlot, ...]:
        return (*original(limits), checks_module.BandSlot("sensor_link", Ch.FLOW_L_MIN, 0, 9, 0))

    monkeypatch.setattr(checks_module, "band_slots", also_a_band)
    with pytest.raises(ValueError, match=r"wired twice: \['sensor_link \(band and link\)'\]"):
        CheckEngine(SETUP, SkinType.III)


def test_item4_a_check_declared_twice_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks_module, "CHECKS", (*CHECKS, CHECKS[0]))
    with pytest.raises(ValueError, match=r"checks declared twice: \['skin_temp_high'\]"):
        CheckEngine(SETUP, SkinType.III)


def test_item4_the_loop_halts_by_severity_and_names_by_name_in_any_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real loop thread over CHECKS reversed: a warning does not halt, a halt check does,
    and the loop reports both by their own names."""
    from tests.monitor.core.test_interlock import Rig, wait_until

    monkeypatch.setattr(checks_module, "CHECKS", tuple(reversed(CHECKS)))
    rig = Rig()
    rig.start()
    try:
        rig.live.store(Ch.PLATE_TEMP_C, 20.0)  # outside the treatment band: a warning
        wait_until(lambda: rig.loop.active_names() == ["cooler_plate_warn"], "the warning")
        rig.run_cycles(20)
        assert rig.rec.halts == []
        rig.live.store(Ch.SKIN_TEMP_C, 49.0)  # above the 48 °C hard ceiling
        wait_until(lambda: rig.rec.halts, "the halt")
        rig.run_cycles(5)
        # Halted, the loop counts emission as permitted: the warm plate is now a halt cause
        # too (cooling is required at these settings), not a warning.
        assert sorted(rig.loop.active_names()) == ["cooler_plate_high", "skin_temp_high"]
        assert rig.loop.halt_conditions_active()
    finally:
        rig.close()
