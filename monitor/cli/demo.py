"""A simulated treatment end to end: simulator process, bridge, interlock, log, report.

The simulator runs in its own process (as the devices would), started through
``sim.control``, reached over a real pty and real Modbus TCP sockets. The report's halt latency is measured on the simulator's side, in
wall-clock time: from the moment the sensor first *served* a reading beyond the limit to the
moment the laser *received* the stop.

Shutdown runs in order: the session first (laser to STANDBY, relay open, log closed), the
simulated devices last. The simulator runs in its own process group, so a Ctrl-C
in the terminal reaches only the demo, which then decides when the devices go; it also
ends when its pipe to the demo closes, so it ends with the demo even if the demo is killed.

The report is read back from the session log, so the summary printed never disagrees with
the record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from firmware_bridge.live import Ch
from monitor.calibration.status import calibration_status
from monitor.cli.shutdown import sigint_deferred
from monitor.cli.view_guard import ViewGuard, describe
from monitor.core.calibration_status import CalibrationStatus
from monitor.core.gate import GateResult
from monitor.core.session import (
    Refused,
    Session,
    SessionMode,
    SessionParams,
    State,
    no_contraindications_declared,
)
from monitor.core.skin_typing import SkinTyping
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.hook import IncidentRecorder
from monitor.incidents.photos import PhotoStore
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog, writing_opener
from sim.control import SimControl, SimSpec


def simulator(
    setup_source: str,
    scenario: str,
    *,
    speed: float,
    run_dir: Path,
    hold_timeline: bool = False,
    realtime: bool = False,
) -> SimControl:
    """The demo's simulator: ``sim.control`` in a child process, its output in ``sim.log``.

    ``sim.control`` puts the child in its own process group, so a Ctrl-C in the terminal
    reaches only the demo, which ends the session (laser in STANDBY) before it stops the
    devices; and the child stops when the pipe to the demo closes, however the demo ends.

    ``realtime``: the simulated devices stand for hardware with processors of their own, so
    where the bridge runs at SCHED_FIFO they do too (where the system allows it); otherwise
    a busy PC starves the "hardware" and the bridge rightly halts on its silence.
    """
    spec = SimSpec(
        run_dir=str(run_dir),
        setup=setup_source,
        scenario=scenario,
        speed=speed,
        log_file=str(run_dir / "sim.log"),
        hold_timeline=hold_timeline,
        realtime=realtime,
    )
    return SimControl(spec)


def halt_latency_ms(sim_events: list[dict[str, Any]]) -> float | None:
    crossing = next((e for e in sim_events if e["kind"] == "over_limit_served"), None)
    stop = next((e for e in sim_events if e["kind"] == "stop_received"), None)
    if crossing is None or stop is None:
        return None
    return round((float(stop["t_wall"]) - float(crossing["t_wall"])) * 1000.0, 3)


#: Out-of-limit pulses listed one by one in the report; all of them are counted.
MAX_LISTED_PULSES = 20


def report(
    session: Session,
    log: SessionLog,
    sim_events: list[dict[str, Any]],
    scenario: str,
) -> dict[str, Any]:
    """What happened, read back from the session log (the record), with the simulator's view.

    Trips, halts and out-of-limit pulses come from the log, so the summary cannot claim
    "no trip" where the log holds a halt. A trip the log could not take (the log failed) is
    added from the session, marked ``"logged": False``.
    """
    sid = session.session_id
    _, ch, val = log.telemetry(sid)
    skin = val[ch == int(Ch.SKIN_TEMP_C)]
    skin = skin[np.isfinite(skin)]
    pulses = [e for e in sim_events if e["kind"] == "pulse"]
    stop = next((e for e in sim_events if e["kind"] == "stop_received"), None)
    after = [p for p in pulses if stop is not None and p["t_wall"] > stop["t_wall"]]
    events = log.events(
        sid,
        kinds=[
            "trip",
            "halt_requested",
            "pulse_out_of_limits",
            "end_standby_failed",
            "view_failed",
        ],
    )
    trips = [
        {
            "check": e.payload["check"],
            "reason": e.payload["reason"],
            "t_s": round(e.payload["t_s"], 3),
        }
        for e in events
        if e.kind == "trip"
    ]
    # Known by check and time: the log bounds a long reason, so its words may differ.
    logged = {(t["check"], t["t_s"]) for t in trips}
    trips += [
        {"check": tr.check, "reason": tr.reason, "t_s": round(tr.t_s, 3), "logged": False}
        for tr in session.trips
        if (tr.check, round(round(tr.t_s, 4), 3)) not in logged  # as the log holds it
    ]
    halts = [str(e.payload["reason"]) for e in events if e.kind == "halt_requested"]
    out_of_limits = [e.payload for e in events if e.kind == "pulse_out_of_limits"]
    end_standby = [e.payload for e in events if e.kind == "end_standby_failed"]
    halted = bool(trips or halts)
    return {
        "session_id": sid,
        "scenario": scenario,
        "profile": f"{session.setup.name} v{session.setup.version}",
        "profile_digest": session.loaded.digest,
        "skin_type": session.params.skin_type.value,
        "halted": halted,
        "trips": trips,
        "halts_requested": halts,
        "warnings": [w.as_dict() for w in session.warnings],
        "pulses_fired": len(pulses),
        "pulses_after_halt": len(after),
        "pulses_out_of_limits": sum(int(p["n"]) for p in out_of_limits),
        "out_of_limit_pulses": [
            {
                "t_s": round(p["t_s"], 3),
                "n": p["n"],
                "total": p["total"],
                "settings": p["settings"],
                "violations": p["violations"],
            }
            for p in out_of_limits[:MAX_LISTED_PULSES]
        ],
        "end_standby_failed": end_standby[0]["error"] if end_standby else None,
        "view_failures": sum(1 for e in events if e.kind == "view_failed"),
        "log_failed": session.recorder.failed,
        "max_skin_temp_c": round(float(skin.max()), 2) if skin.size else None,
        "halt_latency_ms": halt_latency_ms(sim_events) if halted else None,
        "skin_temp_limit_c": session.engine.skin_high,
        "loop_lateness_ms": session.loop.lateness().as_dict(),
        "final_state": str(session.state),
    }


class ReportFailed(RuntimeError):
    """The session ended and is in its log, but its report could not be built."""


def run_demo(
    loaded: LoadedSetup,
    scenario_name: str,
    settings: dict[str, float],
    skin_type: SkinType,
    *,
    db_path: Path,
    run_dir: Path,
    duration_s: float | None,
    speed: float = 1.0,
    operator: str = "demo-operator",
    patient_id: str = "SIM-0001",
    on_tick: Callable[[Session, float], None] | None = None,
    tick_s: float = 0.25,
) -> dict[str, Any]:
    """Run one simulated session; returns the report. ``duration_s`` is simulated time."""
    log = SessionLog(db_path)
    try:  # a setup with a calibration policy arms only on a calibration in this log
        calibration = calibration_status(log, loaded.setup, accept_simulated=True)
        # The session's events and telemetry are written by a process of its own, started
        # here: its start overlaps the simulator's.
        log_recorder = LogRecorder(
            log, log_process=writing_opener(log), log_process_realtime=True
        )  # the demo's session is real-time (its Session below)
    except BaseException:
        log.close()
        raise
    try:
        return _run_demo(
            loaded, scenario_name, settings, skin_type, log=log, log_recorder=log_recorder,
            calibration=calibration, run_dir=run_dir, duration_s=duration_s, speed=speed,
            operator=operator, patient_id=patient_id, on_tick=on_tick, tick_s=tick_s,
        )  # fmt: skip
    finally:
        log_recorder.close()  # ends the log's process, had the session not ended it
        log.close()


def _run_demo(
    loaded: LoadedSetup,
    scenario_name: str,
    settings: dict[str, float],
    skin_type: SkinType,
    *,
    log: SessionLog,
    log_recorder: LogRecorder,
    calibration: CalibrationStatus | None,
    run_dir: Path,
    duration_s: float | None,
    speed: float,
    operator: str,
    patient_id: str,
    on_tick: Callable[[Session, float], None] | None,
    tick_s: float,
) -> dict[str, Any]:
    db_path = log.path
    with simulator(
        loaded.source, scenario_name, speed=speed, run_dir=run_dir, realtime=True
    ) as sim:
        setup = with_endpoints(loaded.setup, sim.endpoints)
        params = SessionParams(
            operator=operator,
            patient_id=patient_id,
            skin_type=skin_type,
            risk=no_contraindications_declared(),
            mode=SessionMode.DEMO,
            skin_typing=SkinTyping.from_clinician(skin_type),
            meta={"scenario": scenario_name, "speed": speed, "endpoints": sim.endpoints},
            calibration=calibration,
            site=TreatmentSite.LEGS,  # the bundled scenarios are leg treatments
        )
        clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db_path))
        recorder = IncidentRecorder(log_recorder, clinic)
        session = Session(loaded, recorder, params, setup=setup, realtime=True)
        tick = ViewGuard("live view", on_tick) if on_tick is not None else None
        gate: GateResult | None = None
        # From the first Ctrl-C on, the shutdown and the report run to their end: a second
        # Ctrl-C is noted, not raised half-way through the standby.
        shutting_down = ExitStack()
        try:
            try:
                session.start()
                gate = session.request_settings(settings)
                if gate.ok:
                    session.arm()
                t_start = time.monotonic()
                while duration_s is None or (time.monotonic() - t_start) * speed < duration_s:
                    if tick is not None:
                        tick(session, (time.monotonic() - t_start) * speed)
                    time.sleep(tick_s)
            except Refused as e:
                session._event("demo_refused", {"reason": str(e)})
            except KeyboardInterrupt:
                pass
            finally:
                # In order: the bridge puts the laser in STANDBY and opens the relay while
                # the devices still answer; the simulator ends after this block.
                shutting_down.enter_context(sigint_deferred())
                if tick is not None:
                    tick.close(session)
                if session.state is not State.ENDED:
                    session.end("demo finished")
            time.sleep(0.05)  # the simulator's last events (the stop it received) reach its file
            try:
                result = report(session, log, sim.events(), scenario_name)
                result["incidents"] = _drafts(recorder)
            except Exception as e:  # the record is safe in the log; only its summary failed
                raise ReportFailed(
                    f"session {session.session_id} ended and is in the log {db_path}, but its "
                    f"report failed: {describe(e)}"
                ) from e
        finally:
            shutting_down.close()
        result["gate"] = gate.explain() if gate is not None else None
    result["run_dir"] = str(run_dir)
    result["db"] = str(db_path)
    return result


def _drafts(recorder: IncidentRecorder) -> dict[str, Any]:
    """The draft incidents the session's halts opened (with their protocols), its follow-up,
    and what could not be done after the session's end."""
    drafts = []
    for incident_id in recorder.drafts:
        incident = recorder.clinic.incidents.get(incident_id, verified=False)
        drafts.append({"incident_id": incident_id, "protocol": incident.protocol})
    return {"drafts": drafts, "followup": recorder.followup, "problems": recorder.problems}


def default_run_dir(scenario: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(os.environ.get("LASERGUARD_RUNS", "runs")) / f"{stamp}-{scenario}-{os.getpid()}"
