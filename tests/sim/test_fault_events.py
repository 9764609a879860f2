"""Issue 13 item 4: every fault as scenario data, at a time or on an event, over the real wires.

The simulator runs on real sockets and a real pty; these tests play the bridge's side with a
bare pymodbus client and pyserial, so each fault is seen as a bridge would see it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse

from device_profiles.loader import load
from device_profiles.schema import ModbusCoilOutput, Setup
from sim.runner import SimRunner
from sim.scenario import ScenarioError, parse_scenario
from tests.sim.conftest import (
    BASE_SCENARIO,
    Keepalive,
    LaserPort,
    make_scenario,
    modbus,
    wait_until,
)

RunSim = Callable[..., SimRunner]


def read_block(setup: Setup, runner: SimRunner, device: str, timeout: float = 1.0) -> Any:
    profile = {"sensor": setup.sensor, "cooler": setup.cooler}.get(device) or setup.sensor2
    assert profile is not None
    client = modbus(runner.endpoints[device], timeout=timeout)
    try:
        first, count = profile.read_span
        return client.read_holding_registers(first, count=count, device_id=1)
    finally:
        client.close()


def skin(setup: Setup, runner: SimRunner, device: str = "sensor") -> float:
    rr = read_block(setup, runner, device)
    assert not rr.isError(), rr
    reg = setup.sensor.registers["skin_temp_c"]
    return reg.value_of(rr.registers[reg.address])


def counter(setup: Setup, runner: SimRunner) -> int:
    rr = read_block(setup, runner, "sensor")
    return int(rr.registers[setup.sensor.registers["sample_counter"].address])


def events(runner: SimRunner, kind: str) -> list[dict[str, Any]]:
    return [e for e in runner.events() if e["kind"] == kind]


def sim_time_past(runner: SimRunner, t_s: float) -> None:
    wait_until(lambda: runner.snapshot()["sim_time_s"] > t_s, 5.0)


# --- when: a time or an event ----------------------------------------------------------------


def test_issue13_item4_an_event_waits_for_its_trigger_and_its_delay(
    setup: Setup, run_sim: RunSim, laser_port: Callable[[SimRunner], LaserPort]
) -> None:
    """The sensor freezes 0.5 s after the second pulse, whenever that comes."""
    runner = run_sim(
        make_scenario(
            {"on": {"event": "relay_closed"}, "action": "trigger", "pressed": True},
            {"on": {"event": "pulse", "count": 2, "delay_s": 0.5}, "action": "sensor_freeze"},
        ),
        speed=10.0,
    )
    laser = laser_port(runner)
    out = setup.interlock_output
    assert isinstance(out, ModbusCoilOutput)
    time.sleep(0.3)  # nothing fires before the relay closes, however long that takes
    assert not events(runner, "pulse") and not events(runner, "scenario")
    with Keepalive(laser, runner.endpoints["interlock"], out.coil):
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: len(events(runner, "pulse")) >= 3, 5.0)
    pulses = events(runner, "pulse")
    (freeze,) = [e for e in events(runner, "scenario") if e["action"] == "sensor_freeze"]
    assert freeze["t_sim_s"] == pytest.approx(pulses[1]["t_sim_s"] + 0.5, abs=1e-6)
    assert freeze["on"] == {"event": "pulse", "count": 2, "delay_s": 0.5}


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ("{action: sensor_freeze}", "give exactly one of t_s"),
        ("{t_s: 1, on: {event: pulse}, action: sensor_freeze}", "give exactly one of t_s"),
        ("{on: {event: dinner}, action: sensor_freeze}", "events.0.sensor_freeze.on.event"),
        ("{t_s: 1, action: modbus_exception, device: sensor, exception_code: 9}", "exception_code"),
        ("{t_s: 1, action: host_fault, fault: bridge_stall}", "stall_ms goes with"),
        ("{t_s: 1, action: link_lost, device: printer}", "link_lost.device"),
    ],
)
def test_issue13_item4_a_malformed_fault_is_refused_naming_the_field(
    event: str, words: str
) -> None:
    text = "\n".join(f"{k}: {v}" for k, v in BASE_SCENARIO.items() if k != "events")
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(text.replace("'", "") + f"\nevents:\n  - {event}\n")


# --- the skin sensors ------------------------------------------------------------------------


def test_issue13_item4_a_stuck_sensor_keeps_counting_with_one_value(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(make_scenario({"t_s": 0.5, "action": "sensor_stuck", "value_c": 31.5}))
    sim_time_past(runner, 0.6)
    values, counts = [], []
    for _ in range(5):
        values.append(skin(setup, runner))
        counts.append(counter(setup, runner))
        time.sleep(0.01)
    assert values == [31.5] * 5
    assert len(set(counts)) == 5  # the counter still moves: only the value is stuck


def test_issue13_item4_a_sensor_drifts_low_while_the_skin_does_not(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario({"t_s": 0.0, "action": "sensor_drift", "rate_c_per_s": -1.0}),
        speed=20.0,
        sensor_noise_sd_c=0.0,
    )
    sim_time_past(runner, 5.0)
    t_sim = runner.snapshot()["sim_time_s"]
    truth = runner.snapshot()["skin_temp_c"]
    assert skin(setup, runner) == pytest.approx(truth - t_sim, abs=0.6)


def test_issue13_item4_noise_and_spikes_reach_the_wire(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(
        make_scenario(
            {
                "t_s": 0.0,
                "action": "sensor_noise",
                "noise_sd_c": 0.0,
                "spike_c": 20.0,
                "spike_probability": 0.5,
            }
        ),
        sensor_noise_sd_c=0.0,
    )
    readings = []
    for _ in range(30):
        readings.append(skin(setup, runner))
        time.sleep(0.004)
    truth = runner.snapshot()["skin_temp_c"]
    spikes = [r for r in readings if r > truth + 10]
    assert 3 <= len(spikes) <= 27
    assert all(r == pytest.approx(truth, abs=0.02) or r > truth + 19 for r in readings)


def test_issue13_item3_a_second_sensor_reads_the_same_skin_with_its_own_faults(
    tmp_path: Any,
) -> None:
    dual = load("demo-ndyag-1064-dual-sensor").setup
    scenario = make_scenario(
        {"t_s": 0.0, "action": "sensor_offset", "sensor": "sensor2", "offset_c": 3.0}
    )
    with SimRunner(dual, scenario, speed=10.0, run_dir=tmp_path, sensor_noise_sd_c=0.0) as runner:
        assert set(runner.endpoints) >= {"sensor", "sensor2"}
        first, second = skin(dual, runner), skin(dual, runner, "sensor2")
    assert second - first == pytest.approx(3.0, abs=0.05)


# --- any device's wire -----------------------------------------------------------------------


def test_issue13_item4_a_device_answers_every_request_with_an_exception(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario(
            {"t_s": 0.0, "action": "modbus_exception", "device": "cooler", "exception_code": 6}
        )
    )
    rr = read_block(setup, runner, "cooler")
    assert isinstance(rr, ExceptionResponse) and rr.exception_code == 6


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_issue13_item4_damaged_replies_never_decode_as_data(
    setup: Setup, run_sim: RunSim, mode: str
) -> None:
    runner = run_sim(
        make_scenario({"t_s": 0.0, "action": "wire_garbage", "device": "sensor", "mode": mode})
    )
    with pytest.raises(ModbusIOException):
        rr = read_block(setup, runner, "sensor", timeout=0.2)
        assert rr.isError(), f"a {mode} reply decoded as {rr}"
        raise ModbusIOException("refused")  # an error reply is what a bridge must get too
    assert events(runner, "wire_damaged")


def test_issue13_item4_a_dropout_is_silence_then_answers_again(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario(
            {"t_s": 0.5, "action": "device_dropout", "device": "sensor", "silent_ms": 400}
        )
    )
    sim_time_past(runner, 0.6)
    with pytest.raises(ModbusIOException):
        read_block(setup, runner, "sensor", timeout=0.1)
    time.sleep(0.4)
    assert not read_block(setup, runner, "sensor").isError()


def test_issue13_item4_a_device_slower_than_the_bridges_timeout(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario({"t_s": 0.0, "action": "device_slow", "device": "sensor", "answer_ms": 500})
    )
    with pytest.raises(ModbusIOException):
        read_block(setup, runner, "sensor", timeout=setup.sensor.transport.timeout_ms / 1000)


def test_issue13_item4_the_cooler_loses_its_link_and_its_flow(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario(
            {"t_s": 0.0, "action": "cooler_flow_loss", "to_l_min": 0.0, "tau_s": 0.5},
            {"t_s": 3.0, "action": "link_lost", "device": "cooler"},
        ),
        speed=10.0,
    )
    rr = read_block(setup, runner, "cooler")
    flow = setup.cooler.registers["flow_l_min"]
    wait_until(
        lambda: flow.value_of(read_block(setup, runner, "cooler").registers[flow.address]) < 0.5,
        2.0,
    )
    assert events(runner, "cooler_out_of_band_served")
    sim_time_past(runner, 3.1)
    with pytest.raises(ModbusIOException):
        read_block(setup, runner, "cooler", timeout=0.1)
    del rr


def test_issue13_item4_the_plate_runs_away_cold(setup: Setup, run_sim: RunSim) -> None:
    runner = run_sim(
        make_scenario({"t_s": 0.0, "action": "plate_runaway", "to_c": -20.0, "tau_s": 1.0}),
        speed=20.0,
    )
    wait_until(lambda: runner.snapshot()["plate_temp_c"] < -15.0, 3.0)
    wait_until(lambda: runner.snapshot()["skin_temp_c"] < 2.0, 3.0)  # the skin follows it


# --- the laser and its interlock -------------------------------------------------------------


def test_issue13_item4_the_laser_link_goes_quiet_and_the_laser_stops_itself(
    setup: Setup, run_sim: RunSim, laser_port: Callable[[SimRunner], LaserPort]
) -> None:
    runner = run_sim(make_scenario({"t_s": 3.0, "action": "link_lost", "device": "laser"}))
    laser = laser_port(runner)
    out = setup.interlock_output
    assert isinstance(out, ModbusCoilOutput)
    keep = Keepalive(laser, runner.endpoints["interlock"], out.coil)
    keep.heartbeat = False  # the keepalive's own heartbeats would block on the silent line
    with keep:
        assert laser.command("HB") == "OK HB"
        assert laser.command("ARM") == "OK READY"
        sim_time_past(runner, 3.1)
        laser.port.write(b"STATUS?\r\n")
        assert laser.port.readline() == b""  # nothing comes back (1 s timeout)
        wait_until(lambda: runner.snapshot()["state"] == "STANDBY", 2.0)
    assert events(runner, "heartbeat_lost")


def test_issue13_item4_a_welded_relay_acknowledges_and_stays_closed(
    setup: Setup, run_sim: RunSim
) -> None:
    out = setup.interlock_output
    assert isinstance(out, ModbusCoilOutput)
    runner = run_sim(make_scenario({"t_s": 0.0, "action": "relay_stuck_closed"}))
    client = modbus(runner.endpoints["interlock"])
    try:
        assert not client.write_coil(out.coil, True, device_id=1).isError()
        wait_until(lambda: runner.snapshot()["relay_closed"], 1.0)
        opened = client.write_coil(out.coil, False, device_id=1)
        assert not opened.isError()  # acknowledged,
        assert opened.bits[0] is False  # echoing what was written (the coil, not the contact)
        assert client.read_coils(out.coil, count=1, device_id=1).bits[0] is False
        time.sleep(0.4)  # and the watchdog cannot open it either
    finally:
        client.close()
    assert runner.snapshot()["relay_closed"] is True
    assert len(events(runner, "relay_stuck")) == 1  # once per command to open, not per tick


def test_issue13_item4_the_laser_arms_from_its_panel_with_the_relay_open(
    setup: Setup, run_sim: RunSim, laser_port: Callable[[SimRunner], LaserPort]
) -> None:
    runner = run_sim(make_scenario({"t_s": 0.5, "action": "laser_panel_arm"}))
    laser = laser_port(runner)
    assert laser.command("HB") == "OK HB"
    sim_time_past(runner, 0.6)
    assert laser.status()["state"] == "READY"
    assert runner.snapshot()["relay_closed"] is False


# --- announced for the harness; the ground truth ---------------------------------------------


def test_issue13_item4_host_faults_are_announced_not_acted_on(
    setup: Setup, run_sim: RunSim
) -> None:
    runner = run_sim(
        make_scenario(
            {"t_s": 0.2, "action": "host_fault", "fault": "bridge_stall", "stall_ms": 300},
            {"t_s": 0.3, "action": "operator", "do": "standby"},
        )
    )
    sim_time_past(runner, 0.4)
    announced = events(runner, "harness")
    assert [e["action"] for e in announced] == ["host_fault", "operator"]
    assert announced[0]["fault"] == "bridge_stall" and announced[0]["stall_ms"] == 300
    assert not events(runner, "scenario")


def test_issue13_item4_the_ground_truth_dose_grows_only_with_a_hot_skin(
    setup: Setup, run_sim: RunSim
) -> None:
    cool = run_sim(make_scenario(), speed=50.0)
    hot = run_sim(
        make_scenario({"t_s": 0.0, "action": "skin_heat_load", "rise_c": 50.0}), speed=50.0
    )
    sim_time_past(hot, 30.0)
    sim_time_past(cool, 30.0)
    hot_snap, cool_snap = hot.snapshot(), cool.snapshot()
    assert hot_snap["peak_skin_temp_c"] > 55.0
    assert hot_snap["skin_omega"] > 0.53  # half a minute at ~60 °C: a burn
    assert cool_snap["skin_omega"] < 1e-10 and math.isfinite(cool_snap["skin_log_omega"])
    assert hot_snap["skin_cem43_min"] > cool_snap["skin_cem43_min"]
