"""Issue 11 item 3: the arithmetic of a calibration (points, fit, verdicts), no devices."""

from __future__ import annotations

import math

import pytest

from monitor.calibration.analysis import (
    EnergyPoint,
    ReferencePoint,
    Verdict,
    combine,
    fit_line,
    judge_energy,
    judge_reference,
)


def point(set_j: float, *readings: float, over: bool = False, spot: float = 3.0) -> EnergyPoint:
    return EnergyPoint(spot, set_j, 10.0, set_j, tuple(readings), over)


def test_item3_a_point_has_its_mean_sd_and_deviation() -> None:
    p = point(1.0, 1.1, 1.2, 1.3)
    assert p.mean_j == pytest.approx(1.2) and p.sd_j == pytest.approx(0.1)
    assert p.deviation == pytest.approx(0.2) and p.within(0.2) and not p.within(0.19)
    assert point(1.0, 1.0, over=True).deviation == math.inf
    assert EnergyPoint.from_record(p.as_record()) == p


def test_item3_the_fit_recovers_a_gain_and_an_offset() -> None:
    xs = [0.5, 1.0, 1.5, 2.0]
    fit = fit_line(xs, [1.3 * x - 0.05 for x in xs])
    assert fit is not None
    assert (fit.slope, fit.offset_j, fit.r2) == pytest.approx((1.3, -0.05, 1.0))
    assert fit_line([1.0, 1.0], [1.0, 2.0]) is None  # no spread in x: no line


def test_item3_the_verdict_names_the_worst_point() -> None:
    pts = [point(0.5, 0.52, 0.51), point(1.0, 1.31, 1.29), point(2.0, 2.1, 2.0)]
    r = judge_energy(pts, 0.2, planned=3)
    assert r.verdict is Verdict.FAIL and r.worst is pts[1]
    assert r.reason.startswith("1 of 3 points beyond ±20%; worst 3 mm at 1 J: mean 1.3 J")
    ok = judge_energy(pts[:1] + pts[2:], 0.2, planned=2)
    assert ok.verdict is Verdict.PASS and "all 2 points within ±20%" in ok.reason


def test_item3_cut_short_is_incomplete_unless_a_point_already_failed() -> None:
    good = [point(0.5, 0.5, 0.5)]
    r = judge_energy(good, 0.2, planned=8, cut_short="Ctrl-C")
    assert r.verdict is Verdict.INCOMPLETE and "1 of 8 points measured" in r.reason
    r = judge_energy([*good, point(1.0, 1.5, 1.5)], 0.2, planned=8, cut_short="Ctrl-C")
    assert r.verdict is Verdict.FAIL and "cut short: Ctrl-C" in r.reason
    assert judge_energy([], 0.2, planned=8).verdict is Verdict.INCOMPLETE
    over = judge_energy([point(2.0, over=True)], 0.2, planned=1)
    assert over.verdict is Verdict.FAIL and "over-range" in over.reason


def test_item2_a_sensor_reading_low_is_said_to_be_the_dangerous_direction() -> None:
    low = ReferencePoint("skin_sensor", 40.0, (39.3, 39.4))
    r = judge_reference("skin_sensor", [low], 0.5, planned=1)
    assert r.verdict is Verdict.FAIL and low.reads_low
    assert "reads LOW by 0.65 °C at 40.00 °C (beyond ±0.5 °C): the dangerous direction" in r.reason
    high = ReferencePoint("plate", 5.0, (5.7,))
    r = judge_reference("plate", [high], 0.5, planned=1)
    assert r.verdict is Verdict.FAIL and "reads HIGH" in r.reason and "dangerous" not in r.reason
    fine = judge_reference("plate", [ReferencePoint("plate", 5.0, (5.1,))], 0.5, planned=2)
    assert fine.verdict is Verdict.INCOMPLETE


def test_item3_a_run_combines_its_parts() -> None:
    P, F, I = Verdict.PASS, Verdict.FAIL, Verdict.INCOMPLETE  # noqa: E741
    assert combine([P, P, P]) is P and combine([P, I, F]) is F and combine([P, I]) is I
    assert combine([]) is I
