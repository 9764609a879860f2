"""A treatment end to end over real wires: what an operator and an auditor would notice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from firmware_bridge.live import Ch
from monitor.core.session import (
    Refused,
    Session,
    SessionParams,
    State,
    no_contraindications_declared,
)
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl, SimSpec
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, tmp: Path, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LASERGUARD_RUNS": str(tmp / "runs")}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.mark.timeout(120)
def test_cooling_failure_demo_halts_on_the_warm_plate_before_the_skin_heats(tmp_path: Path) -> None:
    """Issue 12, item 7: with the settings requiring cooling, a plate above its treatment band
    halts at once. Before, this scenario ran on until the post-pulse skin peaks passed 44 °C;
    now it halts while the skin is still cool (the skin-temperature halt and its latency are
    driven directly: tests/e2e/test_halt_first.py, benchmarks/halt.py)."""
    db = tmp_path / "demo.sqlite3"
    # --speed 2: simulated time runs twice as fast; the latency is still wall-clock time.
    out = run_cli(
        "demo", "--headless", "--scenario", "cooling-failure", "--duration", "30",
        "--speed", "2", "--json", "--db", str(db), tmp=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["halted"] is True
    assert report["trips"][0]["check"] == "cooler_plate_high"
    assert "while the settings require epidermal cooling" in report["trips"][0]["reason"]
    assert report["pulses_fired"] >= 3
    assert report["pulses_after_halt"] == 0
    assert report["max_skin_temp_c"] < 44.0  # halted before the skin heated
    # Issue 10: cooling lost while treating opened a draft incident with the burn protocol
    # (the clinician inspects the skin and closes it as "no injury" or completes it).
    (draft,) = report["incidents"]["drafts"]
    assert draft["protocol"]["id"] == "burn_or_blister"

    verify = run_cli("sessions", "verify", "--db", str(db), tmp=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK" in verify.stdout


@pytest.mark.timeout(120)
def test_normal_demo_completes_without_trip(tmp_path: Path) -> None:
    out = run_cli(
        "demo", "--headless", "--scenario", "normal", "--duration", "30", "--speed", "3",
        "--json", "--db", str(tmp_path / "demo.sqlite3"), tmp=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["halted"] is False, report["trips"]
    assert report["trips"] == []
    assert report["halt_latency_ms"] is None
    assert report["pulses_fired"] >= 20
    assert report["max_skin_temp_c"] < 44.0


def test_over_limit_request_is_refused_and_logged(rig: Rig) -> None:
    session = rig.start("normal")
    over = {**SETTINGS, "fluence_j_cm2": 250.0}
    result = session.request_settings(over)
    assert not result.ok
    (violation,) = result.violations
    assert violation.setting == "fluence_j_cm2"
    assert violation.limit == 120.0  # the 3-6 mm row applies at the 3.0 mm border too
    assert "fluence 250 J/cm² is above the maximum of 120 J/cm²" in result.explain()
    with pytest.raises(Refused, match="no settings have been approved"):
        session.arm()
    assert rig.sim is not None
    assert rig.sim.snapshot()["settings"]["fluence_j_cm2"] != 250.0  # never sent
    refused = rig.logged("settings_refused")
    assert refused and refused[0].payload["violations"][0]["limit"] == 120.0
    assert rig.logged("arm_refused")


def test_setting_turned_on_the_panel_is_caught_by_read_back(rig: Rig) -> None:
    session = rig.start("panel-overlimit", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 10, "the read-back trip")
    assert session.trips[0].check == "settings_readback"
    assert "fluence 260 J/cm²" in session.trips[0].reason
    assert rig.sim is not None
    wait_for(lambda: rig.sim.snapshot()["state"] == "STANDBY", 2, "the laser in STANDBY")
    # The two routes are independent: the laser may confirm STOP before the relay opens.
    wait_for(lambda: not rig.sim.snapshot()["relay_closed"], 2, "the relay to open")
    stop = rig.sim_events("stop_received")[0]
    assert not [p for p in rig.sim_events("pulse") if p["t_wall"] > stop["t_wall"]]
    # The cause persists: no acknowledgement releases it.
    with pytest.raises(Refused, match="settings_readback"):
        session.acknowledge("nurse-1", "checked the laser")
    # Settings back in range (sent to a laser in STANDBY): now a person may release the halt.
    assert session.request_settings(SETTINGS).ok
    wait_for(lambda: not session.loop.halt_conditions_active(), 2, "the condition to clear")
    session.acknowledge("nurse-1", "panel knob turned back; settings re-entered")
    assert session.state is State.STANDBY
    session.end("test finished")
    kinds = [e.kind for e in rig.log.events(session.session_id)]
    for kind in ("trip", "acknowledge_refused", "acknowledged", "halt_stop_confirmed"):
        assert kind in kinds


@pytest.mark.parametrize(
    ("scenario", "checks"),
    [("sensor-lost", {"sensor_link", "sensor_stale"}), ("sensor-freeze", {"sensor_stale"})],
)
def test_lost_or_frozen_sensor_halts(rig: Rig, scenario: str, checks: set[str]) -> None:
    session = rig.start(scenario, speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 10, "a staleness trip")
    assert session.trips[0].check in checks
    assert rig.sim is not None
    wait_for(lambda: rig.sim_events("stop_received"), 2, "the stop at the laser")
    wait_for(lambda: not rig.sim.snapshot()["relay_closed"], 2, "the relay to open")


def test_killed_bridge_leaves_the_laser_in_standby(rig: Rig, tmp_path: Path) -> None:
    """kill -9 the bridge while the laser fires: heartbeat and relay watchdog make it safe."""
    from sim.runner import SimRunner
    from sim.scenario import load_scenario

    sim = SimRunner(rig.loaded.setup, load_scenario("normal"), run_dir=tmp_path / "sim").start()
    rig.sim = sim
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps(sim.endpoints))
    db = tmp_path / "bridge.sqlite3"
    bridge = subprocess.Popen(
        [
            sys.executable, "-m", "monitor.cli", "bridge", "--endpoints", str(endpoints),
            "--skin-type", "III", "--patient", "PAT-7", "--mode", "test", "--db", str(db),
            "--fluence", "120", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1", "--arm",
        ],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: sim.snapshot()["pulses"] >= 2, 20, "the laser to fire")
        killed = time.time()
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(timeout=5)
        wait_for(lambda: sim.snapshot()["state"] == "STANDBY", 2, "the laser to drop to STANDBY")
        wait_for(lambda: not sim.snapshot()["relay_closed"], 2, "the relay watchdog to open")
        lost = wait_for(lambda: rig.sim_events("heartbeat_lost"), 2, "the missing heartbeat")
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
    timeout_ms = rig.loaded.setup.laser.heartbeat_timeout_ms
    assert (lost[0]["t_wall"] - killed) * 1000 < timeout_ms + 150
    watchdog = [e for e in rig.sim_events("relay") if e["t_wall"] > killed and not e["closed"]]
    assert watchdog and watchdog[0]["why"] == "watchdog"
    standby = [e for e in rig.sim_events("state") if e["t_wall"] > killed and e["to"] == "STANDBY"]
    assert standby, "no transition to STANDBY after the kill"
    assert not [p for p in rig.sim_events("pulse") if p["t_wall"] > standby[0]["t_wall"]]
    # What the killed bridge committed is intact and verifiable.
    with SessionLog(db, read_only=True) as log:
        result = log.verify()
        assert result.ok, result.reason
        (info,) = log.sessions()
        assert log.events(info.session_id, kinds=["armed"])


def test_session_log_holds_every_event_of_the_run(rig: Rig) -> None:
    session = rig.start("cooling-failure", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 20, "the warm-plate trip")
    wait_for(lambda: session.bridge.stop_confirmed_t_ns, 2, "the stop to be confirmed")
    session.end("test finished")
    assert rig.sim is not None
    fired = len(rig.sim_events("pulse"))
    sid = session.session_id
    logged_pulses = sum(e.payload["n"] for e in rig.log.events(sid, kinds=["pulses"]))
    assert fired > 0
    assert logged_pulses == fired
    kinds = {e.kind for e in rig.log.events(sid)}
    assert {"session_start", "connected", "settings_applied", "armed", "trip"} <= kinds
    assert {"halt_requested", "halt_stop_confirmed", "interlock_output", "session_end"} <= kinds
    (trip,) = [
        e for e in rig.log.events(sid, kinds=["trip"]) if e.payload["check"] == "cooler_plate_high"
    ]
    assert trip.payload["reason"].startswith("cooling plate")
    start = rig.log.events(sid, kinds=["session_start"])[0].payload
    assert start["profile_digest"] == rig.loaded.digest
    assert start["meta"]["limit_table"] == "nd-yag-1064"
    assert start["meta"]["limit_table_digest"] == rig.loaded.table_digest
    assert start["skin_type"] == "III" and start["patient_id"] == "PAT-0042"
    t, ch, val = rig.log.telemetry(sid)
    assert len(t) > 100
    plate = val[ch == int(Ch.PLATE_TEMP_C)]
    assert plate.max() > rig.loaded.setup.limits.cooler_plate_temp_c.high  # saw the crossing
    assert rig.log.verify(sid).ok


def test_unwritable_session_log_halts_treatment(rig: Rig) -> None:
    """Another process holds the database's write lock: no unlogged pulses."""
    session = rig.start("normal", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None
    wait_for(lambda: rig.sim.snapshot()["pulses"] >= 1, 10, "the first pulse")
    blocker = sqlite3.connect(rig.tmp / "log.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        wait_for(lambda: session.state is State.HALTED, 5, "the halt on a stalled log")
        wait_for(lambda: rig.sim_events("stop_received"), 2, "the stop at the laser")
        assert session.trips[-1].check == "session_log"
        with pytest.raises(Refused, match="session log"):
            session.acknowledge("nurse-1", "try again")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_failing_interlock_loop_halts_and_opens_the_relay(rig: Rig) -> None:
    """The alarm system checks itself: a loop that dies cannot leave the laser armed."""
    session = rig.start("normal", speed=2.0)
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert rig.sim is not None
    wait_for(lambda: rig.sim.snapshot()["relay_closed"], 2, "the relay to close")

    def broken(*args: object) -> None:
        raise RuntimeError("check engine fault")

    session.engine.evaluate = broken  # type: ignore[method-assign]
    wait_for(lambda: session.state is State.HALTED, 2, "the halt on a dead loop")
    assert session.trips[-1].check == "interlock_loop"
    assert "check engine fault" in session.trips[-1].reason
    wait_for(lambda: not rig.sim.snapshot()["relay_closed"], 2, "the relay to open")
    wait_for(lambda: rig.sim_events("stop_received"), 2, "the stop at the laser")
    with pytest.raises(Refused):
        session.arm()


def test_arming_is_refused_while_the_cooling_plate_is_out_of_its_band(rig: Rig) -> None:
    session = rig.start("cooling-failure", speed=4.0)
    assert session.request_settings(SETTINGS).ok
    wait_for(lambda: "cooler_plate_warn" in session.loop.active_names(), 10, "a warm plate")
    with pytest.raises(Refused, match="cooler_plate_warn"):
        session.arm()
    assert session.state is State.STANDBY  # a warning blocks arming; it does not halt
    assert rig.sim is not None
    assert rig.sim.snapshot()["state"] == "STANDBY"
    assert rig.logged("arm_refused")


def test_killed_devices_halt_the_session(loaded: LoadedSetup, tmp_path: Path) -> None:
    """kill -9 the simulator (every device gone at once): lost links halt, the log survives."""
    spec = SimSpec(run_dir=str(tmp_path / "sim"), setup=loaded.source, speed=2.0)
    with SimControl(spec) as sim:
        log = SessionLog(tmp_path / "log.sqlite3")
        params = SessionParams(
            "e2e-operator", "PAT-9", SkinType.III, no_contraindications_declared(), mode="test"
        )
        setup = with_endpoints(loaded.setup, sim.endpoints)
        session = Session(loaded, LogRecorder(log), params, setup=setup)
        try:
            session.start()
            assert session.request_settings(SETTINGS).ok
            session.arm()
            sim.kill()
            wait_for(lambda: session.state is State.HALTED, 2, "the halt on lost devices")
            lost = {t.check for t in session.trips}
            assert lost & {"sensor_link", "sensor_stale", "laser_link", "laser_stale"}
            with pytest.raises(Refused):
                session.acknowledge("nurse-1", "devices gone")
        finally:
            session.end("test finished")
        assert log.verify().ok
        log.close()
