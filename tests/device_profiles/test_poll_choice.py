"""Issue 15 item 3: which skin-sensor poll period a required reaction time needs, and what
each period costs on the sensor's line (``laserguard profiles timing``)."""

from __future__ import annotations

import pytest

from device_profiles.loader import load
from device_profiles.poll_choice import (
    SEARCH_STEP_MS,
    fastest_poll,
    longest_poll_for,
    poll_choices,
    poll_plan,
)
from device_profiles.schema import Setup
from device_profiles.timing import reaction_budget, read_block_ms
from tests.monitor.cli.test_profiles_cli import run


@pytest.fixture(scope="module")
def setup() -> Setup:
    return load("demo-ndyag-1064").setup


def test_item3_the_current_period_is_the_budget_of_the_profile(setup: Setup) -> None:
    plan = poll_plan(setup)
    assert plan.now.period_ms == setup.sensor.poll_period_ms
    assert plan.now.reaction_ms == pytest.approx(reaction_budget(setup).total_ms)


def test_item3_the_longest_period_meets_the_requirement_and_the_next_does_not(setup: Setup) -> None:
    longest = longest_poll_for(setup, 40.0)
    assert longest is not None and longest.reaction_ms <= 40.0
    (next_one,) = poll_choices(setup, [longest.period_ms + SEARCH_STEP_MS])
    assert next_one.reaction_ms > 40.0
    # Each millisecond of poll is a millisecond of reaction time, above the read time.
    (a, b) = poll_choices(setup, [10.0, 11.0])
    assert b.reaction_ms - a.reaction_ms == pytest.approx(1.0)


def test_item3_a_poll_shorter_than_its_read_falls_behind_and_is_slower(setup: Setup) -> None:
    read_ms = read_block_ms(setup.sensor)
    (short, just_above) = poll_choices(setup, [read_ms / 2, read_ms + SEARCH_STEP_MS])
    assert short.falls_behind and not just_above.falls_behind
    assert short.reaction_ms > just_above.reaction_ms
    assert fastest_poll(setup, 50.0).period_ms == pytest.approx(read_ms + SEARCH_STEP_MS)
    assert short.busy_share == 1.0 and short.reads_per_s == pytest.approx(1000.0 / read_ms)


def test_item3_an_unreachable_requirement_says_no_period_meets_it(setup: Setup) -> None:
    assert longest_poll_for(setup, 20.0) is None
    code, text = run("timing", "demo-ndyag-1064", "--required-ms", "20")
    assert code == 0
    assert "no poll period meets 20 ms" in text
    assert "shorten the laser's stop route or the reads" in text


def test_item3_timing_says_which_poll_the_profiles_requirement_allows() -> None:
    code, text = run("timing", "demo-ndyag-1064")
    assert code == 0
    assert "skin-sensor poll period: 5 ms now" in text
    assert "a required reaction time of 50 ms allows a poll of up to 22.1 ms" in text
    assert "falls behind" in text  # the 1 and 2 ms rows: the read outlasts the period


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf", "20000"])
def test_item3_a_bad_required_time_is_refused_in_one_sentence(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run("timing", "demo-ndyag-1064", "--required-ms", bad)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--required-ms must be above 0" in err
