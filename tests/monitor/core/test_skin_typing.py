"""Skin typing: a clinician's type, or a melanin index mapped conservatively by the
description of the meter that read it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.loader import load_skin_meter
from device_profiles.schema import SkinType
from monitor.core.skin_typing import SkinTyping, SkinTypingError
from monitor.core.skin_typing import melanin_to_type as mapped_by

METER = load_skin_meter("example-reflectance-0-99").description
BORDER_MARGIN = METER.border_margin
CUTS = METER.cuts()


def melanin_to_type(index: float) -> tuple[SkinType, bool]:
    return mapped_by(index, METER)


@pytest.mark.parametrize(
    ("index", "expected", "borderline"),
    [
        (0, SkinType.I, False),
        (10, SkinType.I, False),
        (13, SkinType.II, True),  # within 2 of the type II cut at 15
        (15, SkinType.II, False),
        (30, SkinType.III, False),
        (34, SkinType.IV, True),
        (40, SkinType.IV, False),
        (49.5, SkinType.V, True),
        (60, SkinType.V, False),
        (68, SkinType.VI, True),
        (99, SkinType.VI, False),
    ],
)
def test_melanin_index_maps_to_a_type(index: float, expected: SkinType, borderline: bool) -> None:
    assert melanin_to_type(index) == (expected, borderline)


@pytest.mark.parametrize("index", [-0.1, 99.5, 150, float("nan"), float("inf")])
def test_an_index_outside_0_to_99_is_refused(index: float) -> None:
    with pytest.raises(SkinTypingError, match="outside 0–99 of the example-reflectance-0-99"):
        SkinTyping.from_melanin_index(index, METER)


@given(st.floats(0, 99))
def test_the_mapping_never_gives_a_lighter_type_than_the_plain_cuts(index: float) -> None:
    plain = SkinType.I
    for cut, darker in CUTS:
        if index >= cut:
            plain = darker
    mapped, borderline = melanin_to_type(index)
    assert mapped.rank >= plain.rank
    assert borderline == (mapped != plain)
    # ...and a borderline reading moves up by one type only.
    assert mapped.rank - plain.rank <= 1


@given(st.floats(0, 99), st.floats(0, BORDER_MARGIN))
def test_a_higher_reading_never_maps_to_a_lighter_type(index: float, more: float) -> None:
    higher = min(index + more, 99.0)
    assert melanin_to_type(higher)[0].rank >= melanin_to_type(index)[0].rank


def test_with_both_the_darker_type_wins_and_is_recorded() -> None:
    typing = SkinTyping.combine(SkinType.III, 34.0, METER)
    assert typing.skin_type is SkinType.IV
    assert typing.method == "both" and typing.borderline
    record = typing.as_record()
    assert record["skin_type"] == "IV" and record["clinician_type"] == "III"
    assert "darker of the clinician's III" in typing.explain()
    assert record["meter"] == "example-reflectance-0-99 v1"
    assert "clinic default, review" in str(record["mapping"])
    assert SkinTyping.combine(SkinType.V, 10.0, METER).skin_type is SkinType.V


def test_clinician_type_alone() -> None:
    typing = SkinTyping.combine(SkinType.II)
    assert typing.skin_type is SkinType.II and typing.method == "clinician"
    assert typing.as_record()["melanin_index"] is None


def test_no_typing_at_all_is_refused() -> None:
    with pytest.raises(SkinTypingError):
        SkinTyping.combine()
