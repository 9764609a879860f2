"""Issue 11 item 5: the rules of ``CalibrationStatus`` and ``DeliveredEnergyWatch`` (no
devices: the core's own arithmetic, on controlled dates)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from device_profiles.loader import load
from monitor.core.calibration_status import CalibrationOutcome, CalibrationStatus
from monitor.core.delivered import DeliveredEnergyWatch

T0 = datetime(2026, 3, 2, 9, 0).astimezone()
DUE = date(2026, 8, 31)


def status(
    full: CalibrationOutcome | None,
    daily: CalibrationOutcome | None = None,
    *,
    required: bool = True,
) -> CalibrationStatus:
    return CalibrationStatus("station-1", 182, 14, required, full, daily)


def passed(at: datetime = T0, due: date | None = DUE) -> CalibrationOutcome:
    return CalibrationOutcome("a" * 32, at, True, "all 8 points within ±20%", due)


def failed(at: datetime = T0) -> CalibrationOutcome:
    return CalibrationOutcome("b" * 32, at, False, "worst 3 mm at 2 J (+31%)", None)


def test_item5_missing_failed_and_expired_calibrations_block_with_their_dates() -> None:
    assert "no calibration of laser station-1 is on record" in (status(None).blocker(T0) or "")
    why = status(failed()).blocker(T0) or ""
    assert "(2026-03-02 09:00) failed: worst 3 mm at 2 J (+31%)" in why
    on_due_day = datetime(2026, 8, 31, 12).astimezone()
    assert status(passed(), passed(on_due_day, None)).blocker(on_due_day) is None  # due that day
    after = datetime(2026, 9, 1, 12).astimezone()
    why = status(passed(), passed(after, None)).blocker(after) or ""
    assert "was due 2026-08-31 (interval 182 days), today is 2026-09-01" in why
    assert "has no due date" in (status(passed(due=None)).blocker(T0) or "")


def test_item5_the_daily_check_is_due_each_day_and_a_full_calibration_counts_as_one() -> None:
    assert status(passed()).blocker(T0 + timedelta(hours=3)) is None  # calibrated today
    tomorrow = T0 + timedelta(days=1)
    why = status(passed()).blocker(tomorrow) or ""
    assert "daily check of laser station-1 is due: none today (2026-03-03); last never" in why
    assert status(passed(), passed(tomorrow, None)).blocker(tomorrow + timedelta(hours=1)) is None
    bad_daily = CalibrationOutcome("d" * 32, tomorrow, False, "+25% at 2 J", None)
    why = status(passed(), bad_daily).blocker(tomorrow) or ""
    assert "today's daily check" in why and "failed: +25% at 2 J" in why
    assert status(passed(), required=False).blocker(tomorrow) is None


def test_item5_a_warning_before_expiry_is_a_note_not_a_block() -> None:
    near = datetime(2026, 8, 20, 9).astimezone()
    s = status(passed(), passed(near, None))
    assert s.blocker(near) is None
    assert s.warning(near) == "calibration of laser station-1 due 2026-08-31 (in 11 days)"
    assert s.note(near) == s.warning(near)
    assert s.warning(T0) is None  # months away
    assert status(None).note(T0) == status(None).blocker(T0)


def test_item5_the_status_reads_its_own_clock() -> None:
    later = datetime(2027, 1, 1).astimezone()
    s = CalibrationStatus("station-1", 182, 14, False, passed(), None, clock=lambda: later)
    assert "has expired" in (s.blocker() or "")


@pytest.fixture(scope="module")
def watch_setup() -> object:
    return load("demo-ndyag-1064-cal").setup


SETTINGS = {"fluence_j_cm2": 100.0, "spot_mm": 2.0, "pulse_ms": 30.0, "rep_rate_hz": 1.0}
SET_J = 100.0 * math.pi * 0.1**2  # 3.14 J


def test_item5_the_delivered_energy_watch_holds_each_pulse_to_the_tolerance(
    watch_setup: object,
) -> None:
    from device_profiles.schema import Setup

    assert isinstance(watch_setup, Setup)
    watch = DeliveredEnergyWatch(watch_setup)
    assert watch.active and watch.tolerance_fraction == 0.2
    assert watch.judge(SETTINGS, SET_J * 1.19) is None
    assert watch.judge(SETTINGS, SET_J * 0.81) is None
    assert watch.drifted is None
    finding = watch.judge(SETTINGS, SET_J * 0.75)
    assert finding is not None and "(-25%), beyond ±20%" in finding.reason
    assert finding.record["ratio"] == pytest.approx(0.75)
    assert watch.drifted == finding.reason  # latched
    assert watch.judge(SETTINGS, SET_J) is None and watch.drifted == finding.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, "12.0", None, True])
def test_item5_a_delivered_energy_that_is_not_a_number_is_a_finding(
    watch_setup: object, bad: object
) -> None:
    from device_profiles.schema import Setup

    assert isinstance(watch_setup, Setup)
    finding = DeliveredEnergyWatch(watch_setup).judge(SETTINGS, bad)
    assert finding is not None and ("not a number" in finding.reason or "finite" in finding.reason)


def test_item5_a_laser_that_reports_no_delivered_energy_is_not_watched() -> None:
    assert DeliveredEnergyWatch(load("demo-ndyag-1064").setup).active is False
