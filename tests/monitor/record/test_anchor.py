"""Anchored chain heads (issue 16 item 3): signed checkpoints, and a log behind them refused.

Real SQLite files, real Ed25519 keys, and the damage someone with the files would do: cut
the newest events, put an older copy back, put another log in place, edit a checkpoint,
leave a binary or truncated checkpoint file.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.record.anchor import (
    HeadAnchor,
    LogBehindCheckpoint,
    Verdict,
    anchor_for,
    checkpoint_path,
    checkpoints_for,
)
from monitor.record.checkpoints import (
    CheckpointForged,
    CheckpointUnreadable,
    format_public_key,
    make_private_key,
)
from monitor.record.errors import SessionLogError
from monitor.record.sqlite_store import SessionLog


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[Path, str]:
    """A log path and the public key of a fresh anchor key beside it."""
    db = tmp_path / "log.sqlite3"
    public = format_public_key(make_private_key(tmp_path / "anchor-ed25519.key"))
    return db, public


def run_session(db: Path, public: str, *, n_events: int = 3) -> str:
    """One whole session written with the anchor, as a bridge writes it."""
    with SessionLog(db, anchor=anchor_for(db, public)) as log:
        sid = log.start_session(
            operator="op",
            patient_id="P-1",
            skin_type="II",
            profile_name="p",
            profile_digest="d",
            mode="test",
        )
        for n in range(n_events):
            log.append(sid, "note", {"n": n})
        log.end_session(sid, "done")
    return sid


def check(db: Path, public: str) -> Verdict:
    with SessionLog(db, read_only=True) as log:
        return log.compare_head(checkpoints_for(db, public).read()).verdict


def cut_tail(db: Path, keep_through_seq: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > ?", (keep_through_seq,))
    conn.commit()
    conn.close()


def test_item3_every_session_end_is_checkpointed_and_signed(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    run_session(db, public)
    run_session(db, public)
    entries = checkpoints_for(db, public).read()
    with SessionLog(db, read_only=True) as log, log.store.reading() as r:
        head = r.head()
    assert entries[-1].why == "session_end"
    assert (entries[-1].seq, entries[-1].hash) == head
    assert [e.n for e in entries] == list(range(1, len(entries) + 1))
    assert check(db, public) is Verdict.ANCHORED


def test_item3_periodic_checkpoints_during_a_session(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    now = [0.0]
    anchor = HeadAnchor(checkpoints_for(db, public, db.parent / "anchor-ed25519.key"),
                        period_s=10.0, clock=lambda: now[0])  # fmt: skip
    with SessionLog(db, anchor=anchor) as log:
        sid = log.start_session(operator="op", patient_id="P-1", skin_type="II",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        written = anchor.written
        log.append(sid, "note", {"n": 1})
        assert anchor.written == written, "a checkpoint before the period was up"
        now[0] = 11.0
        log.append(sid, "note", {"n": 2})
        assert anchor.written == written + 1
        assert anchor.entries[-1].why == "periodic"
        log.end_session(sid, "done")


def test_item3_truncated_tail_is_detected_and_refused(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    run_session(db, public, n_events=5)
    cut_tail(db, 4)  # the session's newest events and its end, gone
    assert check(db, public) is Verdict.TRUNCATED
    with pytest.raises(LogBehindCheckpoint, match="truncated: its head is seq 4"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_rolled_back_copy_is_detected_and_refused(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    run_session(db, public)
    backup = db.with_name("backup.sqlite3")
    shutil.copy(db, backup)
    run_session(db, public)
    shutil.copy(backup, db)  # yesterday's copy put back
    assert check(db, public) is Verdict.ROLLED_BACK
    with pytest.raises(LogBehindCheckpoint, match="rolled back") as refused:
        SessionLog(db, anchor=anchor_for(db, public))
    assert "are missing" in str(refused.value)
    # Refused before anything was written: the copy is left exactly as found.
    assert backup.read_bytes() == db.read_bytes()


def test_item3_replaced_file_is_detected_and_refused(
    keyed: tuple[Path, str], tmp_path: Path
) -> None:
    db, public = keyed
    run_session(db, public)
    other = tmp_path / "other.sqlite3"
    with SessionLog(other) as log:  # another log, longer than the one checkpointed
        for _ in range(3):
            sid = log.start_session(operator="x", patient_id="P-9", skin_type="I",
                                    profile_name="p", profile_digest="d", mode="test")  # fmt: skip
            log.end_session(sid, "done")
    shutil.copy(other, db)
    assert check(db, public) is Verdict.REPLACED
    with pytest.raises(LogBehindCheckpoint, match="replaced"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_an_emptied_log_is_a_replaced_one(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    run_session(db, public)
    db.unlink()
    with pytest.raises(LogBehindCheckpoint, match="replaced by an empty one"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_forged_checkpoint_is_refused(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    run_session(db, public, n_events=5)
    cut_tail(db, 4)
    # The forger lowers the checkpointed head to match the cut log, without the key.
    path = checkpoint_path(db)
    doc = json.loads(path.read_text())
    with SessionLog(db, read_only=True) as log, log.store.reading() as r:
        head = r.head()
    assert head is not None
    doc["entries"][-1]["seq"], doc["entries"][-1]["hash"] = head
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointForged, match="not signed by the setup's anchor key"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_checkpoints_signed_with_another_key_are_forged(
    keyed: tuple[Path, str], tmp_path: Path
) -> None:
    db, public = keyed
    run_session(db, public)
    other_public = format_public_key(make_private_key(tmp_path / "other.key"))
    with pytest.raises(CheckpointForged):
        checkpoints_for(db, other_public).read()


def test_item3_a_removed_checkpoint_in_the_middle_shows(keyed: tuple[Path, str]) -> None:
    db, public = keyed
    for _ in range(3):
        run_session(db, public)
    path = checkpoint_path(db)
    doc = json.loads(path.read_text())
    del doc["entries"][1]
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointForged, match="missing between two"):
        checkpoints_for(db, public).read()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: bytes(range(256)) * 8, id="binary"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(
            lambda b: b'{"format": "laserguard-checkpoints/1", "entries": [1]}', id="not-entries"
        ),
        pytest.param(lambda b: b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_item3_unreadable_checkpoint_file_refuses_a_start(
    keyed: tuple[Path, str], damage: object
) -> None:
    db, public = keyed
    run_session(db, public)
    path = checkpoint_path(db)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointUnreadable, match="checkpoint"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_a_deleted_checkpoint_file_refuses_a_log_with_events(
    keyed: tuple[Path, str],
) -> None:
    db, public = keyed
    run_session(db, public)
    checkpoint_path(db).unlink()
    with pytest.raises(LogBehindCheckpoint, match="keys anchor"):
        SessionLog(db, anchor=anchor_for(db, public))


def test_item3_an_unwritable_checkpoint_fails_the_write(keyed: tuple[Path, str]) -> None:
    """A checkpoint that cannot be written is a record that cannot be written: the LogWriter
    turns the error into a halt."""
    db, public = keyed
    run_session(db, public)
    anchor = anchor_for(db, public, period_s=0.001)
    with SessionLog(db, anchor=anchor) as log:
        sid = log.start_session(operator="op", patient_id="P-1", skin_type="II",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        tmp = checkpoint_path(db).with_name(checkpoint_path(db).name + ".tmp")
        tmp.mkdir()  # the temporary file cannot be made
        with pytest.raises(SessionLogError, match="cannot write the checkpoint file"):
            log.end_session(sid, "done")


def test_item3_key_file_is_private_and_made_once(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    make_private_key(key)
    assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(CheckpointUnreadable, match="exists"):
        make_private_key(key)
    key.chmod(0o644)
    with pytest.raises(CheckpointUnreadable, match="read by others"):
        anchor_for(tmp_path / "log.sqlite3", format_public_key(make_private_key(tmp_path / "b")),
                   key)  # fmt: skip


def test_item3_a_key_that_is_not_the_setups_is_refused(
    keyed: tuple[Path, str], tmp_path: Path
) -> None:
    db, _ = keyed
    other_public = format_public_key(make_private_key(tmp_path / "other.key"))
    with pytest.raises(CheckpointUnreadable, match="does not belong"):
        anchor_for(db, other_public)


ANY_JSON = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(
            lambda doc: json.dumps({"format": "laserguard-checkpoints/1", "entries": doc}).encode()
        ),
        # Entries of the right shape with values of any type: the type checks, then the
        # signature check, must refuse each.
        st.lists(
            st.fixed_dictionaries(
                {k: ANY_JSON for k in ("n", "chain", "seq", "hash", "t_wall", "why", "sig")}
            ),
            max_size=3,
        ).map(
            lambda es: json.dumps({"format": "laserguard-checkpoints/1", "entries": es}).encode()
        ),
    )
)
def test_item3_any_checkpoint_file_is_read_or_refused_in_words(
    keyed: tuple[Path, str], data: bytes
) -> None:
    """Whatever lies in the checkpoint file, reading it ends in a typed refusal, never a crash."""
    db, public = keyed
    checkpoint_path(db).write_bytes(data)
    with contextlib.suppress(CheckpointUnreadable, CheckpointForged):
        checkpoints_for(db, public).read()
