"""Issue 12, items 1-3: the bundled limit tables after the second clinical pass.

Darker skin reworked from the sources (item 1), fluence ceilings that depend on the pulse width
and pulses that lengthen for darker skin (item 2), treatment site and cooling method as
dimensions of a row (item 3). Each number a test holds a table to is the one its source gives.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

import numpy as np
import pytest
import yaml

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.limits import effective_ceiling, treatments
from device_profiles.loader import (
    ProfileError,
    bundled_table_names,
    bundled_tables_dir,
    load_table,
    parse_table,
)
from device_profiles.schema import SettingsLimit, SkinType
from monitor.core.gate import LimitTable, NoRowsForTreatment, table_from_file

SKIN = list(SkinType)
LEGS, FACE, EYE = TreatmentSite.LEGS, TreatmentSite.FACE, TreatmentSite.PERIORBITAL
CONTACT, CRYOGEN = CoolingMethod.CONTACT, CoolingMethod.CRYOGEN


@functools.cache
def rows(name: str) -> list[SettingsLimit]:
    return load_table(name).table.rows


def ceiling(
    name: str, t: SkinType, spot: float, pulse: float, site: TreatmentSite, cooling: CoolingMethod
) -> float | None:
    c = effective_ceiling(rows(name), t, spot, pulse, site, cooling)
    return None if c is None else c.fluence_j_cm2


def everywhere(name: str) -> list[tuple[TreatmentSite, CoolingMethod, float, float]]:
    """Every border and mid-gap point of a table, for each site and cooling it names."""
    out = []
    for site, cooling in treatments(rows(name)):
        mine = [r for r in rows(name) if site in r.sites and cooling in r.cooling]
        spots = sorted({b for r in mine for b in (r.spot_mm.min, r.spot_mm.max)})
        pulses = sorted({b for r in mine for b in (r.pulse_ms.min, r.pulse_ms.max)})
        spots += [(a + b) / 2 for a, b in itertools.pairwise(spots)]
        pulses += [(a + b) / 2 for a, b in itertools.pairwise(pulses)]
        out += [(site, cooling, s, p) for s in spots for p in pulses]
    return out


def table_data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((bundled_tables_dir() / f"{name}.yaml").read_bytes())
    return data


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as exc:
        parse_table(yaml.safe_dump(data), "broken.yaml")
    return str(exc.value)


# --- item 1: darker skin, from the sources --------------------------------------------------


def test_item1_595_nm_types_v_vi_are_refused_where_8_j_cm2_damaged_their_epidermis() -> None:
    """Tunnell et al. 2003: type V-VI epidermis damaged at 8 J/cm² despite cryogen (v1: 15)."""
    for site, cooling, spot, pulse in everywhere("pdl-595"):
        for t in (SkinType.V, SkinType.VI):
            c = ceiling("pdl-595", t, spot, pulse, site, cooling)
            assert c is None or c == 0.0, (t, site, spot, pulse, c)


def test_item1_595_nm_type_iv_stays_below_the_fluences_that_pigmented_asian_skin() -> None:
    """About 40 % hyperpigmentation at 7-10 J/cm² (v1 allowed type IV 19 J/cm²)."""
    ceilings = [
        ceiling("pdl-595", SkinType.IV, s, p, site, c) for site, c, s, p in everywhere("pdl-595")
    ]
    assert max(x for x in ceilings if x is not None) <= 7.0
    # ... and not with the shortest pulses (darker skin: longer pulse).
    assert ceiling("pdl-595", SkinType.IV, 4.0, 0.45, LEGS, CRYOGEN) is None


def test_item1_810_nm_types_v_vi_follow_the_published_dark_skin_series() -> None:
    """15-40 J/cm² at 30-100 ms in types V-VI (v1: 60 J/cm² from 40 ms)."""
    for t in (SkinType.V, SkinType.VI):
        assert ceiling("diode-810", t, 8.0, 60.0, LEGS, CONTACT) == 40.0
        assert ceiling("diode-810", t, 8.0, 25.0, LEGS, CONTACT) is None  # below 30 ms
    for site, cooling, spot, pulse in everywhere("diode-810"):
        c = ceiling("diode-810", SkinType.V, spot, pulse, site, cooling)
        assert c is None or c <= 40.0


def test_item1_810_nm_100_j_cm2_only_near_the_published_60_ms() -> None:
    assert ceiling("diode-810", SkinType.II, 12.0, 60.0, LEGS, CONTACT) == 100.0
    assert ceiling("diode-810", SkinType.II, 4.0, 20.0, LEGS, CONTACT) == 60.0  # v1: 100


def test_item1_755_nm_89_j_cm2_is_not_allowed_at_3_ms() -> None:
    """89 J/cm² was the mean closure threshold at 60 ms (Ross et al. 2009), not a 3 ms ceiling."""
    assert ceiling("alexandrite-755", SkinType.II, 5.0, 60.0, LEGS, CRYOGEN) == 89.0
    assert ceiling("alexandrite-755", SkinType.II, 5.0, 3.0, LEGS, CRYOGEN) == 60.0
    for site, cooling, spot, pulse in everywhere("alexandrite-755"):
        c = ceiling("alexandrite-755", SkinType.III, spot, pulse, site, cooling)
        if c is not None and pulse < 40.0:
            assert c < 89.0, (spot, pulse, c)


def test_item1_ktp_at_4_mm_stays_below_the_fluence_that_blistered() -> None:
    """4 mm, 10 ms, 9.5 J/cm² with a 4 °C tip caused vesiculation (Kauvar et al. 2002); v1
    allowed 18 J/cm² at 4 mm."""
    for site in (FACE, EYE):
        for t in (SkinType.I, SkinType.II, SkinType.III):
            for pulse in (1.0, 10.0, 30.0, 50.0):
                c = ceiling("ktp-532", t, 4.0, pulse, site, CONTACT)
                assert c is None or c < 9.5, (site, t, pulse, c)


def test_item1_1064_nm_no_millisecond_row_takes_the_sub_millisecond_figures() -> None:
    """127 and 159-223 J/cm² come from 0.65 ms pulses: no 3-100 ms ceiling reaches them."""
    assert max(r.fluence_j_cm2.max for r in rows("nd-yag-1064")) <= 150.0


def test_item1_1064_nm_unsourced_ceilings_are_flagged() -> None:
    """Every 3-6 mm ceiling and every type IV-VI ceiling says it is a clinic default."""
    dark = {SkinType.IV, SkinType.V, SkinType.VI}
    for r in rows("nd-yag-1064"):
        if r.contraindicated:
            continue
        if r.spot_mm.max > 3.0 or dark & set(r.skin_types):
            assert "clinic default, review" in r.source, r.source


@pytest.mark.parametrize("name", bundled_table_names())
def test_item1_every_ceiling_has_a_source_or_a_flag(name: str) -> None:
    cited = re.compile(r"(19|20)\d\d|NCT\d+|vendor|published")
    for r in rows(name):
        assert cited.search(r.source) or "clinic default, review" in r.source, r.source


# --- item 2: ceilings by pulse width, longer pulses for darker skin --------------------------


def test_item2_the_gate_judges_fluence_by_pulse_width() -> None:
    alex = table_from_file(load_table("alexandrite-755").table).for_treatment(LEGS, CRYOGEN)
    setting = {"fluence_j_cm2": 80.0, "spot_mm": 5.0, "rep_rate_hz": 1.0}
    assert alex.check(SkinType.II, {**setting, "pulse_ms": 60.0}).ok
    short = alex.check(SkinType.II, {**setting, "pulse_ms": 3.0})
    assert not short.ok
    (v,) = short.violations
    assert (v.setting, v.limit) == ("fluence_j_cm2", 60.0)


def test_item2_1064_nm_long_pulses_for_larger_leg_veins() -> None:
    yag = table_from_file(load_table("nd-yag-1064").table).for_treatment(LEGS, CONTACT)
    large = {"fluence_j_cm2": 110.0, "pulse_ms": 60.0, "spot_mm": 5.0, "rep_rate_hz": 1.0}
    assert yag.check(SkinType.III, large).ok
    assert yag.check(SkinType.IV, {**large, "fluence_j_cm2": 100.0}).ok
    # 40-100 ms is for the larger spots of larger veins, not for 1-3 mm.
    assert not yag.check(SkinType.III, {**large, "spot_mm": 2.0}).ok


def test_item2_a_darker_type_with_a_shorter_minimum_pulse_is_refused() -> None:
    data = table_data("nd-yag-1064")
    data["rows"][7]["pulse_ms"]["min"] = 5  # type V from 5 ms, where type IV starts at 10
    message = refused(data)
    assert "darker type V may be treated with shorter pulses than lighter type IV" in message
    assert "darker skin: longer pulse" in message


@pytest.mark.parametrize("name", bundled_table_names())
def test_item2_minimum_pulse_never_shortens_for_darker_skin(name: str) -> None:
    for site, cooling in treatments(rows(name)):
        mine = [r for r in rows(name) if site in r.sites and cooling in r.cooling]
        spots = sorted({b for r in mine for b in (r.spot_mm.min, r.spot_mm.max)})
        for spot in spots:
            shortest: float = 0.0
            for t in SKIN:
                allowed = [
                    r.pulse_ms.min
                    for r in mine
                    if t in r.skin_types
                    and not r.contraindicated
                    and r.spot_mm.min <= spot <= r.spot_mm.max
                ]
                if allowed:
                    assert min(allowed) >= shortest, (name, site, spot, t)
                    shortest = max(shortest, min(allowed))


# --- item 3: site and cooling method --------------------------------------------------------


@pytest.mark.parametrize("name", bundled_table_names())
def test_item3_every_bundled_row_states_its_sites_and_cooling(name: str) -> None:
    for i, r in enumerate(rows(name)):
        assert {"sites", "cooling"} <= r.model_fields_set, f"{name} row {i}"


def test_item3_a_row_published_with_cryogen_never_judges_contact_cooling() -> None:
    pdl = table_from_file(load_table("pdl-595").table)
    assert all(r.cooling == [CRYOGEN] for r in pdl.rows)
    with pytest.raises(NoRowsForTreatment, match="no row for legs, contact cooling"):
        pdl.for_treatment(LEGS, CONTACT)
    assert (
        pdl.for_treatment(LEGS, CRYOGEN)
        .check(
            SkinType.II,
            {"fluence_j_cm2": 20.0, "pulse_ms": 1.5, "spot_mm": 4.0, "rep_rate_hz": 1.0},
        )
        .ok
    )


def test_item3_the_site_picks_its_rows() -> None:
    yag = table_from_file(load_table("nd-yag-1064").table)
    s = {"fluence_j_cm2": 140.0, "pulse_ms": 20.0, "spot_mm": 2.0, "rep_rate_hz": 1.0}
    assert yag.for_treatment(LEGS, CONTACT).check(SkinType.III, s).ok
    face = yag.for_treatment(FACE, CONTACT).check(SkinType.III, s)
    assert not face.ok and face.violations[0].limit == 120.0
    eye = yag.for_treatment(EYE, CONTACT).check(SkinType.III, s)
    assert [v.bound for v in eye.violations] == ["contraindicated"]
    # Unnarrowed (a site not stated): every site's rows apply, the strictest wins.
    assert not yag.check(SkinType.III, s).ok


def test_item3_a_setting_no_row_of_the_site_covers_says_which_treatment() -> None:
    gap = [
        SettingsLimit(
            skin_types=SKIN,
            sites=[FACE],
            cooling=[CONTACT],
            spot_mm={"min": 1.0, "max": 3.0},
            pulse_ms={"min": lo, "max": hi},
            fluence_j_cm2={"min": 10.0, "max": 50.0},
            rep_rate_hz_max=1.0,
            source="clinic default, review",
        )
        for lo, hi in ((3.0, 10.0), (20.0, 30.0))
    ]
    table = LimitTable(gap).for_treatment(FACE, CONTACT)
    result = table.check(
        SkinType.II, {"fluence_j_cm2": 20.0, "pulse_ms": 15.0, "spot_mm": 2.0, "rep_rate_hz": 1}
    )
    (v,) = [v for v in result.violations if v.setting == "pulse_ms"]
    assert v.bound == "covered" and v.scope == "face, contact cooling"
    assert "not covered by any limit row for this skin type (face, contact cooling)" in v.explain()


def test_item3_the_invariants_hold_for_each_site_on_its_own() -> None:
    data = table_data("nd-yag-1064")
    data["rows"][13]["fluence_j_cm2"]["max"] = 110  # face type V above face type IV's 100
    message = refused(data)
    assert "darker type V" in message and "(face, contact cooling)" in message


def test_item3_a_table_with_no_row_for_a_treatment_refuses_to_be_built() -> None:
    with pytest.raises(NoRowsForTreatment):
        LimitTable([])


def test_item3_grid_and_rows_agree_on_every_bundled_table() -> None:
    """The vectorised invariant grid and the one-row-at-a-time rule give the same ceilings."""
    for name in bundled_table_names():
        for site, cooling, spot, pulse in everywhere(name)[::7]:
            for t in SKIN:
                c = effective_ceiling(rows(name), t, spot, pulse, site, cooling)
                mine = [
                    r.ceiling_j_cm2
                    for r in rows(name)
                    if site in r.sites
                    and cooling in r.cooling
                    and t in r.skin_types
                    and r.spot_mm.min <= spot <= r.spot_mm.max
                    and r.pulse_ms.min <= pulse <= r.pulse_ms.max
                ]
                assert (c is None) == (not mine)
                if c is not None:
                    assert c.fluence_j_cm2 == pytest.approx(float(np.min(mine)))
