"""A simulated treatment end to end: simulator process, bridge, interlock, log, report.

The simulator runs in its own process (as the devices would), reached over a real pty and
real Modbus TCP sockets. The report's halt latency is measured on the simulator's side, in
wall-clock time: from the moment the sensor first *served* a reading beyond the limit to the
moment the laser *received* the stop.

Shutdown runs in order: the session first (laser to STANDBY, relay open, log closed), the
simulated devices last. The simulator runs in its own process group, so a Ctrl-C
in the terminal reaches only the demo, which then decides when the devices go; it also
watches its stdin, so it ends with the demo even if the demo is killed.

The report is read back from the session log, so the summary printed never disagrees with
the record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from firmware_bridge.live import Ch
from monitor.cli.shutdown import sigint_deferred
from monitor.cli.view_guard import ViewGuard, describe
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
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog


@dataclass
class SimProcess:
    proc: subprocess.Popen[bytes]
    run_dir: Path
    endpoints: dict[str, Any]

    def events(self) -> list[dict[str, Any]]:
        path = self.run_dir / "sim_events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def kill(self) -> None:
        """Kill the simulator the hard way (a test of what the devices do on their own)."""
        self.proc.kill()
        self.proc.wait(timeout=5)


@contextmanager
def sim_process(
    setup_source: str,
    scenario: str,
    *,
    speed: float,
    run_dir: Path,
    timeout_s: float = 15.0,
) -> Iterator[SimProcess]:
    """Start ``laserguard sim`` in a child process and wait for its endpoints."""
    run_dir.mkdir(parents=True, exist_ok=True)
    endpoints_file = run_dir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "monitor.cli", "sim",
        "--setup", setup_source, "--scenario", scenario,
        "--speed", str(speed), "--run-dir", str(run_dir),
    ]  # fmt: skip
    cmd.append("--until-stdin-closes")
    log = (run_dir / "sim.log").open("wb")
    # Its own process group: the terminal's SIGINT (sent to the foreground group) reaches
    # only the demo, which ends the bridge (laser in STANDBY) before it ends the devices.
    # The pipe on its stdin closes when this process ends, however it ends, and the
    # simulator then stops too. (Same session: it keeps its share of the CPU as before.)
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.PIPE,
        process_group=0,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not endpoints_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {proc.returncode}: "
                    + (run_dir / "sim.log").read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"simulator wrote no endpoints within {timeout_s:g} s")
            time.sleep(0.02)
        time.sleep(0.02)  # the file is written whole, but let its writer finish the rename
        endpoints = json.loads(endpoints_file.read_text())
        yield SimProcess(proc, run_dir, endpoints)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


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
    logged = {(t["check"], t["reason"]) for t in trips}
    trips += [
        {"check": tr.check, "reason": tr.reason, "t_s": round(tr.t_s, 3), "logged": False}
        for tr in session.trips
        if (tr.check, tr.reason) not in logged
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
    with sim_process(loaded.source, scenario_name, speed=speed, run_dir=run_dir) as sim:
        setup = with_endpoints(loaded.setup, sim.endpoints)
        log = SessionLog(db_path)
        params = SessionParams(
            operator=operator,
            patient_id=patient_id,
            skin_type=skin_type,
            risk=no_contraindications_declared(),
            mode=SessionMode.DEMO,
            skin_typing=SkinTyping.from_clinician(skin_type),
            meta={"scenario": scenario_name, "speed": speed, "endpoints": sim.endpoints},
            site=TreatmentSite.LEGS,  # the bundled scenarios are leg treatments
        )
        session = Session(loaded, LogRecorder(log), params, setup=setup, realtime=True)
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
            except Exception as e:  # the record is safe in the log; only its summary failed
                raise ReportFailed(
                    f"session {session.session_id} ended and is in the log {db_path}, but its "
                    f"report failed: {describe(e)}"
                ) from e
            finally:
                log.close()
        finally:
            shutting_down.close()
        result["gate"] = gate.explain() if gate is not None else None
    result["run_dir"] = str(run_dir)
    result["db"] = str(db_path)
    return result


def default_run_dir(scenario: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(os.environ.get("LASERGUARD_RUNS", "runs")) / f"{stamp}-{scenario}-{os.getpid()}"
