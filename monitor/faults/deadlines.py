"""Each fault-matrix scenario's deadline, from the setup's reaction-time budget.

The budget (``device_profiles.timing.reaction_budget``) is the worst case from an out-of-band
value at the sensor to emission stopped: detection (response, poll, read, check cycle) plus
the slower of the stop and relay routes. A fault that is not an out-of-band value first has
to *become* detectable: a silent device is noticed only when its data is ``stale_ms`` old, a
stuck reading only after ``sensor_stuck_ms``. Each kind adds that wait, named, to the budget.

Two clocks are used (``DeadlineRule.measured_from``):

- ``fault``: from the moment the simulator made the fault happen to emission stopped;
- ``trip``: for faults that are a slow physical process (a plate warming, a dose
  accumulating), the moment the value leaves its band is the skin's doing, not the fault's;
  the matrix then measures from the halt's detection to emission stopped, against the whole
  budget (which also covers the detection the trip already did).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from device_profiles.schema import Setup
from device_profiles.timing import assumed_answer_ms, reaction_budget
from monitor.record.recorder import LogRecorder
from sim.runner import TICK_S

__all__ = ["HARNESS_POLL_MS", "LOG_DRAIN_MS", "SIM_TICK_MS", "DeadlineRule", "deadline_for"]

#: How often the matrix runner reads the simulator's record for an announced operator action.
HARNESS_POLL_MS = 5.0
#: The simulated devices check their watchdogs once a tick (wall time).
SIM_TICK_MS = TICK_S * 1000.0
#: The longest the session log's writer waits between two writes (telemetry alone; an event
#: is written within its shorter flush interval): a broken disk is found by the next write.
LOG_DRAIN_MS = float(inspect.signature(LogRecorder).parameters["telemetry_flush_s"].default) * 1e3


@dataclass(frozen=True)
class DeadlineRule:
    deadline_ms: float
    measured_from: str  # "fault" or "trip"
    why: str


def deadline_for(kind: str, setup: Setup) -> DeadlineRule:
    """The deadline of a ``MatrixEntry.deadline`` kind for this setup."""
    budget_ms = reaction_budget(setup).total_ms
    lim = setup.limits
    laser_wait_ms = lim.stale_ms["laser"] + setup.laser.transport.timeout_ms
    match kind:
        case "crossing" | "dose":
            return DeadlineRule(budget_ms, "trip", f"reaction budget {budget_ms:.1f} ms")
        case "stale":
            wait = lim.stale_ms["sensor"]
            why = f"sensor stale_ms {wait:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(wait + budget_ms, "fault", why)
        case "link":
            # The slowest device to be declared lost: the laser (stale_ms + one timeout).
            wait = max(
                lim.stale_ms["cooler"] + setup.cooler.transport.timeout_ms,
                laser_wait_ms,
                lim.stale_ms["sensor"] + setup.sensor.transport.timeout_ms,
            )
            why = f"slowest device's stale_ms + timeout {wait:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(wait + budget_ms, "fault", why)
        case "readback" | "unexpected_emission":
            why = f"laser stale_ms + timeout {laser_wait_ms:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(laser_wait_ms + budget_ms, "fault", why)
        case "stuck":
            stuck_ms = lim.sensor_stuck_ms
            if stuck_ms is None:
                raise ValueError("a stuck-sensor scenario needs limits.sensor_stuck_ms")
            why = f"sensor_stuck_ms {stuck_ms:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(stuck_ms + budget_ms, "fault", why)
        case "disagreement":
            dis = lim.sensor_disagreement
            if dis is None:
                raise ValueError("a disagreement scenario needs limits.sensor_disagreement")
            why = f"sensor_disagreement.max_ms {dis.max_ms:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(dis.max_ms + budget_ms, "fault", why)
        case "proof_test":
            # From the operator's STANDBY (announced by the simulator; the runner sees it
            # within its poll): the relay is written open, the laser has its stop grace to
            # drop by itself, then the latched halt stops it by command.
            relay_ms = assumed_answer_ms(setup)["interlock"]
            wait = HARNESS_POLL_MS + relay_ms + laser_wait_ms
            why = (
                f"runner poll {HARNESS_POLL_MS:g} + relay write {relay_ms:g} + laser stop grace "
                f"{laser_wait_ms:g} + budget {budget_ms:.1f} ms"
            )
            return DeadlineRule(wait + budget_ms, "fault", why)
        case "device_watchdog":
            # The bridge is gone (killed) or frozen: nothing LaserGuard does counts. The laser
            # drops to STANDBY by itself when no heartbeat came for heartbeat_timeout_ms; the
            # simulator checks once a tick, and the check may fall just after the timeout.
            hb_ms = setup.laser.heartbeat_timeout_ms
            why = f"laser heartbeat_timeout_ms {hb_ms:g} + 2 simulator ticks {SIM_TICK_MS:g} ms"
            return DeadlineRule(hb_ms + 2 * SIM_TICK_MS, "fault", why)
        case "log":
            why = f"log writer's longest wait {LOG_DRAIN_MS:g} + budget {budget_ms:.1f} ms"
            return DeadlineRule(LOG_DRAIN_MS + budget_ms, "fault", why)
    raise ValueError(f"the fault matrix cannot judge deadline kind {kind!r} yet")
