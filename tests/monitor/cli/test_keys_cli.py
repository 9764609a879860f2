"""`laserguard keys`, `sessions verify` against signed checkpoints, and a bridge refusing a
log behind them (issue 16 item 3), through the real command line and real files."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from device_profiles.loader import resolve
from monitor.cli.main import main
from monitor.record.anchor import anchor_for, checkpoint_path
from monitor.record.sqlite_store import SessionLog


@pytest.fixture
def anchored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path]:
    """(log, key file, setup file naming the key) after `keys init` and one session."""
    db = tmp_path / "runs" / "log.sqlite3"
    assert main(["keys", "init", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    public = re.search(r"public_key: (ed25519:[0-9a-f]{64})", out)
    assert public is not None, out
    setup = tmp_path / "setup.yaml"
    text = resolve("demo-ndyag-1064").read_text(encoding="utf-8")
    setup.write_text(text + f"\nanchor:\n  public_key: {public.group(1)}\n", encoding="utf-8")
    key = db.parent / "anchor-ed25519.key"
    assert key.stat().st_mode & 0o777 == 0o600
    session(db, public.group(1))
    return db, key, setup


def session(db: Path, public: str) -> None:
    with SessionLog(db, anchor=anchor_for(db, public)) as log:
        sid = log.start_session(operator="op", patient_id="P-1", skin_type="II",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        log.append(sid, "note", {"n": 1})
        log.end_session(sid, "done")


def public_of(setup: Path) -> str:
    found = re.search(r"ed25519:[0-9a-f]{64}", setup.read_text())
    assert found is not None
    return found.group(0)


def verify(db: Path, setup: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["sessions", "verify", "--db", str(db), "--setup", str(setup)])
    out, err = capsys.readouterr()
    return code, out, err


def test_item3_verify_says_anchored(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, setup = anchored
    code, out, _ = verify(db, setup, capsys)
    assert code == 0
    assert out.startswith("OK:") and "at or past its newest checkpoint" in out


def test_item3_verify_names_a_truncated_tail(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, setup = anchored
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)")
    conn.commit()
    conn.close()
    code, out, _ = verify(db, setup, capsys)
    assert code == 1
    assert out.startswith("TRUNCATED:") and "are missing" in out


def test_item3_verify_names_a_rolled_back_log(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, setup = anchored
    backup = db.with_name("copy.sqlite3")
    shutil.copy(db, backup)
    session(db, public_of(setup))
    shutil.copy(backup, db)
    code, out, _ = verify(db, setup, capsys)
    assert (code, out.split(":")[0]) == (1, "ROLLED BACK")


def test_item3_verify_names_a_replaced_file(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, _, setup = anchored
    other = tmp_path / "other.sqlite3"
    with SessionLog(other) as log:
        sid = log.start_session(operator="x", patient_id="P-2", skin_type="I",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        log.end_session(sid, "done")
    shutil.copy(other, db)
    code, out, _ = verify(db, setup, capsys)
    assert (code, out.split(":")[0]) == (1, "REPLACED")


def test_item3_verify_refuses_a_forged_checkpoint(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, setup = anchored
    path = checkpoint_path(db)
    path.write_text(path.read_text().replace('"seq": ', '"seq": 1', 1))
    code, out, _ = verify(db, setup, capsys)
    assert code == 1
    assert out.startswith("FORGED CHECKPOINT:")


def test_item3_verify_binary_checkpoint_file_is_bad_input(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, setup = anchored
    checkpoint_path(db).write_bytes(b"\x00\xff" * 500)
    code, _out, err = verify(db, setup, capsys)
    assert code == 2
    assert "not a checkpoint file" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_item3_verify_without_the_key_does_not_pass_silently(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = anchored
    code = main(["sessions", "verify", "--db", str(db)])  # the bundled setup: no key
    _, err = capsys.readouterr()
    assert code == 2
    assert "names no anchor key" in err


def test_item3_bridge_refuses_a_log_behind_its_checkpoint(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, key, setup = anchored
    backup = db.with_name("copy.sqlite3")
    shutil.copy(db, backup)
    session(db, public_of(setup))
    shutil.copy(backup, db)
    code = main(["bridge", "--setup", str(setup), "--db", str(db), "--anchor-key", str(key),
                 "--patient", "P-1", "--skin-type", "II", "--mode", "test", "--duration", "0.1"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1, err
    assert err.startswith("laserguard bridge: ") and "rolled back" in err
    assert backup.read_bytes() == db.read_bytes(), "the refused log was written to"


def test_item3_bridge_without_a_key_refuses_a_log_with_checkpoints(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = anchored
    code = main(["bridge", "--db", str(db), "--patient", "P-1", "--skin-type", "II", "--mode", "test",
                 "--duration", "0.1"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    assert "names no anchor key" in err


def test_item3_keys_anchor_reanchors_a_verified_log(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, key, setup = anchored
    checkpoint_path(db).unlink()
    args = ["keys", "anchor", "--db", str(db), "--setup", str(setup), "--anchor-key", str(key)]
    assert main(args) == 0
    assert "checkpointed" in capsys.readouterr().out
    code, out, _ = verify(db, setup, capsys)
    assert code == 0, out


def test_item3_keys_init_never_replaces_a_key(
    anchored: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, key, _ = anchored
    before = key.read_bytes()
    assert main(["keys", "init", "--db", str(db)]) == 2
    assert "exists" in capsys.readouterr().err
    assert key.read_bytes() == before
