"""Test-spot mode over real wires: a relative contraindication allows a stated number of
single pulses, then the laser is paused until a clinician ends the pause."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, load_contraindications, with_endpoints
from device_profiles.schema import SkinType
from monitor.core.risk import Attestation, RiskOutcome, assess
from monitor.core.session import Refused, Session, SessionMode, SessionParams, State
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = pytest.mark.e2e

#: Test-spot settings under the anticoagulants restriction (fluence ×0.85, ≤ 0.5 Hz).
TEST_SPOT = {**SETTINGS, "fluence_j_cm2": 100.0, "rep_rate_hz": 0.5}


def attested(condition: str) -> RiskOutcome:
    answers = {q.id: q.id == condition for q in load_contraindications().questions}
    attestation = Attestation("Dr. Vega", "reviewed; test spots first", frozenset({condition}))
    return assess(answers, attestation)


def stated_test_spots(condition: str) -> int:
    """How many test spots the bundled questions allow for ``condition`` (from the data)."""
    (q,) = [q for q in load_contraindications().questions if q.id == condition]
    n = q.restrictions.model_dump().get("test_spot_pulses")
    assert isinstance(n, int), f"{condition} states no number of test spots"
    return n


#: Halts a loaded test machine causes now and then (a late sample, a timeout). None comes
#: from test-spot mode; a person would acknowledge one and go on, and so do these tests.
LOAD_TRIPS = {
    f"{dev}_{kind}"
    for dev in ("sensor", "cooler", "laser", "interlock")
    for kind in ("link", "stale")
} | {"interlock_loop", "reaction_time_exceeded"}  # the last: answers slowed by a busy machine


def own_trips(session: Session) -> list[str]:
    """The trips that are not a loaded machine's."""
    return [t.check for t in session.trips if t.check not in LOAD_TRIPS]


def acknowledge_load_trips(session: Session) -> None:
    if session.state is State.HALTED and not own_trips(session):
        wait_for(lambda: not session.loop.halt_conditions_active(), 5, "the cause to clear")
        session.acknowledge("nurse-1", "link checked")


def sim_pulses(rig: Rig) -> int:
    assert rig.sim is not None
    return int(rig.sim.snapshot()["pulses"])


@pytest.mark.timeout(60)
def test_item14_test_spots_only_fires_the_stated_pulses_then_pauses_until_a_clinician_ends_it(
    rig: Rig,
) -> None:
    allowed = stated_test_spots("anticoagulants")
    # "normal": the footswitch goes down at 2 s and stays down; at 0.5 Hz a pulse every 2 s.
    session = rig.start("normal", speed=4.0, risk=attested("anticoagulants"))
    assert session.request_settings(TEST_SPOT).ok
    session.arm()
    wait_for(lambda: rig.logged("test_spots_done"), 20, "the last test spot")
    wait_for(lambda: rig.logged("test_spot_pause"), 5, "the laser paused")
    assert rig.sim is not None
    sim: SimRunner = rig.sim
    # Long enough for three more pulses, had the laser kept firing at 0.5 Hz.
    since = sim.event_count()
    wait_for(lambda: sim.snapshot()["sim_time_s"] > 2.0 + 2.0 * (allowed + 3), 20, "time")
    assert sim_pulses(rig) == allowed
    assert not [e for e in sim.events_since(since) if e["kind"] == "pulse"]
    snap = rig.sim.snapshot()
    assert snap["state"] == "STANDBY" and snap["relay_closed"] is False
    # A pause, not a fault: no trip, no alarm to acknowledge.
    assert own_trips(session) == []
    acknowledge_load_trips(session)
    assert session.state is State.STANDBY
    with pytest.raises(Refused, match=rf"test spots done \({allowed} of {allowed}\).*clinician"):
        session.arm()
    assert rig.logged("arm_refused")
    with pytest.raises(Refused, match="name and a reason"):
        session.end_test_spot_pause("Dr. Vega", "  ")
    session.end_test_spot_pause("Dr. Vega", "test sites reviewed after 15 min: no purpura")
    (ended,) = rig.logged("test_spot_pause_ended")
    assert ended.payload["by"] == "Dr. Vega" and "no purpura" in ended.payload["reason"]
    assert ended.payload["fired"] == allowed
    # The treatment goes on under the same tightened limits.
    acknowledge_load_trips(session)
    session.arm()
    wait_for(lambda: sim_pulses(rig) > allowed, 20, "treatment pulses after the review")
    assert own_trips(session) == []


@pytest.mark.timeout(60)
def test_item14_a_pulse_counter_that_jumps_past_the_test_spots_halts(rig: Rig) -> None:
    """A laser whose pulse counter jumps (pulses the poll did not see one by one) has fired
    more than the test spots allowed: that is a fault, not a pause."""
    session = rig.start("normal", risk=attested("keloid_history"))
    assert session.request_settings({**TEST_SPOT, "fluence_j_cm2": 90.0}).ok
    session.arm()
    sim = rig.sim
    assert sim is not None and sim.laser is not None
    laser = sim.laser

    def jump() -> None:
        laser.pulses += 5

    sim.call(jump)
    wait_for(lambda: session.state is State.HALTED, 5, "the halt")
    assert [t.check for t in session.trips] == ["test_spots_exceeded"]
    assert "5 pulses in test-spot mode, 3 allowed" in session.trips[0].reason
    wait_for(lambda: sim.snapshot()["relay_closed"] is False, 2, "the relay open")
    # A person acknowledges after the stop has been judged (its grace time, as a person would:
    # acknowledging inside it leaves laser_did_not_stop to be judged after the release).
    time.sleep(session.engine.stop_grace_ns / 1e9 + 0.05)
    assert [t.check for t in session.trips] == ["test_spots_exceeded"]
    # Acknowledging the halt does not skip the clinician's review of the test sites.
    session.acknowledge("nurse-1", "counter checked")
    with pytest.raises(Refused, match="test spots done"):
        session.arm()


@pytest.mark.timeout(60)
def test_item14_test_spots_need_a_rate_that_leaves_time_to_stop_after_the_last_one(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """Single pulses: with a laser polled once a second, a 1.5 Hz rate would fire the next
    pulse before LaserGuard could have seen the last test spot; 0.5 Hz leaves the time."""
    tmp = tmp_path
    base = loaded.setup
    slow_poll = base.model_copy(
        update={
            "laser": base.laser.model_copy(update={"poll_period_ms": 1000.0}),
            "limits": base.limits.model_copy(
                update={"stale_ms": {**base.limits.stale_ms, "laser": 3000.0}}
            ),
        }
    )
    with (
        SimRunner(slow_poll, load_scenario("normal"), run_dir=tmp / "sim") as sim,
        SessionLog(tmp / "log.sqlite3") as log,
    ):
        setup = with_endpoints(slow_poll, sim.endpoints)
        params = SessionParams(
            "e2e-operator",
            "PAT-0043",
            SkinType.III,
            attested("herpes_history"),
            mode=SessionMode.TEST,
        )
        session = Session(loaded, LogRecorder(log), params, setup=setup)
        try:
            session.start()
            # 20 ms: the 10-30 ms rows allow 1.5 Hz (the 30-100 ms row only 1 Hz).
            assert session.request_settings({**SETTINGS, "pulse_ms": 20.0, "rep_rate_hz": 1.5}).ok
            with pytest.raises(Refused, match=r"single pulses: at 1\.5 Hz .* lower the rate"):
                session.arm()
            assert session.request_settings({**SETTINGS, "rep_rate_hz": 0.5}).ok
            session.arm()
            assert session.state is State.READY
        finally:
            session.end("test finished")
