"""Issue 7 item 12: ``laserguard bridge`` says when it did not do what was asked.

The installed command runs in its own process against the simulator in another (a real pty
and real Modbus TCP sockets) and a real SQLite log. A refusal (settings, arming, devices that do not
answer) and a halt each end with exit status 1 and one sentence on stderr; a session that went
as asked ends with 0.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.loader import load_contraindications
from monitor.cli.exit_status import ExitStatus
from sim.control import SimControl, SimSpec

pytestmark = pytest.mark.e2e

SETTINGS = ["--fluence", "120", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1"]


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("laserguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimControl]:
    # Its own process, with real-time priority when it can get it: the devices are other
    # hardware, and other test runs on a shared CPU must not make them miss their answers.
    spec = SimSpec(run_dir=str(tmp_path / "sim"), scenario="normal", realtime=True)
    with SimControl(spec) as control:
        yield control


def endpoints_file(sim: SimControl, tmp_path: Path) -> Path:
    path = tmp_path / "sim" / "endpoints.json"
    assert json.loads(path.read_text()) == sim.endpoints
    return path


def bridge_argv(tmp_path: Path, endpoints: Path, *args: str) -> list[str]:
    return [
        *entry_point(), "bridge", "--endpoints", str(endpoints), "--patient", "P-0042",
        "--operator", "e2e", "--no-realtime", "--db", str(tmp_path / "log.sqlite3"), *args,
    ]  # fmt: skip


def run_bridge(tmp_path: Path, endpoints: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bridge_argv(tmp_path, endpoints, *args),
        capture_output=True, text=True, timeout=90, check=False, cwd=tmp_path,
    )  # fmt: skip


def stderr_sentence(err: str, *words: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("laserguard bridge: ")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, err)
    return lines[0]


def laser_states(sim: SimControl, since: int = 0) -> list[str]:
    return [e["to"] for e in sim.events_since(since) if e["kind"] == "state"]


def wait_armed(sim: SimControl, since: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "READY" not in laser_states(sim, since):
        if time.monotonic() > deadline:
            raise AssertionError(f"the bridge did not arm the laser within {timeout_s:g} s")
        time.sleep(0.1)


def test_item12_bridge_exits_1_when_the_settings_are_refused(
    sim: SimControl, tmp_path: Path
) -> None:
    done = run_bridge(
        tmp_path, endpoints_file(sim, tmp_path), "--mode", "test", "--skin-type", "V",
        "--fluence", "170", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1", "--arm",
        "--duration", "1",
    )  # fmt: skip
    assert done.returncode == ExitStatus.REFUSED, done.stderr
    stderr_sentence(done.stderr, "refused", "settings", "170 J/cm²", "90 J/cm²")
    assert "READY" not in laser_states(sim)
    assert sim.snapshot()["pulses"] == 0


def test_item12_bridge_exits_1_when_arming_is_refused(sim: SimControl, tmp_path: Path) -> None:
    risk = tmp_path / "risk.yaml"
    answers = {q.id: q.id == "pregnancy" for q in load_contraindications().questions}
    risk.write_text(json.dumps({"answers": answers}))  # JSON is YAML too
    done = run_bridge(
        tmp_path, endpoints_file(sim, tmp_path), "--mode", "clinical", "--risk", str(risk),
        "--site", "legs", "--skin-type", "III", *SETTINGS, "--arm", "--duration", "1",
    )  # fmt: skip
    assert done.returncode == ExitStatus.REFUSED, done.stderr
    stderr_sentence(done.stderr, "refused", "risk assessment refuses arming", "pregnancy")
    assert "READY" not in laser_states(sim)


def test_item12_bridge_exits_1_when_a_device_does_not_answer(
    sim: SimControl, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens on it
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    endpoints = {**sim.endpoints, "cooler": {"host": "127.0.0.1", "port": dead_port}}
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(endpoints))
    done = run_bridge(
        tmp_path, path, "--mode", "test", "--skin-type", "III", *SETTINGS, "--arm",
        "--duration", "1",
    )  # fmt: skip
    assert done.returncode == ExitStatus.REFUSED, done.stderr
    stderr_sentence(done.stderr, "refused", "did not answer", "cooler")
    assert "READY" not in laser_states(sim)


def test_item12_bridge_exits_1_after_a_halt_and_0_after_a_clean_session(
    sim: SimControl, tmp_path: Path
) -> None:
    endpoints = endpoints_file(sim, tmp_path)
    argv = ["--mode", "test", "--skin-type", "III", *SETTINGS, "--arm", "--duration", "60"]
    realtime = [a for a in bridge_argv(tmp_path, endpoints) if a != "--no-realtime"]

    def session(halt: bool, db: str) -> subprocess.CompletedProcess[str]:
        since = sim.event_count()
        proc = subprocess.Popen(
            [*realtime, *argv, "--db", str(tmp_path / db)],  # as an operator runs it
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )  # fmt: skip
        try:
            wait_armed(sim, since)
            if halt:
                sim.force_skin(49.0)  # above the 48 °C hard ceiling
                assert sim.wait_event("stop_received", since, timeout_s=5.0) is not None
                sim.release_skin()
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)  # the operator ends the session
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    clean = session(halt=False, db="clean.sqlite3")
    assert clean.returncode == ExitStatus.OK, clean.stderr
    assert "Traceback" not in clean.stderr and "laserguard bridge:" not in clean.stderr

    halted = session(halt=True, db="halted.sqlite3")
    assert halted.returncode == ExitStatus.REFUSED, halted.stderr
    stderr_sentence(halted.stderr, "halted", "skin_temp_high")
