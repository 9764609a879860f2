"""Issue 13 item 2: the live thermal dose in the safety core, per sample, per treatment area.

The engine is driven with made-up timestamps (no sleeping): minutes of treatment in
milliseconds of test. The reference figures are computed by hand from Sapareto & Dewey and
Henriques & Moritz, not taken from the module under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from device_profiles.loader import load
from device_profiles.schema import Setup, SkinType, ThermalDoseLimits
from firmware_bridge.live import Ch, LiveState
from monitor.core.checks import INDEX, CheckEngine
from monitor.core.dose_meter import DEFAULT_AREA, DoseMeter
from tests.monitor.core.live_values import healthy

DEMO: Setup = load("demo-ndyag-1064").setup
SAMPLE_NS = 5_000_000  # the demo sensor's poll period: 200 samples a second
T0 = 1_000_000_000_000


def with_dose(limits: ThermalDoseLimits) -> Setup:
    return DEMO.model_copy(
        update={"limits": DEMO.limits.model_copy(update={"thermal_dose": limits})}
    )


def meter(halt: float | None = None) -> DoseMeter:
    return DoseMeter(ThermalDoseLimits(cem43_halt_min=halt), gap_ns=40e6)


def test_issue13_item2_cem43_per_sample_matches_the_hand_computed_minutes() -> None:
    """A minute at 44 °C is 2 equivalent minutes (R = 0.5 at or above 43 °C)."""
    dose = meter()
    for k in range(60 * 200 + 1):  # the first sample only starts the clock
        dose.add(44.0, T0 + k * SAMPLE_NS)
    figures = dose.frozen()
    assert figures.current.cem43_min == pytest.approx(2.0, rel=1e-9)
    assert figures.session.cem43_min == pytest.approx(2.0, rel=1e-9)
    assert figures.current.seconds == pytest.approx(60.0)
    # Henriques–Moritz: a minute at 44 °C, written out by hand.
    rate = 3.1e98 * math.exp(-6.28e5 / (8.314462618 * (44.0 + 273.15)))
    assert figures.current.omega == pytest.approx(60.0 * rate, rel=1e-6)
    assert figures.current.complete and figures.current.area == DEFAULT_AREA


def test_issue13_item2_each_treatment_area_keeps_its_own_dose() -> None:
    dose = meter()
    t = T0
    for _ in range(200 * 30):  # 30 s at 45 °C on the first area: 4 CEM43/min → 2 CEM43
        dose.add(45.0, t)
        t += SAMPLE_NS
    dose.set_area("left calf")
    for _ in range(200 * 30):  # 30 s at 43 °C on the second: 0.5 CEM43
        dose.add(43.0, t)
        t += SAMPLE_NS
    dose.set_area(DEFAULT_AREA)  # back on the first area: its dose is still there
    figures = dose.frozen()
    areas = {a.area: a.cem43_min for a in figures.areas}
    assert areas[DEFAULT_AREA] == pytest.approx(2.0, rel=1e-3)
    assert areas["left calf"] == pytest.approx(0.5, rel=1e-3)
    assert figures.current.area == DEFAULT_AREA
    assert figures.session.cem43_min == pytest.approx(2.5, rel=1e-3)


@pytest.mark.parametrize(
    ("samples", "why"),
    [
        ([(44.0, 0), (math.nan, 5), (44.0, 10)], "an unknown sample"),
        ([(44.0, 0), (44.0, 5), (44.0, 500)], "a gap longer than the staleness limit"),
    ],
)
def test_issue13_item2_an_unknown_stretch_makes_the_dose_a_lower_bound(
    samples: list[tuple[float, int]], why: str
) -> None:
    dose = meter()
    for temp_c, at_ms in samples:
        dose.add(temp_c, T0 + at_ms * 1_000_000)
    current = dose.frozen().current
    assert not current.complete, why
    assert math.isfinite(current.cem43_min) and current.cem43_min > 0
    assert "at least" in dose.reason(halting=False)


def test_issue13_item2_a_saturated_dose_is_json_text_not_a_wrong_number() -> None:
    dose = meter()
    dose.add(2000.0, T0)
    dose.add(2000.0, T0 + SAMPLE_NS)
    record = dose.frozen().as_dict()
    current = record["current"]
    assert isinstance(current, dict)
    assert current["cem43_min"] == "inf"  # 2^1957 equivalent minutes: beyond float64
    assert isinstance(current["log_omega"], float) and current["log_omega"] > 150


#: The engine's tests sample every 20 ms (within the 40 ms staleness limit, so no gaps): a
#: minute of treatment costs 3000 evaluations.
ENGINE_SAMPLE_NS = 20_000_000
PER_MIN = 60 * 50


def feed(engine: CheckEngine, live: LiveState, temps_c: list[float], start_ns: int) -> set[str]:
    """One fresh sample per period, with the sensor's noise; returns every check seen."""
    seen: set[str] = set()
    names = [c.name for c in engine.checks]
    t = start_ns
    for k, temp_c in enumerate(temps_c):
        live.store(Ch.SKIN_TEMP_C, temp_c + (0.01 if k % 2 else 0.0))  # noise: not stuck
        live.fresh_ns[:] = t
        active = engine.evaluate(live, t, emission_permitted=True)
        seen |= {names[i] for i in np.flatnonzero(active)}
        t += ENGINE_SAMPLE_NS
    return seen


