"""``laserguard profiles``: list, show, validate, schema, timing."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
import yaml

from device_profiles.loader import bundled_tables_dir
from monitor.cli.profiles import add_profiles_parser


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_profiles_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["profiles", *argv])
    out = io.StringIO()
    args.out = out
    code: int = args.func(args)
    return code, out.getvalue()


def test_list_names_setups_and_tables() -> None:
    code, text = run("list")
    assert code == 0
    assert "demo-ndyag-1064" in text and "limits: nd-yag-1064" in text
    for name in ("ktp-532", "pdl-595", "alexandrite-755", "diode-810", "diode-940-980"):
        assert name in text
    assert "940–980 nm" in text
    assert "contraindications" not in text


def test_show_a_setup_prints_its_limits_digests_and_clinic() -> None:
    code, text = run("show", "demo-ndyag-1064")
    assert code == 0
    assert "limit table nd-yag-1064" in text and "table sha256" in text
    assert "V          spot 1–3 mm, pulse 15–30 ms: 60–110 J/cm²" in text
    assert "for: legs; contact cooling" in text and "for: periorbital; contact cooling" in text
    assert "emergency contact" in text


def test_show_a_table_marks_contraindications() -> None:
    code, text = run("show", "ktp-532")
    assert code == 0
    assert "IV,V,VI" in text and "CONTRAINDICATED" in text


def test_show_an_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("show", "nd-yag-1320")
    assert code == 2
    assert "bundled" in capsys.readouterr().err


def test_validate_reports_each_file(tmp_path: Path) -> None:
    data = yaml.safe_load((bundled_tables_dir() / "nd-yag-1064.yaml").read_bytes())
    data["rows"][7]["fluence_j_cm2"]["max"] = 130  # type V 1-3 mm above type IV's 120
    bad = tmp_path / "bad-table.yaml"
    bad.write_text(yaml.safe_dump(data))
    good = bundled_tables_dir() / "ktp-532.yaml"
    code, text = run("validate", str(good), str(bad))
    assert code == 1
    assert text.startswith(f"ok  {good}: limit table ktp-532")
    assert "BAD" in text and "darker type V" in text


@pytest.mark.parametrize(
    ("flag", "key"),
    [((), "laser"), (("--table",), "rows"), (("--contraindications",), "questions")],
)
def test_schema_prints_json_schema(flag: tuple[str, ...], key: str) -> None:
    code, text = run("schema", *flag)
    assert code == 0
    schema = json.loads(text)
    assert key in schema["properties"]


def test_setup_schema_shows_table_and_clinic() -> None:
    schema = json.loads(run("schema")[1])
    assert "clinic" in schema["properties"]
    assert "table" in schema["$defs"]["Limits"]["properties"]


def test_timing_prints_the_budget() -> None:
    code, text = run("timing", "demo-ndyag-1064")
    assert code == 0
    assert "worst case" in text


# --- issue 7 item 13: validate recognises each kind of data file ------------------------------


def test_item13_validate_recognises_each_bundled_kind() -> None:
    from device_profiles.loader import bundled_dir
    from sim.scenario import scenarios_dir

    files = [
        bundled_dir() / "contraindications.yaml",
        bundled_dir() / "demo-ndyag-1064.yaml",
        bundled_tables_dir() / "pdl-595.yaml",
        scenarios_dir() / "cooling-failure.yaml",
    ]
    code, text = run("validate", *map(str, files))
    assert code == 0, text
    lines = text.splitlines()
    from device_profiles.loader import load_contraindications

    form = load_contraindications()
    kind = f"contraindications v{form.version}, {len(form.questions)} questions"
    assert lines[0].startswith(f"ok  {files[0]}: {kind}")
    assert lines[1].startswith(f"ok  {files[1]}: setup demo-ndyag-1064")
    assert lines[2].startswith(f"ok  {files[2]}: limit table pdl-595")
    assert lines[3].startswith(f"ok  {files[3]}: scenario cooling-failure, 2 events")


def test_item13_validate_checks_contraindications_with_their_own_schema(tmp_path: Path) -> None:
    from device_profiles.loader import bundled_dir

    data = yaml.safe_load((bundled_dir() / "contraindications.yaml").read_bytes())
    data["questions"][0]["restrictions"] = {"fluence_factor": 0.5}  # on an absolute one
    bad = tmp_path / "contraindications.yaml"
    bad.write_text(yaml.safe_dump(data))
    code, text = run("validate", str(bad))
    assert code == 1
    assert "invalid contraindications" in text and "invalid setup" not in text
    assert "an absolute contraindication refuses; no restrictions" in text


def test_item13_validate_checks_a_scenario_with_its_own_schema(tmp_path: Path) -> None:
    bad = tmp_path / "scenario.yaml"
    bad.write_text(
        "name: hot\ndescription: x\nskin_type: III\nseed: 1\n"
        "settings: {fluence_j_cm2: 120, pulse_ms: 30, spot_mm: 3, rep_rate_hz: 1}\n"
        "events: [{t_s: 1, action: meteor}]\n"
    )
    code, text = run("validate", str(bad))
    assert code == 1
    assert "invalid scenario" in text and "invalid setup" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"patient: P-17\nnotes: none\n", "not a LaserGuard data file"),
        (b"rows: []\nquestions: []\n", "limit table and contraindications"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not valid YAML"),
        (b"spec: '1'\nname: trunc\nlaser: {model: x, wavelength_nm: 10", "not valid YAML"),
    ],
    ids=["unknown-kind", "two-kinds", "binary", "truncated"],
)
def test_item13_validate_says_what_a_file_is_not(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "mystery.yaml"
    path.write_bytes(content)
    code, text = run("validate", str(path))
    assert code == 1
    assert text.startswith(f"BAD {path}: ") and expected in text


def test_item13_show_names_the_kind_of_another_data_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from device_profiles.loader import bundled_dir

    path = bundled_dir() / "contraindications.yaml"
    code, _ = run("show", str(path))
    assert code == 2
    err = capsys.readouterr().err
    assert "is a contraindications file" in err and "invalid setup" not in err
