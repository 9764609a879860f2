"""A calibration bench over the simulator: the bundled calibration setup (faster reference
readings), the simulated laser, cooler, sensor, relay and meter on real ptys and sockets, a
real SQLite log, and the run, the status and a treatment session on top of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from device_profiles.loader import LoadedSetup, bundled_dir, parse, with_endpoints
from device_profiles.schema import SkinType
from monitor.calibration.certificate import Certificate
from monitor.calibration.procedure import CalibrationRun, ReferenceSource
from monitor.calibration.rig import CalibrationRig
from monitor.calibration.status import calibration_status
from monitor.core.calibration_status import CalibrationOutcome, CalibrationStatus, utc_now
from monitor.core.session import Session, SessionMode, SessionParams, no_contraindications_declared
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.runner import SimRunner
from tests.device_profiles.meter_setups import edited
from tests.sim.conftest import make_scenario

CAL_TEXT = (bundled_dir() / "demo-ndyag-1064-cal.yaml").read_text(encoding="utf-8")
SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
WHO = "B. Engineer"
#: The test rig's links get slack (issue 11, cal3 item 2): the bundled setup's 30-50 ms
#: timeouts, its 250 ms heartbeat and 200 ms relay watchdog are for a quiet machine beside
#: the laser; on a loaded CI machine a starved simulator missed them, a run was cut short
#: after a few points and a test of its verdict failed for the machine, not the code. The
#: procedure's own lost-link handling is tested with the link really lost (a pulled cable,
#: a dead meter), not with a slow one.
SLACK_EDITS = (
    ("baudrate: 115200, timeout_ms: 50}", "baudrate: 115200, timeout_ms: 400}"),
    ("port: 15020, device_id: 1, timeout_ms: 50}", "port: 15020, device_id: 1, timeout_ms: 400}"),
    ("port: 15021, device_id: 1, timeout_ms: 30}", "port: 15021, device_id: 1, timeout_ms: 400}"),
    ("port: 15022, device_id: 1, timeout_ms: 30}", "port: 15022, device_id: 1, timeout_ms: 400}"),
    ("heartbeat_timeout_ms: 250", "heartbeat_timeout_ms: 1000"),
    ("watchdog_ms: 200", "watchdog_ms: 1000"),
)


def cal_text(
    meter: str = "scpi-style",
    *,
    head_calibrated: str | None = None,
    sample_s: float = 0.2,
    edits: tuple[tuple[str, str], ...] = (),
    slack: bool = True,
) -> str:
    """The bundled calibration setup, with another meter or faster reference readings, and
    (``slack``) the test rig's longer timeouts (``SLACK_EDITS``)."""
    text = CAL_TEXT.replace("sample_s: 2.0", f"sample_s: {sample_s}")
    for old, new in SLACK_EDITS if slack else ():
        text = edited(text, old, new)
    block = f"  device: {meter}\n"
    if head_calibrated is not None:
        block += f"  head_calibrated: {head_calibrated}\n"
    text = edited(text, "  device: scpi-style\n", block)
    for old, new in edits:
        text = edited(text, old, new)
    return text


def cal_setup(meter: str = "scpi-style", base_dir: Path | None = None, **kw: Any) -> LoadedSetup:
    return parse(cal_text(meter, **kw), "calibration-test.yaml", base_dir=base_dir)


class SimReferences:
    """The simulator as the reference thermometer: it holds the skin sensor's reference at
    each temperature; the plate's true temperature is the reference reading."""

    def __init__(self, runner: SimRunner, skin_c: tuple[float, ...] = (30.0, 40.0)) -> None:
        self.runner = runner
        self.skin_c = skin_c

    def reference_c(self, sensor: str, index: int, total: int) -> float:
        del total
        if sensor == "skin_sensor":
            self.runner.hold_skin(self.skin_c[index])
            time.sleep(0.05)
            return self.skin_c[index]
        self.runner.hold_skin(None)
        return float(self.runner.snapshot()["plate_temp_c"])


