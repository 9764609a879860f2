"""Whether the laser's calibration lets it arm: a small typed status, given to the session.

The core does not read calibration records (``monitor.calibration`` does, from the session
log, and builds this status); it is handed a ``CalibrationStatus`` in ``SessionParams`` and
asks it at every arming, on the status's own clock (injectable: tests set the date). A setup
with a ``calibration`` policy and no status refuses to arm: unknown is unsafe.

Arming is refused, with the dates in the message, when:

- no calibration of this laser is on record;
- the last completed calibration failed;
- it has expired (today is after its due date);
- the policy requires a daily check and today has none that passed (a calibration that
  passed today counts as one), or today's latest failed;
- the last calibration was made under another calibration policy or laser description
  than the setup's (``not_counted`` says which; ``monitor.calibration.basis``);
- the laser answers its identify command other than it did for the calibration
  (``identity_blocker``, asked with the connected laser's answer at arming).

An incomplete run (interrupted, a lost meter) is no result: it changes none of this. Within
``warning_days`` of the due date ``note`` says when it is due (the live view, the snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from monitor.core.records import Payload

__all__ = ["CalibrationOutcome", "CalibrationStatus", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _local_day(t: datetime) -> date:
    """The clinic's calendar day of ``t`` (the machine's local time zone)."""
    return t.astimezone().date()


def _when(t: datetime) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class CalibrationOutcome:
    """One completed calibration or daily check of the laser, as its certificate says."""

    record_id: str
    performed_at: datetime  # time-zone aware
    passed: bool
    summary: str  # the verdict in words (the worst point)
    next_due: date | None = None  # a full calibration's due date; None for a daily check

    def as_record(self) -> Payload:
        return {
            "record_id": self.record_id,
            "performed_at": self.performed_at.isoformat(),
            "passed": self.passed,
            "summary": self.summary,
            "next_due": None if self.next_due is None else self.next_due.isoformat(),
        }


@dataclass(frozen=True)
class CalibrationStatus:
    """The laser's calibration as the record stands at session start (module docstring)."""

    laser_id: str
    interval_days: int
    warning_days: int
    daily_check_required: bool
    last_calibration: CalibrationOutcome | None  # the latest completed full calibration
    last_daily_check: CalibrationOutcome | None  # the latest completed daily check
    clock: Callable[[], datetime] = field(default=utc_now, compare=False)
    # The laser's answer to its identify command when it was calibrated; None when it was
    # not asked (a laser without one).
    laser_identity: str | None = None
    # Why the latest calibration on record does not count (made under another policy or
    # laser description); then ``last_calibration`` is None.
    not_counted: str | None = None

    def _now(self, now: datetime | None) -> datetime:
        return self.clock() if now is None else now

    def blocker(self, now: datetime | None = None) -> str | None:
        """Why the laser may not arm now, with the dates; None when its calibration holds."""
        today = _local_day(self._now(now))
        cal = self.last_calibration
        if cal is None and self.not_counted is not None:
            return self.not_counted
        if cal is None:
            return (
                f"no calibration of laser {self.laser_id} is on record: arming needs a passing "
                "calibration (laserguard calibrate)"
            )
        done = _when(cal.performed_at)
        if not cal.passed:
            return (
                f"the last calibration of laser {self.laser_id} ({done}) failed: {cal.summary}; "
                "arming needs a passing calibration"
            )
        if cal.next_due is None or today > cal.next_due:
            due = "has no due date" if cal.next_due is None else f"was due {cal.next_due}"
            return (
                f"the calibration of laser {self.laser_id} ({done}) has expired: it {due} "
                f"(interval {self.interval_days} days), today is {today}; recalibrate"
            )
        if self.daily_check_required and _local_day(cal.performed_at) != today:
            daily = self.last_daily_check
            if daily is None or _local_day(daily.performed_at) != today:
                last = "never" if daily is None else _when(daily.performed_at)
                return (
                    f"the daily check of laser {self.laser_id} is due: none today ({today}); "
                    f"last {last} (laserguard calibrate --daily)"
                )
            if not daily.passed:
                return (
                    f"today's daily check of laser {self.laser_id} ({_when(daily.performed_at)})"
                    f" failed: {daily.summary}"
                )
        return None

    def identity_blocker(self, answered: str | None) -> str | None:
        """Why the connected laser, which answered ``answered`` to its identify command, may
        not arm under this calibration: another laser than the one calibrated; else None."""
        if self.laser_identity is None or answered == self.laser_identity:
            return None
        if answered is None:
            return (
                f"the laser has not identified itself yet, and the calibration of laser "
                f"{self.laser_id} was made on the one that answers {self.laser_identity!r}: "
                "arming refused"
            )
        return (
            f"the last calibration of laser {self.laser_id} was made on another laser "
            f"({self.laser_identity!r}), this one answers {answered[:80]!r}: recalibrate"
        )

    def warning(self, now: datetime | None = None) -> str | None:
        """The calibration is due within ``warning_days`` (and still holds); else None."""
        cal = self.last_calibration
        if cal is None or not cal.passed or cal.next_due is None:
            return None
        today = _local_day(self._now(now))
        days = (cal.next_due - today).days
        if 0 <= days <= self.warning_days:
            return f"calibration of laser {self.laser_id} due {cal.next_due} (in {days} days)"
        return None

    def note(self, now: datetime | None = None) -> str | None:
        """What an operator should see: why arming is blocked, else the warning, else None."""
        t = self._now(now)
        return self.blocker(t) or self.warning(t)

    def as_record(self) -> Payload:
        """For the session's start record: which calibration it ran under."""
        return {
            "laser_id": self.laser_id,
            "interval_days": self.interval_days,
            "warning_days": self.warning_days,
            "daily_check_required": self.daily_check_required,
            "laser_identity": self.laser_identity,
            "not_counted": self.not_counted,
            "last_calibration": None
            if self.last_calibration is None
            else self.last_calibration.as_record(),
            "last_daily_check": None
            if self.last_daily_check is None
            else self.last_daily_check.as_record(),
        }
