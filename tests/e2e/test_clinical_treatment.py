"""Issue 12 over real wires: the treatment site and the patient's test spots decide what a
session may do (items 3 and 4). The simulator on a real pty and sockets, a real SQLite log."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.loader import LoadedSetup, load_contraindications, with_endpoints
from device_profiles.schema import SkinType
from monitor.core.records import Trip
from monitor.core.risk import RiskOutcome, assess
from monitor.core.session import Refused, Session, SessionMode, SessionParams, State
from monitor.record.recorder import LogRecorder
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.e2e.conftest import SETTINGS, Rig, wait_for
from tests.e2e.test_test_spot_mode import acknowledge_load_trips, own_trips

pytestmark = pytest.mark.e2e

#: A type IV leg treatment at single-pulse pace (0.5 Hz), within the nd-yag-1064 type IV row.
TYPE_IV = {**SETTINGS, "fluence_j_cm2": 100.0, "rep_rate_hz": 0.5}


class SiteRig(Rig):
    """The e2e rig, with the session's treatment site stated."""

    def start_at(
        self, site: TreatmentSite, skin_type: SkinType, risk: RiskOutcome, speed: float = 4.0
    ) -> Session:
        self.sim = SimRunner(
            self.loaded.setup, load_scenario("normal"), speed=speed, run_dir=self.tmp / "sim"
        ).start()
        setup = with_endpoints(self.loaded.setup, self.sim.endpoints)
        params = SessionParams(
            "e2e-operator", "PAT-0042", skin_type, risk, mode=SessionMode.TEST, site=site
        )
        self.session = Session(self.loaded, LogRecorder(self.log), params, setup=setup)
        self.session.start()
        return self.session


def risk_for(site: TreatmentSite, *spots: TestSpotReading) -> RiskOutcome:
    answers = {q.id: False for q in load_contraindications().questions}
    return assess(answers, wavelength_nm=1064.0, site=site, test_spots=spots)


def read_spot(**change: object) -> TestSpotReading:
    today = date.today()
    fields: dict[str, object] = {
        "done_on": str(today - timedelta(days=20)),
        "read_on": str(today - timedelta(days=5)),
        "read_by": "Dr. Vega",
        "site": "legs",
        "wavelength_nm": 1064.0,
        "fluence_j_cm2": 100.0,
        "pulse_ms": 30.0,
        "spot_mm": 3.0,
        "result": "no_reaction",
        **change,
    }
    return TestSpotReading.model_validate(fields)


def pulses(rig: Rig) -> int:
    assert rig.sim is not None
    return int(rig.sim.snapshot()["pulses"])


def arm_through_load(session: Session, within_s: float = 10.0) -> None:
    """Arm. A halt a loaded test machine latched a moment before (the bridge refuses to arm
    at once; the session's state follows on its bookkeeper's thread) is acknowledged and
    arming tried again, as a person would; any other refusal still fails the test."""
    deadline = time.monotonic() + within_s
    while True:
        acknowledge_load_trips(session)
        try:
            session.arm()
            return
        except Refused as e:
            if own_trips(session) or time.monotonic() > deadline:
                trips = [(t.check, t.reason) for t in session.trips]
                raise AssertionError(f"arming refused: {e}; trips: {trips}") from e
        time.sleep(0.05)


def fire_until(session: Session, rig: Rig, n: int) -> None:
    """Wait for ``n`` pulses; a halt a loaded test machine causes (a late sample) is
    acknowledged and the session armed again, as a person would (tests/e2e/test_test_spot_mode)."""
    deadline = time.monotonic() + 30
    while pulses(rig) < n:
        assert time.monotonic() < deadline, f"{pulses(rig)} of {n} pulses"
        if session.state is State.HALTED:
            assert own_trips(session) == [], own_trips(session)
            arm_through_load(session)
        time.sleep(0.05)


def panel_turned_while_firing(session: Session, rig: Rig, setting: str, value: float) -> Trip:
    """Arm, fire two pulses, turn a knob on the laser's own panel: the read-back halts, the
    laser goes to STANDBY and the relay opens. Returns the read-back's trip."""
    arm_through_load(session)
    fire_until(session, rig, 2)
    sim = rig.sim
    assert sim is not None and sim.laser is not None
    laser = sim.laser
    sim.call(lambda: laser.panel_set(setting, value))
    wait_for(lambda: "settings_readback" in own_trips(session), 10, "the read-back trip")
    trip = next(t for t in session.trips if t.check == "settings_readback")
    wait_for(lambda: sim.snapshot()["state"] == "STANDBY", 2, "the laser in STANDBY")
    # The two routes are independent: the laser may confirm STOP before the relay opens.
    wait_for(lambda: sim.snapshot()["relay_closed"] is False, 2, "the relay to open")
    return trip


