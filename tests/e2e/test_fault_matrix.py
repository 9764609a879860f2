"""Issue 13 item 5: the fault matrix. Every bundled fault scenario, through the real bridge
over a real pty and real Modbus TCP against the simulator in its own process (``sim.control``),
must end safe: the right check halts, emission stops within the deadline the setup's
reaction-time budget gives, no pulse after it, the laser not left READY with the relay
closed (the relay open where the laser ignores STOP), and the simulated skin's Ω below first
degree. ``laserguard faults run`` runs the same rows and writes docs/fault-matrix.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles.loader import load
from monitor.faults import FIRST_DEGREE_OMEGA, MatrixRow, matrix_scenarios, run_one
from sim.scenario import load_scenario

SCENARIOS = matrix_scenarios()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "fault-matrix.md"


def assert_safe(name: str) -> MatrixRow:
    row = run_one(name)
    assert row.ok, f"{name}: {row.problems}"
    assert row.detected_by in row.expected
    assert row.halt_ms is not None and row.deadline_ms is not None
    assert row.halt_ms <= row.deadline_ms
    assert row.pulses_after_stop == 0
    assert row.peak_omega is not None and row.peak_omega < FIRST_DEGREE_OMEGA
    return row


@pytest.mark.e2e
@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "slow-burn"])
def test_issue13_item5_every_fault_ends_safe_within_its_deadline(name: str) -> None:
    assert_safe(name)


@pytest.mark.e2e
def test_issue13_item5_a_slow_burn_under_the_surface_limit_is_halted_by_the_dose() -> None:
    """The matrix's slow-burn row: the skin stays under the surface limit the whole time (the
    trip never fires); only the accumulated dose halts it."""
    row = assert_safe("slow-burn")
    assert row.detected_by == "thermal_dose_high"
    high = load("demo-ndyag-1064").setup.limits.skin_temp_c.high
    assert row.peak_skin_c is not None and 40.0 < row.peak_skin_c < high


def test_issue13_item5_the_matrix_covers_the_fault_kinds_and_names_their_risk() -> None:
    """Each matrix scenario names hazard -> hazardous situation -> harm and its control, and
    the generated table lists every one of them."""
    assert len(SCENARIOS) >= 20
    for name in SCENARIOS:
        sc = load_scenario(name)
        assert sc.risk is not None and sc.matrix is not None
    faults = {load_scenario(n).matrix.fault for n in SCENARIOS}  # type: ignore[union-attr]
    for needed in (
        "cooler_failure",
        "cooler_flow_loss",
        "plate_runaway",
        "sensor_freeze",
        "sensor_stuck",
        "sensor_drift",
        "sensor_noise",
        "device_dropout",
        "wire_garbage",
        "modbus_exception",
        "device_slow",
        "sensor_offset",
        "link_lost",
        "relay_stuck_closed",
        "panel_set",
        "laser_panel_arm",
        "skin_heat_load",
    ):
        assert needed in faults, needed
    table = DOCS.read_text(encoding="utf-8")
    for name in SCENARIOS:
        assert f"| {name} |" in table, f"docs/fault-matrix.md lacks {name}: rerun the matrix"
