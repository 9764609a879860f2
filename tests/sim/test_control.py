"""The simulator driven from another process, and the sensor's forced values and RTU framing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient

from device_profiles.schema import Setup
from sim.control import SimControl, SimControlError, SimSpec
from sim.runner import SimRunner
from tests.sim.conftest import make_scenario, modbus

RunSim = Callable[..., SimRunner]


def read_skin(setup: Setup, client: object) -> float:
    first, count = setup.sensor.read_span
    reply = client.read_holding_registers(first, count=count, device_id=1)  # type: ignore[attr-defined]
    assert not reply.isError(), reply
    reg = setup.sensor.registers["skin_temp_c"]
    return reg.value_of(reply.registers[reg.address - first])


def test_forced_skin_is_served_then_released(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(make_scenario(), sensor_noise_sd_c=0.0)
    client = modbus(runner.endpoints["sensor"])
    try:
        model = read_skin(setup, client)
        runner.force_skin(45.5)
        assert read_skin(setup, client) == pytest.approx(45.5)
        runner.release_skin()
        assert read_skin(setup, client) == pytest.approx(model, abs=0.05)
    finally:
        client.close()
    kinds = [e["kind"] for e in runner.events()]
    assert kinds.count("skin_forced") == 1 and kinds.count("skin_released") == 1


def test_each_crossing_is_recorded_once(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(make_scenario(), sensor_noise_sd_c=0.0)
    client = modbus(runner.endpoints["sensor"])
    try:
        for _ in range(3):
            runner.force_skin(setup.limits.skin_temp_c.high + 1.0)
            read_skin(setup, client)
            read_skin(setup, client)  # still over: the same crossing
            runner.release_skin()
            read_skin(setup, client)  # back inside: the next crossing counts again
    finally:
        client.close()
    crossings = [e for e in runner.events() if e["kind"] == "over_limit_served"]
    forced = [e for e in runner.events() if e["kind"] == "skin_forced"]
    assert len(crossings) == 3
    assert all(f["t_wall"] <= c["t_wall"] for f, c in zip(forced, crossings, strict=True))


def test_wait_event_returns_the_first_match_or_none(run_sim: RunSim) -> None:
    runner = run_sim(make_scenario())
    since = runner.event_count()
    assert runner.wait_event("skin_forced", since, 0.05) is None
    runner.force_skin(30.0)
    event = runner.wait_event("skin_forced", since, 1.0)
    assert event is not None and event["value"] == 30.0
    assert [e["kind"] for e in runner.events_since(since)] == ["skin_forced"]


def test_sensor_speaks_rtu_on_its_socket(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(make_scenario(), sensor_noise_sd_c=0.0, sensor_framing="rtu")
    endpoint = runner.endpoints["sensor"]
    assert endpoint["kind"] == "modbus_rtu" and endpoint["port"].startswith("socket://")
    client = ModbusSerialClient(endpoint["port"], baudrate=115200, timeout=1.0, retries=0)
    assert client.connect()
    try:
        runner.force_skin(41.25)
        assert read_skin(setup, client) == pytest.approx(41.25)
    finally:
        client.close()


def test_control_runs_the_simulator_in_another_process(tmp_path: Path) -> None:
    with SimControl(SimSpec(run_dir=str(tmp_path / "sim"), speed=5.0)) as sim:
        assert sim.pid is not None
        assert set(sim.endpoints) == {"laser", "cooler", "sensor", "interlock"}
        since = sim.event_count()
        t_forced = sim.force_skin(50.0)
        event = sim.wait_event("skin_forced", since, 2.0)
        assert event is not None and event["t_wall"] == t_forced
        assert sim.snapshot()["state"] == "STANDBY"
        with pytest.raises(SimControlError, match="unknown simulator request"):
            sim.request("nope")
        sim.release_skin()  # still answering after a refused request
    sim.stop()  # twice is fine
    assert (tmp_path / "sim" / "sim_events.jsonl").read_text().splitlines()


def test_control_reports_a_simulator_that_cannot_start(tmp_path: Path) -> None:
    spec = SimSpec(run_dir=str(tmp_path / "sim"), scenario="no-such-scenario")
    with pytest.raises(SimControlError, match="no-such-scenario"):
        SimControl(spec).start()


def test_item1_the_simulator_child_leads_its_own_group_and_ignores_sigint(tmp_path: Path) -> None:
    """A Ctrl-C in the terminal (SIGINT to the foreground group) must not end the devices
    before the parent has put the laser in STANDBY: only the parent stops the child."""
    with SimControl(SimSpec(run_dir=str(tmp_path / "sim"), speed=5.0)) as sim:
        assert sim.pid is not None
        assert os.getpgid(sim.pid) == sim.pid != os.getpgid(0)
        os.kill(sim.pid, signal.SIGINT)
        time.sleep(0.2)
        assert sim.snapshot()["state"] == "STANDBY"  # still running, still answering
    assert sim.events()[-1]["kind"] == "stopped"  # stopped by the parent, cleanly


def test_item1_the_childs_output_goes_to_its_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "out" / "sim.log"
    spec = SimSpec(
        run_dir=str(tmp_path / "sim"), scenario="no-such-scenario", log_file=str(log_file)
    )
    with pytest.raises(SimControlError, match="no-such-scenario"):
        SimControl(spec).start()
    assert log_file.exists()


def test_item1_events_leave_out_a_line_still_being_written(tmp_path: Path) -> None:
    spec = SimSpec(run_dir=str(tmp_path))
    sim = SimControl(spec)
    assert sim.events() == []
    spec.events_file.write_text('{"kind": "started"}\n{"kind": "pul', encoding="utf-8")
    assert sim.events() == [{"kind": "started"}]


def test_item1_a_killed_simulator_leaves_its_events_readable(tmp_path: Path) -> None:
    with SimControl(SimSpec(run_dir=str(tmp_path / "sim"), speed=5.0)) as sim:
        sim.kill()
        with pytest.raises(SimControlError):
            sim.snapshot()
        assert sim.events()[0]["kind"] == "started"
        assert "stopped" not in [e["kind"] for e in sim.events()]  # no clean stop: killed
