"""The check engine on a hand-built LiveState: each fault raises its own check and no other."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from device_profiles.loader import load
from device_profiles.schema import Setup, SkinType
from device_profiles.timing import reaction_budget
from firmware_bridge.live import ANSWER_WINDOW, LASER_STATE_CODES, Ch, Dev, LiveState
from monitor.core.checks import (
    ANSWER_SLOW_HOLD_NS,
    BLOCKS_ARMING,
    CHECKS,
    HALT_MASK,
    INDEX,
    CheckEngine,
    Severity,
)
from tests.monitor.core.live_values import healthy

SETUP: Setup = load("demo-ndyag-1064").setup
STALE_MS = SETUP.limits.stale_ms  # sensor 40, cooler 500, laser 200 in the bundled profile


def names(active: np.ndarray) -> set[str]:
    return {CHECKS[i].name for i in np.flatnonzero(active)}


@pytest.fixture
def engine() -> CheckEngine:
    return CheckEngine(SETUP, SkinType.III)


@pytest.fixture
def now() -> int:
    return time.perf_counter_ns()


def stale_by(dev: Dev, extra_ms: float) -> Callable[[LiveState], None]:
    """Age ``dev``'s last sample (fresh at ``now`` in ``healthy``) to its limit plus extra_ms."""

    def go(live: LiveState) -> None:
        live.fresh_ns[dev] -= int((STALE_MS[dev.name.lower()] + extra_ms) * 1e6)

    return go


def test_all_in_range_raises_nothing(engine: CheckEngine, now: int) -> None:
    live = healthy(now)
    for permitted in (False, True):
        assert names(engine.evaluate(live, now, emission_permitted=permitted)) == set()


def test_table_of_checks_is_consistent() -> None:
    assert len(INDEX) == len(CHECKS)
    assert HALT_MASK.shape == (len(CHECKS),)
    assert [c.name for c in CHECKS if c.severity is Severity.WARN] == [
        "cooler_plate_warn",
        "settings_not_approved",
        "skin_temp_trend",
        "skin_too_warm_to_arm",
        "reaction_time_unmet",
        "thermal_dose_warn",
    ]
    assert [c.name for c in CHECKS if c.severity is Severity.NOTICE] == ["device_answer_slow"]
    assert not HALT_MASK[INDEX["cooler_plate_warn"]]
    assert HALT_MASK[INDEX["cooler_plate_trip"]]


def link_down(dev: Dev) -> Callable[[LiveState], None]:
    def go(live: LiveState) -> None:
        live.link_down(dev, "no reply")

    return go