@pytest.fixture
def site_rig(loaded: LoadedSetup, tmp_path: Path) -> Iterator[SiteRig]:
    rig = SiteRig(loaded, tmp_path)
    try:
        yield rig
    finally:
        rig.close()


# --- item 4: the patient's test spots ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_item4_type_iv_without_a_read_test_spot_only_does_the_test_spot(site_rig: SiteRig) -> None:
    rig = site_rig
    session = rig.start_at(TreatmentSite.LEGS, SkinType.IV, risk_for(TreatmentSite.LEGS))
    assert session.request_settings(TYPE_IV).ok
    (mode,) = rig.logged("test_spot_mode")
    assert "no test spot in the patient's history" in mode.payload["reason"]
    (applied,) = rig.logged("settings_applied")
    assert str(applied.payload["test_spot"]).startswith("none: this session does the test spot")
    # A halt a loaded machine causes (a late sample, a slow answer) is acknowledged and the
    # session armed again, as a person would; a halt of its own fails the test (fire_until).
    arm_through_load(session)
    fire_until(session, rig, 3)
    wait_for(lambda: rig.logged("test_spot_pause"), 20, "the laser paused after the spots")
    assert pulses(rig) == 3
    assert own_trips(session) == []
    # The spots are read days later: no one ends this pause in this session.
    with pytest.raises(Refused, match="read at least 14 days from now"):
        session.end_test_spot_pause("Dr. Vega", "looks fine")
    assert not rig.logged("test_spot_pause_ended")


@pytest.mark.timeout(60)
def test_item4_type_iv_with_a_read_test_spot_is_treated_at_its_settings(site_rig: SiteRig) -> None:
    rig = site_rig
    risk = risk_for(TreatmentSite.LEGS, read_spot(fluence_j_cm2=110.0), read_spot())
    session = rig.start_at(TreatmentSite.LEGS, SkinType.IV, risk)
    assert session.request_settings(TYPE_IV).ok
    assert not rig.logged("test_spot_mode")
    (applied,) = rig.logged("settings_applied")
    assert "no_reaction" in str(applied.payload["test_spot"])
    arm_through_load(session)
    fire_until(session, rig, 4)
    assert not rig.logged("test_spot_pause")


@pytest.mark.timeout(60)
def test_item4_settings_harsher_than_the_read_test_spot_are_only_a_test_spot(
    site_rig: SiteRig,
) -> None:
    rig = site_rig
    risk = risk_for(TreatmentSite.LEGS, read_spot(fluence_j_cm2=90.0))
    session = rig.start_at(TreatmentSite.LEGS, SkinType.IV, risk)
    assert session.request_settings(TYPE_IV).ok  # within the limits: 100 J/cm2
    (mode,) = rig.logged("test_spot_mode")
    assert "fluence 100 J/cm² is above its 90 J/cm²" in mode.payload["reason"]
    assert mode.payload["allowed"] == 3


@pytest.mark.timeout(60)
def test_item4_a_panel_knob_turned_past_the_read_test_spot_halts(site_rig: SiteRig) -> None:
    """The test spot vouched for 100 J/cm² at 2 mm; the table's row allows 120 there. Someone
    turns the laser's own fluence knob to 120 while treating: the read-back halts, naming the
    test spot, as a knob turned past the table does (tests/e2e/test_treatment.py)."""
    rig = site_rig
    two_mm = {**TYPE_IV, "spot_mm": 2.0}
    risk = risk_for(TreatmentSite.LEGS, read_spot(spot_mm=2.0))
    session = rig.start_at(TreatmentSite.LEGS, SkinType.IV, risk)
    assert session.request_settings(two_mm).ok
    assert session.limits_table.check(SkinType.IV, {**two_mm, "fluence_j_cm2": 120.0}).ok
    trip = panel_turned_while_firing(session, rig, "fluence_j_cm2", 120.0)
    assert "fluence 120 J/cm² is above the maximum of 100 J/cm²" in trip.reason
    assert "test spot" in trip.reason
    # The cause persists: no acknowledgement releases it while the laser reads back 120.
    with pytest.raises(Refused, match="settings_readback"):
        session.acknowledge("nurse-1", "checked the laser")
    # A pulse that fired at 120 before the halt is recorded against the test spot's limit.
    for record in rig.logged("pulse_out_of_limits"):
        assert record.payload["settings"]["fluence_j_cm2"] == 120.0
        assert record.payload["violations"][0]["limit"] == 100.0


