"""The halt path under hostile conditions, end to end over real wires (issue 7: items 1, 2, 3
and 11): a view that raises, a skin temperature stuck far above the limit, a laser that lies
about STOP or never answers it, a pulse fired at out-of-limit settings before the read-back
halts, Ctrl-C and kill -9 in the demo. Real pty, real Modbus TCP, real SQLite."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from monitor.cli import demo
from monitor.cli.demo import run_demo
from monitor.cli.live_view import LiveViewProcess
from monitor.cli.main import _print_report
from monitor.core.checks import Severity
from monitor.core.records import SessionMode
from monitor.core.session import (
    Refused,
    Session,
    SessionParams,
    State,
    no_contraindications_declared,
)
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "monitor.cli"]


def run_cli(*args: str, tmp: Path, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LASERGUARD_RUNS": str(tmp / "runs")}
    return subprocess.run(
        [*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip


def sim_events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    path = run_dir / "sim_events.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    # The last line may be half-written while the simulator runs.
    events = [json.loads(line) for line in lines[:-1] if line.strip()]
    if lines and lines[-1].endswith("}"):
        events.append(json.loads(lines[-1]))
    return [e for e in events if e["kind"] == kind]


def only_session(db: Path) -> tuple[str, list[Any]]:
    with SessionLog(db, read_only=True) as log:
        (info,) = log.sessions()
        return info.session_id, log.events(info.session_id)


def kinds_of(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.kind == kind]


# --- item 1: no exception in a view may end a session --------------------------------------


@pytest.mark.timeout(90)
def test_item1_a_view_that_raises_does_not_end_the_session(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """The demo's live view raises on every tick: the session runs its full time, the failure
    is logged once (bounded) and then counted, and the armed laser is halted because nobody
    can see the alarms any more."""
    calls: list[float] = []

    def broken_view(session: Session, t_s: float) -> None:
        calls.append(t_s)
        raise IndexError("string index out of range " + "x" * 5000)

    db = tmp_path / "demo.sqlite3"
    result = run_demo(
        loaded, "normal", SETTINGS, SkinType.III, db_path=db, run_dir=tmp_path / "run",
        duration_s=6.0, speed=2.0, on_tick=broken_view, tick_s=0.1,
    )  # fmt: skip
    assert len(calls) >= 15  # called on and on for 3 s: the session went on
    _, events = only_session(db)
    (failed,) = kinds_of(events, "view_failed")
    assert failed.payload["view"] == "live view"
    assert failed.payload["error"].startswith("IndexError: string index out of range xxx")
    assert len(failed.payload["error"]) <= 200
    (counted,) = kinds_of(events, "view_failures")
    assert counted.payload["count"] == len(calls)
    trips = kinds_of(events, "trip")
    assert trips[0].payload["check"] == "view_failed"
    assert "nobody sees the alarms" in trips[0].payload["reason"]
    assert events[-1].kind == "session_end" and events[-1].payload["reason"] == "demo finished"
    assert events[-1].t_wall - events[0].t_wall >= 3.0
    assert result["halted"] is True and result["view_failures"] == 1
    assert result["pulses_after_halt"] == 0


@pytest.mark.timeout(90)
def test_issue15_a_killed_view_process_halts_the_armed_laser(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """The live view draws in a process of its own (``LiveViewProcess``, as ``laserguard
    demo`` runs it). Killed mid-session: the session goes on to its end, the failure is logged
    with the view's exit code, and the armed laser is halted because nobody sees the alarms."""
    db = tmp_path / "demo.sqlite3"
    killed_at: list[float] = []
    with LiveViewProcess("normal", 6.0, discard=True) as view:

        def tick(session: Session, t_s: float) -> None:
            if t_s > 1.5 and not killed_at and view.frames > 0:
                assert view.pid is not None
                killed_at.append(t_s)
                os.kill(view.pid, signal.SIGKILL)
            view.update(session, t_s)

        result = run_demo(
            loaded, "normal", SETTINGS, SkinType.III, db_path=db, run_dir=tmp_path / "run",
            duration_s=6.0, speed=2.0, on_tick=tick, tick_s=0.1,
        )  # fmt: skip
    assert killed_at, "the view never drew a frame"
    _, events = only_session(db)
    (failed,) = kinds_of(events, "view_failed")
    assert "ended (exit code -9)" in failed.payload["error"]
    checks = [t.payload["check"] for t in kinds_of(events, "trip")]
    # A loaded test machine may have latched a halt for another cause first: then the laser
    # was no longer armed when the view died, and there was nothing more to halt.
    before = kinds_of(events[: events.index(failed)], "trip")
    assert "view_failed" in checks or before, checks
    assert result["halted"] is True and result["pulses_after_halt"] == 0
    assert events[-1].kind == "session_end" and events[-1].payload["reason"] == "demo finished"


