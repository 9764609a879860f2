from __future__ import annotations

import pytest

from sim.scenario import ScenarioError, load_scenario, parse_scenario, scenario_names

GOOD = """
name: x
description: y
skin_type: III
settings: {fluence_j_cm2: 120, pulse_ms: 30, spot_mm: 3, rep_rate_hz: 1}
seed: 1
events:
"""


def test_bundled_scenarios_load() -> None:
    assert set(scenario_names()) >= {
        "normal",
        "cooling-failure",
        "sensor-freeze",
        "sensor-lost",
        "panel-overlimit",
        "sensor-slow",
        "laser-ignores-stop",
        "laser-silent-stop",
    }
    for name in scenario_names():
        assert load_scenario(name).name == name


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ("  - {t_s: 5, action: cooler_failure, to_c: 26}", "events.0.cooler_failure.tau_s"),
        ("  - {t_s: 5, action: sensor_freeze, colour: red}", "events.0.sensor_freeze.colour"),
        ("  - {t_s: 5, action: panel_set, setting: power, value: 3}", "panel_set.setting"),
        ("  - {t_s: 5, action: explode}", "events.0"),
        ("  - {t_s: 5, action: sensor_slow, answer_ms: -1}", "sensor_slow.answer_ms"),
    ],
)
def test_invalid_event_names_the_field(events: str, field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        parse_scenario(GOOD + events)


def test_invalid_top_level_names_the_field() -> None:
    with pytest.raises(ScenarioError, match="skin_type"):
        parse_scenario(GOOD.replace("skin_type: III", "skin_type: VII"))
    with pytest.raises(ScenarioError, match="plate_start_f"):
        parse_scenario(GOOD + "[]\nplate_start_f: 41")


def test_unknown_scenario_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="normal"):
        load_scenario("no-such-scenario")
