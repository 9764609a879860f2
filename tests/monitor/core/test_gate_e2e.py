"""End to end over real wires: an operator asks 1064 nm above the type-V ceiling for a type V
patient; the gate refuses it naming the limit, nothing reaches the laser, the log has it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device_profiles.loader import load
from device_profiles.schema import SkinType
from monitor.core.session import Refused
from tests.e2e.conftest import SETTINGS, Rig

pytestmark = pytest.mark.e2e


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(load("demo-ndyag-1064"), tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_above_the_type_v_ceiling_is_refused_naming_the_limit(rig: Rig) -> None:
    session = rig.start("normal", skin_type=SkinType.V)
    over = {**SETTINGS, "fluence_j_cm2": 170.0}  # 3 mm, 30 ms, 1 Hz; type V ceiling 90

    result = session.request_settings(over)

    assert not result.ok
    (violation,) = result.violations
    assert (violation.setting, violation.limit, violation.bound) == ("fluence_j_cm2", 90.0, "max")
    assert "fluence 170 J/cm² is above the maximum of 90 J/cm² (by 80 J/cm²" in result.explain()
    with pytest.raises(Refused, match="no settings have been approved"):
        session.arm()
    assert rig.sim is not None
    assert rig.sim.snapshot()["settings"]["fluence_j_cm2"] != 170.0  # never sent
    (logged,) = rig.logged("settings_refused")
    assert logged.payload["violations"][0]["limit"] == 90.0
    # Within the type-V ceiling the same request passes and is sent.
    assert session.request_settings({**SETTINGS, "fluence_j_cm2": 85.0}).ok
