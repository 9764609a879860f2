"""Issue 16 item 4: the bridge killed (SIGKILL) at 50 random moments, all on one laser and one
SQLite file.

Real parts only: the simulator in its own process (a pty and Modbus TCP), each bridge a
process of its own (``monitor.faults.bridge_process``: a real session, armed, the footswitch
held so the laser fires), killed at a moment drawn from a seeded schedule anywhere from its
start to well into firing. After each kill:

- every event an outside reader saw committed just before the kill is still there, with the
  same hash, and the chain verifies;
- if the laser was READY or FIRING at the kill, it dropped to STANDBY by itself within its
  heartbeat deadline, and no pulse came after.

The next bridge's start marks the killed session interrupted; at the end every session in the
file is marked, and the whole chain verifies. The test prints the kill and event counts.
Cost: about a second per kill (the simulator is reused, bridges fork from a preloaded
server), so 50 kills run in about a minute.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from device_profiles.loader import load
from monitor.faults.bridge_process import BridgeProcess, BridgeSpec
from monitor.faults.deadlines import deadline_for
from monitor.faults.host_faults import committed_events
from monitor.record.sqlite_store import INTERRUPTED_REASON, SessionLog
from sim.control import SimControl, SimSpec

pytestmark = pytest.mark.e2e

KILLS = 50
SEED = 20161
#: Wall seconds from a bridge's start to its kill: from before its session exists to a second
#: of firing (a bridge's session starts and arms about 1 s after its process starts).
KILL_WINDOW_S = (0.0, 2.0)
SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
EMITTING = ("READY", "FIRING")


def laser_state_at(events: list[dict[str, Any]], t_wall: float) -> str:
    state = "STANDBY"
    for e in events:
        if e["t_wall"] > t_wall:
            break
        if e["kind"] == "state":
            state = str(e["to"])
    return state


@pytest.mark.timeout(400)
def test_item4_sigkill_at_50_random_moments_loses_nothing_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load("demo-ndyag-1064")
    setup = loaded.setup
    deadline_ms = deadline_for("device_watchdog", setup).deadline_ms
    db = tmp_path / "log.sqlite3"
    rng = random.Random(SEED)
    phases: Counter[str] = Counter()
    problems: list[str] = []
    committed_total = 0
    spec = SimSpec(run_dir=str(tmp_path / "sim"), scenario="normal", speed=10.0, realtime=True)
    BridgeProcess.warm_up()
    t0 = time.monotonic()
    with SimControl(spec) as sim:
        for k in range(KILLS):
            bridge = BridgeProcess(
                BridgeSpec("demo-ndyag-1064", setup.model_dump(mode="json"), sim.endpoints,
                           str(db), SETTINGS, realtime=True)
            ).start()  # fmt: skip
            try:
                time.sleep(rng.uniform(*KILL_WINDOW_S))
                committed = committed_events(db) if db.exists() else {}
                t_kill = bridge.kill()
            finally:
                bridge.end()
            rep = bridge.report
            phase = "armed" if rep.armed else "started" if rep.session_id else "starting"
            state = laser_state_at(sim.events_since(0), t_kill)
            if state in EMITTING:  # past the watchdog's deadline before the next bridge arms
                time.sleep(deadline_ms / 1000.0 + 0.05)
            events = sim.events_since(0)
            phases[f"{phase}, laser {state}"] += 1
            after = [e for e in events if e["t_wall"] > t_kill]
            stop = next(
                (e for e in after if e["kind"] == "state" and e["to"] not in EMITTING), None
            )
            if state in EMITTING:
                if stop is None:
                    problems.append(f"kill {k}: the laser stayed {state}")
                    continue
                late_ms = (stop["t_wall"] - t_kill) * 1000.0
                if late_ms > deadline_ms:
                    problems.append(f"kill {k}: STANDBY {late_ms:.1f} ms after, {deadline_ms}")
                t_stop = float(stop["t_wall"])
            else:
                t_stop = t_kill
            if any(e["kind"] == "state" and e["to"] in EMITTING for e in after):
                problems.append(f"kill {k}: the laser armed after its bridge was killed")
            pulses = sum(1 for e in after if e["kind"] == "pulse" and e["t_wall"] > t_stop)
            if pulses:
                problems.append(f"kill {k}: {pulses} pulse(s) after the laser stopped")
            if db.exists():
                with SessionLog(db, read_only=True) as log:
                    now = {e.seq: e.hash for s in log.sessions() for e in log.events(s.session_id)}
                lost = [seq for seq, h in committed.items() if now.get(seq) != h]
                if lost:
                    problems.append(f"kill {k}: committed events lost or changed: {lost[:5]}")
            committed_total = max(committed_total, len(committed))
        fired = int(sim.snapshot()["pulses"])

    # The next start after the last kill: this writer marks it, as every bridge marked the one
    # before it.
    with SessionLog(db) as log:
        sessions = log.sessions()
        unmarked = [s.session_id for s in sessions if s.end_reason != INTERRUPTED_REASON]
        marks = sum(len(log.events(s.session_id, kinds=["session_interrupted"])) for s in sessions)
        result = log.verify()
    with capsys.disabled():  # the counts belong in CI's log, passed or failed
        print(
            f"\n{KILLS} kills (seed {SEED}): {dict(sorted(phases.items()))}; "
            f"{len(sessions)} sessions in the log, {marks} marked interrupted; "
            f"{result.n_events} events and {result.n_telemetry_rows} telemetry rows verified; "
            f"up to {committed_total} events committed before a kill; {fired} pulses fired; "
            f"{time.monotonic() - t0:.0f} s"
        )
    assert not problems, problems
    assert result.ok, result.reason
    assert not unmarked, f"sessions not marked interrupted: {unmarked}"
    assert marks == len(sessions)
    # The schedule reached every phase that matters: before arming and while firing.
    assert sum(n for p, n in phases.items() if p.startswith("armed")) >= KILLS // 4
    assert sum(n for p, n in phases.items() if "FIRING" in p) >= 5
