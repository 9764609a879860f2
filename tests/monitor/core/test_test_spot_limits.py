"""Issue 12, item 4, while firing: settings admitted on the strength of a read test spot are
held to what the test spot covered by the running checks too (the read-back judgement and each
reported pulse's), not only when they are requested. A knob turned on the laser's panel past
the test spot (still within the table) halts as one turned past the table does."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.loader import load
from device_profiles.schema import Setup, SkinType
from firmware_bridge.live import Ch, LiveState
from monitor.core.checks import CheckEngine
from monitor.core.gate import LimitTable, Reason
from monitor.core.pulse_limits import PulseJudge
from monitor.core.treatment import TestSpotCover
from tests.monitor.core.live_values import healthy
from tests.monitor.core.test_test_spot_history import spot as history_spot

SETUP: Setup = load("demo-ndyag-1064").setup
#: Type IV legs, 2 mm: the 1-3 mm row allows 60-120 J/cm² at 10-30 ms.
SETTINGS = {"fluence_j_cm2": 100.0, "pulse_ms": 30.0, "spot_mm": 2.0, "rep_rate_hz": 1.0}
CHANNELS = {
    "fluence_j_cm2": Ch.FLUENCE_J_CM2,
    "pulse_ms": Ch.PULSE_MS,
    "spot_mm": Ch.SPOT_MM,
    "rep_rate_hz": Ch.REP_RATE_HZ,
}


def read_spot(**change: object) -> TestSpotReading:
    """The test-spot history's reading, at this file's 2 mm spot."""
    return history_spot(**{"spot_mm": 2.0, **change})


def names(engine: CheckEngine, active: np.ndarray) -> set[str]:
    return {engine.checks[i].name for i in np.flatnonzero(active)}


def laser_reads(now: int, **settings: float) -> LiveState:
    live = healthy(now)
    for k, v in {**SETTINGS, **settings}.items():
        live.store(CHANNELS[k], v)
    return live


@pytest.fixture
def engine() -> CheckEngine:
    return CheckEngine(SETUP, SkinType.IV)


@pytest.mark.parametrize(
    ("turned", "words"),
    [
        ({"fluence_j_cm2": 120.0}, "fluence 120 J/cm² is above the maximum of 100 J/cm²"),
        ({"pulse_ms": 20.0}, "pulse width 20 ms is below the minimum of 30 ms"),
        ({"spot_mm": 3.0}, "spot size 3 mm is above the maximum of 2 mm"),
    ],
    ids=["fluence up", "pulse shorter", "spot larger"],
)
def test_item4_a_panel_change_past_the_read_test_spot_halts_on_read_back(
    engine: CheckEngine, turned: dict[str, float], words: str
) -> None:
    now = time.perf_counter_ns()
    base = engine.table
    turned_live = laser_reads(now, **turned)
    # Within the table itself: the limits alone never caught this.
    assert names(engine, engine.evaluate(turned_live, now, emission_permitted=True)) == set()

    engine.table = base.within_test_spot(TestSpotCover.of(read_spot()))
    assert names(engine, engine.evaluate(laser_reads(now), now, True)) == set()
    active = engine.evaluate(turned_live, now, emission_permitted=True)
    assert names(engine, active) == {"settings_readback"}
    reason = engine.reason(engine.index["settings_readback"], turned_live)
    assert words in reason
    assert "test spot 2026-03-02" in reason  # names the test spot that bounds the settings
    # On a laser that may not fire, the same settings block arming.
    blocked = engine.evaluate(turned_live, now, emission_permitted=False)
    assert names(engine, blocked) == {"settings_not_approved"}


def test_item4_the_narrowed_table_is_judged_at_once_on_unchanged_settings(
    engine: CheckEngine,
) -> None:
    """The laser already reads 120 when the narrowed table is swapped in: no change of the
    settings is needed for the loop to judge them by it."""
    now = time.perf_counter_ns()
    live = laser_reads(now, fluence_j_cm2=120.0)
    assert names(engine, engine.evaluate(live, now, True)) == set()
    engine.table = engine.table.within_test_spot(TestSpotCover.of(read_spot()))
    assert names(engine, engine.evaluate(live, now, True)) == {"settings_readback"}


def test_item4_pulses_past_the_read_test_spot_are_recorded_out_of_limits(
    engine: CheckEngine,
) -> None:
    judge = PulseJudge(engine.table, SkinType.IV)
    panel = {**SETTINGS, "fluence_j_cm2": 120.0}
    assert judge.judge(1, 1, panel) is None  # the table allows 120
    judge.table = engine.table.within_test_spot(TestSpotCover.of(read_spot()))
    assert judge.judge(1, 2, SETTINGS) is None
    bad = judge.judge(1, 3, panel)  # the same settings as before: judged by the new table
    assert bad is not None
    (violation,) = bad.as_record()["violations"]  # type: ignore[misc]
    assert violation["limit"] == 100.0
    assert "test spot 2026-03-02" in str(violation["source"])
    assert judge.out_of_limits == 1


def test_item4_the_narrowed_table_admits_exactly_what_the_test_spot_vouches_for() -> None:
    """One rule: over a grid around the test spot, a setting passes the narrowed table if and
    only if it passes the table and ``TestSpotCover.problem`` finds nothing."""
    table = LimitTable(SETUP.limits.settings).for_treatment(TreatmentSite.LEGS, SETUP.cooler.method)
    cover = TestSpotCover.of(read_spot(fluence_j_cm2=90.0, pulse_ms=20.0, spot_mm=2.5))
    narrowed = table.within_test_spot(cover)
    grid = itertools.product(
        [60.0, 89.9, 90.0, 90.1, 100.0, 120.0],
        [10.0, 19.9, 20.0, 20.1, 30.0, 60.0],
        [1.0, 2.0, 2.5, 2.6, 3.0, 6.0],
        SkinType,
    )
    for fluence, pulse, spot, skin in grid:
        s = {"fluence_j_cm2": fluence, "pulse_ms": pulse, "spot_mm": spot, "rep_rate_hz": 1.0}
        expected = table.check(skin, s).ok and cover.problem(s) is None
        assert narrowed.check(skin, s).ok is expected, (skin, s)


def test_item4_the_narrowed_table_never_widens() -> None:
    """A test spot at settings harsher than the table (a lying history) widens nothing."""
    table = LimitTable(SETUP.limits.settings).for_treatment(TreatmentSite.LEGS, SETUP.cooler.method)
    cover = TestSpotCover.of(read_spot(fluence_j_cm2=400.0, pulse_ms=1.0, spot_mm=20.0))
    narrowed = table.within_test_spot(cover)
    over = {"fluence_j_cm2": 130.0, "pulse_ms": 30.0, "spot_mm": 2.0, "rep_rate_hz": 1.0}
    assert not narrowed.check(SkinType.IV, over).ok
    assert not narrowed.check(SkinType.IV, {**over, "fluence_j_cm2": 100, "pulse_ms": 5}).ok
    assert narrowed.check(SkinType.IV, {**over, "fluence_j_cm2": 100.0}).ok


# --- a session with no read test spot ------------------------------------------------------------

#: Types I-III legs, 4 mm: the 3-6 mm rows allow 40-120 J/cm² at 10-30 ms and at 30-100 ms.
NO_SPOT = {"fluence_j_cm2": 100.0, "pulse_ms": 20.0, "spot_mm": 4.0, "rep_rate_hz": 1.0}


def long_pulses_need_a_test_spot() -> LimitTable:
    """The demo table as a clinic might edit it: its types I-III 30-100 ms legs row asks for a
    test spot (no bundled type I-II row does), the 10-30 ms row beside it does not."""
    rows = [
        r.model_copy(update={"test_spot_required": True})
        if SkinType.II in r.skin_types and r.pulse_ms.min == 30.0
        else r
        for r in SETUP.limits.settings
    ]
    assert rows != list(SETUP.limits.settings)
    return LimitTable(rows).for_treatment(TreatmentSite.LEGS, SETUP.cooler.method)


def test_a_row_that_asks_for_a_test_spot_refuses_when_the_session_has_none() -> None:
    """A type II session admitted at 20 ms needs no test spot. The panel turned to 50 ms lands
    in a row that asks for one: the table the running checks judge by refuses it, and says so;
    the settings it was admitted on still pass."""
    table = long_pulses_need_a_test_spot()
    long_pulse = {**NO_SPOT, "pulse_ms": 50.0}
    assert table.check(SkinType.II, long_pulse).ok  # the row's limits alone allow it
    assert table.check(SkinType.II, long_pulse).test_spot_required
    running = table.with_no_test_spot()
    assert running.check(SkinType.II, NO_SPOT).ok
    result = running.check(SkinType.II, long_pulse)
    assert not result.ok
    (violation,) = result.violations
    assert violation.bound == "test_spot"
    assert "asks for a read test spot first" in result.explain()
    bits = int(running.reasons([50.0], [50.0], [4.0], [1.0], [SkinType.II.rank])[0])
    assert bits == Reason.TEST_SPOT_UNREAD
    assert violation.as_dict()["value"] is None  # JSON-safe: the log refuses NaN


def test_the_running_checks_halt_a_panel_turned_into_a_row_that_asks_for_a_test_spot() -> None:
    engine = CheckEngine(SETUP, SkinType.II)
    engine.table = long_pulses_need_a_test_spot().with_no_test_spot()
    now = time.perf_counter_ns()
    assert names(engine, engine.evaluate(laser_reads(now, **NO_SPOT), now, True)) == set()
    turned = laser_reads(now, **{**NO_SPOT, "pulse_ms": 50.0})
    assert names(engine, engine.evaluate(turned, now, True)) == {"settings_readback"}
    assert "read test spot" in engine.reason(engine.index["settings_readback"], turned)
    judge = PulseJudge(engine.table, SkinType.II)
    bad = judge.judge(1, 1, {**NO_SPOT, "pulse_ms": 50.0})
    assert bad is not None and judge.out_of_limits == 1


def test_with_no_test_spot_changes_nothing_where_no_row_asks_for_one() -> None:
    """Over the demo's bundled grid (types I-III rows there ask for no test spot; types IV-VI
    rows do): a type I-III verdict is unchanged, and a setting the table passes for IV-VI is
    refused only for the test spot."""
    table = LimitTable(SETUP.limits.settings).for_treatment(TreatmentSite.LEGS, SETUP.cooler.method)
    running = table.with_no_test_spot()
    grid = itertools.product([40.0, 100.0, 130.0], [5.0, 20.0, 50.0], [2.0, 4.0], SkinType)
    for fluence, pulse, spot, skin in grid:
        s = {"fluence_j_cm2": fluence, "pulse_ms": pulse, "spot_mm": spot, "rep_rate_hz": 1.0}
        before, after = table.check(skin, s), running.check(skin, s)
        if not before.test_spot_required:
            assert after.ok is before.ok, (skin, s)
        elif before.ok:
            assert [v.bound for v in after.violations] == ["test_spot"], (skin, s)
