"""The runner as the bridge and a person see it: endpoints, event log, speed, clean stop."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from device_profiles.loader import with_endpoints
from device_profiles.schema import Setup
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.sim.conftest import make_scenario, wait_until

RunSim = Callable[..., SimRunner]


def test_speed_10_runs_ten_simulated_seconds_per_second(run_sim: RunSim) -> None:
    runner = run_sim(make_scenario(), speed=10.0)
    t0, wall0 = runner.snapshot()["sim_time_s"], time.monotonic()
    time.sleep(1.0)
    t1, wall1 = runner.snapshot()["sim_time_s"], time.monotonic()
    assert (t1 - t0) / (wall1 - wall0) == pytest.approx(10.0, rel=0.05)


def test_endpoints_file_is_what_the_bridge_needs(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(make_scenario())
    written = json.loads((runner.run_dir / "endpoints.json").read_text())
    assert written == runner.endpoints
    assert Path(written["laser"]).exists()
    reached = with_endpoints(setup, written)
    assert reached.laser.transport.port == written["laser"]
    assert reached.sensor.transport.model_dump()["port"] == written["sensor"]["port"]
    assert reached.limits == setup.limits


def test_fixed_ports_are_used(setup: Setup, run_sim: RunSim) -> None:
    first = run_sim(make_scenario())
    ports = {k: first.endpoints[k]["port"] for k in ("cooler", "sensor", "interlock")}
    first.stop()
    second = run_sim(make_scenario(), ports=ports)
    assert {k: second.endpoints[k]["port"] for k in ports} == ports


def test_events_are_logged_one_json_line_each(run_sim: RunSim) -> None:
    runner = run_sim(load_scenario("cooling-failure"), speed=50.0)
    wait_until(lambda: runner.snapshot()["sim_time_s"] > 5.5, 2.0)
    runner.stop()
    runner.stop()  # twice is fine
    lines = (runner.run_dir / "sim_events.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert logged == runner.events()
    assert all({"t_wall", "t_sim_s", "kind"} <= set(e) for e in logged)
    applied = [e["action"] for e in logged if e["kind"] == "scenario"]
    assert applied == ["trigger", "cooler_failure"]
    with pytest.raises(RuntimeError, match="not running"):
        runner.snapshot()


def test_snapshot_shows_the_state(run_sim: RunSim) -> None:
    snap = run_sim(make_scenario()).snapshot()
    assert snap["state"] == "STANDBY" and snap["pulses"] == 0 and snap["relay_closed"] is False
    assert snap["plate_temp_c"] == pytest.approx(5.0)
    assert snap["skin_temp_c"] == pytest.approx(10.8)
