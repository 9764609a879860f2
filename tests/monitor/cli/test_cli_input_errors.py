"""Issue 7 item 12: bad input to ``laserguard`` is a non-zero exit with one sentence, never a
traceback.

Each case is run as a user runs it: ``main([...])`` with the real parser, or the installed
``laserguard`` entry point in a subprocess. Bad input is caught before any device is touched,
so none of these needs a simulator (the bridge's refusals against one: tests/e2e).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from device_profiles.loader import load_contraindications
from monitor.cli.exit_status import ExitStatus
from monitor.cli.main import main

BAD_INPUT, REFUSED = ExitStatus.BAD_INPUT, ExitStatus.REFUSED
SETTINGS = ["--fluence", "120", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1"]
HEADER = "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz\n"


def laserguard(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit status and stderr of one command."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_sentence(err: str, *words: str) -> str:
    """The single line a refused command prints: no traceback, names what is wrong."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("laserguard "), err
    for word in words:
        assert word in lines[0], (word, err)
    return lines[0]


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("laserguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


# --- laserguard check --csv -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (HEADER.encode() + b"120,30,3,1,III\n" + bytes(range(128, 256)), ["not UTF-8"]),
        (HEADER.encode() + "130,30,3,1 # réglage\n".encode("latin-1"), ["not UTF-8", "0xe9"]),
        (bytes(range(256)) * 4, ["not UTF-8"]),
    ],
    ids=["binary-tail", "latin-1", "binary"],
)
def test_item12_check_a_csv_that_is_not_utf8_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, words: list[str]
) -> None:
    csv = tmp_path / "proposals.csv"
    csv.write_bytes(content)
    code, err = laserguard(capsys, "check", "--skin-type", "III", "--csv", str(csv))
    assert code == BAD_INPUT
    one_sentence(err, "proposals.csv", *words)


def test_item12_check_a_csv_row_with_an_extra_column_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "proposals.csv"
    csv.write_text(HEADER + "120,30,3,1\n120,30,3,1,250\n", encoding="utf-8")
    code, err = laserguard(capsys, "check", "--skin-type", "III", "--csv", str(csv))
    assert code == BAD_INPUT
    one_sentence(err, "line 3", "5 values", "4 header columns")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (HEADER + "120,30,3\n", ["line 2", "3 values"]),
        (HEADER + "120,30,3,1\x00\n", ["NUL"]),
        (
            "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz,fluence_j_cm2\n120,30,3,1,500\n",
            ["fluence_j_cm2 more than once"],
        ),
    ],
    ids=["short-row", "nul-byte", "column-twice"],
)
def test_item12_check_a_malformed_csv_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, words: list[str]
) -> None:
    # A column named twice would let the second fluence silently replace the first.
    csv = tmp_path / "proposals.csv"
    csv.write_text(text, encoding="utf-8")
    code, err = laserguard(capsys, "check", "--skin-type", "III", "--csv", str(csv))
    assert code == BAD_INPUT
    one_sentence(err, *words)


# --- laserguard bridge --risk -----------------------------------------------------------------


def answers_no() -> dict[str, bool]:
    return {q.id: False for q in load_contraindications().questions}


def bridge_with_risk(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes
) -> tuple[int, str]:
    risk = tmp_path / "risk.yaml"
    if isinstance(content, bytes):
        risk.write_bytes(content)
    else:
        risk.write_text(content, encoding="utf-8")
    return laserguard(
        capsys, "bridge", "--patient", "P-1", "--skin-type", "III", "--risk", str(risk),
        "--db", str(tmp_path / "log.sqlite3"), "--duration", "1", *SETTINGS,
    )  # fmt: skip


def test_item12_risk_file_with_invalid_yaml_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = bridge_with_risk(capsys, tmp_path, "answers: {pregnancy: no\n  tan: [\n")
    assert code == BAD_INPUT
    one_sentence(err, "risk.yaml", "not valid YAML", "line")


