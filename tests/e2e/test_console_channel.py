"""Issue 9 item 1: a treatment driven over the control channel (a real Unix socket) against a
real session on the simulator, with the cooling-failure scenario: what an operator notices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup
from monitor.control.client import ControlClient, ControlError
from monitor.control.protocol import (
    ApplySettings,
    Arm,
    EmergencyHalt,
    EndSession,
    ProposeSettings,
    Reset,
    SessionInfoCmd,
    Settings,
)
from tests.e2e.conftest import SETTINGS, wait_for
from tests.e2e.console_rig import ChannelRig, wait_snapshot

pytestmark = pytest.mark.e2e


class _Rig(ChannelRig):
    """The channel in the session's process, or in a process of its own (as ``serve``)."""

    channel_process = False

    def start(self, scenario: str, **kw: object) -> ControlClient:
        return super().start(scenario, channel_process=self.channel_process, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=[False, True], ids=["channel-in-process", "channel-process"])
def rig(
    loaded: LoadedSetup, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ChannelRig]:
    r = _Rig(loaded, tmp_path)
    r.channel_process = request.param
    try:
        yield r
    finally:
        r.close()


def state(client: ControlClient) -> str | None:
    snap = client.latest
    return None if snap is None or snap.session is None else snap.session.state


def alarm(client: ControlClient, check: str) -> dict[str, object] | None:
    snap = client.latest
    assert snap is not None
    return next((a.model_dump() for a in snap.alarms if a.check == check), None)


@pytest.mark.timeout(120)
def test_item1_cooling_failure_over_the_channel_halt_reset_one_condition_end(
    rig: ChannelRig,
) -> None:
    client = rig.start("cooling-failure", speed=2.0)
    info = rig.start_session(client)
    sid = str(info["session_id"])
    assert info["skin_type"] == "III" and info["limits_for_skin_type"], info
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "STANDBY", 3, "STANDBY"
    )

    # The gate's verdict first, with its words; it changes nothing.
    verdict = client.call(
        ProposeSettings(settings=Settings(**{**SETTINGS, "fluence_j_cm2": 900.0}))
    )
    assert verdict["ok"] is False and "fluence" in str(verdict["explanation"])
    assert rig.host is not None and rig.host.session is not None
    assert rig.host.session.approved is None
    with pytest.raises(ControlError, match="do not pass the gate") as refused:
        client.call(
            ApplySettings(who="op.jo", settings=Settings(**{**SETTINGS, "fluence_j_cm2": 900.0}))
        )
    assert refused.value.kind == "refused"
    assert rig.host.session.approved is None

    client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
    client.call(Arm(who="op.jo"))
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "READY", 3, "READY"
    )

    # The chiller fails at 5 s (simulated); with the settings requiring epidermal cooling the
    # plate leaving its band halts at once (issue 12): HALTED, a high-priority latched alarm.
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "HALTED", 40, "the halt"
    )
    wait_for(lambda: alarm(client, "cooler_plate_high"), 3, "the cooler_plate_high alarm")
    plate = alarm(client, "cooler_plate_high")
    assert plate is not None and plate["priority"] == "high" and plate["latched"] is True

    # A second cause, held present: its reset is refused and nothing changes.
    assert rig.sim is not None
    rig.sim.force_skin(49.0)
    wait_for(lambda: (a := alarm(client, "skin_temp_high")) and a["active"], 3, "the cause active")
    high = alarm(client, "skin_temp_high")
    assert high is not None and high["priority"] == "high" and high["latched"] is True
    with pytest.raises(ControlError, match="still present") as still:
        client.call(Reset(who="op.jo", condition="skin_temp_high", reason="skin cooled"))
    assert still.value.kind == "refused"
    assert state(client) == "HALTED"

    # The cause clears; the reset, with a reason, releases only its own alarm. The chiller
    # is still failed: its alarm cannot be reset while the plate is warm, the laser stays
    # HALTED, and arming is refused.
    rig.sim.release_skin()
    wait_for(
        lambda: (a := alarm(client, "skin_temp_high")) and not a["active"], 10, "the cause clear"
    )
    first = client.call(
        Reset(who="op.jo", condition="skin_temp_high", reason="skin cooled, compress")
    )
    assert first["released"] is False and first["still_latched"] == ["cooler_plate_high"]
    with pytest.raises(ControlError, match="still present"):
        client.call(Reset(who="op.jo", condition="cooler_plate_high", reason="try anyway"))
    assert state(client) == "HALTED" and rig.host.session.bridge.permit is False
    with pytest.raises(ControlError, match="arming needs STANDBY"):
        client.call(Arm(who="op.jo"))

    summary = client.call(EndSession(who="op.jo", reason="cooling failed"))
    assert summary["session_id"] == sid and summary["state"] == "ENDED"
    aftercare = summary["aftercare"]
    assert isinstance(aftercare, dict) and "+00" in str(aftercare["emergency_contact"])
    with pytest.raises(ControlError) as none:
        client.call(SessionInfoCmd())
    assert none.value.kind == "no_session"

    # The log has it all, with who did what.
    kinds = [e.kind for e in rig.log_events(sid)]
    assert "trip" in kinds and "console_alarm_reset" in kinds
    refused_resets = rig.log_events(sid, ["console_reset_refused"])
    assert refused_resets and refused_resets[0].payload["by"] == "op.jo"
    commands = [e.payload for e in rig.log_events(sid, ["console_command"])]
    assert {"arm", "apply_settings", "reset", "end_session"} <= {c["command"] for c in commands}
    assert all(c["by"] == "op.jo" for c in commands if c["command"] != "propose_settings")
    reset = rig.log_events(sid, ["console_alarm_reset"])[0].payload
    assert reset["by"] == "op.jo" and reset["reason"] == "skin cooled, compress"


