"""Issue 12, item 8: a melanin index is mapped by the description of the meter that read it;
an index from an unknown meter is refused."""

from __future__ import annotations

import argparse
import io

import pytest

from device_profiles.loader import ProfileError, load_skin_meter, parse_skin_meter
from device_profiles.schema import SkinType
from monitor.cli.check import add_check_parser
from monitor.core.skin_typing import SkinTyping, SkinTypingError, melanin_to_type

EXAMPLE = load_skin_meter("example-reflectance-0-99").description

#: A meter on another scale (0-999), as a clinic would describe its own: the numbers are a
#: test's, not a meter's.
OTHER_SCALE = """\
spec: "1"
name: other-scale-0-999
version: 1
model: A reflectance meter with a 0-999 index
melanin_index: {min: 0, max: 999}
melanin_cuts:
  - {from: 150, skin_type: II}
  - {from: 250, skin_type: III}
  - {from: 350, skin_type: IV}
  - {from: 500, skin_type: V}
  - {from: 700, skin_type: VI}
border_margin: 20
source: "a test's numbers"
"""


def run_check(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_check_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["check", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


def test_item8_a_melanin_index_from_an_unknown_meter_is_refused() -> None:
    with pytest.raises(SkinTypingError, match="from an unknown meter: the cut-offs depend"):
        melanin_to_type(40.0, None)
    with pytest.raises(SkinTypingError, match="unknown meter"):
        SkinTyping.combine(SkinType.III, 40.0)


def test_item8_the_same_index_maps_by_each_meters_own_cut_offs() -> None:
    other = parse_skin_meter(OTHER_SCALE).description
    assert melanin_to_type(40.0, EXAMPLE) == (SkinType.IV, False)
    assert melanin_to_type(40.0, other) == (SkinType.I, False)
    assert melanin_to_type(400.0, other) == (SkinType.IV, False)
    with pytest.raises(SkinTypingError, match="outside 0–99 of the example-reflectance-0-99"):
        melanin_to_type(400.0, EXAMPLE)


def test_item8_the_session_record_names_the_meter_and_its_source() -> None:
    record = SkinTyping.from_melanin_index(48.0, EXAMPLE).as_record()
    assert record["skin_type"] == "V" and record["borderline"] is True
    assert record["meter"] == "example-reflectance-0-99 v1"
    assert record["mapping"] == EXAMPLE.source


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("  - {from: 250, skin_type: III}\n  - {from: 350, skin_type: IV}",
         "  - {from: 350, skin_type: IV}\n  - {from: 250, skin_type: III}"),
        ("{from: 700, skin_type: VI}", "{from: 1200, skin_type: VI}"),
        ("border_margin: 20", "border_margin: 100"),
        ('source: "a test\'s numbers"', 'source: ""'),
    ],
    ids=["types out of order", "cut outside the scale", "margin too wide", "no source"],
)  # fmt: skip
def test_item8_a_meter_description_that_cannot_map_safely_is_refused(
    change: str, words: str
) -> None:
    assert change in OTHER_SCALE
    with pytest.raises(ProfileError, match="invalid skin meter description"):
        parse_skin_meter(OTHER_SCALE.replace(change, words))


def test_item8_check_refuses_a_melanin_index_without_its_meter_in_one_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = ["--fluence", "100", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1"]
    assert run_check("--melanin-index", "40", *settings) == (2, "")
    err = capsys.readouterr().err
    assert "melanin index 40.0 from an unknown meter" in err and len(err.splitlines()) == 1
    assert run_check("--melanin-index", "40", "--skin-meter", "no-such", *settings)[0] == 2
    err = capsys.readouterr().err
    assert "unknown skin meter 'no-such'" in err and "bundled: example-reflectance-0-99" in err
