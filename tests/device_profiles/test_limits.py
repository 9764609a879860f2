"""Limit tables: the bundled ones load and keep their invariants; a broken one is refused
at load naming the table, the row and the numbers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.limits import effective_ceiling, treatments
from device_profiles.loader import (
    ProfileError,
    bundled_dir,
    bundled_table_names,
    bundled_tables_dir,
    load,
    load_table,
    parse,
    parse_table,
)
from device_profiles.schema import SkinType

TABLES = bundled_table_names()
NDYAG = bundled_tables_dir() / "nd-yag-1064.yaml"
SKIN = list(SkinType)
ROWS = {name: load_table(name).table.rows for name in TABLES}


def table_data(name: str = "nd-yag-1064") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((bundled_tables_dir() / f"{name}.yaml").read_bytes())
    return data


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as exc:
        parse_table(yaml.safe_dump(data), "broken.yaml")
    return str(exc.value)


def test_every_laser_family_has_a_table() -> None:
    assert set(TABLES) == {
        "ktp-532", "pdl-595", "alexandrite-755", "diode-810", "diode-940-980", "nd-yag-1064",
    }  # fmt: skip
    waves = {n: load_table(n).table.wavelength_range for n in TABLES}
    assert waves["diode-940-980"] == (940, 980)
    assert waves["nd-yag-1064"] == (1064, 1064)


@pytest.mark.parametrize("name", TABLES)
def test_every_row_cites_a_source_and_covers_every_type(name: str) -> None:
    rows = load_table(name).table.rows
    assert all(r.source.strip() for r in rows)
    assert {t for r in rows for t in r.skin_types} == set(SkinType)


@pytest.mark.parametrize(
    ("name", "types"),
    [("ktp-532", ["IV", "V", "VI"]), ("alexandrite-755", ["IV", "V", "VI"])],
)
def test_darker_types_are_contraindicated_where_the_sources_say_so(
    name: str, types: list[str]
) -> None:
    rows = load_table(name).table.rows
    for t in types:
        assert all(r.contraindicated for r in rows if SkinType(t) in r.skin_types)


def test_the_demo_keeps_the_numbers_the_end_to_end_tests_use() -> None:
    rows = load("demo-ndyag-1064").setup.limits.settings
    legs = {"site": TreatmentSite.LEGS, "cooling": CoolingMethod.CONTACT}
    iii = effective_ceiling(rows, SkinType.III, 3.0, 30.0, **legs)
    v = effective_ceiling(rows, SkinType.V, 3.0, 30.0, **legs)
    # 120 J/cm² passes at 3 mm (the 3-6 mm row's ceiling wins on the border), 250 is refused
    assert iii is not None and iii.fluence_j_cm2 == 120.0
    assert v is not None and v.fluence_j_cm2 < iii.fluence_j_cm2


# --- invariants refused at load -----------------------------------------------------------


def test_a_ceiling_that_rises_with_spot_size_is_refused() -> None:
    data = table_data()
    data["rows"][3]["fluence_j_cm2"]["max"] = 200  # I-III at 3-6 mm above the 1-3 mm 150
    message = refused(data)
    assert "limit table nd-yag-1064" in message
    assert "rises with spot size" in message
    assert "row 3" in message and "200 J/cm²" in message and "row 1" in message
    assert "(legs, contact cooling)" in message


def test_a_darker_type_above_a_lighter_one_is_refused() -> None:
    data = table_data()
    data["rows"][7]["fluence_j_cm2"]["max"] = 130  # type V 1-3 mm above type IV's 120
    message = refused(data)
    assert "darker type V" in message and "lighter type IV" in message
    assert "row 7" in message and "130 J/cm²" in message and "120 J/cm²" in message


def test_a_darker_type_with_a_faster_rate_is_refused() -> None:
    data = table_data()
    data["rows"][9]["rep_rate_hz_max"] = 2.0  # type VI, 1-3 mm
    assert "higher repetition-rate ceiling" in refused(data)


def test_a_darker_type_allowed_where_a_lighter_is_contraindicated_is_refused() -> None:
    data = table_data("ktp-532")
    data["rows"][3]["skin_types"] = ["III", "V"]  # V allowed at 532 nm ...
    data["rows"][7]["skin_types"] = ["IV", "VI"]  # ... while the lighter IV is contraindicated
    message = refused(data)
    assert "darker type V" in message and "lighter type IV" in message
    assert "contraindicated" in message


def test_a_type_without_a_row_is_refused() -> None:
    data = table_data()
    data["rows"] = [r for r in data["rows"] if "VI" not in r["skin_types"]]
    assert "do not cover skin types ['VI']" in refused(data)


def test_an_unordered_range_is_refused() -> None:
    data = table_data()
    data["rows"][0]["pulse_ms"] = {"min": 30, "max": 3}
    assert "rows.0.pulse_ms" in refused(data)


def test_a_contraindicated_row_with_a_fluence_is_refused() -> None:
    data = table_data("ktp-532")
    data["rows"][7]["fluence_j_cm2"] = {"min": 5, "max": 10}
    assert "contraindicated row allows no fluence" in refused(data)


def test_a_widening_pulse_row_is_caught() -> None:
    # Type V 3-6 mm only from 20 ms: at 3 mm and 15-20 ms the 1-3 mm row (110) alone would
    # apply, above type IV's 100 there. The invariant sees it.
    data = table_data()
    data["rows"][8]["pulse_ms"]["min"] = 20
    assert "darker type V" in refused(data)


# --- a setup that names a table -------------------------------------------------------------


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((bundled_dir() / "demo-ndyag-1064.yaml").read_bytes())
    return data


def test_table_and_inline_settings_together_are_refused() -> None:
    data = demo_data()
    data["limits"]["settings"] = table_data()["rows"]
    with pytest.raises(ProfileError, match="either `table` or `settings`, not both"):
        parse(yaml.safe_dump(data), "both.yaml")


def test_a_table_for_another_wavelength_is_refused() -> None:
    data = demo_data()
    data["limits"]["table"] = "ktp-532"
    with pytest.raises(ProfileError, match=r"is for 532 nm, but laser\.wavelength_nm is 1064"):
        parse(yaml.safe_dump(data), "wrong.yaml")


def test_an_unknown_table_lists_the_bundled_ones() -> None:
    data = demo_data()
    data["limits"]["table"] = "nd-yag-1320"
    with pytest.raises(ProfileError) as exc:
        parse(yaml.safe_dump(data), "x.yaml")
    for name in TABLES:
        assert name in str(exc.value)


def test_a_table_path_is_relative_to_the_setup_file(tmp_path: Path) -> None:
    data = table_data()
    data["name"] = "clinic-b-1064"
    data["rows"][0]["fluence_j_cm2"]["max"] = 200  # a clinic tightening: a new table
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "clinic-b-1064.yaml").write_text(yaml.safe_dump(data))
    setup = demo_data()
    setup["limits"]["table"] = "tables/clinic-b-1064.yaml"
    path = tmp_path / "clinic-b.yaml"
    path.write_text(yaml.safe_dump(setup))
    loaded = load(path)
    assert loaded.table_name == "clinic-b-1064"
    assert loaded.setup.limits.settings[0].fluence_j_cm2.max == 200
    # Changing only the table changes the setup's digest.
    data["rows"][0]["fluence_j_cm2"]["max"] = 190
    (tmp_path / "tables" / "clinic-b-1064.yaml").write_text(yaml.safe_dump(data))
    assert load(path).digest != loaded.digest
    assert load(path).setup_digest == loaded.setup_digest


def test_inline_settings_still_load_and_keep_the_invariants() -> None:
    data = demo_data()
    del data["limits"]["table"]
    data["limits"]["settings"] = copy.deepcopy(table_data()["rows"])
    inline = parse(yaml.safe_dump(data), "inline.yaml")
    assert inline.table_name is None and inline.digest == inline.setup_digest
    assert inline.setup.limits.settings == load("demo-ndyag-1064").setup.limits.settings
    data["limits"]["settings"][7]["fluence_j_cm2"]["max"] = 130
    with pytest.raises(ProfileError, match="darker type V"):
        parse(yaml.safe_dump(data), "inline.yaml")


def test_the_clinic_block_is_in_the_bundled_setup() -> None:
    clinic = load("demo-ndyag-1064").setup.clinic
    assert clinic is not None
    assert clinic.emergency_contact and clinic.aftercare_instructions and clinic.name


def test_contraindications_file_is_not_listed_as_a_setup() -> None:
    from device_profiles.loader import bundled_names

    assert "contraindications" not in bundled_names()


# --- property: darker-type ceilings never exceed lighter-type ones, in every bundled table ----


TREATMENTS = [(name, site, cooling) for name in TABLES for site, cooling in treatments(ROWS[name])]


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(TREATMENTS),
    spot=st.floats(0.3, 13.0),
    pulse=st.floats(0.3, 110.0),
    lighter=st.integers(0, 5),
    darker=st.integers(0, 5),
)
def test_darker_type_ceilings_never_exceed_lighter_ones(
    where: tuple[str, TreatmentSite, CoolingMethod],
    spot: float,
    pulse: float,
    lighter: int,
    darker: int,
) -> None:
    if darker < lighter:
        lighter, darker = darker, lighter
    name, site, cooling = where
    rows = ROWS[name]
    light = effective_ceiling(rows, SKIN[lighter], spot, pulse, site, cooling)
    dark = effective_ceiling(rows, SKIN[darker], spot, pulse, site, cooling)
    if light is not None and dark is not None:
        assert dark.fluence_j_cm2 <= light.fluence_j_cm2
        assert dark.rep_rate_hz <= light.rep_rate_hz


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(TREATMENTS),
    skin=st.sampled_from(SKIN),
    spots=st.tuples(st.floats(0.3, 13.0), st.floats(0.3, 13.0)),
    pulse=st.floats(0.3, 110.0),
)
def test_ceilings_never_rise_with_spot_size(
    where: tuple[str, TreatmentSite, CoolingMethod],
    skin: SkinType,
    spots: tuple[float, float],
    pulse: float,
) -> None:
    small, large = sorted(spots)
    name, site, cooling = where
    rows = ROWS[name]
    a = effective_ceiling(rows, skin, small, pulse, site, cooling)
    b = effective_ceiling(rows, skin, large, pulse, site, cooling)
    if a is not None and b is not None:
        assert b.fluence_j_cm2 <= a.fluence_j_cm2
