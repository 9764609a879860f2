"""Issue 8 item 1: the demo starts the simulator through ``sim.control`` (one launcher), and
its report keeps its shape. A real simulator process, real pty and sockets, real SQLite."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from device_profiles.loader import load
from device_profiles.schema import SkinType
from monitor.cli import demo
from sim.control import SimControl, SimSpec

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
REPORT_KEYS = {
    "session_id", "scenario", "profile", "profile_digest", "skin_type", "halted", "trips",
    "halts_requested", "warnings", "pulses_fired", "pulses_after_halt", "pulses_out_of_limits",
    "out_of_limit_pulses", "end_standby_failed", "view_failures", "log_failed",
    "max_skin_temp_c", "halt_latency_ms", "skin_temp_limit_c", "loop_lateness_ms",
    "final_state", "gate", "run_dir", "db", "incidents",
}  # fmt: skip


def real_time_allowed() -> bool:
    """Whether this user may run a thread at SCHED_FIFO (tried on a thread of its own)."""
    got: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            got.append(True)
        except PermissionError:
            got.append(False)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return got == [True]


def test_item1_the_demo_starts_the_simulator_through_sim_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[SimSpec] = []
    policies: list[int] = []

    class Recorded(SimControl):
        def start(self) -> SimControl:
            started.append(self.spec)
            out = super().start()
            assert self.pid is not None
            policies.append(os.sched_getscheduler(self.pid))
            return out

    monkeypatch.setattr(demo, "SimControl", Recorded)
    run_dir = tmp_path / "run"
    result = demo.run_demo(
        load("demo-ndyag-1064"), "normal", SETTINGS, SkinType.III,
        db_path=tmp_path / "demo.sqlite3", run_dir=run_dir, duration_s=3.0, speed=3.0,
    )  # fmt: skip
    (spec,) = started
    assert (spec.scenario, spec.speed, spec.run_dir) == ("normal", 3.0, str(run_dir))
    # The simulated devices stand for hardware with processors of their own: real-time where
    # the bridge is (a busy PC starved them at normal priority and the bridge halted on their
    # silence before anyone could arm).
    assert spec.realtime is True
    assert policies == [os.SCHED_FIFO if real_time_allowed() else os.SCHED_OTHER]
    # The simulator's output is in the run's folder, not in the demo's terminal.
    assert spec.log_file == str(run_dir / "sim.log") and (run_dir / "sim.log").exists()
    assert set(result) == REPORT_KEYS
    assert result["final_state"] == "ENDED" and not result["halted"]
    assert result["pulses_fired"] >= 1  # the report read the simulator's events file
