"""The simulated laser over its pty, as the bridge drives it with pyserial."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from device_profiles.schema import ModbusCoilOutput, Setup
from sim.runner import SimRunner
from tests.sim.conftest import Keepalive, LaserPort, make_scenario, modbus, wait_until

RunSim = Callable[..., SimRunner]
OpenPort = Callable[[SimRunner], LaserPort]


def coil(setup: Setup) -> int:
    assert isinstance(setup.interlock_output, ModbusCoilOutput)
    return setup.interlock_output.coil


def test_every_reply_matches_the_profile(setup: Setup, run_sim: RunSim, laser_port: OpenPort):
    proto = setup.laser.protocol
    runner = run_sim(make_scenario({"t_s": 0.0, "action": "trigger", "pressed": True}))
    laser = laser_port(runner)
    status, err = proto.status.reply, proto.error_reply
    setters = [(f"SET {w} {v}", proto.set[s].reply) for w, s, v in [
        ("F", "fluence_j_cm2", "120"), ("PW", "pulse_ms", "30"), ("SPOT", "spot_mm", "3"),
        ("RATE", "rep_rate_hz", "1")]]  # fmt: skip
    dialogue: list[tuple[str, str]] = [
        ("STATUS?", status),
        *setters,
        ("SET F 1e400", err),
        ("SET F abc", err),
        ("SET F -5", err),
        ("ARM", err),  # no heartbeat, relay open
        ("FIRE", err),
        ("HB", proto.heartbeat.reply),
        ("STANDBY", proto.standby.reply),
    ]
    replies = [(cmd, laser.command(cmd), pattern) for cmd, pattern in dialogue]
    with Keepalive(laser, runner.endpoints["interlock"], coil(setup)):
        replies.append(("ARM", laser.command("ARM"), proto.arm.reply))
        wait_until(lambda: laser.status()["state"] == "FIRING", 1.0)
        wait_until(lambda: int(laser.status()["pulses"]) > 0, 1.0)
        replies.append(("STATUS?", laser.command("STATUS?"), status))
        replies.append(("SET F 100", laser.command("SET F 100"), err))
        replies.append(("STOP", laser.command("STOP"), proto.stop.reply))
        replies.append(("STATUS?", laser.command("STATUS?"), status))
    for cmd, reply, pattern in replies:
        assert re.fullmatch(pattern, reply), f"{cmd!r} -> {reply!r} does not match {pattern!r}"
    states = {re.sub(r"STATUS (\w+) .*", r"\1", r) for _, r, p in replies if p == status}
    assert states == {"STANDBY", "FIRING"}
    errors = {r for _, r, p in replies if p == err}
    assert errors == {
        "ERR BAD VALUE",
        "ERR INTERLOCK OPEN",
        "ERR UNKNOWN COMMAND",
        "ERR NOT IN STANDBY",
    }


def test_arm_needs_heartbeat_and_closed_interlock(
    setup: Setup, run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(make_scenario())
    laser = laser_port(runner)
    relay = modbus(runner.endpoints["interlock"])
    try:
        assert relay.write_coil(coil(setup), True, device_id=1).bits[0] is True
        assert laser.command("ARM") == "ERR NO HEARTBEAT"
        assert relay.write_coil(coil(setup), False, device_id=1).bits[0] is False
        assert laser.command("HB") == "OK HB"
        assert laser.command("ARM") == "ERR INTERLOCK OPEN"
        assert laser.status()["state"] == "STANDBY"
    finally:
        relay.close()


def test_pulses_only_while_ready_triggered_and_permitted(
    setup: Setup, run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(make_scenario({"t_s": 0.2, "action": "trigger", "pressed": True}))
    laser = laser_port(runner)
    assert laser.command("SET RATE 5") == "OK RATE=5.00"
    with Keepalive(laser, runner.endpoints["interlock"], coil(setup)) as bridge:
        time.sleep(0.1)  # trigger held, laser in STANDBY: 1 s simulated
        assert laser.status() == {"state": "STANDBY", "pulses": "0", "f": "60.0", "rate": "5.00"}
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: int(laser.status()["pulses"]) >= 3, 2.0)
        bridge.relay_permit = False  # the interlock loop opens
        wait_until(lambda: laser.status()["state"] == "STANDBY", 1.0)
        held = laser.status()["pulses"]
        time.sleep(0.1)
        assert laser.status()["pulses"] == held
        assert laser.command("ARM") == "ERR INTERLOCK OPEN"
        bridge.relay_permit = True
        wait_until(lambda: laser.command("ARM") == "OK READY", 1.0)
        wait_until(lambda: int(laser.status()["pulses"]) > int(held), 1.0)
        assert laser.command("STOP") == "OK STOPPED"
        stopped = laser.status()
        time.sleep(0.15)
        assert laser.status() == stopped
        assert stopped["state"] == "STANDBY"
    pulses = [e for e in runner.events() if e["kind"] == "pulse"]
    assert len(pulses) == int(stopped["pulses"])
    assert all(e["settings"]["rep_rate_hz"] == 5.0 for e in pulses)


def test_heartbeat_loss_drops_to_standby_in_time(
    setup: Setup, run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(make_scenario({"t_s": 0.0, "action": "trigger", "pressed": True}))
    laser = laser_port(runner)
    with Keepalive(laser, runner.endpoints["interlock"], coil(setup)) as bridge:
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: laser.status()["state"] == "FIRING", 1.0)
        bridge.heartbeat = False
        time.sleep(0.05)
        last_heartbeat = bridge.last_heartbeat_wall
        wait_until(lambda: laser.status()["state"] == "STANDBY", 1.0)
        assert laser.command("ARM") == "ERR NO HEARTBEAT"
    (lost,) = [e for e in runner.events() if e["kind"] == "heartbeat_lost"]
    (drop,) = [e for e in runner.events() if e["kind"] == "state" and e["to"] == "STANDBY"]
    assert drop["why"] == "heartbeat lost"
    assert lost["silent_ms"] > setup.laser.heartbeat_timeout_ms
    assert drop["t_wall"] - last_heartbeat < (setup.laser.heartbeat_timeout_ms + 100) / 1000


def test_panel_knob_changes_the_status_reply(run_sim: RunSim, laser_port: OpenPort) -> None:
    runner = run_sim(
        make_scenario({"t_s": 1.0, "action": "panel_set", "setting": "fluence_j_cm2", "value": 260})
    )
    laser = laser_port(runner)
    assert laser.command("SET F 120") == "OK F=120.0"
    wait_until(lambda: laser.status()["f"] == "260.0", 1.0)
    assert laser.status()["state"] == "STANDBY"
    assert any(e["kind"] == "scenario" and e["action"] == "panel_set" for e in runner.events())


def test_item2_a_laser_that_lies_about_stop_keeps_firing(
    setup: Setup, run_sim: RunSim, laser_port: OpenPort
) -> None:
    """The hostile laser the halt path is tested against: "OK STOPPED", and still FIRING;
    its stuck interlock input keeps it reporting FIRING when the relay opens, but the relay
    still cuts the beam."""
    runner = run_sim(
        make_scenario(
            {"t_s": 0.0, "action": "trigger", "pressed": True},
            {
                "t_s": 0.0,
                "action": "laser_stop_fault",
                "stop_reply": "lie",
                "ignores_interlock": True,
            },
        )
    )
    laser = laser_port(runner)
    with Keepalive(laser, runner.endpoints["interlock"], coil(setup)) as bridge:
        assert laser.command("ARM") == "OK READY"
        wait_until(lambda: int(laser.status()["pulses"]) >= 2, 2.0)
        assert laser.command("STOP") == "OK STOPPED"
        assert laser.status()["state"] == "FIRING"
        bridge.relay_permit = False
        wait_until(lambda: not runner.snapshot()["relay_closed"], 1.0)
        held = laser.status()["pulses"]
        time.sleep(0.15)  # 1.5 simulated seconds at 1 Hz
        assert laser.status() == {**laser.status(), "state": "FIRING", "pulses": held}
    assert [e["fault"] for e in runner.events() if e["kind"] == "stop_received"] == ["lie"]


def test_item2_a_laser_that_never_answers_stop_answers_everything_else(
    run_sim: RunSim, laser_port: OpenPort
) -> None:
    runner = run_sim(
        make_scenario({"t_s": 0.0, "action": "laser_stop_fault", "stop_reply": "none"})
    )
    laser = laser_port(runner)
    laser.port.timeout = 0.2
    laser.port.write(b"STOP\r\n")
    assert laser.port.readline() == b""  # no reply at all
    assert laser.command("HB") == "OK HB"
    assert laser.status()["state"] == "STANDBY"
    runner.call(lambda: runner.laser.break_stop(None) if runner.laser else None)
    assert laser.command("STOP") == "OK STOPPED"  # repaired
