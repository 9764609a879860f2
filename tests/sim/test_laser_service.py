"""Issue 11 item 1: the simulated laser's service mode and output error, and the meter in
the simulator's world (scenarios, endpoints, the simulator in its own process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_profiles.loader import load, load_meter
from device_profiles.schema import ModbusCoilOutput, Setup
from firmware_bridge.meter import EnergyMeterDriver, meter_transport
from sim.control import SimControl, SimSpec
from sim.laser import spot_area_cm2
from sim.runner import SimRunner
from sim.scenario import ScenarioError, load_scenario, parse_scenario
from tests.device_profiles.meter_setups import meter_block, setup_text
from tests.sim.conftest import Keepalive, LaserPort, make_scenario, modbus, wait_until
from tests.sim.meter_rig import OpenBench, benches

RunSim = Callable[..., SimRunner]
OpenPort = Callable[[SimRunner], LaserPort]


@pytest.fixture(scope="session")
def setup() -> Setup:
    """A laser whose profile lists a service mode: the simulator serves only the commands
    its profile describes (issue 14 item 5), and the demo laser's profile has none."""
    return load("demo-ndyag-1064-cal").setup


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[OpenBench]:
    yield from benches(tmp_path)


@pytest.fixture
def setup_coil(setup: Setup) -> int:
    assert isinstance(setup.interlock_output, ModbusCoilOutput)
    return setup.interlock_output.coil


# --- service mode -----------------------------------------------------------------------------


def test_item1_a_service_shot_needs_service_mode_a_closed_loop_and_a_heartbeat(
    setup_coil: int, run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(make_scenario())
    laser = laser_port(runner)
    assert laser.command("SERVICE SHOT") == "ERR NOT IN SERVICE MODE"
    assert laser.command("SERVICE ON") == "OK SERVICE ON"
    assert laser.command("SERVICE SHOT") == "ERR INTERLOCK OPEN"
    relay = modbus(runner.endpoints["interlock"])
    try:
        relay.write_coil(setup_coil, True, device_id=1)
        assert laser.command("SERVICE SHOT") == "ERR NO HEARTBEAT"
    finally:
        relay.close()
    assert laser.status()["pulses"] == "0"
    assert not [e for e in runner.events() if e["kind"] == "pulse"]


def test_item1_a_service_shot_goes_into_the_meter_not_the_skin(bench: OpenBench) -> None:
    rig = bench("ophir-style")
    rig.set_fluence(20.0)
    skin_before = rig.runner.snapshot()["skin_temp_c"]
    rig.service()
    rig.shots(3)
    snap = rig.runner.snapshot()
    assert snap["state"] == "STANDBY" and snap["pulses"] == 3
    assert snap["skin_temp_c"] == pytest.approx(skin_before, abs=1e-6)
    pulses = [e for e in rig.runner.events() if e["kind"] == "pulse"]
    assert [p["service"] for p in pulses] == [True] * 3
    assert "skin_temp_c" not in pulses[0]
    assert pulses[0]["set_j"] == pytest.approx(20.0 * spot_area_cm2(3.0))


def test_item1_service_mode_blocks_arming_and_needs_standby(bench: OpenBench) -> None:
    rig = bench("ophir-style")
    rig.service()
    assert rig.laser.command("ARM") == "ERR SERVICE MODE"
    assert rig.laser.command("SERVICE OFF") == "OK SERVICE OFF"
    assert rig.laser.command("ARM") == "OK READY"
    assert rig.laser.command("SERVICE ON") == "ERR NOT IN STANDBY"
    assert rig.laser.command("SERVICE SHOT") == "ERR NOT IN SERVICE MODE"


@pytest.mark.parametrize("command", ["STOP", "STANDBY"])
def test_item1_stop_and_standby_end_service_mode(bench: OpenBench, command: str) -> None:
    rig = bench("ophir-style")
    rig.service()
    assert rig.laser.command(command).startswith("OK ")
    assert rig.laser.command("SERVICE SHOT") == "ERR NOT IN SERVICE MODE"


def test_item1_a_lost_heartbeat_ends_service_mode(bench: OpenBench) -> None:
    rig = bench("ophir-style")
    rig.service()
    since = rig.runner.event_count()
    rig.keepalive.heartbeat = False
    event = rig.runner.wait_event("service_mode", since, timeout_s=2.0)
    assert event is not None and event["on"] is False and event["why"] == "heartbeat lost"
    rig.keepalive.heartbeat = True
    time.sleep(0.1)
    assert rig.laser.command("SERVICE SHOT") == "ERR NOT IN SERVICE MODE"


# --- output error in treatment --------------------------------------------------------------


def test_item1_a_hot_laser_delivers_more_to_the_skin_too(
    setup_coil: int, run_sim: RunSim, laser_port: OpenPort
) -> None:
    """Treatment pulses carry the output error: the skin gets 1.3 x the set fluence."""
    runner = run_sim(
        make_scenario(
            {"t_s": 0.0, "action": "laser_output_error", "gain": 1.3},
            {"t_s": 0.0, "action": "trigger", "pressed": True},
        )
    )
    laser = laser_port(runner)
    assert laser.command("SET F 100") == "OK F=100.0"
    with Keepalive(laser, runner.endpoints["interlock"], setup_coil):
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: int(laser.status()["pulses"]) >= 2, 2.0)
        assert laser.command("STOP") == "OK STOPPED"
    pulses = [e for e in runner.events() if e["kind"] == "pulse"]
    set_j = 100.0 * spot_area_cm2(3.0)
    assert pulses and all(p["delivered_j"] == pytest.approx(1.3 * set_j) for p in pulses)