CASES: list[tuple[str, Callable[[LiveState], None], set[str]]] = [
    ("skin above high", lambda live: live.store(Ch.SKIN_TEMP_C, 48.5), {"skin_temp_high"}),
    ("skin below low", lambda live: live.store(Ch.SKIN_TEMP_C, 1.5), {"skin_temp_low"}),
    ("skin NaN", lambda live: live.store(Ch.SKIN_TEMP_C, np.nan), {"skin_temp_invalid"}),
    *[
        (f"{dev.name.lower()} link down", link_down(dev), {f"{dev.name.lower()}_link"})
        for dev in Dev
        if dev is not Dev.SENSOR2  # this setup has no second sensor: test_redundant_sensors
    ],
    ("sensor fault code", lambda live: live.store(Ch.SENSOR_FAULT_CODE, 3), {"device_fault"}),
    ("cooler fault code", lambda live: live.store(Ch.COOLER_FAULT_CODE, 7), {"device_fault"}),
    ("fault code NaN", lambda live: live.store(Ch.COOLER_FAULT_CODE, np.nan), {"device_fault"}),
    (
        "plate above trip band",
        lambda live: live.store(Ch.PLATE_TEMP_C, 31.0),
        {"cooler_plate_trip", "cooler_plate_warn"},
    ),
    (
        "plate below trip band",
        lambda live: live.store(Ch.PLATE_TEMP_C, -16.0),
        {"cooler_plate_trip", "cooler_plate_warn"},
    ),
    (
        "plate NaN",
        lambda live: live.store(Ch.PLATE_TEMP_C, np.nan),
        {"cooler_plate_trip", "cooler_plate_warn"},
    ),
    ("flow low", lambda live: live.store(Ch.FLOW_L_MIN, 0.3), {"cooler_flow_low"}),
    ("flow NaN", lambda live: live.store(Ch.FLOW_L_MIN, np.nan), {"cooler_flow_low"}),
    (
        "read-back fluence above the type III ceiling",
        lambda live: live.store(Ch.FLUENCE_J_CM2, 221.0),
        {"settings_readback"},
    ),
    (
        "read-back pulse below the row minimum",
        lambda live: live.store(Ch.PULSE_MS, 2.0),
        {"settings_readback"},
    ),
    (
        "read-back unknown",
        lambda live: live.store(Ch.SPOT_MM, np.nan),
        {"settings_readback"},
    ),
    (
        "laser FAULT",
        lambda live: live.store(Ch.LASER_STATE, LASER_STATE_CODES["FAULT"]),
        {"laser_fault"},
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_fault_raises_exactly_its_checks(
    engine: CheckEngine, now: int, change: Callable[[LiveState], None], expected: set[str]
) -> None:
    live = healthy(now)
    change(live)
    armed = "settings_readback" in expected  # read-back halts only a laser that may fire
    active = engine.evaluate(live, now, emission_permitted=armed)
    assert names(active) == expected
    assert (active & HALT_MASK).any()

    # Back in range: the same engine clears it.
    assert names(engine.evaluate(healthy(now), now, emission_permitted=armed)) == set()


def test_out_of_limit_settings_on_a_laser_in_standby_block_arming_only(
    engine: CheckEngine, now: int
) -> None:
    live = healthy(now)
    live.store(Ch.FLUENCE_J_CM2, 221.0)
    active = engine.evaluate(live, now, emission_permitted=False)
    assert names(active) == {"settings_not_approved"}
    assert not (active & HALT_MASK).any()


@pytest.mark.parametrize("dev", [Dev.SENSOR, Dev.COOLER, Dev.LASER], ids=lambda d: d.name)
def test_each_device_goes_stale_after_its_own_limit(
    engine: CheckEngine, now: int, dev: Dev
) -> None:
    live = healthy(now)
    stale_by(dev, extra_ms=-1.0)(live)  # 1 ms short of the limit: still fresh
    assert names(engine.evaluate(live, now, emission_permitted=False)) == set()

    live = healthy(now)
    stale_by(dev, extra_ms=1.0)(live)
    assert names(engine.evaluate(live, now, emission_permitted=False)) == {
        f"{dev.name.lower()}_stale"
    }


def test_never_sampled_devices_are_stale_and_unknown(engine: CheckEngine, now: int) -> None:
    active = names(engine.evaluate(LiveState(), now, emission_permitted=False))
    assert {"sensor_stale", "cooler_stale", "laser_stale"} <= active
    assert {"sensor_link", "cooler_link", "laser_link", "interlock_link"} <= active
    assert {"skin_temp_invalid", "cooler_plate_trip", "settings_not_approved"} <= active


def test_plate_outside_treatment_band_only_warns(engine: CheckEngine, now: int) -> None:
    for plate in (16.0, -6.0):
        live = healthy(now)
        live.store(Ch.PLATE_TEMP_C, plate)
        active = engine.evaluate(live, now, emission_permitted=False)
        assert names(active) == {"cooler_plate_warn"}
        assert not (active & HALT_MASK).any()


@pytest.mark.parametrize("state", ["READY", "FIRING"])
def test_emission_without_permission_halts(engine: CheckEngine, now: int, state: str) -> None:
    live = healthy(now)
    live.store(Ch.LASER_STATE, LASER_STATE_CODES[state])
    assert names(engine.evaluate(live, now, emission_permitted=False)) == {"unexpected_emission"}
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()


def test_readback_ceiling_depends_on_skin_type(now: int) -> None:
    live = healthy(now)
    live.store(Ch.FLUENCE_J_CM2, 130.0)  # type III row allows 150, type IV row caps at 120
    live.store(Ch.PULSE_MS, 20.0)
    assert names(CheckEngine(SETUP, SkinType.III).evaluate(live, now, True)) == set()
    assert names(CheckEngine(SETUP, SkinType.IV).evaluate(live, now, True)) == {"settings_readback"}


def test_evaluate_writes_its_own_buffer(engine: CheckEngine, now: int) -> None:
    live = healthy(now)
    first = engine.evaluate(live, now, emission_permitted=False)
    live.store(Ch.SKIN_TEMP_C, 50.0)
    second = engine.evaluate(live, now, emission_permitted=False)
    assert first is second is engine.active


# --- words -------------------------------------------------------------------------------------


def reason_for(
    engine: CheckEngine, now: int, check: str, change: Callable[[LiveState], None]
) -> str:
    live = healthy(now)
    change(live)
    armed = check == "settings_readback"
    assert check in names(engine.evaluate(live, now, emission_permitted=armed))
    return engine.reason(INDEX[check], live)


@pytest.mark.parametrize(
    ("check", "change", "parts"),
    [
        (
            "skin_temp_high",
            lambda live: live.store(Ch.SKIN_TEMP_C, 48.5),
            ["48.50 °C", "48 °C", "post-pulse peak"],
        ),
        ("skin_temp_low", lambda live: live.store(Ch.SKIN_TEMP_C, 1.25), ["1.25 °C", "2–48 °C"]),
        (
            "cooler_plate_trip",
            lambda live: live.store(Ch.PLATE_TEMP_C, 35.0),
            ["35.00 °C", "-15–30 °C"],
        ),
        (
            "cooler_plate_warn",
            lambda live: live.store(Ch.PLATE_TEMP_C, 20.0),
            ["20.00 °C", "-5–15 °C"],
        ),
        (
            "cooler_flow_low",
            lambda live: live.store(Ch.FLOW_L_MIN, 0.2),
            ["0.20 L/min", "0.5 L/min"],
        ),
        (
            "settings_readback",
            lambda live: live.store(Ch.FLUENCE_J_CM2, 230.0),
            ["230 J/cm²", "150 J/cm²", "above the maximum"],
        ),
        ("sensor_stale", stale_by(Dev.SENSOR, 10.0), ["sensor", "40 ms"]),
        ("laser_stale", stale_by(Dev.LASER, 10.0), ["laser", "200 ms"]),
        (
            "cooler_link",
            link_down(Dev.COOLER),
            ["cooler", "no reply"],
        ),
        (
            "device_fault",
            lambda live: live.store(Ch.SENSOR_FAULT_CODE, 3),
            ["sensor=3", "cooler=0"],
        ),
        (
            "laser_fault",
            lambda live: live.store(Ch.LASER_STATE, LASER_STATE_CODES["FAULT"]),
            ["FAULT"],
        ),
    ],
)
def test_reason_names_value_and_limit_with_units(
    engine: CheckEngine, now: int, check: str, change: Callable[[LiveState], None], parts: list[str]
) -> None:
    text = reason_for(engine, now, check, change)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


def answering(live: LiveState, dev: Dev, ms: float, n: int = ANSWER_WINDOW) -> LiveState:
    for _ in range(n):
        live.record_answer(dev, ms)
    return live


def test_item6_slow_sensor_answers_refuse_arming_and_halt_a_laser_that_may_fire(
    engine: CheckEngine, now: int
) -> None:
    """29 ms, within the sensor's 30 ms timeout, its counter moving: only the budget sees it."""
    live = answering(healthy(now), Dev.SENSOR, 29.0)
    standby = engine.evaluate(live, now, emission_permitted=False)
    assert names(standby) == {"device_answer_slow", "reaction_time_unmet"}
    assert not (standby & HALT_MASK).any()
    assert (standby & BLOCKS_ARMING).any()
    why = engine.reason(INDEX["reaction_time_unmet"], live)
    assert why.startswith("measured worst-case reaction time 88.3 ms exceeds the required 50 ms")
    assert "sensor answers in up to 29.0 ms, the budget assumes 2.5 ms" in why
    armed = engine.evaluate(live, now, emission_permitted=True)
    assert names(armed) == {"device_answer_slow", "reaction_time_exceeded"}
    assert armed[INDEX["reaction_time_exceeded"]] and HALT_MASK[INDEX["reaction_time_exceeded"]]


def test_item6_prompt_answers_raise_nothing(engine: CheckEngine, now: int) -> None:
    live = healthy(now)
    for dev in Dev:
        answering(live, dev, 0.8)
    for permitted in (False, True):
        assert names(engine.evaluate(live, now, emission_permitted=permitted)) == set()
    assert engine.measured_reaction_ms == pytest.approx(reaction_budget(SETUP).total_ms)


def test_a_device_slower_than_assumed_within_the_budget_is_a_notice_only(
    engine: CheckEngine, now: int
) -> None:
    """The cooler is not on the reaction path: slow answers say "review the profile"."""
    live = answering(healthy(now), Dev.COOLER, 9.0)
    active = engine.evaluate(live, now, emission_permitted=True)
    assert names(active) == {"device_answer_slow"}
    assert not (active & BLOCKS_ARMING).any()
    assert "cooler answers in 9.0 ms typically" in engine.reason(INDEX["device_answer_slow"], live)
    # A notice stays up a while after the device is prompt again, then clears.
    answering(live, Dev.COOLER, 1.0)
    later = now + 1_000_000_000
    live.fresh_ns[:] = later
    live.store(Ch.SKIN_TEMP_C, 32.01)  # a live sensor's noise (else: sensor_stuck)
    assert names(engine.evaluate(live, later, True)) == {"device_answer_slow"}
    later = now + ANSWER_SLOW_HOLD_NS + 1
    live.fresh_ns[:] = later
    live.store(Ch.SKIN_TEMP_C, 32.02)
    assert names(engine.evaluate(live, later, True)) == set()


def test_a_few_host_hiccups_do_not_halt(engine: CheckEngine, now: int) -> None:
    live = answering(healthy(now), Dev.SENSOR, 0.9, n=ANSWER_WINDOW - 8)
    answering(live, Dev.SENSOR, 45.0, n=8)  # a quarter of the window
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()


@pytest.mark.parametrize(
    ("dev", "ms"),
    [(Dev.LASER, 30.0), (Dev.INTERLOCK, 25.0)],
    ids=["laser: stop route", "relay: relay route"],
)
def test_item6_a_slow_halt_route_breaks_the_budget_too(
    engine: CheckEngine, now: int, dev: Dev, ms: float
) -> None:
    live = answering(healthy(now), dev, ms)
    assert "reaction_time_exceeded" in names(engine.evaluate(live, now, emission_permitted=True))
    why = engine.reason(INDEX["reaction_time_exceeded"], live)
    assert f"{dev.name.lower()} answers in up to {ms:.1f} ms" in why


# --- item 2: a laser that ignores or lies about STOP ---------------------------------------


def halted(live: LiveState, engine: CheckEngine, now: int, *, confirmed: bool) -> None:
    """The bridge halted just over the grace time ago; the laser answered STOP or not."""
    live.halt_ns = now - engine.stop_grace_ns - 1_000_000
    live.stop_confirmed_ns = live.halt_ns + 2_000_000 if confirmed else 0


def test_item2_a_laser_firing_after_a_confirmed_stop_is_laser_did_not_stop(
    engine: CheckEngine, now: int
) -> None:
    """It said "OK STOPPED" and still reports FIRING: a high-priority alarm of its own, on
    top of the halt (while a halt is latched the loop calls the emission permitted)."""
    live = healthy(now)
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["FIRING"])
    live.halt_ns = now - 1_000_000  # within the grace time: the stop may still be on its way
    live.stop_confirmed_ns = live.halt_ns + 500_000
    assert "laser_did_not_stop" not in names(engine.evaluate(live, now, emission_permitted=True))
    halted(live, engine, now, confirmed=True)
    assert names(engine.evaluate(live, now, emission_permitted=True)) == {"laser_did_not_stop"}
    assert HALT_MASK[INDEX["laser_did_not_stop"]]
    reason = engine.reason(INDEX["laser_did_not_stop"], live)
    assert "still reported FIRING" in reason and "use the emergency stop" in reason
    # Latched: the laser back in STANDBY does not clear it; only a reset does.
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["STANDBY"])
    assert names(engine.evaluate(live, now, emission_permitted=True)) == {"laser_did_not_stop"}
    engine.did_not_stop.reset()
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()


