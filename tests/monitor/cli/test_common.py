"""Issue 8 item 1: one place for what the subcommands share (``monitor.cli.common``); each
subcommand parses a skin type, the settings and the session log's path the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from device_profiles.loader import DEFAULT_SETUP
from device_profiles.schema import SkinType
from monitor.cli import common
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.cli.main import build_parser, main

SETTINGS = ["--fluence", "120", "--pulse-ms", "30", "--spot-mm", "3", "--rate-hz", "1"]
COMMANDS = {
    "demo": ["demo"],
    "bridge": ["bridge", "--patient", "P-1"],
    "check": ["check"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("text", ["III", "iii", " iii "])
def test_item1_every_subcommand_reads_a_skin_type_alike(command: str, text: str) -> None:
    args = build_parser().parse_args([*COMMANDS[command], "--skin-type", text])
    assert args.skin_type is SkinType.III


@pytest.mark.parametrize("command", COMMANDS)
def test_item1_every_subcommand_refuses_a_skin_type_alike(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*COMMANDS[command], "--skin-type", "VII"])
    assert exc.value.code == ExitStatus.BAD_INPUT
    assert "skin type must be one of I..VI, not 'VII'" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_item1_every_subcommand_reads_the_settings_alike(command: str) -> None:
    args = build_parser().parse_args([*COMMANDS[command], *SETTINGS])
    assert common.settings_from(args) == {
        "fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0,
    }  # fmt: skip


def test_item1_some_settings_but_not_all_is_bad_input() -> None:
    args = argparse.Namespace(fluence=120.0, pulse_ms=None, spot_mm=3.0, rate_hz=1.0)
    with pytest.raises(BadInput, match="give all four settings: --fluence --pulse-ms"):
        common.settings_from(args)
    none = argparse.Namespace(fluence=None, pulse_ms=None, spot_mm=None, rate_hz=None)
    assert common.settings_from(none) is None


@pytest.mark.parametrize("env", [None, "", "elsewhere/log.sqlite3"])
def test_item1_every_subcommand_takes_the_same_session_log_by_default(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    """An empty $LASERGUARD_DB is no setting (the demo and the bridge used to log to "")."""
    if env is None:
        monkeypatch.delenv(common.DB_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(common.DB_ENV_VAR, env)
    expected = env or "runs/laserguard.sqlite3"
    parser = build_parser()
    for argv in (["demo"], ["bridge", "--patient", "P-1"], ["sessions", "list"]):
        assert parser.parse_args(argv).db == expected, argv


def test_item1_the_default_setup_is_the_bundled_one() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).setup == DEFAULT_SETUP
    assert parser.parse_args(["bridge", "--patient", "P-1"]).setup == DEFAULT_SETUP
    assert parser.parse_args(["sim"]).setup == DEFAULT_SETUP


def test_item1_endpoints_move_the_devices_of_the_setup(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text('{"sensor": {"host": "127.0.0.1", "port": 40001}}', encoding="utf-8")
    loaded, setup = common.load_setup(DEFAULT_SETUP, str(endpoints))
    assert setup.sensor.transport.port == 40001  # type: ignore[union-attr]
    assert loaded.setup.sensor.transport.port != 40001  # type: ignore[union-attr]
    plain, unmoved = common.load_setup(DEFAULT_SETUP)
    assert unmoved is plain.setup


def test_item1_a_missing_endpoints_file_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["bridge", "--patient", "P-1", "--mode", "test", "--skin-type", "III",
                 "--endpoints", str(tmp_path / "none.json"),
                 "--db", str(tmp_path / "log.sqlite3")])  # fmt: skip
    assert code == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("laserguard bridge: cannot read the endpoints file") and "\n" not in err