def test_item1_without_an_output_error_the_skin_gets_the_set_fluence_exactly(
    setup_coil: int, run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(make_scenario({"t_s": 0.0, "action": "trigger", "pressed": True}))
    laser = laser_port(runner)
    with Keepalive(laser, runner.endpoints["interlock"], setup_coil):
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: int(laser.status()["pulses"]) >= 1, 2.0)
        assert laser.command("STOP") == "OK STOPPED"
    (first, *_) = [e for e in runner.events() if e["kind"] == "pulse"]
    assert first["delivered_j"] == 60.0 * spot_area_cm2(3.0)  # power-on fluence, 3 mm


# --- scenarios ----------------------------------------------------------------------------------

GOOD = """
name: x
description: y
skin_type: III
settings: {fluence_j_cm2: 120, pulse_ms: 30, spot_mm: 3, rep_rate_hz: 1}
seed: 1
"""


def test_item1_bundled_output_error_scenarios_load() -> None:
    (high,) = load_scenario("laser-output-high").events
    assert high.model_dump(exclude_none=True) == {  # "on": None, an event at a time
        "t_s": 0.0, "action": "laser_output_error", "gain": 1.3, "offset_j": 0.0,
        "drift_per_shot": 0.0,
    }  # fmt: skip
    drift = load_scenario("laser-output-drift").events[0]
    assert drift.model_dump()["drift_per_shot"] == 0.01


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("events: [{t_s: 0, action: laser_output_error, gain: 0}]", "laser_output_error.gain"),
        ("events: [{t_s: 0, action: laser_output_error, drift_per_shot: 0.5}]", "drift_per_shot"),
        ("events: [{t_s: 0, action: laser_output_error, offset_j: 1000}]", "offset_j"),
        ("events: [{t_s: 0, action: laser_output_error, gian: 1.3}]", "gian"),
        ("meter: {noise_rms_fraction: -0.01}", "meter.noise_rms_fraction"),
        ("meter: {head_calibrated: 2020-02-30}", "meter.head_calibrated"),
        ("meter: {wrong_wavelength_factor: 0}", "meter.wrong_wavelength_factor"),
    ],
)
def test_item1_an_invalid_output_error_or_meter_is_refused_naming_the_field(
    text: str, field: str
) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        parse_scenario(GOOD + text)


# --- the simulator in its own process -------------------------------------------------------


def test_item1_sim_control_starts_the_setups_meter(tmp_path: Path) -> None:
    (tmp_path / "bench-meter.yaml").write_text(
        (Path(load_meter("scpi-style").source)).read_text(encoding="utf-8"), encoding="utf-8"
    )
    setup = tmp_path / "bench.yaml"
    setup.write_text(setup_text(meter_block("bench-meter.yaml", None)), encoding="utf-8")
    spec = SimSpec(run_dir=str(tmp_path / "run"), setup=str(setup), scenario="laser-output-high")
    with SimControl(spec) as sim:
        desc = load_meter("scpi-style").description
        with EnergyMeterDriver(desc, meter_transport(desc, sim.endpoints["meter"])) as meter:
            assert meter.identify().model == "SIM-METER"
            assert meter.set_wavelength(1064.0) == 1064.0


def test_item1_an_impossible_date_in_a_scenario_is_text_not_a_traceback() -> None:
    """PyYAML's YAML 1.1 reader turned `2020-02-30` into a date and raised ValueError (a
    traceback for `laserguard sim`); scenarios are read as YAML 1.2 now, like setups."""
    scenario = parse_scenario(GOOD.replace("description: y", "description: 2020-02-30"))
    assert scenario.description == "2020-02-30"