class Watch:
    """A progress that counts shots and can act at a given shot (a Ctrl-C, a pulled cable)."""

    def __init__(self, at_shot: int | None = None, act: Callable[[], None] | None = None) -> None:
        self.shots = 0
        self.lines: list[str] = []
        self.at_shot = at_shot
        self.act = act
        self.total = 0

    def begin(self, total_shots: int, title: str) -> None:
        self.total = total_shots
        self.lines.append(title)

    def shot(self, label: str) -> None:
        self.shots += 1
        if self.act is not None and self.shots == self.at_shot:
            self.act()

    def say(self, text: str) -> None:
        self.lines.append(text)


def ctrl_c() -> None:
    raise KeyboardInterrupt


def passing_status(laser_id: str = "demo-ndyag-1064-cal") -> CalibrationStatus:
    """A calibration that passed an hour ago and holds 100 more days (typed data, as a front
    end hands it to a session). "Now" is the status's own fixed clock, not the wall's: run
    between midnight and one o'clock, an hour ago would be yesterday, and the daily check is
    judged by the calendar day."""
    now = datetime(2026, 12, 1, 12, 0).astimezone()
    passed = CalibrationOutcome(
        "c" * 32,
        now - timedelta(hours=1),
        True,
        "all points within",
        now.date() + timedelta(days=100),
    )
    return CalibrationStatus(laser_id, 182, 14, True, passed, None, clock=lambda: now)


class CalBench:
    def __init__(self, loaded: LoadedSetup, runner: SimRunner, log: SessionLog) -> None:
        assert loaded.meter is not None
        self.loaded = loaded
        self.runner = runner
        self.log = log
        self.setup = with_endpoints(loaded.setup, runner.endpoints)
        self.sessions: list[Session] = []

    def run(
        self,
        *,
        who: str = WHO,
        daily: bool = False,
        clock: Callable[[], datetime] = utc_now,
        progress: Watch | None = None,
        references: ReferenceSource | str | None = "sim",
        setup_override: Any = None,
    ) -> Certificate:
        assert self.loaded.meter is not None
        setup = setup_override or self.setup
        refs = SimReferences(self.runner) if references == "sim" else references
        assert not isinstance(refs, str)
        rig = CalibrationRig(setup, self.loaded.meter.description)
        try:
            return CalibrationRun(
                self.loaded,
                setup,
                self.log,
                rig,
                who=who,
                daily=daily,
                references=None if daily else refs,
                clock=clock,
                progress=progress or Watch(),
                simulated=True,
            ).run()
        finally:
            rig.close()

    def status(self, clock: Callable[[], datetime] = utc_now) -> CalibrationStatus | None:
        return calibration_status(self.log, self.loaded.setup, accept_simulated=True, clock=clock)

    def session(self, status: CalibrationStatus | None) -> Session:
        params = SessionParams(
            "e2e-operator",
            "PAT-0042",
            SkinType.III,
            no_contraindications_declared(),
            mode=SessionMode.TEST,
            calibration=status,
        )
        session = Session(self.loaded, LogRecorder(self.log), params, setup=self.setup)
        self.sessions.append(session)
        session.start()
        return session

    def sim_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.runner.events() if e["kind"] == kind]

    def close(self) -> None:
        for s in self.sessions:
            s.end("test finished")
        self.runner.stop()
        self.log.close()


OpenCalBench = Callable[..., CalBench]


def cal_benches(tmp_path: Path) -> Iterator[OpenCalBench]:
    """For a fixture: ``open_bench(*events, loaded=..., **scenario_fields)``."""
    made: list[CalBench] = []

    def open_bench(
        *events: dict[str, Any], loaded: LoadedSetup | None = None, **fields: Any
    ) -> CalBench:
        loaded = loaded or cal_setup()
        assert loaded.meter is not None
        n = len(made)
        runner = SimRunner(
            loaded.setup,
            make_scenario(*events, **fields),
            speed=10.0,
            run_dir=tmp_path / f"run{n}",
            meter=loaded.meter.description,
        ).start()
        bench = CalBench(loaded, runner, SessionLog(tmp_path / f"log{n}.sqlite3"))
        made.append(bench)
        return bench

    yield open_bench
    for bench in made:
        bench.close()
