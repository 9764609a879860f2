"""Emergency protocols and patient information as data (issue 10, item 1): strict, versioned,
digested, and checked against the interlock's halt causes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from device_profiles.loader import bundled_dir, bundled_names
from device_profiles.protocols import (
    ProtocolError,
    load_patient_information,
    load_protocols,
    parse_patient_information,
    parse_protocols,
)
from monitor.cli.main import main
from monitor.incidents.protocols import ProtocolBookError, halt_causes, load_book, parse_book

BUNDLED = bundled_dir() / "protocols.yaml"


def raw() -> str:
    return BUNDLED.read_text(encoding="utf-8")


def test_item1_the_bundled_protocols_load_with_their_digest_and_sources() -> None:
    loaded = load_protocols()
    assert loaded.digest == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    ids = {p.id for p in loaded.book.protocols}
    assert {
        "burn_or_blister", "grey_white_dusky_skin", "hyperpigmentation", "hypopigmentation",
        "telangiectatic_matting", "ulceration", "allergic_reaction", "vasovagal_reaction",
        "eye_exposure", "device_fault_exposure",
    } <= ids  # fmt: skip
    for p in loaded.book.protocols:
        assert p.source and p.immediate_steps and p.notify and p.refer_when
    assert "CTCAE" in loaded.book.severity_source
    assert [g.grade for g in loaded.book.severity_scale] == [1, 2, 3, 4, 5]


def test_item1_halt_causes_map_to_their_protocols() -> None:
    book = load_book()
    burn = book.protocol_for_halt("skin_temp_high")
    assert burn is not None and burn.id == "burn_or_blister"
    for check in ("unexpected_emission", "laser_did_not_stop"):
        p = book.protocol_for_halt(check)
        assert p is not None and p.id == "device_fault_exposure"
    assert book.protocol_for_halt("sensor_link") is None
    cause = book.for_halt("skin_temp_high")
    assert cause is not None and cause.draft_incident


def test_item1_every_halt_cause_of_the_interlock_is_mapped() -> None:
    """A new HALT check without a line in protocols.yaml fails here: map it, or null."""
    mapped = set(load_protocols().book.halt_causes)
    assert set(halt_causes()) == mapped


def test_item1_an_unmapped_or_unknown_halt_cause_is_refused() -> None:
    without = raw().replace("  laser_fault: {protocol: null}\n", "")
    with pytest.raises(ProtocolBookError, match=r"does not map .*laser_fault"):
        parse_book(without.encode())
    typo = raw().replace("laser_fault:", "laser_fualt:")
    with pytest.raises(ProtocolBookError, match="does not map"):
        parse_book(typo.encode())
    extra = raw().replace("halt_causes:\n", "halt_causes:\n  skin_temp_hgih: {protocol: null}\n")
    with pytest.raises(ProtocolBookError, match="not halt causes"):
        parse_book(extra.encode())


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("version: 2\n", "version: 2\ncolour: red\n", "colour"),
        (
            "skin_temp_high: {protocol: burn_or_blister",
            "skin_temp_high: {protocol: burns",
            "no protocol 'burns'",
        ),
        ("  - id: cold_injury\n", "  - id: burn_or_blister\n", "used twice"),
        ("{grade: 2, name: moderate", "{grade: 3, name: moderate", "grades must be"),
        ("version: 2\n", "version: 2\nversion: 3\n", "given twice"),
        ("version: 2\n", "version: yes\n", "version"),
        (
            "skin_temp_invalid: {protocol: null}",
            "skin_temp_invalid: {protocol: null, draft_incident: true}",
            "needs a protocol",
        ),
    ],
)
def test_item1_a_broken_protocols_file_is_refused_naming_the_field(
    old: str, new: str, why: str
) -> None:
    text = raw()
    assert old in text
    with pytest.raises(ProtocolError, match=why):
        parse_protocols(text.replace(old, new, 1).encode(), "protocols.yaml")


def test_item1_a_binary_or_truncated_file_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not valid YAML"):
        parse_protocols(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ProtocolError, match="invalid protocols"):
        parse_protocols(raw()[: len(raw()) // 2].rsplit("\n", 3)[0].encode())


def test_item1_a_changed_byte_is_a_new_digest() -> None:
    a = parse_protocols(raw().encode())
    b = parse_protocols((raw() + "# reviewed\n").encode())
    assert a.digest != b.digest and a.book == b.book


def test_item4_patient_information_covers_every_skin_type() -> None:
    sheets = load_patient_information()
    assert sheets.sheets.after.call_now_if
    text = (bundled_dir() / "patient-information.yaml").read_text()
    with pytest.raises(ProtocolError, match="lacks types"):
        parse_patient_information(
            "\n".join(ln for ln in text.splitlines() if not ln.startswith("    VI: [")).encode()
        )


def test_item1_profiles_validate_knows_protocols_and_patient_information(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sheets = bundled_dir() / "patient-information.yaml"
    assert main(["profiles", "validate", str(BUNDLED), str(sheets)]) == 0
    out = capsys.readouterr().out
    assert "emergency protocols v2" in out and "patient information v1" in out
    bad = tmp_path / "protocols.yaml"
    bad.write_text(raw().replace("  laser_fault: {protocol: null}\n", ""))
    assert main(["profiles", "validate", str(bad)]) == 1
    assert "laser_fault" in capsys.readouterr().out
    assert "protocols" not in bundled_names() and "patient-information" not in bundled_names()
