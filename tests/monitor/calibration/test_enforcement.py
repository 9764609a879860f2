"""Issue 11 item 5: arming under the laser's calibration, and its output watched in treatment.

Each test runs the procedure and a treatment session over the same simulator and the same
SQLite log, with the status built from that log (``monitor.calibration.status``), as the
``bridge`` and ``demo`` commands do. Dates come from controlled clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from device_profiles.loader import LoadedSetup
from monitor.calibration.analysis import Verdict
from monitor.core.session import Refused, State
from tests.e2e.conftest import wait_for
from tests.monitor.calibration.bench import (
    SETTINGS,
    CalBench,
    OpenCalBench,
    cal_setup,
    passing_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

DAY1 = datetime(2026, 12, 1, 8, 0).astimezone()


def at(t: datetime) -> Callable[[], datetime]:
    return lambda: t


def arm_refusal(bench_session: object) -> str:
    from monitor.core.session import Session

    assert isinstance(bench_session, Session)
    gate = bench_session.request_settings(SETTINGS)
    assert gate.ok, gate.explain()
    with pytest.raises(Refused) as refused:
        bench_session.arm()
    return str(refused.value)


def test_item5_arming_is_refused_without_a_calibration_on_record(bench: OpenCalBench) -> None:
    rig = bench()
    status = rig.status(at(DAY1))
    assert status is not None and status.last_calibration is None
    session = rig.session(status)
    why = arm_refusal(session)
    assert "no calibration of laser demo-ndyag-1064-cal is on record" in why
    assert session.snapshot().calibration_note is not None
    session.recorder.flush()
    refused = rig.log.events(session.session_id, kinds=["arm_refused"])
    assert refused and "no calibration" in refused[-1].payload["reason"]


def test_item5_arming_is_refused_after_a_failed_calibration(bench: OpenCalBench) -> None:
    rig = bench({"t_s": 0.0, "action": "laser_output_error", "gain": 1.3})
    cert = rig.run(clock=at(DAY1))
    assert cert.verdict is Verdict.FAIL
    why = arm_refusal(rig.session(rig.status(at(DAY1 + timedelta(hours=1)))))
    assert "the last calibration of laser demo-ndyag-1064-cal (2026-12-01" in why
    assert "failed: 8 of 8 points beyond ±20%" in why


def test_item5_arming_is_allowed_after_a_pass(bench: OpenCalBench) -> None:
    rig = bench()
    assert rig.run(clock=at(DAY1)).verdict is Verdict.PASS
    session = rig.session(rig.status(at(DAY1 + timedelta(hours=1))))
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert session.state is State.READY
    assert session.snapshot().calibration_note is None
    meta = rig.log.start_events()[0].payload["meta"]["calibration"]
    assert meta["last_calibration"]["passed"] is True  # the session records what it ran under


def test_item5_arming_is_refused_once_the_calibration_expired(bench: OpenCalBench) -> None:
    rig = bench()
    assert rig.run(clock=at(DAY1)).verdict is Verdict.PASS  # due 2027-06-01 (182 days)
    later = DAY1 + timedelta(days=183)
    why = arm_refusal(rig.session(rig.status(at(later))))
    assert "has expired: it was due 2027-06-01 (interval 182 days), today is 2027-06-02" in why


def test_item5_a_warning_shows_before_the_calibration_expires(bench: OpenCalBench) -> None:
    rig = bench()
    rig.run(clock=at(DAY1))
    rig.run(daily=True, clock=at(DAY1 + timedelta(days=175)))
    session = rig.session(rig.status(at(DAY1 + timedelta(days=175, hours=1))))
    note = session.snapshot().as_dict()["calibration_note"]
    assert note == "calibration of laser demo-ndyag-1064-cal due 2027-06-01 (in 7 days)"
    assert session.request_settings(SETTINGS).ok
    session.arm()  # a warning, not a refusal
    assert session.state is State.READY


def test_item5_a_daily_check_due_blocks_arming_until_done(bench: OpenCalBench) -> None:
    rig = bench()
    assert rig.run(clock=at(DAY1)).verdict is Verdict.PASS
    next_day = DAY1 + timedelta(days=1)
    first = rig.session(rig.status(at(next_day)))
    why = arm_refusal(first)
    assert "daily check of laser demo-ndyag-1064-cal is due: none today (2026-12-02)" in why
    first.end("daily check due")
    # A session is open no longer: the operator runs the daily check.
    daily = rig.run(daily=True, clock=at(next_day + timedelta(minutes=5)))
    assert daily.verdict is Verdict.PASS
    second = rig.session(rig.status(at(next_day + timedelta(minutes=10))))
    assert second.request_settings(SETTINGS).ok
    second.arm()
    assert second.state is State.READY


def test_item5_a_failed_daily_check_blocks_arming(bench: OpenCalBench) -> None:
    rig = bench()
    assert rig.run(clock=at(DAY1)).verdict is Verdict.PASS
    rig.runner.call(lambda: rig.runner.laser.set_output_error(1.3, 0.0, 0.0))  # type: ignore[union-attr]
    next_day = DAY1 + timedelta(days=1)
    assert rig.run(daily=True, clock=at(next_day)).verdict is Verdict.FAIL
    why = arm_refusal(rig.session(rig.status(at(next_day + timedelta(minutes=1)))))
    assert "today's daily check of laser demo-ndyag-1064-cal (2026-12-02" in why and "failed" in why


def test_item5_a_setup_with_a_policy_and_no_status_refuses_to_arm(bench: OpenCalBench) -> None:
    why = arm_refusal(bench().session(None))
    assert "requires a calibration, and this session was given no calibration status" in why


def test_item5_a_status_for_another_laser_refuses_to_arm(bench: OpenCalBench) -> None:
    why = arm_refusal(bench().session(passing_status("another-laser")))
    assert "is for laser another-laser, not this session's laser demo-ndyag-1064-cal" in why


def test_item5_a_drifting_laser_halts_in_treatment(bench: OpenCalBench) -> None:
    # 6 % more per pulse: 0, +6, +12, +18 % are within ±20 %; the fifth (+24 %) is not.
    rig = bench(
        {"t_s": 0.0, "action": "laser_output_error", "drift_per_shot": 0.06},
        {"t_s": 0.5, "action": "trigger", "pressed": True},
    )
    session = rig.session(passing_status())
    assert session.request_settings(SETTINGS).ok
    session.arm()
    wait_for(lambda: session.state is State.HALTED, 20.0, "the drift halt")
    trip = session.trips[0]
    assert trip.check == "delivered_energy_drift"
    assert "+24%" in trip.reason and "beyond ±20%" in trip.reason
    assert "21 CFR 1040.11(a)" in trip.reason
    wait_for(lambda: not rig.runner.snapshot()["relay_closed"], 2.0, "the relay to open")
    pulses = [e for e in rig.sim_events("pulse") if not e.get("service")]
    assert len(pulses) == 5  # halted on the first pulse out of tolerance
    session.recorder.flush()
    (drift,) = rig.log.events(session.session_id, kinds=["delivered_energy_drift"])
    assert drift.payload["ratio"] == pytest.approx(1.24, abs=1e-3)
    # Acknowledged, the session still refuses to arm: the laser needs recalibrating.
    rig.runner.call(lambda: rig.runner.world.__setattr__("trigger_pressed", False))  # type: ignore[union-attr]
    time.sleep(0.2)
    session.acknowledge("B. Engineer", "output drift seen; laser taken out of use")
    with pytest.raises(Refused, match="its output has drifted; recalibrate"):
        session.arm()


# --- cal3 item 1: a certificate counts only under the setup's policy, laser and identity ------


def _run_under(rig: CalBench, loaded: LoadedSetup) -> Verdict:
    """A calibration run under another copy of the setup (same name), over the same sim."""
    original = rig.loaded
    rig.loaded = loaded
    try:
        return rig.run(clock=at(DAY1)).verdict
    finally:
        rig.loaded = original


def test_item5_a_pass_under_an_edited_policy_of_the_same_name_does_not_count(
    bench: OpenCalBench,
) -> None:
    rig = bench()
    # One spot, low energies, a skin sensor allowed 5 degC off: an easy pass, same name.
    easy = cal_setup(
        edits=(
            ("spot_sizes_mm: [2.0, 3.0]", "spot_sizes_mm: [3.0]"),
            ("energies_j: [0.5, 1.0, 1.5, 2.0]", "energies_j: [0.5, 1.0]"),
            (
                "skin_sensor: {points: 2, tolerance_c: 0.5",
                "skin_sensor: {points: 2, tolerance_c: 5",
            ),
        )
    )
    assert easy.setup.name == rig.loaded.setup.name
    assert _run_under(rig, easy) is Verdict.PASS
    why = arm_refusal(rig.session(rig.status(at(DAY1 + timedelta(hours=1)))))
    assert why.startswith("the last calibration of laser demo-ndyag-1064-cal (2026-12-01")
    assert "was made under another calibration policy" in why


def test_item5_a_pass_under_another_laser_description_does_not_count(bench: OpenCalBench) -> None:
    rig = bench()
    other = cal_setup(edits=(("(serial command set v1)", "(serial command set v2)"),))
    assert _run_under(rig, other) is Verdict.PASS
    why = arm_refusal(rig.session(rig.status(at(DAY1 + timedelta(hours=1)))))
    assert "was made under another laser description" in why


def test_item5_an_unrelated_edit_keeps_the_calibration(bench: OpenCalBench) -> None:
    # An alarm's hysteresis is not what the meter measured: the calibration still holds.
    rig = bench()
    edited_alarm = cal_setup(edits=(("hysteresis_c: 0.5", "hysteresis_c: 0.6"),))
    assert edited_alarm.digest != rig.loaded.digest
    assert _run_under(rig, edited_alarm) is Verdict.PASS
    session = rig.session(rig.status(at(DAY1 + timedelta(hours=1))))
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert session.state is State.READY


def test_item5_a_pass_made_on_another_laser_of_the_same_name_does_not_count(
    bench: OpenCalBench,
) -> None:
    rig = bench()
    cert = rig.run(clock=at(DAY1))
    assert cert.verdict is Verdict.PASS
    assert cert.laser_identity == "ID NDYAG-1064 SN000123"
    # Another physical laser (same model, same setup) now answers on the port.
    rig.runner.call(lambda: setattr(rig.runner.laser, "serial", "SN000999"))
    session = rig.session(rig.status(at(DAY1 + timedelta(hours=1))))
    # What the operator sees (the snapshot's note does not depend on the session's state: a
    # loaded machine may have halted the session on a stale sensor before it is asked).
    snap = session.snapshot()
    assert snap.calibration_note is not None and snap.calibration_blocks_arming is True
    assert "was made on another laser ('ID NDYAG-1064 SN000123')" in snap.calibration_note
    assert "this one answers 'ID NDYAG-1064 SN000999'" in snap.calibration_note
    assert session.request_settings(SETTINGS).ok
    with pytest.raises(Refused):
        session.arm()


def test_item5_the_snapshot_says_whether_the_calibration_blocks_arming(
    bench: OpenCalBench,
) -> None:
    # For the console's badge: a field, not a guess from the note's words.
    rig = bench()
    blocked = rig.session(rig.status(at(DAY1))).snapshot().as_dict()
    assert blocked["calibration_note"] and blocked["calibration_blocks_arming"] is True
    rig.sessions[-1].end("next")
    rig.run(clock=at(DAY1))
    rig.run(daily=True, clock=at(DAY1 + timedelta(days=175)))
    warned = rig.session(rig.status(at(DAY1 + timedelta(days=175, hours=1)))).snapshot()
    assert warned.calibration_note is not None and "due 2027-06-01" in warned.calibration_note
    assert warned.calibration_blocks_arming is False


def test_item5_a_setup_asking_for_an_in_line_meter_in_treatment_is_refused_at_load() -> None:
    # Not built yet: a setup asking for it must not load as if its output were watched.
    from device_profiles.loader import ProfileError, parse
    from tests.monitor.calibration.bench import cal_text

    text = cal_text() + "\ninline_meter:\n  device: ophir-style\n  port: /dev/ttyUSB3\n"
    with pytest.raises(ProfileError) as refused:
        parse(text, "inline.yaml")
    assert "inline_meter: watching delivered energy in treatment with an in-line energy" in str(
        refused.value
    )