@pytest.mark.timeout(90)
def test_issue15_a_killed_log_process_halts_the_armed_laser(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """The session's events and telemetry are written by a process of its own (as
    ``laserguard demo``, ``bridge`` and ``serve`` run it). Killed while the laser is armed:
    the laser is halted on ``session_log`` and STOP reaches it, no pulse follows, the session
    still ends, and its chain says why its record has a gap."""
    db = tmp_path / "demo.sqlite3"
    run_dir = tmp_path / "run"
    killed: list[int] = []

    def tick(session: Session, t_s: float) -> None:
        if t_s > 1.5 and not killed and session.state is State.READY:
            (log_process,) = [
                p for p in multiprocessing.active_children() if p.name == "laserguard-log"
            ]
            assert log_process.pid is not None
            killed.append(log_process.pid)
            os.kill(log_process.pid, signal.SIGKILL)

    result = run_demo(
        loaded, "normal", SETTINGS, SkinType.III, db_path=db, run_dir=run_dir,
        duration_s=6.0, speed=2.0, on_tick=tick, tick_s=0.1,
    )  # fmt: skip
    assert killed, "the laser never armed"
    assert result["halted"] is True
    assert "session log's process ended (exit code -9)" in str(result["log_failed"])
    # The trip could not be logged: the report takes it from the session, and says so.
    (trip,) = [t for t in result["trips"] if t["check"] == "session_log"]
    assert trip["logged"] is False
    assert sim_events(run_dir, "stop_received"), "the laser never received STOP"
    assert result["pulses_after_halt"] == 0
    _, events = only_session(db)
    (gap,) = kinds_of(events, "log_writer_failed")
    assert "exit code -9" in gap.payload["reason"]
    assert events[-1].kind == "session_end" and events[-1].payload["reason"] == "demo finished"
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok


def _not_a_log() -> SessionLog:
    return SessionLog(REPO)  # run in the log's process: a folder, not a session log


@pytest.mark.timeout(90)
def test_issue15_a_log_process_that_cannot_open_the_log_refuses_the_session(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """The devices answer, but the session's log process cannot open the log: the session
    never reaches STANDBY (nothing can arm), it fails saying why, and the laser was halted."""
    sim = SimRunner(loaded.setup, load_scenario("normal"), run_dir=tmp_path / "sim").start()
    try:
        setup = with_endpoints(loaded.setup, sim.endpoints)
        params = SessionParams(
            "e2e-operator", "PAT-0042", SkinType.III, no_contraindications_declared(),
            mode=SessionMode.TEST,
        )  # fmt: skip
        with SessionLog(tmp_path / "log.sqlite3") as log:
            recorder = LogRecorder(log, log_process=_not_a_log)
            session = Session(loaded, recorder, params, setup=setup)
            with pytest.raises(Refused) as refused:
                session.start()
            assert str(refused.value).startswith(
                "the session log did not take the session's first events: the session log's"
                " process could not open the log"
            )
            assert session.state is State.FAILED
            with pytest.raises(Refused):
                session.arm()
            session.end("refused")
            recorder.close()
            assert log.session(session.session_id).end_reason == "refused"
    finally:
        sim.stop()


@pytest.mark.timeout(90)
def test_item1_a_report_that_fails_leaves_an_ended_session_and_one_sentence(
    loaded: LoadedSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_report(*args: object) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(demo, "report", broken_report)
    db = tmp_path / "demo.sqlite3"
    with pytest.raises(demo.ReportFailed) as failed:
        run_demo(
            loaded, "normal", SETTINGS, SkinType.III, db_path=db, run_dir=tmp_path / "run",
            duration_s=2.0, speed=2.0,
        )  # fmt: skip
    message = str(failed.value)
    assert "ended and is in the log" in message and "ZeroDivisionError" in message
    assert "\n" not in message
    _, events = only_session(db)
    assert events[-1].kind == "session_end" and kinds_of(events, "standby")
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok


@pytest.mark.timeout(120)
def test_item1_the_bridge_outlives_a_skin_temperature_stuck_far_above_the_limit(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """A stuck-hot sensor (60 °C, every reading in the view's window above the limit + 2 °C)
    used to make the live view raise IndexError and `laserguard bridge` exit 1 mid-hazard."""
    with SimRunner(loaded.setup, load_scenario("normal"), run_dir=tmp_path / "sim") as sim:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps(sim.endpoints))
        db = tmp_path / "bridge.sqlite3"
        bridge = subprocess.Popen(
            [
                *CLI, "bridge", "--endpoints", str(endpoints), "--skin-type", "III",
                "--patient", "PAT-1", "--mode", "test", "--db", str(db), "--duration", "8",
                "--fluence", "120", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1",
                "--arm",
            ],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: sim.snapshot()["relay_closed"], 20, "the bridge to arm")
            sim.force_skin(60.0)
            out, err = bridge.communicate(timeout=60)
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait()
    # It ran its whole duration, halted: exit 1 says "halted", with the reason in one line.
    assert bridge.returncode == 1, err[-2000:]
    assert "Traceback" not in err
    assert "halted: skin_temp_high" in err
    assert "'skin_temp_high'" in out
    _, events = only_session(db)
    assert next(t.payload["check"] for t in kinds_of(events, "trip")) == "skin_temp_high"
    assert not kinds_of(events, "view_failed")
    assert events[-1].payload["reason"] == "bridge stopped"
    armed = kinds_of(events, "armed")[0]
    assert events[-1].t_wall - armed.t_wall >= 7.5  # ran its full --duration 8


# --- item 2: a laser that ignores or lies about STOP ----------------------------------------


@pytest.mark.timeout(90)
def test_item2_a_laser_that_lies_about_stop_is_an_alarm_until_reset_by_name(rig: Rig) -> None:
    session = rig.start("normal", speed=2.0)
    sim = rig.sim
    assert sim is not None
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: sim.snapshot()["pulses"] >= 1, 10, "the laser to fire")
    sim.call(lambda: sim.laser.break_stop("lie", ignores_interlock=True) if sim.laser else None)
    sim.force_skin(50.0)
    wait_for(lambda: "laser_did_not_stop" in {t.check for t in session.trips}, 3, "the alarm")
    trip = next(t for t in session.trips if t.check == "laser_did_not_stop")
    assert trip.severity is Severity.HALT
    assert "still reported FIRING" in trip.reason
    assert "the relay is the only barrier, use the emergency stop" in trip.reason
    assert "laser_did_not_stop" in session.snapshot().active_conditions
    time.sleep(1.0)  # the bridge keeps telling it to stop
    stops = rig.sim_events("stop_received")
    assert len(stops) >= 10
    # One record each, not one per STOP; no lost-link alarms from a laser that answers.
    assert len(rig.logged("halt_stop_confirmed")) == 1
    assert len(rig.logged("laser_active_while_halted")) == 1
    assert "laser_link" not in {t.check for t in session.trips}
    relay_open = next(e for e in rig.sim_events("relay") if not e["closed"])
    assert not [p for p in rig.sim_events("pulse") if p["t_wall"] > relay_open["t_wall"]]

    sim.release_skin()
    wait_for(lambda: "skin_temp_high" not in session.loop.active_names(), 5, "the skin to cool")
    # Acknowledging the halt does not clear the alarm behind it ...
    with pytest.raises(Refused, match="laser_did_not_stop"):
        session.acknowledge("nurse-1", "skin cooled")
    # ... nor does naming it while the laser still says FIRING.
    with pytest.raises(Refused, match="reports FIRING"):
        session.acknowledge("nurse-1", "skin cooled", reset=["laser_did_not_stop"])
    assert session.state is State.HALTED
    # The laser is serviced: its stop works again and it goes to STANDBY.
    sim.call(lambda: sim.laser.break_stop(None) if sim.laser else None)
    wait_for(lambda: session.bridge.live.laser_state() == "STANDBY", 3, "the laser in STANDBY")
    with pytest.raises(Refused, match="laser_did_not_stop"):
        session.acknowledge("nurse-1", "laser serviced")  # still latched until named
    session.acknowledge("nurse-1", "laser serviced, stop tested", reset=["laser_did_not_stop"])
    assert session.state is State.STANDBY
    session.end("test finished")
    (reset,) = rig.log.events(session.session_id, kinds=["alarm_reset"])
    assert reset.payload["check"] == "laser_did_not_stop" and reset.payload["by"] == "nurse-1"
    (ack,) = rig.log.events(session.session_id, kinds=["acknowledged"])
    assert ack.payload["reset"] == ["laser_did_not_stop"]
    repeated = rig.log.events(session.session_id, kinds=["halt_stop_confirmed_repeated"])
    assert sum(e.payload["count"] for e in repeated) >= len(stops) - 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("scenario", "why", "record"),
    [
        ("laser-ignores-stop", "still reported FIRING", "halt_stop_confirmed"),
        ("laser-silent-stop", "had not confirmed STOP", "halt_stop_failed"),
    ],
)
def test_item2_bundled_hostile_lasers_raise_laser_did_not_stop(
    tmp_path: Path, scenario: str, why: str, record: str
) -> None:
    db, run_dir = tmp_path / "demo.sqlite3", tmp_path / "run"
    out = run_cli(
        "demo", "--headless", "--scenario", scenario, "--duration", "9", "--speed", "2",
        "--json", "--db", str(db), "--run-dir", str(run_dir), tmp=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    checks = [t["check"] for t in report["trips"]]
    assert checks.count("laser_did_not_stop") == 1
    assert why in next(t["reason"] for t in report["trips"] if t["check"] == "laser_did_not_stop")
    assert report["pulses_after_halt"] == 0
    stops = sim_events(run_dir, "stop_received")
    assert len(stops) >= 10
    _, events = only_session(db)
    # A laser that answers all but STOP: its link is not "lost" for that (it used to flap,
    # tripping and clearing laser_link dozens of times a second).
    lost = [e.payload["error"] for e in kinds_of(events, "link_lost")]
    assert not [error for error in lost if "STOP" in error]
    assert len(kinds_of(events, record)) == 1
    # Every STOP sent is in the log, as a count: confirmed or failed (on a loaded machine a
    # confirmation can arrive after the serial timeout, and is then counted as a failure).
    logged = 0
    for kind in ("halt_stop_confirmed", "halt_stop_failed"):
        logged += len(kinds_of(events, kind))
        logged += sum(e.payload["count"] for e in kinds_of(events, f"{kind}_repeated"))
    assert logged == len(stops)


# --- item 3: a pulse outside the limits is recorded and reported ----------------------------


@pytest.mark.timeout(120)
def test_item3_a_pulse_at_out_of_limit_settings_is_recorded_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """panel-overlimit: the knob goes to 260 J/cm² as a pulse is due; that pulse fires before
    the read-back halts. It is a recorded event with its settings, counted in the report."""
    db, run_dir = tmp_path / "demo.sqlite3", tmp_path / "run"
    out = run_cli(
        "demo", "--headless", "--scenario", "panel-overlimit", "--duration", "8",
        "--speed", "2", "--json", "--db", str(db), "--run-dir", str(run_dir), tmp=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    over = [p for p in sim_events(run_dir, "pulse") if p["settings"]["fluence_j_cm2"] > 150]
    assert len(over) >= 1  # the simulator says it fired
    assert report["pulses_out_of_limits"] == len(over)
    first = report["out_of_limit_pulses"][0]
    assert first["settings"]["fluence_j_cm2"] == 260.0
    (violation,) = first["violations"]
    assert (violation["setting"], violation["limit"]) == ("fluence_j_cm2", 120.0)
    assert report["pulses_after_halt"] == 0  # the existing keys stay
    assert report["trips"][0]["check"] == "settings_readback"
    _, events = only_session(db)
    logged = kinds_of(events, "pulse_out_of_limits")
    assert sum(e.payload["n"] for e in logged) == len(over)
    assert logged[0].payload["settings"]["fluence_j_cm2"] == 260.0
    _print_report(report)
    text = capsys.readouterr().out
    assert f"OUT OF LIMITS    {len(over)} pulse(s)" in text
    assert "fluence 260 J/cm² is above the maximum of 120 J/cm²" in text


# --- item 11: Ctrl-C in the demo ends the bridge first, the devices last ---------------------


def _start_demo(
    tmp_path: Path, *, headless: bool = True
) -> tuple[subprocess.Popen[str], Path, Path]:
    db, run_dir = tmp_path / "demo.sqlite3", tmp_path / "run"
    view = ["--headless"] if headless else []  # else the live view, in a process of its own
    demo = subprocess.Popen(
        [*CLI, "demo", *view, "--scenario", "normal", "--duration", "120",
         "--db", str(db), "--run-dir", str(run_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # it leads its own process group, as a shell's foreground job
    )  # fmt: skip
    return demo, db, run_dir


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def wait_armed(run_dir: Path) -> None:
    """The demo armed the laser (the simulated laser went to READY)."""
    wait_for(lambda: [e for e in sim_events(run_dir, "state") if e["to"] == "READY"], 30, "READY")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("headless", [True, False], ids=["headless", "live view"])
def test_item11_ctrl_c_in_the_demo_puts_the_laser_in_standby_before_the_devices_end(
    tmp_path: Path, headless: bool
) -> None:
    """With the live view, Ctrl-C reaches its process too (the terminal signals the whole
    group): it ignores it, and the session's process ends the session, then the view."""
    demo, db, run_dir = _start_demo(tmp_path, headless=headless)
    try:
        wait_armed(run_dir)
        time.sleep(1.0)  # firing (the footswitch goes down 2 s into the scenario)
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.communicate(timeout=10)
    assert demo.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    if not headless:
        assert "LaserGuard" in out  # the view drew
        assert "live view failed" not in err
    # The laser got its STANDBY while the devices still answered ...
    (standby,) = [e for e in sim_events(run_dir, "command") if e["line"] == "STANDBY"]
    _, events = only_session(db)
    assert kinds_of(events, "standby")
    assert not kinds_of(events, "end_standby_failed")
    assert not [e for e in kinds_of(events, "halt_requested") if "STANDBY" in e.payload["reason"]]
    assert not kinds_of(events, "view_failed")
    # ... and the devices ended last: after the session (and its log), not on the signal.
    (stopped,) = sim_events(run_dir, "stopped")
    assert events[-1].kind == "session_end"
    assert standby["t_wall"] < events[-1].t_wall < stopped["t_wall"]
    # The summary printed agrees with the log.
    trips = [e.payload["check"] for e in kinds_of(events, "trip")]
    if trips:
        assert "HALTED" in out and all(f"{check}:" in out for check in trips)
    else:
        assert "no trip" in out


@pytest.mark.timeout(90)
def test_item11_the_simulator_ends_with_a_killed_demo(tmp_path: Path) -> None:
    """In its own process group the simulator no longer shares the demo's signals; it watches its
    stdin instead, so a demo killed with -9 does not leave devices running."""
    demo, _, run_dir = _start_demo(tmp_path)
    try:
        wait_armed(run_dir)
        children = Path(f"/proc/{demo.pid}/task/{demo.pid}/children").read_text().split()
        # The simulator is the demo's sim.control child, in a group of its own. The demo's
        # other children (multiprocessing's resource tracker, the session log's process) are
        # in the demo's group and go with it.
        (sim_pid,) = (
            int(c)
            for c in children
            if "spawn_main" in _cmdline(int(c)) and os.getpgid(int(c)) == int(c)
        )
        assert os.getpgid(sim_pid) == sim_pid != os.getpgid(demo.pid)  # its own group
        os.killpg(demo.pid, signal.SIGKILL)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        demo.communicate(timeout=10)  # reaps it and closes its pipes

    def sim_gone() -> bool:
        try:
            status = Path(f"/proc/{sim_pid}/status").read_text()
        except FileNotFoundError:
            return True
        return "\nState:\tZ" in status  # ended; waiting for its new parent to reap it

    wait_for(sim_gone, 10, "the simulator to end")
    assert sim_events(run_dir, "stopped")


@pytest.mark.timeout(90)
def test_an_acknowledgement_within_the_stop_grace_waits_for_the_stop_to_be_judged(
    rig: Rig,
) -> None:
    # A laser that never answers STOP, halted and acknowledged at once: the acknowledgement
    # used to release the halt before the grace ran out, so laser_did_not_stop was never
    # judged and the alarm behind the halt was lost.
    session = rig.start("normal", speed=2.0)
    sim = rig.sim
    assert sim is not None
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: sim.snapshot()["pulses"] >= 1, 10, "the laser to fire")
    sim.call(lambda: sim.laser.break_stop("none") if sim.laser else None)
    session.emergency_halt("nurse-1", "patient moved")
    with pytest.raises(Refused, match="laser_did_not_stop"):
        session.acknowledge("nurse-1", "patient settled")
    assert session.state is State.HALTED
    # The refusal reads the latched condition; its trip is recorded by the session's
    # bookkeeping thread a moment later.
    trip = wait_for(
        lambda: next((t for t in session.trips if t.check == "laser_did_not_stop"), None),
        5,
        "the laser_did_not_stop trip",
    )
    assert "had not confirmed STOP" in trip.reason
