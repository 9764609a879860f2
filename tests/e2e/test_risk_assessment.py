"""The pre-treatment risk assessment decides what arming may do, and it is on the record."""

from __future__ import annotations

import pytest

from device_profiles.loader import load_contraindications
from monitor.core.risk import Attestation, assess
from monitor.core.session import Refused, State
from tests.e2e.conftest import SETTINGS, Rig

pytestmark = pytest.mark.e2e


def answers(**present: bool) -> dict[str, bool]:
    base = {q.id: False for q in load_contraindications().questions}
    return {**base, **present}


def test_absolute_contraindication_refuses_arming_and_is_logged(rig: Rig) -> None:
    session = rig.start("normal", risk=assess(answers(pregnancy=True)))
    assert session.request_settings(SETTINGS).ok
    with pytest.raises(Refused, match="pregnancy"):
        session.arm()
    assert session.state is State.STANDBY
    assert rig.sim is not None and rig.sim.snapshot()["state"] == "STANDBY"
    (record,) = rig.logged("risk_assessment")
    assert record.payload["arming_allowed"] is False
    assert record.payload["absolute"] == ["pregnancy"]
    (info,) = rig.logged("patient_information")
    assert info.payload["emergency_contact"] and info.payload["aftercare_instructions"]


def test_relative_contraindication_with_attestation_arms_under_tighter_limits(rig: Rig) -> None:
    attestation = Attestation(
        "Dr. Vega", "Warfarin, INR in range; test spots agreed", frozenset({"anticoagulants"})
    )
    session = rig.start("normal", risk=assess(answers(anticoagulants=True), attestation))
    refused = session.request_settings(SETTINGS)  # 120 J/cm² at 1 Hz: fine without the drug
    assert not refused.ok
    assert "restricted by the risk assessment" in refused.explain()
    test_spot = {**SETTINGS, "fluence_j_cm2": 100.0, "rep_rate_hz": 0.5}
    assert session.request_settings(test_spot).ok
    session.arm()
    assert session.state is State.READY
    (record,) = rig.logged("risk_assessment")
    assert record.payload["attestation"]["clinician"] == "Dr. Vega"
    assert record.payload["restrictions"]["max_rep_rate_hz"] == 0.5


def test_relative_contraindication_without_attestation_refuses(rig: Rig) -> None:
    session = rig.start("normal", risk=assess(answers(anticoagulants=True)))
    with pytest.raises(Refused, match="attestation"):
        session.request_settings({**SETTINGS, "fluence_j_cm2": 100.0, "rep_rate_hz": 0.5})
        session.arm()