def test_item12_risk_attestation_given_as_a_string_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = {"answers": {**answers_no(), "anticoagulants": True}, "attestation": "Dr. Vega"}
    code, err = bridge_with_risk(capsys, tmp_path, yaml.safe_dump(doc))
    assert code == BAD_INPUT
    one_sentence(err, "attestation", "clinician, statement and covers", "'Dr. Vega'")


def test_item12_risk_answer_to_an_unknown_question_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = {"answers": {**answers_no(), "pregancy": True}}  # a typo: the real one is answered no
    code, err = bridge_with_risk(capsys, tmp_path, yaml.safe_dump(doc))
    assert code == BAD_INPUT
    one_sentence(err, "'pregancy' is not a question", "pregnancy")


def test_item12_risk_answer_maybe_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = {"answers": {**answers_no(), "pregnancy": "maybe"}}
    code, err = bridge_with_risk(capsys, tmp_path, yaml.safe_dump(doc))
    assert code == BAD_INPUT
    one_sentence(err, "'pregnancy' must be yes or no", "'maybe'")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d["answers"].pop("pregnancy"), ["not answered: pregnancy"]),
        (lambda d: d.update(attestaton={"clinician": "Dr. V"}), ["unknown keys", "attestaton"]),
        (
            lambda d: d.update(
                attestation={"clinician": "Dr. V", "statement": "ok", "covers": "anticoagulants"}
            ),
            ["list of question ids"],
        ),
        (
            lambda d: d.update(
                attestation={"clinician": "Dr. V", "statement": "ok", "covers": ["pregnancy"]}
            ),
            ["only relative", "'pregnancy'"],
        ),
        (lambda d: d["answers"].update(pregnancy=None), ["yes or no", "nothing"]),
    ],
    ids=["unanswered", "misspelt-attestation", "covers-a-string", "covers-an-absolute", "empty"],
)
def test_item12_risk_file_that_is_not_the_form_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mutate: object, words: list[str]
) -> None:
    doc: dict[str, object] = {"answers": answers_no()}
    assert callable(mutate)
    mutate(doc)
    code, err = bridge_with_risk(capsys, tmp_path, yaml.safe_dump(doc))
    assert code == BAD_INPUT
    one_sentence(err, *words)


def test_item12_risk_answers_yes_and_no_as_words_are_read(tmp_path: Path) -> None:
    from monitor.cli.risk_file import load_risk

    risk = tmp_path / "risk.yaml"
    text = "answers:\n" + "".join(f"  {qid}: no\n" for qid in answers_no())
    risk.write_text(text.replace("pregnancy: no", "pregnancy: yes"), encoding="utf-8")
    outcome = load_risk(risk)
    assert outcome.absolute == ("pregnancy",) and not outcome.arming_allowed


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"answers: {pregnancy: n"],
    ids=["binary", "truncated"],
)
def test_item12_risk_file_binary_or_truncated_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes
) -> None:
    code, err = bridge_with_risk(capsys, tmp_path, content)
    assert code == BAD_INPUT
    one_sentence(err, "risk.yaml", "not valid YAML")


# --- laserguard bridge --endpoints ------------------------------------------------------------


def bridge_with_endpoints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, endpoints: Path
) -> tuple[int, str]:
    return laserguard(
        capsys, "bridge", "--patient", "P-1", "--skin-type", "III", "--mode", "test",
        "--endpoints", str(endpoints), "--db", str(tmp_path / "log.sqlite3"), "--duration", "1",
    )  # fmt: skip


