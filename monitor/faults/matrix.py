"""The fault matrix: every fault scenario through the real bridge, judged safe or not.

For each bundled scenario with a ``matrix`` block (``sim.scenario.MatrixEntry``) the runner
starts the simulator in its own process (``sim.control``: real pty, real Modbus TCP), a real
session against it (bridge, interlock loop, halt path, SQLite session log), requests the
scenario's settings and arms. It then watches the simulator's record until the session
halts, carries out what the scenario only announces (an operator's STANDBY), watches
``observe_s`` more for pulses, and judges:

- the first halt's check is one of ``detected_by`` and the session log holds it as a trip;
- emission stopped (the laser left READY/FIRING, or the relay opened where the laser
  ignores STOP: ``relay_only``) within the deadline of ``monitor.faults.deadlines``;
- no pulse after emission stopped; at the end the laser is not READY/FIRING (or, relay
  only, the relay is open);
- the simulator's ground-truth Arrhenius Ω stayed below first degree (0.53).

A row is a plain dataclass; ``render_markdown`` writes ``docs/fault-matrix.md`` from rows.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device_profiles.loader import LoadedSetup, load, with_endpoints
from device_profiles.schema import Setup
from firmware_bridge.errors import BridgeError
from monitor.core.errors import Refused
from monitor.core.records import SessionMode, State
from monitor.core.session import Session, SessionParams, no_contraindications_declared
from monitor.faults.deadlines import HARNESS_POLL_MS, deadline_for
from monitor.faults.host_faults import (
    committed_events,
    is_host_fault,
    kept_problems,
    play_in_bridge_process,
)
from monitor.faults.log_disk import DiskKind, LogDisk, LogDiskError
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl, SimControlError, SimSpec
from sim.events import HostFault
from sim.scenario import MatrixEntry, Scenario, load_scenario, scenario_names

__all__ = ["FIRST_DEGREE_OMEGA", "MatrixRow", "matrix_scenarios", "render_markdown", "run_one"]

#: Henriques & Moritz 1947: Ω ≥ 0.53 is a first-degree burn (docs/physics.md).
FIRST_DEGREE_OMEGA = 0.53
_EMITTING = ("READY", "FIRING")
_ARM_ATTEMPTS = 5
_ARM_RETRY_S = 1.0
_PRE_FAULT_HALTS = 3  # halts before the fault the runner acknowledges (a loaded host)


@dataclass
class MatrixRow:
    """One scenario's result; ``problems`` empty means it ended safe in time."""

    scenario: str
    hazard: str
    hazardous_situation: str
    harm: str
    risk_control: str
    fault: str
    expected: list[str]
    detected_by: str | None = None
    detection_ms: float | None = None  # fault onset -> first halt
    halt_ms: float | None = None  # onset (or trip) -> emission stopped at the simulator
    deadline_ms: float | None = None
    measured_from: str = "fault"
    deadline_why: str = ""
    peak_omega: float | None = None
    peak_skin_c: float | None = None  # the simulator's ground truth, not a sensor's reading
    pulses_after_stop: int = 0
    final_state: str = ""
    relay_closed: bool | None = None
    arm_retries: int = 0  # arming refused by a loaded host, then retried (``_arm``)
    pre_fault_halts: int = 0  # halts before the fault happened, acknowledged (``_play``)
    log_disk: str = ""  # the log-disk rows: which real file system ran (``log_disk``)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def matrix_scenarios() -> list[str]:
    """The bundled scenarios that carry a ``matrix`` block, by name."""
    return [n for n in scenario_names() if load_scenario(n).matrix is not None]


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = (
            _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def _setup_for(loaded: LoadedSetup, overrides: dict[str, Any]) -> Setup:
    if not overrides:
        return loaded.setup
    return Setup.model_validate(_merged(loaded.setup.model_dump(), overrides))


def _first(events: list[dict[str, Any]], pred: Any) -> dict[str, Any] | None:
    return next((e for e in events if pred(e)), None)


def _stops_emission(e: dict[str, Any], relay_only: bool) -> bool:
    if e["kind"] == "relay" and e.get("closed") is False:
        return True
    return not relay_only and e["kind"] == "state" and e.get("to") not in _EMITTING


def run_one(name: str, work_dir: Path | None = None) -> MatrixRow:
    """Run one matrix scenario end to end and judge it."""
    sc = load_scenario(name)
    if sc.matrix is None or sc.risk is None:
        raise ValueError(f"scenario {name!r} has no matrix block")
    with tempfile.TemporaryDirectory(prefix="laserguard-faults-") as tmp:
        return _run(sc, Path(work_dir) if work_dir is not None else Path(tmp))


@contextlib.contextmanager
def _started(spec: SimSpec, row: MatrixRow) -> Iterator[SimControl | None]:
    """The simulator's process, or None (and the reason in ``row``) when it did not start."""
    sim = SimControl(spec)
    try:
        sim.start()
    except SimControlError as e:
        row.problems.append(f"the simulator did not start: {e}")
        sim.stop()
        yield None
        return
    try:
        yield sim
    finally:
        sim.stop()


_LOG_FAULTS: dict[str, DiskKind] = {"log_disk_full": "full", "log_read_only": "read_only"}
_DISK_WORDS: dict[DiskKind, str] = {
    "full": "tmpfs filled to ENOSPC",
    "read_only": "ext4 on a loop device, remounted read-only by a file-system error",
}


def _log_fault(sc: Scenario) -> DiskKind | None:
    """The log-disk fault this scenario announces, if any."""
    for e in sc.events:
        if isinstance(e, HostFault) and e.fault in _LOG_FAULTS:
            return _LOG_FAULTS[e.fault]
    return None


def _run(sc: Scenario, work: Path) -> MatrixRow:
    m, risk = sc.matrix, sc.risk
    assert m is not None and risk is not None
    row = MatrixRow(
        sc.name,
        risk.hazard,
        risk.hazardous_situation,
        risk.harm,
        risk.risk_control,
        m.fault,
        list(m.detected_by),
    )
    loaded = load(m.setup)
    setup = _setup_for(loaded, m.setup_overrides)
    rule = deadline_for(m.deadline, setup)
    row.deadline_ms, row.measured_from, row.deadline_why = (
        rule.deadline_ms,
        rule.measured_from,
        rule.why,
    )
    work.mkdir(parents=True, exist_ok=True)
    # As deployed: the bridge asks for SCHED_FIFO (``laserguard bridge`` does by default), and
    # the simulator, standing in for hardware on its own CPUs, does too, so a loaded CI
    # machine loads neither the devices nor the interlock more than a clinic's would.
    spec = SimSpec(
        run_dir=str(work / "sim"), setup=m.setup, scenario=sc.name, speed=m.speed, realtime=True
    )
    if m.bridge_process:
        with _started(spec, row) as sim:
            if sim is None:
                return row
            play_in_bridge_process(
                sc, sim, setup, work / f"{sc.name}.sqlite3", row, rule.deadline_ms
            )
            _judge_end(row, sim.snapshot(), m)
        return row
    disk_kind = _log_fault(sc)
    if disk_kind is None:
        return _run_in_process(sc, loaded, setup, spec, work / f"{sc.name}.sqlite3", row, None)
    unavailable = LogDisk.unavailable(disk_kind)
    if unavailable is not None:
        row.problems.append(f"not run: {unavailable}")
        return row
    try:
        with LogDisk(work / "disk", disk_kind) as disk:
            row.log_disk = _DISK_WORDS[disk_kind]
            return _run_in_process(sc, loaded, setup, spec, disk.log_path, row, disk)
    except LogDiskError as e:
        row.problems.append(f"the log's disk: {e}")
        return row


def _run_in_process(
    sc: Scenario,
    loaded: LoadedSetup,
    setup: Setup,
    spec: SimSpec,
    db: Path,
    row: MatrixRow,
    disk: LogDisk | None,
) -> MatrixRow:
    """The session in this process; ``disk``: the log's own file system, for a log fault."""
    log = SessionLog(db)
    session: Session | None = None
    committed: dict[int, str] | None = None
    try:
        with _started(spec, row) as sim:
            if sim is None:
                return row
            params = SessionParams(
                "fault-matrix",
                "PAT-MATRIX",
                sc.skin_type,
                no_contraindications_declared(),
                mode=SessionMode.TEST,
            )
            session = Session(
                loaded,
                LogRecorder(log),
                params,
                setup=with_endpoints(setup, sim.endpoints),
                realtime=True,
            )
            try:
                session.start()
            except (Refused, BridgeError) as e:
                row.problems.append(f"the session did not start: {e}")
                return row
            committed = _play(sc, session, sim, row, disk)
            if disk is not None and committed is not None:
                row.problems.extend(_stays_halted(session, disk))
            if disk is None:
                session.recorder.flush()
                logged = log.events(session.session_id, kinds=["trip"])
                if row.detected_by is not None and not any(
                    e.payload.get("check") == row.detected_by for e in logged
                ):
                    row.problems.append(f"the halt {row.detected_by} is not in the session log")
    finally:
        if session is not None:
            session.end("fault matrix scenario finished")
        log.close()
    if disk is not None and committed is not None:
        row.problems.extend(_log_kept(disk, committed, db.parent.parent / "copy"))
    return row


def _stays_halted(session: Session, disk: LogDisk) -> list[str]:
    """After the log failed, treatment may not resume, not even once the disk has room again
    (the writer has dropped what came after the failure): the halt cannot be acknowledged
    and arming is refused."""
    if disk.kind == "full":
        disk.free()
    try:
        session.acknowledge("fault-matrix", "the disk has room again")
    except Refused:
        pass
    else:
        return ["the halt was acknowledged although the session log had failed"]
    try:
        session.arm()
    except Refused:
        return []
    return ["the laser was armed again although the session log had failed"]


def _log_kept(disk: LogDisk, committed: dict[int, str], copy_dir: Path) -> list[str]:
    """After a log-disk fault: everything committed before it is still there and verifies
    (the full disk given room again; the read-only one read from a copy of its files)."""
    if disk.kind == "full":
        disk.free()
        path = disk.log_path
    else:
        path = disk.copy_out(copy_dir)
    with SessionLog(path) as log:
        return kept_problems(log, committed)


def _arm(sc: Scenario, session: Session, row: MatrixRow) -> bool:
    """Request the settings and arm. On a loaded host arming may be refused (a measured
    answer time over budget) or a halt may come before any fault: that is the machine, not
    the scenario, so the runner acknowledges and tries again, up to ``_ARM_ATTEMPTS`` times,
    and counts it (``arm_retries``). The scenario's faults all come after arming."""
    last = ""
    for attempt in range(_ARM_ATTEMPTS):
        try:
            if session.state is State.HALTED:
                session.acknowledge("fault-matrix", "halted before arming, no fault yet")
            gate = session.request_settings(sc.settings.model_dump())
            if not gate.ok:
                row.problems.append("the scenario's settings were refused by the gate")
                return False
            session.arm()
            row.arm_retries = attempt
            return True
        except Refused as e:
            last = str(e)
            time.sleep(_ARM_RETRY_S)
    row.problems.append(f"could not arm in {_ARM_ATTEMPTS} attempts: {last}")
    return False


def _is_onset(e: dict[str, Any], m: MatrixEntry) -> bool:
    """The simulator's record of the moment this scenario's deadline is measured from: the
    fault, or for the relay's proof test the operator's STANDBY that runs it."""
    if m.deadline == "proof_test":
        return e["kind"] == "harness" and e.get("action") == "operator"
    if m.fault == "host_fault":
        return is_host_fault(e)
    return e["kind"] == "scenario" and e.get("action") == m.fault


def _rearm(sc: Scenario, session: Session, row: MatrixRow) -> bool:
    m = sc.matrix
    assert m is not None
    if m.arm:
        return _arm(sc, session, row)
    for _ in range(_ARM_ATTEMPTS):
        try:
            session.acknowledge("fault-matrix", "halted before the fault, not the scenario")
            return True
        except Refused:
            time.sleep(_ARM_RETRY_S)
    row.problems.append("a halt before the fault could not be acknowledged")
    return False


def _carry_out(ev: dict[str, Any], disk: LogDisk | None) -> tuple[float, dict[int, str]]:
    """A log-disk fault, for real: (the wall time the disk became full or read-only, what was
    committed just before)."""
    if disk is None:
        raise LogDiskError(f"host fault {ev.get('fault')} needs the log on a disk of its own")
    committed = committed_events(disk.log_path)
    if disk.kind == "full":
        disk.fill()
    else:
        disk.make_read_only()
    return time.time(), committed


def _play(
    sc: Scenario, session: Session, sim: SimControl, row: MatrixRow, disk: LogDisk | None
) -> dict[int, str] | None:
    """Arm, carry out what the simulator announces, wait for the halt and judge it. For a
    log-disk fault: the events committed before it (seq -> hash)."""
    m = sc.matrix
    assert m is not None
    committed: dict[int, str] | None = None
    t_host: float | None = None  # when the harness made a host fault happen
    if m.arm and not _arm(sc, session, row):
        return committed
    before = len(session.trips)  # halts of a loaded host before arming are not the scenario's
    deadline = time.monotonic() + m.timeout_s
    seen = 0
    fault_seen = False
    while time.monotonic() < deadline:
        fresh = sim.events_since(seen)
        seen += len(fresh)
        for ev in fresh:
            if ev["kind"] == "harness" and ev.get("action") == "operator":
                session.standby("fault-matrix operator")
            if is_host_fault(ev) and t_host is None:
                t_host, committed = _carry_out(ev, disk)
            fault_seen = fault_seen or (ev["kind"] in ("scenario", "harness") and _is_onset(ev, m))
        if len(session.trips) > before:
            # The fault may have happened after the poll above and caused this halt: read the
            # record again before calling the halt one that came before the fault.
            fault_seen = fault_seen or any(_is_onset(ev, m) for ev in sim.events_since(seen))
            if fault_seen or row.pre_fault_halts >= _PRE_FAULT_HALTS:
                break
            # A halt before the fault happened (a loaded host's stale sample): not what this
            # scenario tests. Count it, acknowledge, re-arm and wait for the fault again.
            row.pre_fault_halts += 1
            if not _rearm(sc, session, row):
                return committed
            before = len(session.trips)
        time.sleep(HARNESS_POLL_MS / 1000.0)
    if len(session.trips) == before:
        row.problems.append(f"no halt within {m.timeout_s:g} s")
        return committed
    trip = session.trips[before]
    trip_wall = session.t0_wall + trip.t_s
    row.detected_by = trip.check
    if trip.check not in m.detected_by:
        row.problems.append(f"halted by {trip.check}, expected {' or '.join(m.detected_by)}")
    time.sleep(m.observe_s)
    events = sim.events_since(0)
    snap = sim.snapshot()
    onset = _first(events, lambda e: _is_onset(e, m))
    if onset is None:
        row.problems.append(f"the halt came before the fault {m.fault} happened")
        return committed
    t_onset = float(onset["t_wall"]) if t_host is None else t_host
    if t_onset < session.t0_wall:
        row.problems.append(f"the fault {m.fault} came before the session was watching")
    row.detection_ms = round((trip_wall - t_onset) * 1000.0, 1)
    start = trip_wall if row.measured_from == "trip" else t_onset
    stop = _first(events, lambda e: e["t_wall"] >= t_onset and _stops_emission(e, m.relay_only))
    if stop is None:
        row.problems.append("emission was never stopped at the simulator")
    else:
        t_stop = float(stop["t_wall"])
        row.halt_ms = round(max(0.0, t_stop - start) * 1000.0, 1)
        if row.deadline_ms is not None and row.halt_ms > row.deadline_ms:
            row.problems.append(
                f"emission stopped {row.halt_ms:g} ms after the {row.measured_from}, "
                f"deadline {row.deadline_ms:.1f} ms"
            )
        row.pulses_after_stop = sum(
            1 for e in events if e["kind"] == "pulse" and e["t_wall"] > t_stop
        )
        if row.pulses_after_stop:
            row.problems.append(f"{row.pulses_after_stop} pulse(s) after emission stopped")
    _judge_end(row, snap, m)
    return committed


def _judge_end(row: MatrixRow, snap: dict[str, Any], m: MatrixEntry) -> None:
    """The simulator's state at the end: not emitting (or the relay open, where only it can
    stop the laser), and the skin's ground-truth Ω below first degree."""
    row.final_state = str(snap["state"])
    row.relay_closed = bool(snap["relay_closed"])
    emitting = row.final_state in _EMITTING
    if m.relay_only:
        if row.relay_closed:
            row.problems.append("the laser ignores STOP and the relay is still closed")
    elif emitting and row.relay_closed:
        row.problems.append(f"the laser ends {row.final_state} with the relay closed")
    row.peak_skin_c = round(float(snap["peak_skin_temp_c"]), 2)
    row.peak_omega = float(snap["skin_omega"])
    if row.peak_omega >= FIRST_DEGREE_OMEGA:
        row.problems.append(f"Ω {row.peak_omega:.3g} reached first degree")


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def render_markdown(rows: list[MatrixRow], *, header: str = "") -> str:
    """``docs/fault-matrix.md``: one row per scenario, from one run."""
    passed = sum(r.ok for r in rows)
    lines = [
        "# Fault matrix",
        "",
        "Generated by `laserguard faults run --write docs/fault-matrix.md`; do not edit by hand.",
        "Each scenario (`sim/scenarios/*.yaml`) runs through the real bridge over a real pty and",
        "real Modbus TCP against the simulator; the columns are defined in `monitor/faults/`.",
        "Detection: fault onset → first halt. Halt: fault onset (or, for a slow physical",
        "process, the trip) → emission stopped at the simulator, against the deadline the",
        "setup's reaction-time budget gives (`monitor/faults/deadlines.py`). Peak Ω: the",
        "simulator's ground-truth Arrhenius damage integral (first degree at 0.53).",
        "Host faults (`host_fault`) are carried out for real by the runner: the bridge-* rows",
        "run the bridge in its own process and SIGKILL or SIGSTOP/SIGCONT it (the laser's",
        "heartbeat watchdog must stop it: `device_watchdog`); the log-* rows put the session",
        "log on a file system of its own and fill it or have the kernel remount it read-only",
        "(`monitor/faults/log_disk.py`; needs root, as CI has).",
        "",
    ]
    if header:
        lines += [header, ""]
    lines += [
        f"**{passed} of {len(rows)} scenarios ended safe within their deadline.**",
        "",
        "| scenario | hazard → hazardous situation → harm | risk control | detected by "
        "| detection ms | halt ms | deadline ms | peak Ω | outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        outcome = "safe" if r.ok else "FAILED: " + "; ".join(r.problems)
        if r.log_disk:
            outcome += f" (log on {r.log_disk})"
        if r.arm_retries or r.pre_fault_halts:
            outcome += (
                f" (host load: {r.arm_retries} arm retries, {r.pre_fault_halts} pre-fault halts)"
            )
        chain = f"{r.hazard} → {r.hazardous_situation} → {r.harm}"
        deadline = f"{_cell(r.deadline_ms and round(r.deadline_ms, 1))} (from {r.measured_from})"
        omega = "–" if r.peak_omega is None else f"{r.peak_omega:.2e}"
        lines.append(
            f"| {r.scenario} | {chain} | {r.risk_control} | {r.detected_by or '–'} "
            f"| {_cell(r.detection_ms)} | {_cell(r.halt_ms)} | {deadline} | {omega} | {outcome} |"
        )
    return "\n".join(lines) + "\n"