def test_item2_a_stop_never_confirmed_is_laser_did_not_stop(engine: CheckEngine, now: int) -> None:
    """No answer to STOP (the relay dropped the laser to STANDBY): its own stop route failed."""
    live = healthy(now)
    halted(live, engine, now, confirmed=False)
    active = names(engine.evaluate(live, now, emission_permitted=True))
    assert active == {"laser_did_not_stop"}
    reason = engine.reason(INDEX["laser_did_not_stop"], live)
    assert "had not confirmed STOP" in reason
    # It reports STANDBY (healthy), so the words do not say it did not stop: its stop
    # command went unanswered, and the relay is still the only barrier to trust.
    assert reason.startswith("the laser's stop went unanswered: it had not confirmed STOP")
    assert "though it now reports STANDBY" in reason and "use the emergency stop" in reason
    # Within the log's bound for a device's words, so the record keeps all of it.
    assert len(reason) <= 256  # monitor.record.policy.DEVICE_FIELD_CHARS
    # Judged once per halt: after a person's reset it does not come back for the same halt...
    engine.did_not_stop.reset()
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()
    # ... but a laser that comes up again while halted does.
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["READY"])
    assert names(engine.evaluate(live, now, emission_permitted=True)) == {"laser_did_not_stop"}


def test_item2_a_laser_that_stops_in_time_raises_nothing(engine: CheckEngine, now: int) -> None:
    live = healthy(now)
    halted(live, engine, now, confirmed=True)
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()
    live.halt_ns = 0  # the halt released: nothing to judge
    live.store(Ch.LASER_STATE, LASER_STATE_CODES["READY"])
    assert names(engine.evaluate(live, now, emission_permitted=True)) == set()


def test_item2_stop_grace_comes_from_the_profile(engine: CheckEngine) -> None:
    # laser staleness 200 ms + serial timeout 50 ms in the bundled profile
    assert engine.stop_grace_ns == 250_000_000
