"""Faults of the machine the bridge runs on: the bridge killed or frozen, its log's disk.

The simulator only announces these (``host_fault`` harness events, ``sim.events.HostFault``);
the fault matrix carries them out for real:

- ``bridge_kill``: SIGKILL to the bridge's own process (``bridge_process``). Nothing of
  LaserGuard runs any more: the laser's heartbeat watchdog and the relay module's watchdog
  must end emission by themselves, and the next writer to open the log marks the session
  interrupted, with every event committed before the kill still there and the chain whole.
- ``bridge_stall``: SIGSTOP for ``stall_ms``, then SIGCONT: a host so starved that the bridge
  gets no CPU at all. The devices' watchdogs end emission meanwhile; on resume the bridge must
  see that its data is stale and halt, not carry on as if it had been watching.
- ``log_disk_full`` / ``log_read_only``: the session log's file system (``log_disk``) fills
  up or turns read-only during treatment: the session halts (no unlogged pulses), and what was
  committed before stays readable and verifies.

``committed_events`` and ``kept_problems`` are the before/after of the last two points: what
an outside reader saw committed just before the fault, and whether it is all still there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device_profiles.schema import ModbusCoilOutput, Setup
from device_profiles.timing import reaction_budget
from monitor.faults.bridge_process import BridgeProcess, BridgeSpec
from monitor.faults.deadlines import SIM_TICK_MS
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl
from sim.scenario import Scenario

if TYPE_CHECKING:  # matrix imports this module; the row type is only for the checker
    from monitor.faults.matrix import MatrixRow

__all__ = ["committed_events", "is_host_fault", "kept_problems", "play_in_bridge_process"]

_EMITTING = ("READY", "FIRING")
_POLL_S = 0.005


def is_host_fault(e: dict[str, Any], fault: str | None = None) -> bool:
    """A simulator record announcing a host fault (``fault``: that one)."""
    return (
        e["kind"] == "harness"
        and e.get("action") == "host_fault"
        and (fault is None or e.get("fault") == fault)
    )


def committed_events(path: Path) -> dict[int, str]:
    """Every chained event an outside reader sees committed now: seq -> hash."""
    with SessionLog(path, read_only=True) as log:
        return {e.seq: e.hash for s in log.sessions() for e in log.events(s.session_id)}


def kept_problems(log: SessionLog, committed: dict[int, str]) -> list[str]:
    """What is wrong with ``log`` next to what was ``committed`` before a fault: a chain that
    does not verify, or a committed event missing or changed."""
    problems = []
    result = log.verify()
    if not result.ok:
        problems.append(f"the log does not verify after the fault: {result.reason}")
    now = {e.seq: e.hash for s in log.sessions() for e in log.events(s.session_id)}
    lost = [seq for seq, h in committed.items() if now.get(seq) != h]
    if lost:
        problems.append(
            f"{len(lost)} of {len(committed)} events committed before the fault are missing or "
            f"changed (first seq {min(lost)})"
        )
    return problems


def _first(events: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> Any:
    return next((e for e in events if pred(e)), None)


def play_in_bridge_process(
    sc: Scenario, sim: SimControl, setup: Setup, db: Path, row: MatrixRow, deadline_ms: float
) -> None:
    """Run ``sc`` (``bridge_kill`` or ``bridge_stall``) with the bridge in its own process and
    fill ``row`` (a ``MatrixRow``): when emission stopped after the fault, by which watchdog,
    and, for a stall, which check halted the bridge when it ran again."""
    m = sc.matrix
    assert m is not None
    bridge = BridgeProcess(
        BridgeSpec(
            m.setup,
            setup.model_dump(mode="json"),
            sim.endpoints,
            str(db),
            {k: float(v) for k, v in sc.settings.model_dump().items()},
            sc.skin_type.value,
            realtime=True,
            arm=m.arm,
        )
    ).start()
    try:
        _play(sc, sim, setup, db, row, deadline_ms, bridge)
    finally:
        bridge.end()


def _play(
    sc: Scenario,
    sim: SimControl,
    setup: Setup,
    db: Path,
    row: MatrixRow,
    deadline_ms: float,
    bridge: BridgeProcess,
) -> None:
    m = sc.matrix
    assert m is not None
    if not bridge.wait("armed") or not bridge.report.armed:
        why = bridge.report.not_armed_why or bridge.report.error or "no answer"
        row.problems.append(f"the bridge process did not arm: {why}")
        return
    row.arm_retries = bridge.report.arm_retries
    deadline = time.monotonic() + m.timeout_s
    seen = 0
    announced: dict[str, Any] | None = None
    while announced is None and time.monotonic() < deadline:
        fresh = sim.events_since(seen)
        seen += len(fresh)
        announced = _first(fresh, is_host_fault)
        if announced is None:
            time.sleep(_POLL_S)
    if announced is None:
        row.problems.append(f"the host fault was not announced within {m.timeout_s:g} s")
        return
    if bridge.report.trips:
        row.pre_fault_halts = len(bridge.report.trips)
    committed = committed_events(db)
    fault = str(announced["fault"])
    t_resume: float | None = None
    if fault == "bridge_kill":
        t_fault = bridge.kill()
    elif fault == "bridge_stall":
        t_fault, t_resume = bridge.freeze(float(announced["stall_ms"]) / 1000.0)
    else:
        row.problems.append(f"host fault {fault} is not one a bridge process can have")
        return
    time.sleep(m.observe_s)
    events = sim.events_since(0)
    after = [e for e in events if e["t_wall"] >= t_fault]
    _judge_watchdogs(row, setup, after, t_fault, deadline_ms)
    if t_resume is not None:
        _judge_resume(row, setup, bridge, t_fault, t_resume, m.detected_by)
        bridge.end()  # the session ends, so its log can be read whole
        with SessionLog(db, read_only=True) as log:
            logged = log.events(bridge.report.session_id or "", kinds=["trip"])
        if row.detected_by and not any(e.payload.get("check") == row.detected_by for e in logged):
            row.problems.append(f"the halt {row.detected_by} is not in the session log")
    else:
        row.detected_by = "device_watchdog"
        if "device_watchdog" not in m.detected_by:
            row.problems.append("the scenario does not expect the devices' watchdogs to act")
        _judge_next_start(row, db, bridge.report.session_id, committed)


def _judge_watchdogs(
    row: MatrixRow, setup: Setup, after: list[dict[str, Any]], t_fault: float, deadline_ms: float
) -> None:
    """Emission stopped by the devices themselves within the laser's heartbeat deadline, the
    relay opened within its watchdog's, and no pulse after emission stopped."""
    stop = _first(after, lambda e: e["kind"] == "state" and e.get("to") not in _EMITTING)
    relay = _first(after, lambda e: e["kind"] == "relay" and e.get("closed") is False)
    if stop is None:
        row.problems.append("the laser never left READY/FIRING after the bridge went")
        return
    t_stop = float(stop["t_wall"])
    row.halt_ms = round((t_stop - t_fault) * 1000.0, 1)
    row.detection_ms = row.detection_ms if row.detection_ms is not None else row.halt_ms
    if row.halt_ms > deadline_ms:
        row.problems.append(
            f"the laser left {stop.get('from')} {row.halt_ms:g} ms after the fault, "
            f"deadline {deadline_ms:.1f} ms"
        )
    out = setup.interlock_output
    relay_ms = out.watchdog_ms + 2 * SIM_TICK_MS if isinstance(out, ModbusCoilOutput) else None
    if relay is None:
        row.problems.append("the relay never opened after the bridge went")
    elif relay_ms is not None and (float(relay["t_wall"]) - t_fault) * 1000.0 > relay_ms:
        late = (float(relay["t_wall"]) - t_fault) * 1000.0
        row.problems.append(f"the relay opened {late:.1f} ms after the fault, over {relay_ms:g}")
    row.pulses_after_stop = sum(1 for e in after if e["kind"] == "pulse" and e["t_wall"] > t_stop)
    if row.pulses_after_stop:
        row.problems.append(f"{row.pulses_after_stop} pulse(s) after emission stopped")


