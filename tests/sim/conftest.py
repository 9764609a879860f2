"""Helpers that play the bridge's side of the wires: pyserial on the pty, sync Modbus TCP."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from pymodbus.client import ModbusTcpClient

from device_profiles.loader import load
from device_profiles.schema import Setup
from sim.runner import SimRunner
from sim.scenario import Scenario

BASE_SCENARIO: dict[str, Any] = {
    "name": "test",
    "description": "test scenario",
    "skin_type": "III",
    "settings": {"fluence_j_cm2": 120, "pulse_ms": 30, "spot_mm": 3, "rep_rate_hz": 1},
    "seed": 7,
    "events": [],
}


def make_scenario(*events: dict[str, Any], **fields: Any) -> Scenario:
    return Scenario.model_validate({**BASE_SCENARIO, **fields, "events": list(events)})


@pytest.fixture(scope="session")
def setup() -> Setup:
    return load("demo-ndyag-1064").setup


class LaserPort:
    """The laser's serial port as the bridge sees it; one command at a time."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, timeout=1.0)
        self.lock = threading.Lock()

    def command(self, line: str) -> str:
        with self.lock:
            self.port.write(line.encode() + b"\r\n")
            reply = self.port.readline()
        assert reply.endswith(b"\r\n"), f"no terminated reply to {line!r}: {reply!r}"
        return reply.decode("ascii")[:-2]

    def status(self) -> dict[str, str]:
        reply = self.command("STATUS?")
        match = re.fullmatch(
            r"STATUS (?P<state>\w+) PULSES=(?P<pulses>\d+) F=(?P<f>\S+) PW=\S+ SPOT=\S+ "
            r"RATE=(?P<rate>\S+)(?: E=(?P<delivered_j>\S+))?",  # E=: the laser reports energy
            reply,
        )
        assert match, reply
        return {k: v for k, v in match.groupdict().items() if v is not None}

    def close(self) -> None:
        self.port.close()


def modbus(endpoint: dict[str, Any], timeout: float = 1.0) -> ModbusTcpClient:
    client = ModbusTcpClient(endpoint["host"], port=endpoint["port"], timeout=timeout, retries=0)
    assert client.connect()
    return client


class Keepalive:
    """What a healthy bridge does in the background: heartbeat the laser, refresh the relay."""

    def __init__(self, laser: LaserPort, relay_endpoint: dict[str, Any], coil: int) -> None:
        self.laser = laser
        self.relay = modbus(relay_endpoint)
        self.coil = coil
        self.heartbeat = True
        self.relay_permit = True
        self.last_heartbeat_wall = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.heartbeat:
                assert self.laser.command("HB") == "OK HB"
                self.last_heartbeat_wall = time.time()
            self.relay.write_coil(self.coil, self.relay_permit, device_id=1)
            self._stop.wait(0.03)

    def __enter__(self) -> Keepalive:
        self._thread.start()
        time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.relay.close()


@pytest.fixture
def run_sim(setup: Setup, tmp_path: Path) -> Iterator[Callable[..., SimRunner]]:
    """Start a simulator; everything it opened is closed after the test."""
    runners: list[SimRunner] = []

    def start(scenario: Scenario, speed: float = 10.0, **kwargs: Any) -> SimRunner:
        runner = SimRunner(
            setup, scenario, speed=speed, run_dir=tmp_path / f"run{len(runners)}", **kwargs
        )
        runners.append(runner)
        return runner.start()

    yield start
    for runner in runners:
        runner.stop()


@pytest.fixture
def laser_port() -> Iterator[Callable[[SimRunner], LaserPort]]:
    ports: list[LaserPort] = []

    def open_port(runner: SimRunner) -> LaserPort:
        port = LaserPort(runner.endpoints["laser"])
        ports.append(port)
        return port

    yield open_port
    for port in ports:
        port.close()


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.005) -> float:
    """Seconds it took for ``predicate`` to hold; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(poll)
    return time.monotonic() - start
