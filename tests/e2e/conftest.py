"""End-to-end fixtures: the simulator on a real pty and real Modbus TCP sockets, the real
bridge and interlock, and a real SQLite session log. Nothing here is mocked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device_profiles.loader import LoadedSetup, load, with_endpoints
from device_profiles.schema import SkinType
from monitor.core.risk import RiskOutcome
from monitor.core.session import Session, SessionMode, SessionParams, no_contraindications_declared
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.runner import SimRunner
from sim.scenario import Scenario, load_scenario

SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}


@pytest.fixture(scope="session")
def loaded() -> LoadedSetup:
    return load("demo-ndyag-1064")


def wait_for(cond: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Rig:
    """A simulator and a session against it, torn down in order."""

    def __init__(self, loaded: LoadedSetup, tmp: Path) -> None:
        self.loaded = loaded
        self.tmp = tmp
        self.sim: SimRunner | None = None
        self.session: Session | None = None
        self.log = SessionLog(tmp / "log.sqlite3")

    def start(
        self,
        scenario: str | Scenario,
        *,
        speed: float = 1.0,
        skin_type: SkinType = SkinType.III,
        risk: RiskOutcome | None = None,
        realtime: bool = False,
    ) -> Session:
        sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.sim = SimRunner(self.loaded.setup, sc, speed=speed, run_dir=self.tmp / "sim").start()
        setup = with_endpoints(self.loaded.setup, self.sim.endpoints)
        params = SessionParams(
            "e2e-operator",
            "PAT-0042",
            skin_type,
            risk or no_contraindications_declared(),
            mode=SessionMode.TEST,
        )
        self.session = Session(
            self.loaded, LogRecorder(self.log), params, setup=setup, realtime=realtime
        )
        self.session.start()
        return self.session

    def sim_events(self, kind: str) -> list[dict[str, Any]]:
        assert self.sim is not None
        return [e for e in self.sim.events() if e["kind"] == kind]

    def logged(self, kind: str) -> list[Any]:
        assert self.session is not None
        self.session.recorder.flush()
        return self.log.events(self.session.session_id, kinds=[kind])

    def close(self) -> None:
        if self.session is not None:
            self.session.end("test finished")
        if self.sim is not None:
            self.sim.stop()
        self.log.close()


@pytest.fixture
def rig(loaded: LoadedSetup, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(loaded, tmp_path)
    try:
        yield r
    finally:
        r.close()
