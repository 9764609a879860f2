"""Issue 11 item 1: ``laserguard profiles validate`` recognises an energy-meter description."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from device_profiles.loader import bundled_meters_dir, load_meter
from monitor.cli.profiles import add_profiles_parser
from tests.device_profiles.meter_setups import METERS, edited, meter_text


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_profiles_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["profiles", *argv])
    out = io.StringIO()
    args.out = out
    code: int = args.func(args)
    return code, out.getvalue()


def test_item1_validate_recognises_both_bundled_meters() -> None:
    files = [bundled_meters_dir() / f"{name}.yaml" for name in METERS]
    code, text = run("validate", *map(str, files))
    assert code == 0, text
    for line, path, name in zip(text.splitlines(), files, METERS, strict=True):
        digest = load_meter(name).digest
        assert line == f"ok  {path}: energy meter {name} v1, sha256 {digest}"


def test_item1_validate_checks_a_meter_with_its_own_schema(tmp_path: Path) -> None:
    bad = tmp_path / "meter.yaml"
    bad.write_text(edited(meter_text("ophir-style"), 'answer: "*{energy:.3E}"', 'answer: "x"'))
    code, text = run("validate", str(bad))
    assert code == 1
    assert text.startswith(f"BAD {bad}: invalid meter description")
    assert "read_energy.reply does not match the meter's answer 'x'" in text
    assert "invalid setup" not in text


def test_item1_show_sends_a_meter_file_to_validate(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("show", str(bundled_meters_dir() / "scpi-style.yaml"))
    assert code == 2
    err = capsys.readouterr().err
    assert "is a meter description file" in err and "profiles validate" in err
