"""``laserguard check``: one setting or a CSV, plain-words refusals, exit codes."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from monitor.cli.check import add_check_parser

BASE = ["--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1"]


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_check_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["check", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


def test_a_setting_within_limits_passes() -> None:
    code, text = run("--skin-type", "III", "--fluence", "120", *BASE)
    assert code == 0
    assert "PASS: within limits" in text
    assert "note: epidermal cooling required" in text


def test_a_refusal_is_explained_naming_the_limit() -> None:
    code, text = run("--setup", "demo-ndyag-1064", "--skin-type", "V", "--fluence", "170", *BASE)
    assert code == 1
    assert "REFUSED" in text
    assert "fluence 170 J/cm² is above the maximum of 90 J/cm² (by 80 J/cm²" in text


def test_a_melanin_index_picks_the_darker_type() -> None:
    code, text = run(  # borderline -> V
        "--melanin-index", "48", "--skin-meter", "example-reflectance-0-99", "--fluence", "150",
        *BASE,
    )  # fmt: skip
    assert code == 1
    assert "type V from melanin index 48 (example-reflectance-0-99)" in text


def test_a_bundled_table_directly() -> None:
    code, text = run("--table", "ktp-532", "--skin-type", "V", "--fluence", "10", *BASE)
    assert code == 1
    assert "contraindicated" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--skin-type", "III", "--fluence", "120"],  # missing settings
        ["--fluence", "120", *BASE],  # no skin type
        # index out of range
        [
            "--melanin-index",
            "120",
            "--skin-meter",
            "example-reflectance-0-99",
            "--fluence",
            "120",
            *BASE,
        ],
        ["--melanin-index", "40", "--fluence", "120", *BASE],  # no meter: unknown scale
        ["--melanin-index", "40", "--skin-meter", "mexameter-x", "--fluence", "120", *BASE],
        ["--setup", "nope", "--skin-type", "III", "--fluence", "120", *BASE],
    ],
)
def test_bad_input_exits_2(argv: list[str]) -> None:
    assert run(*argv)[0] == 2


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "proposals.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


CSV = """fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz,skin_type
120,30,3,1,III
250,30,3,1,III
100,5,2,1,IV
100,25,2,1,
"""


def test_a_csv_gives_a_verdict_per_row(tmp_path: Path) -> None:
    code, text = run("--csv", write_csv(tmp_path, CSV), "--skin-type", "VI")
    assert code == 1
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["row", "type"] and "verdict" in lines[1]
    assert "PASS" in lines[2]
    assert "REFUSED" in lines[3] and "above the maximum of 120 J/cm²" in lines[3]
    assert "REFUSED" in lines[4] and "pulse width 5 ms is below the minimum of 10 ms" in lines[4]
    assert lines[5].split()[1] == "VI" and "PASS" in lines[5]  # the default type fills in
    assert lines[-1] == "2 passed, 2 refused"


def test_a_csv_as_json(tmp_path: Path) -> None:
    code, text = run("--csv", write_csv(tmp_path, CSV), "--skin-type", "VI", "--json")
    assert code == 1
    doc = json.loads(text)
    assert doc["table"] == "nd-yag-1064"
    assert [r["ok"] for r in doc["results"]] == [True, False, False, True]
    (v,) = doc["results"][1]["violations"]
    assert (v["setting"], v["value"], v["limit"], v["margin"]) == (
        "fluence_j_cm2", 250.0, 120.0, 130.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "fluence_j_cm2,pulse_ms,spot_mm\n120,30,3\n",  # a missing column
        "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz\nlots,30,3,1\n",  # not a number
        "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz,skin_type\n120,30,3,1,VII\n",
        "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz\n",  # no rows
    ],
)
def test_a_bad_csv_exits_2(tmp_path: Path, text: str) -> None:
    assert run("--csv", write_csv(tmp_path, text), "--skin-type", "III")[0] == 2
