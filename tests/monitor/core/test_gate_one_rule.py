"""Issue 8 item 7: when a limit row applies is one rule, and every path of the gate keeps it.

The rule (``device_profiles.limits.applies``) used to be written out five times: the gate's
plain hot path, its vectorised batch path, its explanations, its list of applying rows and
``effective_ceiling``. These properties hold each path to the one rule and to each other on
every bundled table, borders and NaN included: the words an operator reads name exactly the
limits the hot path refused on.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles.limits import applies, at_spot, effective_ceiling
from device_profiles.schema import SkinType
from monitor.core.gate import SMALL, GateSet, LimitTable, Reason

TABLES = {t.name: t for t in GateSet.bundled().tables}
# Each table also as a session with no read test spot judges the laser: rows asking for one refuse.
TABLES |= {f"{name}, no test spot": t.with_no_test_spot() for name, t in list(TABLES.items())}
SKIN = list(SkinType)
NAN = float("nan")
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def borders(name: str, field: str) -> list[float]:
    rows = TABLES[name].rows
    return sorted({b for r in rows for b in (getattr(r, field).min, getattr(r, field).max)})


@st.composite
def points(draw: st.DrawFn) -> tuple[str, SkinType, float, float, float, float]:
    """A table, a skin type, and a setting that often sits on a row's border."""
    name = draw(st.sampled_from(sorted(TABLES)))
    spot = draw(st.one_of(st.sampled_from([*borders(name, "spot_mm"), NAN]), st.floats(0, 14)))
    pulse = draw(st.one_of(st.sampled_from([*borders(name, "pulse_ms"), NAN]), st.floats(0, 120)))
    ceilings = sorted({r.fluence_j_cm2.max for r in TABLES[name].rows} | {0.0})
    fluence = draw(st.one_of(st.sampled_from([*ceilings, NAN]), st.floats(0, 400)))
    rate = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, NAN]), st.floats(-1, 3)))
    return name, draw(st.sampled_from(SKIN)), spot, pulse, fluence, rate


def vector_rows(table: LimitTable, skin: SkinType, spot: float, pulse: float) -> set[int]:
    """The rows the vectorised path picks, read from its bitmasks."""
    bits = int(
        table._type_bits[skin.rank]
        & table._spot.rows(np.array([spot]))[0]
        & table._pulse.rows(np.array([pulse]))[0]
    )
    return {j for j in range(len(table.rows)) if bits >> j & 1}


def reasons_both_ways(
    table: LimitTable, skin: SkinType, f: float, pw: float, s: float, r: float
) -> tuple[int, int]:
    """The bitmask from the plain path (a batch of one) and from the vectorised path."""
    plain = int(table.reasons([f], [pw], [s], [r], [skin.rank])[0])
    n = SMALL + 1  # a batch above SMALL takes the vectorised path
    vector = int(table.reasons([f] * n, [pw] * n, [s] * n, [r] * n, [skin.rank] * n)[0])
    return plain, vector


@PROPERTY
@given(points())
def test_item7_every_path_picks_the_rows_the_one_rule_picks(
    point: tuple[str, SkinType, float, float, float, float],
) -> None:
    name, skin, spot, pulse, fluence, rate = point
    table = TABLES[name]
    rule = {j for j, row in enumerate(table.rows) if applies(row, skin, spot, pulse)}
    near = {j for j, row in enumerate(table.rows) if at_spot(row, skin, spot)}

    assert vector_rows(table, skin, spot, pulse) == rule
    assert [table.rows.index(r) for r in table._applying(skin, spot, pulse)] == sorted(rule)
    ceiling = effective_ceiling(table.rows, skin, spot, pulse)
    assert (ceiling is None) == (not rule)
    if ceiling is not None:
        assert ceiling.fluence_j_cm2 == min(table.rows[j].ceiling_j_cm2 for j in rule)

    plain, vector = reasons_both_ways(table, skin, fluence, pulse, spot, rate)
    assert plain == vector
    assert bool(plain & Reason.SPOT_NOT_COVERED) == (not near)
    assert bool(plain & Reason.PULSE_NOT_COVERED) == (bool(near) and not rule)


@PROPERTY
@given(points())
def test_item7_the_explanation_names_what_the_hot_path_refused(
    point: tuple[str, SkinType, float, float, float, float],
) -> None:
    name, skin, spot, pulse, fluence, rate = point
    table = TABLES[name]
    setting = {"fluence_j_cm2": fluence, "pulse_ms": pulse, "spot_mm": spot, "rep_rate_hz": rate}
    bits, _ = reasons_both_ways(table, skin, fluence, pulse, spot, rate)
    result = table.check(skin, setting)
    kinds = {(v.setting, v.bound) for v in result.violations}

    assert result.ok == (bits == 0) == (not kinds)
    rule = [r for r in table.rows if applies(r, skin, spot, pulse)]
    if not rule or any(math.isnan(x) for x in (fluence, pulse, spot, rate)):
        return  # no row judges it, or a NaN: refused above; the words judge the nearest rows
    allowed = [r for r in rule if not r.contraindicated]
    assert bool(bits & Reason.CONTRAINDICATED) == (("skin_type", "contraindicated") in kinds)
    assert bool(bits & Reason.TEST_SPOT_UNREAD) == (("test_spot", "test_spot") in kinds)
    assert bool(bits & Reason.FLUENCE_HIGH) == (("fluence_j_cm2", "max") in kinds)
    assert bool(bits & Reason.FLUENCE_LOW) == (("fluence_j_cm2", "min") in kinds)
    assert bool(bits & Reason.RATE_HIGH) == (("rep_rate_hz", "max") in kinds)
    if allowed:
        assert bool(bits & Reason.RATE_NOT_POSITIVE) == (("rep_rate_hz", "positive") in kinds)
    for v in result.violations:  # the limit named is the tightest applying row's
        if (v.setting, v.bound) == ("fluence_j_cm2", "max"):
            assert v.limit == min(r.fluence_j_cm2.max for r in allowed)
        if (v.setting, v.bound) == ("rep_rate_hz", "max"):
            assert v.limit == min(r.rep_rate_hz_max for r in allowed)
