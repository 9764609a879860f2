"""docs/limits.md carries every bundled ceiling with its source or flag, generated from the
tables: a changed table without a regenerated document fails here."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from device_profiles.limits_doc import BEGIN, END, FLAG, render, replaced
from device_profiles.loader import bundled_table_names, load_table
from device_profiles.schema import Limits

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
        if FLAG in row.source:
            mark = "**flag**: "
        elif "verify" in row.source.lower():
            mark = "sourced, **verify**: "
        else:
            mark = "sourced: "
        assert "| " + mark + row.source.replace("|", "/") + " |" in generated


def test_item1_a_row_that_asks_to_verify_its_source_is_not_labelled_plainly_sourced() -> None:
    """The 810 nm type V-VI row cites a series it says to verify: before, it read "sourced"."""
    generated = render()
    verify_rows = [line for line in generated.splitlines() if "verify" in line.lower()]
    assert verify_rows
    for line in verify_rows:
        assert "| sourced: " not in line, line
    assert "| sourced, **verify**: 800-810 nm series in types V-VI" in generated


def test_item1_a_document_without_the_generated_part_is_not_overwritten() -> None:
    with pytest.raises(ValueError, match="no generated part"):
        replaced("# limits\n", render())
    assert replaced(f"a\n{BEGIN}\nold\n{END}\nb\n", "new") == f"a\n{BEGIN}\n\nnew\n\n{END}\nb\n"


def _field_exists(path: list[str]) -> bool:
    """Whether ``limits.<path>`` names a field of the setup schema (nested models followed)."""
    model: type[BaseModel] | None = Limits
    keys: tuple[object, ...] = ()  # a dict field's allowed keys (``stale_ms.sensor``)
    for part in path:
        if keys:
            if part not in keys:
                return False
            keys = ()
            continue
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        if typing.get_origin(annotation) is dict:
            keys = typing.get_args(typing.get_args(annotation)[0])
        kinds = (annotation, *typing.get_args(annotation))
        model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
    return True


def test_item7_every_limits_field_the_docs_name_exists() -> None:
    """Issue 12 audit: the docs named ``limits.thermal_dose_max_cem43``, a field that never
    existed (the real one: ``limits.thermal_dose.cem43_halt_min``). A clinic copying it into
    a profile would get a refusal, or believe in a limit that is not there."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    named = {
        (doc.name, m.rstrip("."))
        for doc in docs.glob("*.md")
        for m in re.findall(r"`limits\.([a-z0-9_.]+)", doc.read_text(encoding="utf-8"))
    }
    assert named, "the docs name limits fields"
    missing = sorted((doc, f) for doc, f in named if not _field_exists(f.split(".")))
    assert missing == [], missing