def test_issue13_item2_a_slow_burn_under_the_skin_limit_halts_only_on_the_dose_limit() -> None:
    """43.9 °C, just under the 44 °C skin limit, held: the band never trips; CEM43 grows at
    2^0.9 ≈ 1.87 equivalent minutes a minute. A profile limit of 2 CEM43 halts after about
    1.07 minutes (9 CEM43, van Rhoon's controlled-conditions figure, would take 4.8); without
    a limit only the warning comes."""
    temps = [43.9] * int(1.5 * PER_MIN)
    limits = ThermalDoseLimits(cem43_warn_min=1.0, cem43_halt_min=2.0)
    limited = CheckEngine(with_dose(limits), SkinType.III)
    seen = feed(limited, healthy(T0), temps, T0)
    assert "skin_temp_high" not in seen
    assert {"thermal_dose_warn", "thermal_dose_high"} <= seen
    assert limited.dose.frozen().current.cem43_min == pytest.approx(1.5 * 2**0.9, rel=1e-2)

    trend_only = CheckEngine(with_dose(ThermalDoseLimits(cem43_warn_min=1.0)), SkinType.III)
    seen = feed(trend_only, healthy(T0), temps, T0)
    assert "thermal_dose_warn" in seen and "thermal_dose_high" not in seen
    assert not trend_only.halt_mask[INDEX["thermal_dose_warn"]]


def test_issue13_item2_the_dose_halt_fires_on_the_sample_that_reaches_the_limit() -> None:
    engine = CheckEngine(with_dose(ThermalDoseLimits(cem43_halt_min=2.0)), SkinType.III)
    live = healthy(T0)
    high = engine.index["thermal_dose_high"]
    t = T0
    fired_at = None
    for k in range(2 * PER_MIN):  # up to 2 minutes at 44 °C: 2 CEM43 after one minute
        live.store(Ch.SKIN_TEMP_C, 44.0 - (0.01 if k % 2 else 0.0))
        live.fresh_ns[:] = t
        if engine.evaluate(live, t, emission_permitted=True)[high]:
            fired_at = t
            break
        t += ENGINE_SAMPLE_NS
    assert fired_at is not None
    # 43.99/44.00 alternate: a little under 2 CEM43 a minute; the limit falls within 62 s.
    assert 60.0 <= (fired_at - T0) / 1e9 <= 62.0
    assert engine.dose.frozen().current.cem43_min == pytest.approx(2.0, abs=0.001)
    reason = engine.reason(high, live)
    # The dose is the treatment site's (the engine's site: the demo's legs).
    assert "profile's limit 2 CEM43" in reason and f"'{engine.site}'" in reason


def test_issue13_item2_the_dose_follows_the_hotter_of_two_sensors() -> None:
    dual = load("demo-ndyag-1064-dual-sensor").setup
    engine = CheckEngine(dual, SkinType.III)
    live = healthy(T0)
    t = T0
    for k in range(PER_MIN + 1):
        live.store(Ch.SKIN_TEMP_C, 42.0 + (0.01 if k % 2 else 0.0))
        live.store(Ch.SKIN_TEMP_2_C, 43.0 + (0.01 if k % 2 else 0.0))  # within tolerance
        live.fresh_ns[:] = t
        engine.evaluate(live, t, emission_permitted=True)
        t += ENGINE_SAMPLE_NS
    # A minute at ~43 °C (the hotter), not at ~42 °C: about 1 CEM43, not 0.25.
    assert engine.dose.frozen().current.cem43_min == pytest.approx(1.0, rel=0.02)
