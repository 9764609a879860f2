"""Issue 12, item 6 (what the skin sensor sees) and the load-time bounds of item 7 (the skin
temperature limits by cooling method, the baseline): a setup that cannot measure or protect
skin is refused at load, naming the field and why."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from device_profiles.loader import ProfileError, bundled_dir, load, parse


def demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((bundled_dir() / "demo-ndyag-1064.yaml").read_bytes())
    return data


def with_view(**view: Any) -> dict[str, Any]:
    data = demo()
    data["sensor"]["view"] = {"source": "data sheet", **view}
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(yaml.safe_dump(data), "clinic.yaml")
    return str(exc.value)


PYRO_8_14 = {"kind": "pyrometer", "band_um": {"min": 8.0, "max": 14.0}}


def test_item6_the_bundled_setup_states_what_its_sensor_sees() -> None:
    view = load("demo-ndyag-1064").setup.sensor.view
    assert (view.kind, view.position) == ("pyrometer", "skin_beside_window")
    assert view.band_um is not None and (view.band_um.min, view.band_um.max) == (8.0, 14.0)


def test_item6_an_8_14_um_pyrometer_through_a_sapphire_window_is_refused() -> None:
    message = refusal(with_view(**PYRO_8_14, position="through_window", window="sapphire"))
    assert "sensor.view" in message
    assert "8-14 um pyrometer aimed through a sapphire window reads the window, not the skin" in (
        message
    )
    assert "0.15-5.5 um" in message


def test_item6_the_same_pyrometer_through_a_germanium_window_loads() -> None:
    loaded = parse(
        yaml.safe_dump(with_view(**PYRO_8_14, position="through_window", window="germanium"))
    )
    assert loaded.setup.sensor.view.window == "germanium"


def test_item6_a_short_wave_pyrometer_sees_through_sapphire() -> None:
    data = with_view(
        kind="pyrometer",
        band_um={"min": 2.0, "max": 5.0},
        position="through_window",
        window="sapphire",
    )
    assert parse(yaml.safe_dump(data)).setup.sensor.view.band_um is not None


@pytest.mark.parametrize(
    ("view", "words"),
    [
        ({"kind": "thermistor", "position": "in_window"}, "measures the window"),
        ({"kind": "thermocouple", "position": "through_window"}, "cannot measure through"),
        ({**PYRO_8_14, "position": "in_window"}, "sees the window, not the skin"),
        ({"kind": "pyrometer", "position": "skin_beside_window"}, "states its spectral band"),
        ({**PYRO_8_14, "position": "through_window"}, "names the window's material"),
        (
            {
                "kind": "thermistor",
                "position": "skin_beside_window",
                "band_um": PYRO_8_14["band_um"],
            },
            "no spectral band",
        ),
    ],
)
def test_item6_a_sensor_that_cannot_measure_skin_is_refused(
    view: dict[str, Any], words: str
) -> None:
    message = refusal(with_view(**view))
    assert "sensor.view" in message and words in message
    assert "Traceback" not in message


def test_item6_a_thermistor_on_the_skin_beside_the_window_loads() -> None:
    data = with_view(kind="thermistor", position="skin_beside_window")
    assert parse(yaml.safe_dump(data)).setup.sensor.view.kind == "thermistor"


def test_item6_a_setup_that_does_not_say_what_its_sensor_sees_is_refused() -> None:
    data = demo()
    del data["sensor"]["view"]
    assert "sensor.view: Field required" in refusal(data)


def test_item6_a_cooler_states_how_it_cools() -> None:
    data = demo()
    del data["cooler"]["method"]
    assert "cooler.method: Field required" in refusal(data)
    data["cooler"]["method"] = "ice"
    assert "cooler.method" in refusal(data)


# --- item 7: the low limit by cooling method, the baseline --------------------------------------


def with_limits(method: str = "contact", **limits: Any) -> dict[str, Any]:
    data = demo()
    data["cooler"]["method"] = method
    data["limits"].update(copy.deepcopy(limits))
    return data


def test_item7_d_contact_cooling_may_not_take_the_skin_below_freezing() -> None:
    message = refusal(with_limits(skin_temp_c={"low": -5.0, "high": 48.0}))
    assert "-2 degC that contact cooling allows" in message


def test_item7_d_cryogen_may_dip_below_freezing_for_a_spurt() -> None:
    data = with_limits("cryogen", skin_temp_c={"low": -10.0, "high": 48.0})
    # The 1064 nm table is for contact cooling: its rows inline, as if published with cryogen.
    rows = yaml.safe_load((bundled_dir() / "limits" / "nd-yag-1064.yaml").read_bytes())["rows"]
    for row in rows:
        row["cooling"] = ["cryogen"]
    data["limits"]["settings"] = rows
    del data["limits"]["table"]
    assert parse(yaml.safe_dump(data)).setup.limits.skin_temp_c.low == -10.0
    data["limits"]["skin_temp_c"] = {"low": -11.0, "high": 48.0}
    assert "limits.skin_temp_c" in refusal(data) and "-10" in refusal(data)


@pytest.mark.parametrize(
    ("baseline", "words"),
    [(41.0, "at most 40 degC"), (48.0, "must lie inside skin_temp_c"), (1.0, "must lie inside")],
)
def test_item7_a_a_baseline_limit_that_cannot_protect_skin_is_refused(
    baseline: float, words: str
) -> None:
    message = refusal(with_limits(skin_baseline_max_c=baseline))
    assert "limits" in message and words in message


def test_item7_a_the_baseline_limit_is_required() -> None:
    data = demo()
    del data["limits"]["skin_baseline_max_c"]
    assert "limits.skin_baseline_max_c: Field required" in refusal(data)


def test_item7_b_the_post_pulse_ceiling_sits_above_the_feedback_aim_and_no_higher_than_50() -> None:
    assert load("demo-ndyag-1064").setup.limits.skin_temp_c.high == 48.0
    assert "at most 50" in refusal(with_limits(skin_temp_c={"low": 2.0, "high": 55.0}))


def test_item4_a_test_spot_wait_below_the_vendors_week_is_refused() -> None:
    message = refusal(with_limits(test_spot_read_after_days=3))
    assert "limits.test_spot_read_after_days" in message
    assert load("demo-ndyag-1064").setup.limits.test_spot_read_after_days == 14


# --- item 6, the second skin sensor: its reading feeds the same checks, so the same rule ------


def dual(**view: Any) -> dict[str, Any]:
    raw = (bundled_dir() / "demo-ndyag-1064-dual-sensor.yaml").read_bytes()
    data: dict[str, Any] = yaml.safe_load(raw)
    if view:
        data["sensor2"]["view"] = {"source": "data sheet", **view}
    return data


def test_item6_the_bundled_dual_sensor_setup_states_what_its_second_sensor_sees() -> None:
    second = load("demo-ndyag-1064-dual-sensor").setup.sensor2
    assert second is not None
    assert (second.view.kind, second.view.position) == ("pyrometer", "skin_beside_window")


def test_item6_a_second_sensor_8_14_um_through_sapphire_is_refused() -> None:
    message = refusal(dual(**PYRO_8_14, position="through_window", window="sapphire"))
    assert "sensor2.view" in message
    assert "8-14 um pyrometer aimed through a sapphire window reads the window, not the skin" in (
        message
    )
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("view", "words"),
    [
        ({"kind": "thermistor", "position": "in_window"}, "measures the window"),
        ({**PYRO_8_14, "position": "in_window"}, "sees the window, not the skin"),
        ({"kind": "pyrometer", "position": "skin_beside_window"}, "states its spectral band"),
    ],
)
def test_item6_a_second_sensor_that_cannot_measure_skin_is_refused(
    view: dict[str, Any], words: str
) -> None:
    message = refusal(dual(**view))
    assert "sensor2.view" in message and words in message


def test_item6_a_second_sensor_that_does_not_say_what_it_sees_is_refused() -> None:
    data = dual()
    del data["sensor2"]["view"]
    assert "sensor2.view: Field required" in refusal(data)


def test_item6_a_second_sensor_through_germanium_loads() -> None:
    data = dual(**PYRO_8_14, position="through_window", window="germanium")
    second = parse(yaml.safe_dump(data)).setup.sensor2
    assert second is not None and second.view.window == "germanium"
