"""Issue 9's gap, the treatment site at session start, over the control channel (a real Unix
socket) against a real session on the simulator and a real SQLite log: a clinical session is
started from the console only with its site; the questionnaire is judged for that site; a
periorbital session arms only after someone confirmed the eye shields, as the CLI asks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import LoadedSetup
from monitor.control.client import ControlClient, ControlError
from monitor.control.protocol import (
    ApplySettings,
    Arm,
    ConfirmEyeShields,
    EndSession,
    ProtocolStep,
    Settings,
)
from monitor.core.records import SessionMode
from monitor.record.sqlite_store import SessionLog
from tests.e2e.conftest import SETTINGS, wait_for
from tests.e2e.console_rig import ChannelRig, all_no, wait_snapshot
from tests.e2e.test_clinical_treatment import with_periorbital_rows

pytestmark = pytest.mark.e2e


@pytest.fixture
def rig(loaded: LoadedSetup, tmp_path: Path) -> Iterator[ChannelRig]:
    r = ChannelRig(loaded, tmp_path)
    try:
        yield r
    finally:
        r.close()


def sessions_in(rig: ChannelRig) -> int:
    if not rig.db.is_file():
        return 0
    with SessionLog(rig.db, read_only=True) as log:
        return len(log.sessions())


def standby(client: ControlClient) -> None:
    """Every link fresh: the session is in STANDBY (what arming needs)."""
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "STANDBY", 10, "STANDBY"
    )


def ready(client: ControlClient) -> None:
    wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "READY", 5, "READY"
    )


@pytest.mark.timeout(90)
def test_item1_clinical_session_from_the_console_needs_its_site_then_arms(rig: ChannelRig) -> None:
    client = rig.start("normal", mode=SessionMode.CLINICAL)
    with pytest.raises(ControlError) as refused:
        rig.start_session(client)
    assert refused.value.kind == "refused"
    message = str(refused.value)
    assert "states the treatment site" in message and "periorbital" in message
    assert "\n" not in message  # one sentence, no traceback
    assert sessions_in(rig) == 0  # refused before anything was recorded

    info = rig.start_session(client, site=TreatmentSite.LEGS)
    assert info["site"] == "legs" and info["site_stated"] is True
    assert info["mode"] == "clinical" and info["eye_shields_needed"] is False
    standby(client)
    client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
    client.call(Arm(who="op.jo"))
    ready(client)
    (start,) = rig.log_events(str(info["session_id"]), ["session_start"])
    assert start.payload["meta"]["treatment"]["site"] == "legs"
    assert start.payload["meta"]["treatment"]["site_stated"] is True


@pytest.mark.timeout(90)
def test_item1_the_questionnaire_is_judged_for_the_site_and_the_laser(rig: ChannelRig) -> None:
    """Venous reflux concerns the legs only: on the face it is recorded as not applicable and
    arming stays allowed; on the legs the same answers forbid arming (before this, the console
    judged every answer at its strictest: the face was refused too)."""
    client = rig.start("normal")
    answers = {**all_no(), "venous_reflux_signs": True}
    legs = rig.start_session(client, answers=answers, site=TreatmentSite.LEGS)
    risk = legs["risk"]
    assert isinstance(risk, dict) and risk["arming_allowed"] is False
    assert "venous_reflux_signs" in risk["absolute"]
    client.call(EndSession(who="op.jo", reason="not on the legs"))
    info = rig.start_session(client, answers=answers, site=TreatmentSite.FACE)
    risk = info["risk"]
    assert isinstance(risk, dict)
    assert risk["site"] == "face" and risk["wavelength_nm"] == 1064.0
    assert "venous_reflux_signs" in risk["not_applicable"]
    assert risk["arming_allowed"] is True


@pytest.mark.timeout(90)
def test_item1_periorbital_from_the_console_arms_only_after_the_eye_shields(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    rig = ChannelRig(with_periorbital_rows(loaded), tmp_path)
    try:
        client = rig.start("normal", mode=SessionMode.CLINICAL)
        info = rig.start_session(client, site=TreatmentSite.PERIORBITAL)
        assert info["eye_shields_needed"] is True and info["eye_shields_confirmed_by"] is None
        standby(client)
        client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
        with pytest.raises(ControlError, match="eye shields") as refused:
            client.call(Arm(who="op.jo"))
        assert refused.value.kind == "refused"
        done = client.call(ConfirmEyeShields(who="nurse.kim"))
        assert done["eye_shields_confirmed_by"] == "nurse.kim"
        client.call(Arm(who="op.jo"))
        ready(client)
        sid = str(info["session_id"])
        (confirmed,) = wait_for(
            lambda: rig.log_events(sid, ["eye_shields_confirmed"]), 5, "the confirmation logged"
        )
        assert confirmed.payload["by"] == "nurse.kim" and confirmed.payload["site"] == "periorbital"
    finally:
        rig.close()


@pytest.mark.timeout(120)
def test_item2_protocol_steps_over_the_channel_are_logged_once_in_order_with_who(
    rig: ChannelRig,
) -> None:
    """The checklist of a halt's protocol, ticked over the channel (a cause whose protocol
    opens no draft, or before the draft exists): in the session's log, once per step."""
    client = rig.start("cooling-failure", speed=2.0)
    info = rig.start_session(client)
    sid = str(info["session_id"])
    standby(client)
    client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
    client.call(Arm(who="op.jo"))
    with pytest.raises(ControlError, match="has not halted on cooler_plate_high"):
        client.call(ProtocolStep(who="op.jo", check="cooler_plate_high", step=1))
    wait_snapshot(
        client,
        lambda s: (
            s.session is not None and any(t.check == "cooler_plate_high" for t in s.session.trips)
        ),
        60,
        "the cooling-failure halt",
    )
    for step, who in ((2, "op.jo"), (1, "nurse.kim")):
        done = client.call(ProtocolStep(who=who, check="cooler_plate_high", step=step))
        assert done["protocol_id"] == "burn_or_blister"
    with pytest.raises(ControlError, match="ticked already") as again:
        client.call(ProtocolStep(who="op.jo", check="cooler_plate_high", step=2))
    assert again.value.kind == "refused"
    with pytest.raises(ControlError, match="steps 1 to"):
        client.call(ProtocolStep(who="op.jo", check="cooler_plate_high", step=60))
    logged = wait_for(
        lambda: (lambda e: e if len(e) == 2 else None)(
            rig.log_events(sid, ["console_protocol_step"])
        ),
        5,
        "both steps logged",
    )
    assert [(e.payload["step"], e.payload["by"]) for e in logged] == [
        (2, "op.jo"),
        (1, "nurse.kim"),
    ]
    assert logged[0].payload["text"] and logged[0].payload["protocol_id"] == "burn_or_blister"
