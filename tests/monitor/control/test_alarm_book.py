"""The console's alarm book reads the session's tally of halts (``TripTally``: per condition,
how many and the last), not the list of every halt, and keeps its rules (IEC 60601-1-8 style
latching, one reset per condition, a recurrence needs a new reset)."""

from __future__ import annotations

import pytest

from monitor.control.alarms import AlarmBook, ResetRefused
from monitor.core.checks import Severity
from monitor.core.records import Trip, TripTally


def halt(check: str, t_s: float, reason: str = "") -> Trip:
    return Trip(check, reason or f"{check} at {t_s:g} s", t_s, Severity.HALT)


def test_each_condition_is_latched_with_its_count_and_last_reason() -> None:
    trips = TripTally.of(
        [halt("sensor_stale", 1.0), halt("skin_temp_high", 2.0), halt("sensor_stale", 3.0)]
    )
    alarms = {a.check: a for a in AlarmBook().view(trips.frozen(), {}, [], {})}
    assert alarms["sensor_stale"].occurrences == 2 and alarms["sensor_stale"].latched
    assert alarms["sensor_stale"].reason == "sensor_stale at 3 s"
    assert alarms["sensor_stale"].since_t_s == 3.0
    assert alarms["skin_temp_high"].occurrences == 1


def test_a_reset_clears_one_condition_and_a_recurrence_needs_another() -> None:
    book = AlarmBook()
    trips = TripTally.of([halt("sensor_stale", 1.0), halt("skin_temp_high", 2.0)])
    assert book.reset("sensor_stale", trips.frozen(), active=[]) == ["skin_temp_high"]
    assert [a.check for a in book.view(trips.frozen(), {}, [], {})] == ["skin_temp_high"]
    trips.add(halt("sensor_stale", 5.0))  # it came back: a new occurrence, latched again
    (again,) = [a for a in book.view(trips.frozen(), {}, [], {}) if a.check == "sensor_stale"]
    assert again.occurrences == 1 and again.reason == "sensor_stale at 5 s"
    with pytest.raises(ResetRefused, match="the cause is still present: sensor_stale"):
        book.reset("sensor_stale", trips.frozen(), active=["sensor_stale"])
    with pytest.raises(ResetRefused, match="is not a latched alarm"):
        book.reset("laser_link", trips.frozen(), active=[])


def test_an_active_warning_shows_its_last_reason() -> None:
    warned = TripTally.of(
        [Trip("cooler_plate_warn", f"plate {c} °C", c, Severity.WARN) for c in (14.0, 15.2)]
    )
    (alarm,) = AlarmBook().view({}, warned.frozen(), ["cooler_plate_warn"], {})
    assert alarm.priority == "medium" and not alarm.latched and alarm.active
    assert alarm.reason == "plate 15.2 °C"


def test_thousands_of_halts_cost_the_book_one_entry_per_condition() -> None:
    """The long bench run halted 5,000 times in one session: the book's view is built from
    one entry per condition, whatever the number of halts."""
    tally = TripTally()
    for i in range(5000):
        tally.add(halt("skin_temp_high", float(i)))
    counts = tally.frozen()
    assert len(counts) == 1 and tally.total == 5000
    (alarm,) = AlarmBook().view(counts, {}, [], {})
    assert alarm.occurrences == 5000 and alarm.since_t_s == 4999.0
