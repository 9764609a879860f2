"""The settings gate against the bundled 1064 nm limit table: pass, refuse, and say why."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.loader import load
from device_profiles.schema import Range, SettingsLimit, SkinType
from monitor.core.gate import LimitTable, Violation

# The legs under contact cooling: the demo setup's treatment (the table's face rows are lower).
TABLE = LimitTable(load("demo-ndyag-1064").setup.limits.settings).for_treatment(
    TreatmentSite.LEGS, CoolingMethod.CONTACT
)
SKIN_TYPES = list(SkinType)
NAN = float("nan")

# Type III at a 2 mm spot, 20 ms, is covered by one row only: 60-150 J/cm², 10-30 ms, <= 1.5 Hz.
GOOD = {"fluence_j_cm2": 120.0, "pulse_ms": 20.0, "spot_mm": 2.0, "rep_rate_hz": 1.0}

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def setting(**changes: float) -> dict[str, float]:
    return {**GOOD, **changes}


def batch(rows: list[tuple[float, float, float, float, SkinType]]) -> np.ndarray:
    f, pw, s, r, t = zip(*rows, strict=True)
    return TABLE.evaluate(
        np.array(f, dtype=np.float64),
        np.array(pw, dtype=np.float64),
        np.array(s, dtype=np.float64),
        np.array(r, dtype=np.float64),
        np.array([x.rank for x in t]),
    )


def test_setting_inside_the_table_passes() -> None:
    result = TABLE.check(SkinType.III, GOOD)
    assert result.ok
    assert result.violations == ()
    assert result.explain() == "within limits"


@pytest.mark.parametrize(
    ("name", "value", "limit", "bound", "label", "unit"),
    [
        ("fluence_j_cm2", 250.0, 150.0, "max", "fluence", "J/cm²"),
        ("fluence_j_cm2", 50.0, 60.0, "min", "fluence", "J/cm²"),
        ("pulse_ms", 35.0, 30.0, "max", "pulse width", "ms"),
        ("pulse_ms", 2.0, 3.0, "min", "pulse width", "ms"),  # 3-10 ms row: 120 J/cm²
        ("rep_rate_hz", 2.0, 1.5, "max", "repetition rate", "Hz"),
    ],
)
def test_one_setting_out_of_range_is_refused_and_explained(
    name: str, value: float, limit: float, bound: str, label: str, unit: str
) -> None:
    result = TABLE.check(SkinType.III, setting(**{name: value}))

    assert not result.ok
    (v,) = result.violations
    assert (v.setting, v.value, v.limit, v.bound) == (name, value, limit, bound)
    assert v.margin == pytest.approx(abs(value - limit))
    assert v.margin > 0
    assert v.source  # which row of the profile refused it

    words = v.explain()
    assert words.startswith(f"{label} {value:g} {unit} is ")
    assert ("above the maximum" if bound == "max" else "below the minimum") in words
    assert f"of {limit:g} {unit}" in words
    assert f"by {abs(value - limit):.3g} {unit}" in words
    assert result.explain() == words
    assert v.as_dict()["message"] == words


def test_every_violation_is_reported() -> None:
    result = TABLE.check(SkinType.III, setting(fluence_j_cm2=250.0, pulse_ms=2.0, rep_rate_hz=2.0))

    assert not result.ok
    assert {(v.setting, v.bound) for v in result.violations} == {
        ("fluence_j_cm2", "max"),
        ("pulse_ms", "min"),
        ("rep_rate_hz", "max"),
    }
    assert all(v.margin > 0 for v in result.violations)
    assert result.explain() == "; ".join(v.explain() for v in result.violations)


def test_border_spot_must_satisfy_both_rows() -> None:
    # 3.0 mm is in the 1-3 mm row (max 150) and in the 3-6 mm row (max 120).
    refused = TABLE.check(SkinType.III, setting(spot_mm=3.0, fluence_j_cm2=140.0))
    assert not refused.ok
    (v,) = refused.violations
    assert (v.setting, v.bound, v.limit) == ("fluence_j_cm2", "max", 120.0)
    assert v.margin == pytest.approx(20.0)
    assert "spots above 3 mm are unsourced" in v.source  # the 3-6 mm row is the one that refused

    assert TABLE.check(SkinType.III, setting(spot_mm=3.0, fluence_j_cm2=120.0)).ok
    # The same 140 J/cm² is allowed just inside the smaller-spot row.
    assert TABLE.check(SkinType.III, setting(spot_mm=2.9, fluence_j_cm2=140.0)).ok


def test_border_spot_for_darker_skin_takes_the_lower_ceiling() -> None:
    base = {"pulse_ms": 20.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    assert not TABLE.check(SkinType.IV, {**base, "fluence_j_cm2": 110.0}).ok  # 3-6 row: 100
    assert TABLE.check(SkinType.IV, {**base, "fluence_j_cm2": 100.0}).ok


@pytest.mark.parametrize(("spot", "limit", "bound"), [(0.5, 1.0, "min"), (7.0, 6.0, "max")])
def test_spot_outside_every_row_is_refused(spot: float, limit: float, bound: str) -> None:
    result = TABLE.check(SkinType.III, setting(spot_mm=spot))

    assert not result.ok
    (v,) = result.violations
    assert (v.setting, v.limit, v.bound) == ("spot_mm", limit, bound)
    assert v.margin == pytest.approx(abs(spot - limit))
    assert v.explain().startswith(f"spot size {spot:g} mm is ")
    assert f"{limit:g} mm" in v.explain()


@pytest.mark.parametrize("name", ["fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz"])
@pytest.mark.parametrize("skin_type", SKIN_TYPES)
def test_nan_in_any_field_is_refused(name: str, skin_type: SkinType) -> None:
    # Start from a setting every skin type accepts, so only the NaN can refuse it.
    ok = {"fluence_j_cm2": 100.0, "pulse_ms": 25.0, "spot_mm": 2.0, "rep_rate_hz": 1.0}
    assert TABLE.check(skin_type, ok).ok

    result = TABLE.check(skin_type, {**ok, name: NAN})

    assert not result.ok
    assert name in {v.setting for v in result.violations}


def test_rate_zero_is_refused() -> None:
    result = TABLE.check(SkinType.III, setting(rep_rate_hz=0.0))
    assert not result.ok
    assert {v.setting for v in result.violations} == {"rep_rate_hz"}


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_non_positive_rate_explanation_is_true(rate: float) -> None:
    (v,) = TABLE.check(SkinType.III, setting(rep_rate_hz=rate)).violations
    assert v.bound == "positive"
    assert v.margin >= 0
    assert v.explain() == f"repetition rate {rate:g} Hz must be above 0 Hz"


def test_missing_setting_is_an_error() -> None:
    with pytest.raises(ValueError, match="rep_rate_hz"):
        TABLE.check(SkinType.III, {k: v for k, v in GOOD.items() if k != "rep_rate_hz"})


def test_spot_in_a_gap_between_rows_is_explained_truthfully() -> None:
    def row(lo: float, hi: float) -> SettingsLimit:
        return SettingsLimit(
            skin_types=[SkinType.I],
            spot_mm=Range(min=lo, max=hi),
            fluence_j_cm2=Range(min=40, max=150),
            pulse_ms=Range(min=3, max=30),
            rep_rate_hz_max=1.5,
            source="test row",
        )

    gappy = LimitTable([row(1.0, 3.0), row(4.0, 6.0)])
    result = gappy.check(SkinType.I, setting(spot_mm=3.5, fluence_j_cm2=100.0))

    assert not result.ok  # refused, as it must be
    (v,) = result.violations
    assert v.bound == "covered" or v.margin > 0
    assert "above the maximum" not in v.explain()


# --- properties ----------------------------------------------------------------------------

fluences = st.one_of(
    st.floats(0.0, 300.0),
    st.sampled_from([40.0, 60.0, 120.0, 130.0, 150.0, 180.0, 220.0, NAN]),
)
pulses = st.one_of(st.floats(0.0, 40.0), st.sampled_from([3.0, 10.0, 15.0, 20.0, 30.0, NAN]))
spots = st.one_of(st.floats(0.0, 8.0), st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 7.0, NAN]))
rates = st.one_of(st.floats(-1.0, 3.0), st.sampled_from([0.0, 0.5, 1.0, 1.5, NAN]))
skin_types = st.sampled_from(SKIN_TYPES)
rows = st.tuples(fluences, pulses, spots, rates, skin_types)


@PROPERTY
@given(st.lists(rows, min_size=1, max_size=40))
def test_batch_agrees_with_check_row_by_row(
    batch_rows: list[tuple[float, float, float, float, SkinType]],
) -> None:
    results = batch(batch_rows)

    assert results.shape == (len(batch_rows),)
    for (f, pw, s, r, t), passed in zip(batch_rows, results, strict=True):
        one = TABLE.check(t, {"fluence_j_cm2": f, "pulse_ms": pw, "spot_mm": s, "rep_rate_hz": r})
        assert one.ok == bool(passed)
        # A refusal always says why; a pass never carries a violation.
        assert bool(one.violations) == (not one.ok)
        if any(math.isnan(x) for x in (f, pw, s, r)):
            assert not passed


@PROPERTY
@given(
    skin_type=skin_types,
    spot=st.one_of(st.floats(1.0, 6.0), st.sampled_from([1.0, 3.0, 6.0])),
    excess=st.floats(min_value=1e-6, max_value=500.0),
    pulse=pulses,
    rate=rates,
)
def test_fluence_above_every_applicable_ceiling_never_passes(
    skin_type: SkinType, spot: float, excess: float, pulse: float, rate: float
) -> None:
    applicable = [
        r
        for r in TABLE.rows
        if skin_type in r.skin_types and r.spot_mm.min <= spot <= r.spot_mm.max
    ]
    assume(applicable)
    fluence = max(r.fluence_j_cm2.max for r in applicable) + excess

    result = TABLE.check(
        skin_type,
        {"fluence_j_cm2": fluence, "pulse_ms": pulse, "spot_mm": spot, "rep_rate_hz": rate},
    )

    assert not result.ok
    assert any(
        v.setting == "fluence_j_cm2" and v.bound == "max" and v.margin > 0
        for v in result.violations
    )


@PROPERTY
@given(
    fluence=st.floats(30.0, 230.0),
    pulse=st.floats(1.0, 35.0),
    spot=st.one_of(st.floats(0.5, 6.5), st.sampled_from([1.0, 3.0, 6.0])),
    rate=st.floats(0.1, 2.0),
)
def test_darker_skin_never_accepts_what_lighter_skin_refuses(
    fluence: float, pulse: float, spot: float, rate: float
) -> None:
    passed = batch([(fluence, pulse, spot, rate, t) for t in SKIN_TYPES])
    for lighter in range(len(SKIN_TYPES)):
        for darker in range(lighter + 1, len(SKIN_TYPES)):
            assert passed[lighter] or not passed[darker], (
                f"type {SKIN_TYPES[darker]} accepts what type {SKIN_TYPES[lighter]} refuses"
            )


def test_darker_skin_is_actually_more_restricted() -> None:
    # The monotonic property above would hold for a table that is the same for every type.
    s = setting(fluence_j_cm2=140.0, pulse_ms=20.0, spot_mm=2.0, rep_rate_hz=1.0)
    passed = [TABLE.check(t, s).ok for t in SKIN_TYPES]
    assert passed == [True, True, True, False, False, False]


def test_violation_dict_carries_every_field() -> None:
    v = Violation("pulse_ms", 35.0, 30.0, "max", "clinic default, review")
    assert v.as_dict() == {
        "setting": "pulse_ms",
        "value": 35.0,
        "limit": 30.0,
        "bound": "max",
        "margin": 5.0,
        "source": "clinic default, review",
        "scope": "",
        "message": v.explain(),
    }
