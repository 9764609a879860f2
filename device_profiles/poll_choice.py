"""Which skin-sensor poll period a required reaction time needs, and what each period costs.

The budget (``device_profiles.timing``) counts a whole poll period between a real crossing and
the read that sees it: with a 5 ms poll the poll is a large share of the detection time. A
shorter period detects sooner but reads more often: more requests per second on the sensor's
line or socket, a larger share of the time with a read in flight, more work for the bridge's
sensor worker (measured by ``laserguard bench``, not computed here).

The period is not monotonic in its effect: a period shorter than the read itself makes the
worker fall behind (the next read starts a period after the last one ended), which is worse
than a period just longer than the read. ``poll_choices`` therefore evaluates the budget at
each candidate period instead of solving for one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from device_profiles.schema import Setup
from device_profiles.timing import reaction_budget, read_block_ms

__all__ = [
    "PollChoice",
    "PollPlan",
    "fastest_poll",
    "longest_poll_for",
    "poll_choices",
    "poll_plan",
]

#: The periods shown in the table (ms): the 1–2 ms polls issue 15 asks about, the bundled
#: setups' 5 ms, and slower ones.
TABLE_PERIODS_MS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
#: The grid on which the longest period that still meets a requirement is searched (ms).
SEARCH_STEP_MS = 0.1


@dataclass(frozen=True)
class PollChoice:
    """The setup's worst-case reaction time with the skin sensor(s) polled every ``period_ms``."""

    period_ms: float
    reaction_ms: float
    read_ms: float  # one read transaction, wire time + the device's answer time

    @property
    def reads_per_s(self) -> float:
        return 1000.0 / max(self.period_ms, self.read_ms)

    @property
    def busy_share(self) -> float:
        """The share of the time a read is in flight (1.0: the line is never idle)."""
        return min(1.0, self.read_ms / self.period_ms)

    @property
    def falls_behind(self) -> bool:
        return self.read_ms >= self.period_ms


def _with_period(setup: Setup, period_ms: float) -> Setup:
    """The same setup with every skin sensor polled every ``period_ms`` (not re-validated:
    the budget is asked about periods the profile's own bounds may not allow)."""
    update: dict[str, object] = {
        "sensor": setup.sensor.model_copy(update={"poll_period_ms": period_ms})
    }
    if setup.sensor2 is not None:
        update["sensor2"] = setup.sensor2.model_copy(update={"poll_period_ms": period_ms})
    return setup.model_copy(update=update)


def poll_choices(setup: Setup, periods_ms: Iterable[float]) -> list[PollChoice]:
    read_ms = read_block_ms(setup.sensor)
    return [
        PollChoice(p, reaction_budget(_with_period(setup, p)).total_ms, read_ms) for p in periods_ms
    ]


def _grid(required_ms: float) -> list[float]:
    steps = round(required_ms / SEARCH_STEP_MS)
    return [round(i * SEARCH_STEP_MS, 6) for i in range(1, steps + 1)]


def longest_poll_for(setup: Setup, required_ms: float) -> PollChoice | None:
    """The longest sensor poll period (on a 0.1 ms grid) whose worst-case reaction time is
    within ``required_ms``; None when no period is short enough (the rest of the budget,
    the laser's stop route above all, already takes it)."""
    meeting = [c for c in poll_choices(setup, _grid(required_ms)) if c.reaction_ms <= required_ms]
    return max(meeting, key=lambda c: c.period_ms) if meeting else None


def fastest_poll(setup: Setup, up_to_ms: float) -> PollChoice:
    """The period (on the same grid, up to ``up_to_ms``) with the shortest reaction time."""
    return min(poll_choices(setup, _grid(up_to_ms)), key=lambda c: (c.reaction_ms, -c.period_ms))


@dataclass(frozen=True)
class PollPlan:
    required_ms: float
    now: PollChoice
    longest: PollChoice | None
    fastest: PollChoice
    table: list[PollChoice]

    def format(self) -> str:
        now, longest = self.now, self.longest
        lines = [
            f"skin-sensor poll period: {now.period_ms:g} ms now "
            f"(worst-case reaction {now.reaction_ms:.2f} ms)"
        ]
        best = self.fastest
        if longest is None:
            lines.append(
                f"  no poll period meets {self.required_ms:g} ms: the rest of the budget takes "
                f"it (the fastest, a {best.period_ms:g} ms poll, gives {best.reaction_ms:.2f} ms);"
                " shorten the laser's stop route or the reads"
            )
        else:
            lines.append(
                f"  a required reaction time of {self.required_ms:g} ms allows a poll of up to "
                f"{longest.period_ms:g} ms ({longest.reaction_ms:.2f} ms worst case); the fastest "
                f"is a {best.period_ms:g} ms poll ({best.reaction_ms:.2f} ms): a shorter one "
                "falls behind its own read"
            )
        lines.append(f"  {'poll':>8}  {'reaction':>9}  {'reads/s':>8}  {'read in flight':>14}")
        for c in self.table:
            flag = "  meets" if c.reaction_ms <= self.required_ms else "  EXCEEDS"
            behind = " (falls behind: the read outlasts the period)" if c.falls_behind else ""
            lines.append(
                f"  {c.period_ms:>5g} ms  {c.reaction_ms:>6.2f} ms  {c.reads_per_s:>8.0f}"
                f"  {c.busy_share:>13.0%}{flag}{behind}"
            )
        lines.append(
            "  (reads/s and the share of time a read is in flight are the cost on the sensor's "
            "line; the bridge's CPU cost of each period: laserguard bench --only poll_cost)"
        )
        return "\n".join(lines)


def poll_plan(setup: Setup, required_ms: float | None = None) -> PollPlan:
    """What ``laserguard profiles timing`` prints about the poll: now, the longest period that
    meets ``required_ms`` (default: the profile's ``required_reaction_ms``), and a table."""
    required = setup.limits.required_reaction_ms if required_ms is None else required_ms
    (now,) = poll_choices(setup, [setup.sensor.poll_period_ms])
    return PollPlan(
        required,
        now,
        longest_poll_for(setup, required),
        fastest_poll(setup, max(required, now.period_ms)),
        poll_choices(setup, TABLE_PERIODS_MS),
    )