def with_test_spot_on_long_pulses(loaded: LoadedSetup) -> LoadedSetup:
    """The demo setup as a clinic might edit it: its types I-III 30-100 ms legs row asks for a
    test spot; the 10-30 ms row beside it does not (no bundled type I-II row asks for one)."""
    rows = [
        row.model_copy(update={"test_spot_required": True})
        if SkinType.II in row.skin_types
        and TreatmentSite.LEGS in row.sites
        and row.pulse_ms.min == 30.0
        else row
        for row in loaded.setup.limits.settings
    ]
    limits = loaded.setup.limits.model_copy(update={"settings": rows})
    return dataclasses.replace(loaded, setup=loaded.setup.model_copy(update={"limits": limits}))


@pytest.mark.timeout(60)
def test_item4_a_panel_knob_turned_into_a_row_that_asks_for_a_test_spot_halts(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """A type II leg session at 20 ms needs no test spot and the patient has none. Someone
    turns the laser's own pulse-width knob to 50 ms, into the row that asks for one: the
    read-back halts and says why, as the gate would have sent those settings to a test spot."""
    rig = SiteRig(with_test_spot_on_long_pulses(loaded), tmp_path)
    try:
        settings = {**SETTINGS, "fluence_j_cm2": 100.0, "pulse_ms": 20.0, "spot_mm": 4.0}
        session = rig.start_at(TreatmentSite.LEGS, SkinType.II, risk_for(TreatmentSite.LEGS))
        assert session.request_settings(settings).ok
        (applied,) = rig.logged("settings_applied")
        assert applied.payload["test_spot"] == "not required"
        trip = panel_turned_while_firing(session, rig, "pulse_ms", 50.0)
        assert "asks for a read test spot first" in trip.reason
        with pytest.raises(Refused, match="settings_readback"):
            session.acknowledge("nurse-1", "checked the laser")
    finally:
        rig.close()


# --- item 3: the site, and eye shields for periorbital treatment --------------------------------


def with_periorbital_rows(loaded: LoadedSetup) -> LoadedSetup:
    """The demo setup with its face rows also published for periorbital treatment (the bundled
    1064 nm table refuses periorbital treatment outright, so its arming is never reached)."""
    rows = []
    for row in loaded.setup.limits.settings:
        if TreatmentSite.PERIORBITAL in row.sites:
            continue  # the refusal row
        if TreatmentSite.FACE in row.sites:
            row = row.model_copy(update={"sites": [TreatmentSite.FACE, TreatmentSite.PERIORBITAL]})
        rows.append(row)
    limits = loaded.setup.limits.model_copy(update={"settings": rows})
    return dataclasses.replace(loaded, setup=loaded.setup.model_copy(update={"limits": limits}))


@pytest.mark.timeout(60)
def test_item3_periorbital_treatment_arms_only_after_the_eye_shields_are_confirmed(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    rig = SiteRig(with_periorbital_rows(loaded), tmp_path)
    try:
        site = TreatmentSite.PERIORBITAL
        session = rig.start_at(site, SkinType.III, risk_for(site))
        assert session.request_settings(SETTINGS).ok
        with pytest.raises(Refused, match="confirm that the patient wears eye shields"):
            session.arm()
        (refused,) = rig.logged("arm_refused")
        assert "eye shields" in refused.payload["reason"]
        with pytest.raises(Refused, match="needs the name of who checked them"):
            session.confirm_eye_shields("  ")
        session.confirm_eye_shields("nurse-1")
        (confirmed,) = rig.logged("eye_shields_confirmed")
        assert confirmed.payload["by"] == "nurse-1" and confirmed.payload["site"] == "periorbital"
        arm_through_load(session)
        fire_until(session, rig, 1)
    finally:
        rig.close()


@pytest.mark.timeout(60)
def test_item3_the_bundled_1064_table_refuses_periorbital_settings(site_rig: SiteRig) -> None:
    site = TreatmentSite.PERIORBITAL
    session = site_rig.start_at(site, SkinType.III, risk_for(site))
    result = session.request_settings(SETTINGS)
    assert not result.ok and "contraindicated" in result.explain()
    assert "not used at the periorbital site" in result.explain()
    (refused,) = wait_for(lambda: site_rig.logged("settings_refused"), 5, "the refusal logged")
    assert refused.payload["requested"] == SETTINGS


@pytest.mark.timeout(60)
def test_item3_a_face_treatment_is_judged_by_the_face_rows(site_rig: SiteRig) -> None:
    """The same settings: allowed on the legs (150 J/cm2), above the face ceiling (120)."""
    site = TreatmentSite.FACE
    session = site_rig.start_at(site, SkinType.III, risk_for(site))
    result = session.request_settings({**SETTINGS, "fluence_j_cm2": 150.0})
    assert not result.ok and "above the maximum of 120 J/cm²" in result.explain()
    assert session.request_settings(SETTINGS).ok