@pytest.mark.timeout(90)
def test_item3_resetting_one_alarm_never_resets_another_behind_it(rig: ChannelRig) -> None:
    client = rig.start("normal")
    rig.armed(client)
    client.call(EmergencyHalt(who="op.jo", reason="patient moved"))
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "HALTED", 3, "HALTED"
    )
    assert rig.sim is not None
    rig.sim.force_skin(49.0)  # a second condition behind the first
    wait_for(lambda: alarm(client, "skin_temp_high"), 3, "the second alarm")
    rig.sim.release_skin()
    wait_for(lambda: not (alarm(client, "skin_temp_high") or {}).get("active", True), 10, "clear")

    first = client.call(Reset(who="op.jo", condition="emergency_halt", reason="patient settled"))
    assert first["released"] is False and first["still_latched"] == ["skin_temp_high"]
    assert state(client) == "HALTED"
    wait_for(lambda: alarm(client, "emergency_halt") is None, 2, "the first alarm gone")
    behind = alarm(client, "skin_temp_high")
    assert behind is not None and behind["latched"] is True

    # Resetting what is not latched is refused with the list of what is.
    with pytest.raises(ControlError, match="not a latched alarm"):
        client.call(Reset(who="op.jo", condition="emergency_halt", reason="again"))

    second = client.call(Reset(who="op.jo", condition="skin_temp_high", reason="checked the skin"))
    assert second["released"] is True and second["state"] == "STANDBY"

    # A condition that comes back is a new alarm: it needs a new reset. (Wait for a snapshot
    # taken after the reset first: the newest one received may still show the old halt.)
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "STANDBY", 3, "STANDBY"
    )
    rig.sim.force_skin(49.0)
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "HALTED", 3, "again"
    )
    rig.sim.release_skin()
    wait_for(lambda: not (alarm(client, "skin_temp_high") or {}).get("active", True), 10, "clear")
    back = alarm(client, "skin_temp_high")
    assert back is not None and back["latched"] is True
    with pytest.raises(ControlError, match="arming needs STANDBY"):
        client.call(Arm(who="op.jo"))


@pytest.mark.timeout(90)
def test_item5_a_console_session_arms_only_under_the_calibration_its_log_holds(
    tmp_path: Path,
) -> None:
    """Issue 11 through the console: a setup with a calibration policy, and a log with no
    calibration in it. The console's session is given the status the log holds (as
    `laserguard serve` gives it), and arming is refused with the reason."""
    from device_profiles.loader import load
    from monitor.calibration.status import calibration_status
    from monitor.record.recorder import LogRecorder

    loaded = load("demo-ndyag-1064-cal")

    def status(recorder: object) -> object:
        assert isinstance(recorder, LogRecorder)
        return calibration_status(recorder.log, loaded.setup, accept_simulated=True)

    r = ChannelRig(loaded, tmp_path)
    try:
        client = r.start("normal", calibration_for=status)  # type: ignore[arg-type]
        r.start_session(client)
        client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
        with pytest.raises(
            ControlError, match=r"no calibration of laser .* is on record"
        ) as refused:
            client.call(Arm(who="op.jo"))
        assert refused.value.kind == "refused"
        assert state(client) != "READY"
        # The console's badge: a field that says the calibration blocks arming (not a
        # guess from the note's words).
        session = wait_for(
            lambda: (snap := client.latest) is not None and snap.session,
            3,
            "a snapshot of the session",
        )
        extra = session.model_dump()
        assert "is on record" in str(extra["calibration_note"])
        assert extra["calibration_blocks_arming"] is True
    finally:
        r.close()
