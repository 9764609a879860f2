"""Issue 11 items 3-5 from the command line: `laserguard calibrate --demo` against the
simulator in its own process, `calibration list|show|report`, `sessions verify`, and a
demo treatment that arms only once the log holds a passing calibration. Exit codes and
one-sentence refusals are part of the interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitor.calibration.bench import cal_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[3]


def cli(*args: str, tmp: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LASERGUARD_RUNS": str(tmp / "runs")}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("laserguard")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def slack_setup(tmp_path: Path) -> Path:
    """The bundled calibration setup with the test rig's longer link timeouts
    (``bench.SLACK_EDITS``): a loaded CI machine does not cut the sweep short."""
    path = tmp_path / "cal-slack.yaml"
    path.write_text(cal_text(sample_s=2.0), encoding="utf-8")
    return path


def test_item4_calibrate_demo_records_a_certificate_listed_shown_reported_and_verified(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "log.sqlite3")
    out = cli("calibrate", "--demo", "--who", "B. Engineer", "--db", db, "--json",
              "--setup", str(slack_setup(tmp_path)),
              "--report", str(tmp_path / "cert.html"), tmp=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    cert = json.loads(out.stdout)
    assert cert["verdict"] == "pass" and cert["simulated"] is True and len(cert["points"]) == 8
    assert "<svg" in (tmp_path / "cert.html").read_text(encoding="utf-8")
    rid = cert["record_id"]
    listed = cli("calibration", "list", "--db", db, "--json", tmp=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["record_id"] == rid
    shown = cli("calibration", "show", rid[:8], "--db", db, tmp=tmp_path)
    assert shown.returncode == 0 and "PASS" in shown.stdout and "SIMULATED" in shown.stdout
    assert "3 mm at 2 J" in shown.stdout
    html = tmp_path / "again.html"
    report = cli("calibration", "report", rid[:8], "--db", db, "--out", str(html), tmp=tmp_path)
    assert report.returncode == 0 and html.read_text(encoding="utf-8").count("<tr>") > 10
    verify = cli("sessions", "verify", "--db", db, tmp=tmp_path)
    assert verify.returncode == 0 and "chain intact" in verify.stdout


def test_item5_a_demo_treatment_arms_only_after_a_passing_calibration(tmp_path: Path) -> None:
    db = str(tmp_path / "log.sqlite3")
    demo = ("demo", "--setup", "demo-ndyag-1064-cal", "--headless", "--duration", "4",
            "--speed", "2", "--json", "--db", db)  # fmt: skip
    before = cli(*demo, tmp=tmp_path)
    assert before.returncode == 0, before.stderr
    report = json.loads(before.stdout)
    assert report["pulses_fired"] == 0  # the laser never armed
    events = cli("sessions", "show", report["session_id"][:8], "--db", db, "--json", tmp=tmp_path)
    refusals = [e for e in json.loads(events.stdout)["events"] if e["kind"] == "arm_refused"]
    assert (
        "no calibration of laser demo-ndyag-1064-cal is on record"
        in refusals[0]["payload"]["reason"]
    )

    # Calibrated with the test rig's slower links (bench.SLACK_EDITS): link timing is not
    # part of what a certificate was made under, so the bundled setup arms on it.
    slack = str(slack_setup(tmp_path))
    calibrate = cli("calibrate", "--demo", "--who", "B. Engineer", "--setup", slack, "--db", db,
                    tmp=tmp_path)  # fmt: skip
    assert calibrate.returncode == 0, calibrate.stderr
    after = json.loads(cli(*demo, tmp=tmp_path).stdout)
    assert after["pulses_fired"] > 0 and after["halted"] is False


def test_item3_a_hot_laser_fails_with_one_sentence_and_exit_1(tmp_path: Path) -> None:
    out = cli("calibrate", "--demo", "--scenario", "laser-output-high", "--who", "B. Engineer",
              "--setup", str(slack_setup(tmp_path)),
              "--db", str(tmp_path / "log.sqlite3"), tmp=tmp_path)  # fmt: skip
    assert out.returncode == 1
    line = one_sentence(out.stderr)
    assert line.startswith("laserguard calibrate: FAIL: 8 of 8 points beyond ±20%; worst ")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--setup", "demo-ndyag-1064"), "has no calibration policy"),
        (("--skin-ref", "30"), "--skin-ref gives 1 reference temperatures"),
        (("--skin-ref", "30,hot"), "reference temperatures are numbers"),
        ((), "give --skin-ref and --plate-ref (there is no terminal to ask)"),
        (("--demo", "--endpoints", "x.json"), "give --endpoints or --demo, not both"),
        (("--demo", "--scenario", "nope"), "no scenario file or bundled scenario named 'nope'"),
    ],
)
def test_item3_bad_input_exits_2_in_one_sentence(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    out = cli("calibrate", "--who", "B. Engineer", "--db", str(tmp_path / "l.sqlite3"), *args,
              "--plate-ref", "5", tmp=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr


def test_item3_a_meter_head_for_another_wavelength_is_refused_at_load(tmp_path: Path) -> None:
    text = cal_text(edits=(("wavelength_nm: 1064", "wavelength_nm: 180"),))
    # A 180 nm laser would be refused on its own limits too: use the head's range instead.
    text = cal_text()
    narrow = (REPO / "device_profiles/bundled/meters/scpi-style.yaml").read_text(encoding="utf-8")
    narrow = narrow.replace(
        "wavelength_nm: {min: 185, max: 25000}", "wavelength_nm: {min: 400, max: 1000}"
    )
    (tmp_path / "visible-head.yaml").write_text(narrow, encoding="utf-8")
    setup = tmp_path / "cal.yaml"
    setup.write_text(
        text.replace("device: scpi-style", "device: visible-head.yaml"), encoding="utf-8"
    )
    out = cli("calibrate", "--setup", str(setup), "--who", "B. Engineer", "--daily",
              "--db", str(tmp_path / "l.sqlite3"), tmp=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert "measures 400–1000 nm, but laser.wavelength_nm is 1064 nm" in out.stderr


def test_item4_an_unknown_certificate_is_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite3"
    from monitor.record.sqlite_store import SessionLog

    SessionLog(db).close()
    out = cli("calibration", "show", "deadbeef", "--db", str(db), tmp=tmp_path)
    assert out.returncode == 2
    assert one_sentence(out.stderr) == (
        "laserguard calibration: no calibration record matching 'deadbeef'"
    )


def test_item3_an_unexpected_error_exits_1_in_one_sentence_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In process (the error is injected into the meter's driver); the simulator is real.
    from firmware_bridge.meter import EnergyMeterDriver
    from monitor.cli.main import main

    def broken(self: EnergyMeterDriver, timeout_s: float) -> float:
        raise ZeroDivisionError("a driver bug")

    monkeypatch.setattr(EnergyMeterDriver, "wait_pulse_energy_j", broken)
    monkeypatch.setenv("LASERGUARD_RUNS", str(tmp_path / "runs"))
    code = main(["calibrate", "--demo", "--who", "B. Engineer", "--setup",
                 str(slack_setup(tmp_path)), "--db", str(tmp_path / "l.sqlite3")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    line = one_sentence(err)
    assert line.startswith("laserguard calibrate: INCOMPLETE: incomplete: an unexpected error ")
    assert "(ZeroDivisionError: a driver bug)" in line


def test_item4_a_real_sigint_mid_sweep_exits_1_incomplete_with_the_laser_safe(
    tmp_path: Path,
) -> None:
    # SIGINT to the process group, as a terminal's Ctrl-C (the simulator sits in its own).
    import signal
    import threading

    from monitor.calibration.certificate import certificates
    from monitor.record.sqlite_store import SessionLog

    db = tmp_path / "l.sqlite3"
    env = {**os.environ, "LASERGUARD_RUNS": str(tmp_path / "runs")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "calibrate", "--demo", "--who", "B. Engineer",
         "--setup", str(slack_setup(tmp_path)), "--db", str(db)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    mid_sweep = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("2 mm at 1.5 J: mean"):  # the third of eight points
                mid_sweep.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert mid_sweep.wait(90), "".join(lines)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    assert proc.stderr is not None
    proc.stderr.close()
    stderr = "".join(lines)
    assert code == 1, stderr  # docs/calibration.md, "Exit status": recorded INCOMPLETE, 1
    last = one_sentence(stderr)
    assert last.startswith(
        "laserguard calibrate: INCOMPLETE: incomplete: interrupted by the operator (Ctrl-C) ("
    )
    with SessionLog(db) as log:
        (cert,) = certificates(log)
    assert cert.verdict.value == "incomplete" and cert.outcome() is None
    assert cert.aborted == "interrupted by the operator (Ctrl-C)"
    assert 3 <= len(cert.points) < 8
    assert cert.standby == "laser confirmed service mode off, STANDBY"
    # The simulator's own record: service mode ended, the relay opened, STANDBY commanded.
    (events_file,) = (tmp_path / "runs").glob("*/sim_events.jsonl")
    events = [json.loads(x) for x in events_file.read_text(encoding="utf-8").splitlines()]
    service = [e for e in events if e["kind"] == "service_mode"]
    assert service and service[-1]["on"] is False
    relay = [e for e in events if e["kind"] == "relay"]
    assert relay and relay[-1]["closed"] is False
    after_off = events[events.index(service[-1]) :]
    assert any(e["kind"] == "command" and e["line"] == "STANDBY" for e in after_off)
    assert not any(e["kind"] == "pulse" for e in after_off)


def test_item3_references_without_a_terminal_need_references_in_place(tmp_path: Path) -> None:
    # No terminal: nobody presses Enter at each point, so the engineer states it up front.
    out = cli("calibrate", "--who", "B. Engineer", "--db", str(tmp_path / "l.sqlite3"),
              "--skin-ref", "30,40", "--plate-ref", "5", tmp=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stderr
    line = one_sentence(out.stderr)
    assert line.startswith("laserguard calibrate: without a terminal no one confirms that each ")
    assert "give --references-in-place" in line
    assert not (tmp_path / "l.sqlite3").exists()  # refused before anything is touched
    # With the flag the references are taken as given, read at once (no prompt).
    import argparse

    from monitor.cli.calibrate import GivenReferences, _references
    from tests.monitor.calibration.bench import cal_setup

    policy = cal_setup().setup.calibration
    assert policy is not None
    args = argparse.Namespace(
        daily=False, skin_ref=[30.0, 40.0], plate_ref=[5.0], references_in_place=True
    )
    refs = _references(args, policy, None)
    assert isinstance(refs, GivenReferences) and refs.ask is False
    assert refs.reference_c("skin_sensor", 1, 2) == 40.0
