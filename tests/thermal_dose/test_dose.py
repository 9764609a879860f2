"""Incremental thermal dose against hand-computed values and the published burn times."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermal_dose.dose import (
    HENRIQUES_MORITZ,
    ArrheniusDose,
    ArrheniusField,
    Cem43Dose,
    log_add,
    log_damage_rate,
)

# Henriques & Moritz 1947, written out here rather than taken from the module under test.
P_PER_S = 3.1e98
EA_J_MOL = 6.28e5
R_J_MOL_K = 8.314462618


def hand_rate_per_s(temp_c: float) -> float:
    return P_PER_S * math.exp(-EA_J_MOL / (R_J_MOL_K * (temp_c + 273.15)))


# --- CEM43 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "minutes"),
    [
        ([(43.0, 60.0)], 1.0),  # a minute at 43 °C is one equivalent minute
        ([(44.0, 60.0)], 2.0),  # R = 0.5 at or above 43: 0.5^(43-44) = 2
        ([(45.0, 30.0)], 2.0),  # half a minute at 4 equivalent minutes per minute
        ([(42.0, 60.0)], 0.25),  # R = 0.25 below 43: 0.25^(43-42)
        ([(41.0, 120.0)], 2.0 * 0.0625),
        ([(44.0, 60.0), (42.0, 60.0), (43.0, 30.0)], 2.0 + 0.25 + 0.5),
    ],
)
def test_issue13_item1_cem43_matches_hand_computed_minutes(
    samples: list[tuple[float, float]], minutes: float
) -> None:
    dose = Cem43Dose()
    for temp_c, dt_s in samples:
        dose.add(temp_c, dt_s)
    assert dose.minutes == pytest.approx(minutes, rel=1e-12)
    assert dose.complete and dose.samples == len(samples)


def test_cem43_summed_per_millisecond_equals_the_one_shot_value() -> None:
    many, one = Cem43Dose(), Cem43Dose()
    for _ in range(60_000):
        many.add(46.5, 0.001)
    one.add(46.5, 60.0)
    assert many.minutes == pytest.approx(one.minutes, rel=1e-9)
    assert one.minutes == pytest.approx(2.0**3.5, rel=1e-12)


def test_cem43_at_an_absurd_temperature_saturates_instead_of_overflowing() -> None:
    dose = Cem43Dose()
    dose.add(2000.0, 1.0)  # 2^1957 equivalent minutes: beyond float64
    assert dose.minutes == math.inf
    assert dose.log_value == pytest.approx((2000.0 - 43.0) * math.log(2.0) + math.log(1 / 60))
    dose.add(37.0, 1.0)  # and it keeps working afterwards
    assert math.isfinite(dose.log_value)


# --- Arrhenius Ω -------------------------------------------------------------------------------


@pytest.mark.parametrize(("temp_c", "dt_s"), [(70.0, 0.001), (60.0, 1.0), (55.0, 30.0)])
def test_issue13_item1_omega_matches_hand_computed_integral(temp_c: float, dt_s: float) -> None:
    dose = ArrheniusDose()
    dose.add(temp_c, dt_s)
    assert dose.omega == pytest.approx(dt_s * hand_rate_per_s(temp_c), rel=1e-9)


@pytest.mark.parametrize(
    ("temp_c", "low_s", "high_s"),
    [
        # Burn times in the domain facts: ~1 s at 60 °C, ~1 min at 55 °C, hours at 44-45 °C.
        (60.0, 0.3, 3.0),
        (55.0, 10.0, 120.0),
        (45.0, 3600.0, 24 * 3600.0),
    ],
)
def test_omega_reaches_one_in_the_published_burn_times(
    temp_c: float, low_s: float, high_s: float
) -> None:
    dose = ArrheniusDose()
    dose.add(temp_c, low_s)
    assert dose.omega < 1.0
    dose.reset()
    dose.add(temp_c, high_s)
    assert dose.omega > 1.0


def test_omega_per_sample_adds_up_to_the_one_shot_value() -> None:
    many, one = ArrheniusDose(), ArrheniusDose()
    for _ in range(1000):
        many.add(70.0, 0.001)
    one.add(70.0, 1.0)
    assert many.log_value == pytest.approx(one.log_value, abs=1e-9)


def test_omega_at_extreme_heat_is_huge_but_finite_in_log_space() -> None:
    dose = ArrheniusDose()
    dose.add(40_000.0, 1e-4)  # a 0.1 ms spike far past vaporisation
    assert math.isfinite(dose.log_value) and dose.log_value > 150.0
    assert dose.omega > 1e60 and not math.isnan(dose.omega)


def test_the_constant_set_is_named_and_gives_75500_k() -> None:
    assert "Henriques" in HENRIQUES_MORITZ.name
    assert HENRIQUES_MORITZ.activation_temp_k == pytest.approx(75_530, rel=1e-4)
    assert log_damage_rate(60.0) == pytest.approx(math.log(hand_rate_per_s(60.0)), rel=1e-12)


# --- unknown samples fail safe -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -300.0])
@pytest.mark.parametrize("kind", [Cem43Dose, ArrheniusDose])
def test_unknown_temperature_is_counted_never_guessed(
    kind: type[Cem43Dose] | type[ArrheniusDose], bad: float
) -> None:
    dose = kind()
    dose.add(50.0, 1.0)
    before = dose.log_value
    dose.add(bad, 1.0)
    assert dose.log_value == before
    assert dose.unknown_samples == 1 and not dose.complete


@pytest.mark.parametrize("dt", [-0.001, math.nan, math.inf])
@pytest.mark.parametrize("kind", [Cem43Dose, ArrheniusDose])
def test_time_that_does_not_run_forward_is_refused(
    kind: type[Cem43Dose] | type[ArrheniusDose], dt: float
) -> None:
    with pytest.raises(ValueError, match="dt"):
        kind().add(45.0, dt)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-50.0, max_value=5000.0),
            st.floats(min_value=0.0, max_value=100.0),
        ),
        max_size=40,
    )
)
def test_doses_never_decrease(samples: list[tuple[float, float]]) -> None:
    cem, omega = Cem43Dose(), ArrheniusDose()
    last_cem = last_omega = -math.inf
    for temp_c, dt_s in samples:
        cem.add(temp_c, dt_s)
        omega.add(temp_c, dt_s)
        assert cem.log_value >= last_cem and omega.log_value >= last_omega
        assert not math.isnan(cem.log_value) and not math.isnan(omega.log_value)
        last_cem, last_omega = cem.log_value, omega.log_value


def test_log_add_handles_zero_and_huge_terms() -> None:
    assert log_add(-math.inf, 3.0) == 3.0
    assert log_add(800.0, 800.0) == pytest.approx(800.0 + math.log(2.0))
    assert log_add(1.0, 2.0) == pytest.approx(math.log(math.e + math.e**2))


def test_a_long_run_holds_no_per_sample_state() -> None:
    """A monitor feeds a dose for hours at 1 kHz: memory must not grow with the samples."""
    dose = ArrheniusDose()
    cem = Cem43Dose()
    tracemalloc.start()
    try:
        for i in range(20):
            dose.add(40.0 + i % 7, 0.001)
            cem.add(40.0 + i % 7, 0.001)
        baseline, _ = tracemalloc.get_traced_memory()
        for i in range(30_000):
            dose.add(40.0 + i % 7, 0.001)
            cem.add(40.0 + i % 7, 0.001)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - baseline < 1024


# --- the vectorised field -------------------------------------------------------------------------


def test_field_at_constant_temperature_equals_the_scalar_dose() -> None:
    temps = np.array([37.0, 50.0, 60.0, 70.0])
    field = ArrheniusField(temps)
    for _ in range(100):
        field.add(temps, 0.01)
    for i, temp_c in enumerate(temps):
        scalar = ArrheniusDose()
        scalar.add(float(temp_c), 1.0)
        assert field.log_omega[i] == pytest.approx(scalar.log_value, abs=1e-9)


def test_field_integrates_a_temperature_ramp_accurately_with_few_samples() -> None:
    """60 -> 80 °C over 10 ms: 10 samples against a 200,000-step midpoint sum."""
    fine_t = (np.arange(200_000) + 0.5) / 200_000 * 0.01
    reference = float(np.sum(hand_rate_per_s_array(60.0 + 2000.0 * fine_t)) * 0.01 / 200_000)
    field = ArrheniusField(np.array([60.0]))
    for k in range(1, 11):
        field.add(np.array([60.0 + 2.0 * k]), 0.001)
    assert float(field.omega()[0]) == pytest.approx(reference, rel=0.01)


def hand_rate_per_s_array(temps_c: np.ndarray) -> np.ndarray:
    return P_PER_S * np.exp(-EA_J_MOL / (R_J_MOL_K * (temps_c + 273.15)))


def test_field_marks_an_unknown_point_unknown_and_keeps_the_others() -> None:
    field = ArrheniusField(np.array([60.0, 60.0]))
    field.add(np.array([60.0, math.nan]), 0.1)
    field.add(np.array([60.0, 60.0]), 0.1)
    assert math.isfinite(field.log_omega[0]) and math.isnan(field.log_omega[1])


def test_field_allocates_no_arrays_per_call() -> None:
    n = 10_000  # any temporary array would be 80 kB
    temps = np.full(n, 55.0)
    field = ArrheniusField(temps)
    field.add(temps, 0.001)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(50):
            field.add(temps, 0.001)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 8 * n // 10
