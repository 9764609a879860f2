"""Issue 11 item 5 (and the setup for items 3 and 4): the calibration policy in a setup,
checked at load against the laser and the energy meter's head."""

from __future__ import annotations

import pytest

from device_profiles.loader import ProfileError, load, parse
from tests.device_profiles.meter_setups import HEARTBEAT_LINE, SERVICE_COMMANDS, edited
from tests.monitor.calibration.bench import cal_text


def test_item5_the_bundled_calibration_setup_states_its_policy_and_sources() -> None:
    loaded = load("demo-ndyag-1064-cal")
    policy = loaded.setup.calibration
    assert policy is not None and loaded.meter is not None
    assert loaded.meter.description.name == "scpi-style"
    assert policy.tolerance_fraction == 0.2 and "21 CFR 1040.11(a)" in policy.tolerance_source
    assert "clinic default, review" in policy.interval_source
    assert policy.shots_per_point == 5 and policy.daily_check.required
    assert policy.skin_sensor.tolerance_c == 0.5 and policy.skin_sensor.points == 2
    assert loaded.setup.laser.protocol.has_service_mode
    assert loaded.setup.laser.protocol.reports_delivered_energy
    # The plain demo setup is unchanged: no policy, nothing enforced.
    assert load("demo-ndyag-1064").setup.calibration is None


def refused(text: str) -> str:
    with pytest.raises(ProfileError) as e:
        parse(text, "cal.yaml")
    return str(e.value)


def test_item5_a_policy_needs_a_meter_and_a_service_mode() -> None:
    text = cal_text()
    no_meter = text[: text.index("energy_meter:")] + text[text.index("# How the laser's output") :]
    assert "calibration needs an energy_meter" in refused(no_meter)
    no_service = edited(text, HEARTBEAT_LINE + "    # Service mode: single test shots into the "
                        "energy meter, no patient session.\n" + SERVICE_COMMANDS, HEARTBEAT_LINE)  # fmt: skip
    assert "calibration needs the laser's service mode" in refused(no_service)


def test_item5_a_sweep_the_meter_head_cannot_measure_at_the_tolerance_edge_is_refused() -> None:
    # 2.6 J at +20 % is 3.12 J: over the SCPI-style head's 3 J, a hot laser would read
    # over-range rather than be measured.
    text = cal_text(edits=(("energies_j: [0.5, 1.0, 1.5, 2.0]", "energies_j: [0.5, 1.0, 2.6]"),))
    why = refused(text)
    assert "highest energy fired, 2.6 J, at +20% is 3.12 J" in why and "3 J" in why
    tiny = cal_text(edits=(("energies_j: [0.5, 1.0, 1.5, 2.0]", "energies_j: [0.01, 1.0]"),))
    assert "noise floor 0.0002 J is more than 1% of the lowest energy fired (0.01 J)" in refused(
        tiny
    )


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("tolerance_fraction: 0.20", "tolerance_fraction: 0.25", "tolerance_fraction"),
        ("energies_j: [0.5, 1.0, 1.5, 2.0]", "energies_j: [1.0, 0.5]", "ascending"),
        ("spot_sizes_mm: [2.0, 3.0]", "spot_sizes_mm: [3.0, 3.0]", "distinct"),
        ("warning_days: 14", "warning_days: 200", "warning_days 200 must be below"),
        ("shots_per_point: 5\n  shot", "shots_per_point: 1\n  shot", "shots_per_point"),
        ("interval_days: 182", "interval_days: 0", "interval_days"),
        ("daily_check: {required: true,", "daily_check: {required: yes,", "required"),
        ("plate: {points: 1,", "plate: {points: 0,", "plate.points"),
    ],
)
def test_item5_a_bad_policy_is_refused_naming_the_field(old: str, new: str, words: str) -> None:
    assert words in refused(cal_text(edits=((old, new),)))
