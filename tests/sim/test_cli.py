"""The ``sim`` command as a person runs it: endpoints first, clean stop on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "sim.cli", "sim", "--speed", "5",
         "--run-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        endpoints = json.loads(proc.stdout.readline()) if proc.stdout else {}
        assert set(endpoints) == {"laser", "cooler", "sensor", "interlock"}
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err == ""
    assert json.loads((tmp_path / "endpoints.json").read_text()) == endpoints
    assert json.loads((tmp_path / "sim_events.jsonl").read_text().splitlines()[-1])["kind"] == (
        "stopped"
    )


def test_cli_runs_for_a_duration(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "sim.cli", "sim", "--speed", "20",
         "--duration", "4", "--scenario", "normal", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "laser STANDBY" in done.stdout.splitlines()[-1]


def test_cli_refuses_an_unknown_scenario(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "sim", "--scenario", "nope", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 2
    assert "nope" in done.stderr


def test_cli_serves_the_sensor_over_rtu_framing(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "sim.cli", "sim", "--sensor-rtu",
         "--run-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        endpoints = json.loads(proc.stdout.readline()) if proc.stdout else {}
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert endpoints["sensor"]["kind"] == "modbus_rtu"
    assert endpoints["sensor"]["port"].startswith("socket://127.0.0.1:")
    assert "host" in endpoints["cooler"]
