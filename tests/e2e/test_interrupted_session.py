"""A bridge killed mid-treatment: its session is marked interrupted at the next start, and
the pulses the laser fired before its watchdog stopped it are in the log as unlogged pulses.

Real parts only: the simulator on a pty and Modbus TCP, the bridge (a session, armed) as its
own process killed with SIGKILL, then a new session on the same laser and the same SQLite
file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from monitor.core.session import Session, SessionParams, no_contraindications_declared
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import INTERRUPTED_REASON, SessionLog
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
#: The bridge process: a session on the simulator, armed (a transient trip before arming, a
#: late poll on a loaded machine, is acknowledged and arming retried), then treatment goes
#: on until the process is killed.
BRIDGE = textwrap.dedent(
    """
    import json, sys, time
    from device_profiles.loader import load, with_endpoints
    from device_profiles.schema import SkinType
    from monitor.core.session import Refused, Session, SessionParams, State
    from monitor.core.session import no_contraindications_declared
    from monitor.record.sqlite_store import open_recorder

    loaded = load("demo-ndyag-1064")
    setup = with_endpoints(loaded.setup, json.loads(open(sys.argv[1]).read()))
    params = SessionParams("e2e-operator", "PAT-9", SkinType.III,
                           no_contraindications_declared(), mode="test")
    session = Session(loaded, open_recorder(sys.argv[2]), params, setup=setup, realtime=True)
    session.start()
    assert session.request_settings({"fluence_j_cm2": 120.0, "pulse_ms": 30.0,
                                     "spot_mm": 3.0, "rep_rate_hz": 1.0}).ok
    for attempt in range(5):
        try:
            session.arm()
            break
        except Refused as e:
            print("arm refused:", e, file=sys.stderr, flush=True)
            deadline = time.monotonic() + 5
            while session.loop.halt_conditions_active() and time.monotonic() < deadline:
                time.sleep(0.05)
            if session.state is State.HALTED:
                session.acknowledge("e2e-operator", "transient trip before arming")
    print("armed" if session.state is State.READY else "not armed", flush=True)
    time.sleep(600)  # treating, until killed
    """
)
# Simulated time runs 10x: the laser fires every 100 ms of wall time at its 1 Hz, so it fires
# at least twice in the 250 ms its heartbeat watchdog (wall time) takes to stop it.
SPEED = 10.0


@pytest.mark.timeout(120)
def test_item9_killed_session_is_interrupted_and_its_unlogged_pulses_are_recorded(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    sim = SimRunner(
        loaded.setup, load_scenario("normal"), speed=SPEED, run_dir=tmp_path / "sim"
    ).start()
    try:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps(sim.endpoints))
        db = tmp_path / "log.sqlite3"
        stderr = (tmp_path / "bridge.err").open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        bridge = subprocess.Popen(
            [sys.executable, "-c", BRIDGE, str(endpoints), str(db)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        try:
            assert bridge.stdout is not None
            armed = bridge.stdout.readline().strip()
            assert armed == "armed", (tmp_path / "bridge.err").read_text()[-3000:]
            wait_for(lambda: sim.snapshot()["pulses"] >= 5, 30, "the laser to fire")
            bridge.send_signal(signal.SIGKILL)
            bridge.wait(timeout=5)
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait()
            if bridge.stdout is not None:
                bridge.stdout.close()
            stderr.close()
        wait_for(lambda: sim.snapshot()["state"] == "STANDBY", 2, "the heartbeat watchdog")
        fired = sim.snapshot()["pulses"]

        with SessionLog(db, read_only=True) as log:
            (killed,) = log.sessions()
            assert killed.end_reason is None  # as the killed process left it
            logged = [e.payload for e in log.events(killed.session_id, kinds=["pulses"])]
            (first,) = log.events(killed.session_id, kinds=["laser_pulse_counter"])
        logged_total = logged[-1]["total"]
        assert first.payload["total"] == 0  # a fresh simulator
        assert sum(p["n"] for p in logged) == logged_total
        assert fired > logged_total, "no pulse fired after the last one logged"

        # The next start on the same laser and the same file.
        log = SessionLog(db)
        assert log.interrupted == [killed.session_id]
        params = SessionParams(
            "e2e-operator", "PAT-10", SkinType.III, no_contraindications_declared(), mode="test"
        )
        setup = with_endpoints(loaded.setup, sim.endpoints)
        session = Session(loaded, LogRecorder(log), params, setup=setup)
        try:
            session.start()
        finally:
            session.end("test finished")
            log.close()
    finally:
        sim.stop()

    with SessionLog(db, read_only=True) as log:
        old = log.session(killed.session_id)
        assert old.end_reason == INTERRUPTED_REASON
        assert log.events(killed.session_id, kinds=["session_interrupted"])
        (gap,) = log.events(session.session_id, kinds=["pulses_unlogged"])
        assert gap.payload["n"] == fired - logged_total
        assert gap.payload["laser_counter"] == fired
        assert gap.payload["last_logged_session"] == killed.session_id
        assert gap.payload["last_session_interrupted"] is True
        # Every pulse the laser fired is accounted for in the log, logged or reconciled.
        assert logged_total + gap.payload["n"] == fired
        assert log.verify().ok
