"""docs/limits.md carries every bundled ceiling with its source or flag, generated from the
tables: a changed table without a regenerated document fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles.limits_doc import BEGIN, END, FLAG, render, replaced
from device_profiles.loader import bundled_table_names, load_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "limits.md"


def test_item1_the_documented_ceilings_are_the_bundled_tables() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert replaced(text, render()) == text, (
        "run: python -m device_profiles.limits_doc docs/limits.md"
    )


@pytest.mark.parametrize("name", bundled_table_names())
def test_item1_every_documented_row_says_sourced_or_flag(name: str) -> None:
    table = load_table(name).table
    generated = render()
    for row in table.rows:
        mark = "**flag**: " if FLAG in row.source else "sourced: "
        assert mark + row.source.replace("|", "/") in generated


def test_item1_a_document_without_the_generated_part_is_not_overwritten() -> None:
    with pytest.raises(ValueError, match="no generated part"):
        replaced("# limits\n", render())
    assert replaced(f"a\n{BEGIN}\nold\n{END}\nb\n", "new") == f"a\n{BEGIN}\n\nnew\n\n{END}\nb\n"