def _judge_resume(
    row: MatrixRow,
    setup: Setup,
    bridge: BridgeProcess,
    t_fault: float,
    t_resume: float,
    expected: list[str],
) -> None:
    """After SIGCONT the bridge halts on what it sees (stale data), within the check budget."""
    budget_ms = reaction_budget(setup).total_ms
    trip = bridge.wait_trip(t_fault, budget_ms / 1000.0 + 2.0)
    if trip is None:
        row.problems.append("the bridge carried on after it resumed: no halt")
        return
    check, t_trip, _why = trip
    row.detected_by = check
    row.detection_ms = round((t_trip - t_fault) * 1000.0, 1)
    if check not in expected:
        row.problems.append(f"halted by {check} on resuming, expected {' or '.join(expected)}")
    late_ms = (t_trip - t_resume) * 1000.0
    if late_ms > budget_ms:
        row.problems.append(
            f"halted {late_ms:.1f} ms after it resumed, reaction budget {budget_ms:.1f} ms"
        )


def _judge_next_start(
    row: MatrixRow, db: Path, killed: str | None, committed: dict[int, str]
) -> None:
    """The next writer to open the log marks the killed session interrupted; nothing that
    was committed before the kill is lost and the chain verifies."""
    with SessionLog(db) as log:
        if killed is None or log.interrupted != [killed]:
            row.problems.append(
                f"the next start marked {log.interrupted} interrupted, not the killed {killed}"
            )
        row.problems.extend(kept_problems(log, committed))