def test_item12_a_missing_endpoints_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = bridge_with_endpoints(capsys, tmp_path, tmp_path / "runs" / "endpoints.json")
    assert code == BAD_INPUT
    one_sentence(err, "cannot read the endpoints file", "No such file")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"laser": "/dev/pts/9", "cooler": {"host": "127.0.0.1", ', ["not valid JSON", "line 1"]),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ["not UTF-8"]),
        (b'["/dev/pts/9"]', ["JSON object"]),
        (b'{"cooler": "127.0.0.1:15020"}', ["cooler", "host and port"]),
        (b'{"lasr": "/dev/pts/9"}', ["unknown devices", "lasr"]),
        (b'{"laser": 9}', ["laser", "serial port"]),
        (b'{"cooler": {"host": "127.0.0.1", "port": "15020"}}', ["cooler", "port", "'15020'"]),
    ],
    ids=[
        "truncated",
        "binary",
        "a-list",
        "address-as-text",
        "unknown-device",
        "laser-as-number",
        "port-as-text",
    ],
)
def test_item12_a_malformed_endpoints_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, words: list[str]
) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_bytes(content)
    code, err = bridge_with_endpoints(capsys, tmp_path, endpoints)
    assert code == BAD_INPUT
    one_sentence(err, *words)


def test_item12_endpoints_cannot_change_a_device_timing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Timing is part of the setup, its digest and its reaction-time budget: an address file
    # that slows the sensor would change what the session promises without a trace.
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(
        json.dumps({"sensor": {"host": "127.0.0.1", "port": 15021, "timeout_ms": 4000}})
    )
    code, err = bridge_with_endpoints(capsys, tmp_path, endpoints)
    assert code == BAD_INPUT
    one_sentence(err, "sensor", "only host and port", "timeout_ms")


# --- arguments --------------------------------------------------------------------------------


def test_item12_bridge_with_some_settings_missing_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = laserguard(
        capsys, "bridge", "--patient", "P-1", "--skin-type", "III", "--mode", "test",
        "--db", str(tmp_path / "log.sqlite3"), "--fluence", "120", "--arm",
    )  # fmt: skip
    assert code == BAD_INPUT
    one_sentence(err, "all four settings")


def test_item12_bridge_arm_without_settings_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # --arm used to be ignored without settings: the operator believed the laser armable.
    code, err = laserguard(
        capsys, "bridge", "--patient", "P-1", "--skin-type", "III", "--mode", "test",
        "--db", str(tmp_path / "log.sqlite3"), "--arm",
    )  # fmt: skip
    assert code == BAD_INPUT
    one_sentence(err, "--arm needs the settings")


def test_item12_demo_with_an_unknown_scenario_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = laserguard(
        capsys, "demo", "--headless", "--scenario", "meteor-strike",
        "--db", str(tmp_path / "log.sqlite3"), "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == BAD_INPUT
    one_sentence(err, "meteor-strike", "normal")


# --- the real entry point -----------------------------------------------------------------------


def test_item12_exit_codes_are_in_the_help() -> None:
    done = subprocess.run(
        [*entry_point(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    text = done.stdout
    assert "exit status:" in text
    for line in ("  0  done as asked", "  1  refused or halted", "  2  bad input"):
        assert line in text


@pytest.mark.parametrize("what", ["csv", "risk"])
def test_item12_bad_input_through_the_installed_command(tmp_path: Path, what: str) -> None:
    if what == "csv":
        (tmp_path / "p.csv").write_bytes(HEADER.encode() + b"120,30,3,1,9\n")
        argv = ["check", "--skin-type", "III", "--csv", str(tmp_path / "p.csv")]
    else:
        (tmp_path / "r.yaml").write_text("answers: {}\nattestation: Dr. Vega\n")
        argv = ["bridge", "--patient", "P-1", "--risk", str(tmp_path / "r.yaml"),
                "--skin-type", "III", "--db", str(tmp_path / "log.sqlite3")]  # fmt: skip
    done = subprocess.run(
        [*entry_point(), *argv],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    assert done.returncode == BAD_INPUT, done.stderr
    one_sentence(done.stderr)


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--headless", "--speed", "0"],
        ["demo", "--headless", "--duration", "nan"],
        ["bridge", "--patient", "P-1", "--mode", "test", "--duration", "-5"],
    ],
    ids=["speed-zero", "duration-nan", "duration-negative"],
)
def test_item12_a_time_or_speed_that_is_not_positive_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # A session of -5 s, or a simulator that never advances, is not what anyone asked for.
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err and "must be a positive number" in err
