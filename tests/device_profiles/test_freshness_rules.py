"""Issue 14 item 2: a setup states how new sensor data is told from old, and the budget
accounts for it. A clinical setup with no way at all is refused, naming the choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from device_profiles.loader import ProfileError, bundled_dir, load, parse
from device_profiles.timing import reaction_budget

IR = "demo-ndyag-1064-ir"
Data = dict[str, Any]


def ir_data() -> Data:
    data: Data = yaml.safe_load((bundled_dir() / f"{IR}.yaml").read_text(encoding="utf-8"))
    return data


def refused(data: Data) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(yaml.safe_dump(data), "clinic.yaml")
    return str(exc.value)


def test_item2_the_bundled_pyrometer_has_no_counter_and_its_budget_shows_the_detector() -> None:
    setup = load(IR).setup
    assert setup.sensor.sample_counter is None
    budget = reaction_budget(setup)
    assert budget.frozen is not None
    # frozen_after_ms 30 + a 5 ms poll + the read + a 1 ms cycle.
    assert budget.frozen.ms == pytest.approx(30 + 5 + budget.detection[2].ms + 1)
    assert "frozen sensor" in budget.format() and "bit-identical" in budget.format()


def test_item2_the_counter_setup_states_its_frozen_time_from_stale_ms() -> None:
    budget = reaction_budget(load("demo-ndyag-1064").setup)
    assert budget.frozen is not None and budget.frozen.ms == pytest.approx(40 + 1)


def _no_method(d: Data) -> None:
    del d["sensor"]["freshness"]


def _too_slow(d: Data) -> None:
    d["sensor"]["freshness"]["frozen_after_ms"] = 60


def _on_status_word(d: Data) -> None:
    d["sensor"]["freshness"]["watch"] = "fault_code"


def _unknown_register(d: Data) -> None:
    d["sensor"]["freshness"]["watch"] = "object_temp"


def _both(d: Data) -> None:
    d["sensor"]["sample_counter"] = "skin_temp_c"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_no_method, "the sensor needs a way to tell new data from old"),
        (_too_slow, "= 65 ms is above required_reaction_ms 50 ms"),
        (_on_status_word, "must be a measured value, not a status word"),
        (_unknown_register, "freshness.watch 'object_temp' is not in registers"),
        (_both, "give sample_counter or freshness, not both"),
    ],
    ids=["none", "too-slow", "status-word", "unknown", "both"],
)
def test_item2_a_setup_without_a_sound_freshness_method_is_refused(
    mutate: Callable[[Data], None], message: str
) -> None:
    data = ir_data()
    mutate(data)
    assert message in refused(data)


def test_item2_a_heartbeat_register_is_a_method() -> None:
    data = ir_data()
    data["sensor"]["freshness"] = {"method": "heartbeat", "watch": "ambient_temp_c"}
    setup = parse(yaml.safe_dump(data), "clinic.yaml").setup
    budget = reaction_budget(setup)
    assert budget.frozen is not None and "heartbeat ambient_temp_c" in budget.frozen.why
