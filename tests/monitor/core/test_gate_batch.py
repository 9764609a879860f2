"""The batch gate across wavelengths: verdicts, reason bits, explanations, restrictions."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles.clinical import TreatmentSite
from device_profiles.limits import effective_ceiling
from device_profiles.schema import Range, Restrictions, SettingsLimit, SkinType
from monitor.core.gate import SMALL, GateSet, LimitTable, Reason, reason_words

GATES = GateSet.bundled(site=TreatmentSite.LEGS)  # the tables' rows for leg veins
SKIN = list(SkinType)
NAN = float("nan")
WAVES = {t.name: t.wavelength_nm[0] for t in GATES.tables if t.wavelength_nm}
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def table(name: str) -> LimitTable:
    (t,) = [t for t in GATES.tables if t.name == name]
    return t


def test_one_batch_judges_each_row_by_its_own_wavelength() -> None:
    ok, reasons = GATES.evaluate_batch(
        fluence=[120.0, 90.0, 10.0, 10.0, 60.0, 120.0],
        pulse=[30.0, 30.0, 30.0, 30.0, 60.0, 30.0],
        spot=[3.0, 3.0, 5.0, 5.0, 6.0, 3.0],
        rate=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        wavelength_nm=[1064, 1064, 532, 532, 755, 633],
        skin_rank=[2, 4, 1, 4, 2, 2],
    )
    assert ok.tolist() == [True, True, True, False, True, False]
    assert reasons[3] == Reason.CONTRAINDICATED
    assert reasons[5] == Reason.WAVELENGTH_UNKNOWN
    assert reason_words(int(reasons[5])) == ["no limit table for this wavelength"]


def test_explain_row_gives_value_limit_and_margin() -> None:
    result = GATES.evaluate_batch([170.0], [30.0], [3.0], [1.0], [1064.0], [SkinType.V.rank])
    assert not result.ok[0]
    assert result.reasons[0] == Reason.FLUENCE_HIGH
    (v,) = result.explain_row(0).violations
    assert (v.setting, v.value, v.limit, v.margin) == ("fluence_j_cm2", 170.0, 90.0, 80.0)
    assert "fluence 170 J/cm² is above the maximum of 90 J/cm²" in v.explain()


def test_explain_row_for_an_unknown_wavelength_and_skin_type() -> None:
    result = GATES.evaluate_batch([1.0] * 2, [1.0] * 2, [1.0] * 2, [1.0] * 2, [633, 1064], [0, 7])
    assert result.explain_row(0).explain() == "no limit table for wavelength 633 nm"
    assert result.reasons[1] & Reason.SKIN_TYPE_UNKNOWN
    assert "not one of I–VI" in result.explain_row(1).explain()


def test_a_contraindicated_combination_fails_every_setting_with_that_reason() -> None:
    ktp = table("ktp-532")
    for t in (SkinType.IV, SkinType.V, SkinType.VI):
        res = ktp.check(t, {"fluence_j_cm2": 6.0, "pulse_ms": 10.0, "spot_mm": 2.0,
                            "rep_rate_hz": 0.5})  # fmt: skip
        assert not res.ok
        (v,) = res.violations
        assert v.bound == "contraindicated"
        assert v.explain().startswith(f"contraindicated: this laser is not used on skin type {t}")


def row(pulse: tuple[float, float], f_max: float) -> SettingsLimit:
    return SettingsLimit(
        skin_types=list(SkinType),
        spot_mm=Range(min=1.0, max=5.0),
        pulse_ms=Range(min=pulse[0], max=pulse[1]),
        fluence_j_cm2=Range(min=10.0, max=f_max),
        rep_rate_hz_max=1.0,
        source=f"pulse {pulse[0]:g}-{pulse[1]:g}",
    )


def test_a_pulse_width_on_a_border_must_satisfy_both_rows() -> None:
    split = LimitTable([row((3, 10), 100.0), row((10, 30), 150.0)])
    s = {"spot_mm": 3.0, "rep_rate_hz": 1.0}
    assert split.check(SkinType.I, {**s, "pulse_ms": 20.0, "fluence_j_cm2": 140.0}).ok
    border = split.check(SkinType.I, {**s, "pulse_ms": 10.0, "fluence_j_cm2": 140.0})
    assert not border.ok
    (v,) = border.violations
    assert (v.setting, v.limit, v.source) == ("fluence_j_cm2", 100.0, "pulse 3-10")


def test_a_pulse_width_in_a_gap_is_refused_and_the_rest_judged_by_the_nearest_row() -> None:
    gappy = LimitTable([row((3, 10), 100.0), row((20, 30), 150.0)])
    res = gappy.check(
        SkinType.I, {"spot_mm": 3.0, "rep_rate_hz": 1.0, "pulse_ms": 12.0, "fluence_j_cm2": 120.0}
    )
    assert not res.ok
    assert {(v.setting, v.bound) for v in res.violations} == {
        ("pulse_ms", "covered"),
        ("fluence_j_cm2", "max"),  # 3-10 ms is nearer to 12 ms than 20-30 ms
    }


def test_passing_settings_carry_the_rows_requirements() -> None:
    res = table("nd-yag-1064").check(
        SkinType.V, {"fluence_j_cm2": 85.0, "pulse_ms": 20.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    )
    assert res.ok and res.cooling_required and res.test_spot_required
    assert res.notes() == ["epidermal cooling required", "test spot required first"]


def test_a_large_batch_is_evaluated() -> None:
    n = 200_000
    rng = np.random.default_rng(7)
    ok, reasons = GATES.evaluate_batch(
        rng.uniform(0, 300, n), rng.uniform(0, 80, n), rng.uniform(0, 12, n),
        rng.uniform(0, 2, n), rng.choice(list(WAVES.values()), n), rng.integers(0, 6, n),
    )  # fmt: skip
    assert ok.shape == reasons.shape == (n,)
    assert (ok == (reasons == 0)).all()
    assert 0 < ok.sum() < n


# --- properties -----------------------------------------------------------------------------

values = {
    "f": st.one_of(st.floats(0, 400), st.sampled_from([5.0, 15.0, 24.0, 89.0, 120.0, 150.0, NAN])),
    "pw": st.one_of(st.floats(0, 110), st.sampled_from([0.45, 3.0, 10.0, 20.0, 30.0, 60.0, NAN])),
    "s": st.one_of(st.floats(0, 13), st.sampled_from([0.5, 1.0, 3.0, 4.0, 5.0, 6.0, NAN])),
    "r": st.one_of(st.floats(-1, 3), st.sampled_from([0.0, 0.5, 1.0, 1.5, NAN])),
    "rank": st.integers(-1, 6),
}
settings_rows = st.tuples(*values.values())


@PROPERTY
@given(name=st.sampled_from(sorted(WAVES)), rows=st.lists(settings_rows, min_size=SMALL + 1,
                                                          max_size=60))  # fmt: skip
def test_the_batch_path_and_the_one_by_one_path_agree(
    name: str, rows: list[tuple[float, float, float, float, int]]
) -> None:
    t = table(name)
    f, pw, s, r, rank = (np.array(c) for c in zip(*rows, strict=True))
    batch = t.reasons(f, pw, s, r, rank)  # the vectorized path
    one = [int(t.reasons([a], [b], [c], [d], [e])[0]) for a, b, c, d, e in rows]  # plain Python
    assert batch.tolist() == one
    for i, (a, b, c, d, e) in enumerate(rows):
        if 0 <= e < 6 and batch[i]:  # every refusal has words, every pass has none
            words = t.check(SKIN[e], {"fluence_j_cm2": a, "pulse_ms": b, "spot_mm": c,
                                      "rep_rate_hz": d})  # fmt: skip
            assert not words.ok and words.violations


@PROPERTY
@given(
    name=st.sampled_from(sorted(WAVES)),
    skin=st.sampled_from(SKIN),
    spot=st.floats(0.3, 13.0),
    pulse=st.floats(0.3, 110.0),
    excess=st.floats(1e-6, 500.0),
    rate=st.floats(0.01, 3.0),
)
def test_no_setting_above_a_ceiling_ever_passes(
    name: str, skin: SkinType, spot: float, pulse: float, excess: float, rate: float
) -> None:
    t = table(name)
    ceiling = effective_ceiling(t.rows, skin, spot, pulse)
    fluence = (ceiling.fluence_j_cm2 if ceiling else 0.0) + excess
    result = GATES.evaluate_batch([fluence], [pulse], [spot], [rate], [WAVES[name]], [skin.rank])
    assert not result.ok[0]
    if ceiling is not None and ceiling.rep_rate_hz > 0:
        over_rate = GATES.evaluate_batch(
            [1.0], [pulse], [spot], [ceiling.rep_rate_hz + excess], [WAVES[name]], [skin.rank]
        )
        assert not over_rate.ok[0]


restrictions = st.builds(
    Restrictions,
    test_spot_only=st.booleans(),
    fluence_factor=st.floats(0.05, 1.0),
    max_rep_rate_hz=st.one_of(st.none(), st.floats(0.05, 3.0)),
)


@PROPERTY
@given(name=st.sampled_from(sorted(WAVES)), limits=restrictions, rows=st.lists(settings_rows,
                                                                              min_size=1,
                                                                              max_size=30))  # fmt: skip
def test_restricted_never_widens(
    name: str, limits: Restrictions, rows: list[tuple[float, float, float, float, int]]
) -> None:
    t = table(name)
    tight = t.restricted(limits)
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    before, after = t.evaluate(*cols), tight.evaluate(*cols)
    assert not (after & ~before).any()  # nothing the restricted table passes was refused


def test_restricted_actually_tightens_and_says_why() -> None:
    t = table("nd-yag-1064")
    tight = t.restricted(
        Restrictions(test_spot_only=True, fluence_factor=0.75, max_rep_rate_hz=0.5)
    )
    s = {"fluence_j_cm2": 100.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    assert t.check(SkinType.III, s).ok
    res = tight.check(SkinType.III, s)
    assert {(v.setting, v.limit) for v in res.violations} == {
        ("fluence_j_cm2", 90.0),
        ("rep_rate_hz", 0.5),
    }
    assert all("restricted by the risk assessment" in v.source for v in res.violations)
    ok = tight.check(SkinType.III, {**s, "fluence_j_cm2": 90.0, "rep_rate_hz": 0.5})
    assert ok.ok and ok.test_spot_required
    assert t.restricted(Restrictions()) is t


def test_item14_restricted_rows_say_how_many_test_spots() -> None:
    tight = table("nd-yag-1064").restricted(
        Restrictions(test_spot_only=True, test_spot_pulses=3, max_rep_rate_hz=0.5)
    )
    s = {"fluence_j_cm2": 100.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
    (v,) = tight.check(SkinType.III, s).violations
    assert "test spots only (3 pulses, then a pause until a clinician's review)" in v.source
