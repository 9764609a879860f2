"""SessionLog against real SQLite files: chain, append-only, tamper detection, crash safety."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.cli.sessions import add_sessions_parser
from monitor.record.sqlite_store import GENESIS_HASH, SessionLog, SessionLogError

REPO_ROOT = Path(__file__).resolve().parents[3]


def start(log: SessionLog, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "operator": "nurse.a",
        "patient_id": "P-0042",
        "skin_type": "III",
        "profile_name": "nd-yag-1064",
        "profile_digest": "ab" * 32,
        "mode": "treatment",
    }
    fields.update(overrides)
    return log.start_session(**fields)


def telemetry_arrays(n: int, offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t_s = offset_s + np.arange(n, dtype=np.float64) * 0.001
    channel = (np.arange(n) % 3).astype(np.int16)
    value = 30.0 + np.sin(t_s)
    return t_s, channel, value


def tamper(db: Path, *sql: str) -> None:
    """Someone with the file and sqlite3 in hand: drop the guards, then edit."""
    conn = sqlite3.connect(db)
    for trigger in ("events_no_update", "events_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for trigger in ("telemetry_no_update", "telemetry_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for stmt in sql:
        conn.execute(stmt)
    conn.commit()
    conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture
def filled(db: Path) -> tuple[Path, str, str]:
    """Two sessions, interleaved, with events and telemetry; the log is closed again."""
    with SessionLog(db) as log:
        a = start(log, t_wall=1_700_000_000.0)
        b = start(log, operator="dr.b", patient_id="P-0007", t_wall=1_700_000_001.0)
        log.append(a, "settings", {"fluence_j_cm2": 120.0, "pulse_ms": 30.0})
        log.append_telemetry(a, *telemetry_arrays(300))
        log.append(b, "pulse", {"n": 1, "fluence_j_cm2": 100.0})
        log.append_many(
            [
                (a, "pulse", {"n": 1}, 1_700_000_002.0),
                (a, "alarm", {"check": "skin_temp_c", "value": 41.5}, 1_700_000_002.5),
            ]
        )
        log.append_telemetry(b, *telemetry_arrays(50, 1.0))
        log.end_session(a, "completed")
    return db, a, b


# -- normal use ----------------------------------------------------------------------------


def test_normal_use_verifies_and_reads_back(filled: tuple[Path, str, str]) -> None:
    db, a, b = filled
    with SessionLog(db, read_only=True) as log:
        result = log.verify()
        assert result.ok, result.reason
        assert result.n_events == 9
        assert result.n_telemetry_rows == 350
        assert result.first_bad_seq is None

        infos = log.sessions()
        assert [s.session_id for s in infos] == [b, a]  # newest first
        info_a = log.session(a)
        assert info_a.operator == "nurse.a" and info_a.skin_type == "III"
        assert info_a.profile_digest == "ab" * 32
        assert info_a.end_reason == "completed" and info_a.ended_at is not None
        assert info_a.n_events == 6
        assert log.session(b).end_reason is None

        events = log.events(a)
        assert [e.kind for e in events] == [
            "session_start",
            "settings",
            "telemetry_batch",
            "pulse",
            "alarm",
            "session_end",
        ]
        assert events[0].payload["mode"] == "treatment"
        assert events[0].payload["meta"] == {}
        assert [e.kind for e in log.events(a, kinds=["pulse", "alarm"])] == ["pulse", "alarm"]
        assert events[2].payload["n"] == 300

        t_s, channel, value = log.telemetry(a)
        exp_t, exp_ch, exp_v = telemetry_arrays(300)
        np.testing.assert_array_equal(t_s, exp_t)
        np.testing.assert_array_equal(channel, exp_ch)
        np.testing.assert_array_equal(value, exp_v)
        assert log.verify(a).ok and log.verify(a).n_telemetry_rows == 300


def test_one_chain_spans_all_sessions(filled: tuple[Path, str, str]) -> None:
    db, a, b = filled
    with SessionLog(db, read_only=True) as log:
        everything = sorted(log.events(a) + log.events(b), key=lambda e: e.seq)
    assert [e.seq for e in everything] == list(range(1, 10))
    assert everything[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(everything):
        assert after.prev_hash == before.hash


def test_reopening_continues_the_chain(filled: tuple[Path, str, str]) -> None:
    db, _, b = filled
    with SessionLog(db) as log:
        # b's writer closed without ending it: the reopening writer ends it, in the chain.
        assert log.interrupted == [b]
        assert [e.seq for e in log.events(b)][-2:] == [10, 11]
        c = start(log)
        event = log.append(c, "note", {"text": "after restart"})
        assert event.seq == 13
        log.end_session(c, "completed")
        assert log.verify().ok


def test_session_prefix_lookup(filled: tuple[Path, str, str]) -> None:
    db, a, _ = filled
    with SessionLog(db) as log:
        assert log.session(a[:6]).session_id == a
        with pytest.raises(SessionLogError, match="no session"):
            log.session("zzzz")
        with pytest.raises(SessionLogError, match="empty"):
            log.session("")


def test_ambiguous_prefix(db: Path) -> None:
    with SessionLog(db) as log:
        ids = [start(log) for _ in range(20)]
        shared = next(
            x[0] for x in ids if sum(1 for y in ids if y[0] == x[0]) > 1
        )  # 20 ids over 16 hex digits: some first digit repeats
        with pytest.raises(SessionLogError, match="ambiguous"):
            log.session(shared)


# -- refused input -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_payload_is_refused(db: Path, bad: float) -> None:
    with SessionLog(db) as log:
        sid = start(log)
        with pytest.raises(SessionLogError, match="NaN or infinity"):
            log.append(sid, "settings", {"fluence_j_cm2": bad})
        with pytest.raises(SessionLogError, match="NaN or infinity"):
            log.append(sid, "settings", {"nested": [1.0, {"x": np.float64(bad)}]})
        assert [e.kind for e in log.events(sid)] == ["session_start"]
        assert log.verify().ok


def test_append_many_is_all_or_nothing(db: Path) -> None:
    with SessionLog(db) as log:
        sid = start(log)
        with pytest.raises(SessionLogError):
            log.append_many([(sid, "pulse", {"n": 1}, 1.0), ("no-such-session", "pulse", {}, 2.0)])
        assert [e.kind for e in log.events(sid)] == ["session_start"]


def test_unknown_ended_and_reserved_are_refused(db: Path) -> None:
    with SessionLog(db) as log:
        sid = start(log)
        with pytest.raises(SessionLogError, match="no session"):
            log.append("nope", "pulse", {})
        with pytest.raises(SessionLogError, match="written by the log itself"):
            log.append(sid, "telemetry_batch", {"n": 0})
        log.end_session(sid, "completed")
        with pytest.raises(SessionLogError, match="already ended"):
            log.append(sid, "pulse", {"n": 2})
        with pytest.raises(SessionLogError, match="already ended"):
            log.append_telemetry(sid, *telemetry_arrays(3))
    with SessionLog(db) as log, pytest.raises(SessionLogError, match="already ended"):
        log.append(sid, "pulse", {"n": 2})  # remembered across reopen


def test_bad_telemetry_is_refused(db: Path) -> None:
    with SessionLog(db) as log:
        sid = start(log)
        t_s, ch, v = telemetry_arrays(10)
        with pytest.raises(SessionLogError, match="differ in length"):
            log.append_telemetry(sid, t_s, ch[:5], v)
        with pytest.raises(SessionLogError, match="t_s contains NaN"):
            log.append_telemetry(sid, np.full(10, np.nan), ch, v)
        with pytest.raises(SessionLogError, match="integers"):
            log.append_telemetry(sid, t_s, ch.astype(np.float64), v)


def test_nan_telemetry_values_are_kept(db: Path) -> None:
    # A sensor that reported NaN is evidence; the interlock trips on it, the log records it.
    with SessionLog(db) as log:
        sid = start(log)
        value = np.array([31.0, np.nan, np.inf, 32.0])
        log.append_telemetry(sid, np.arange(4.0), np.zeros(4, np.int32), value)
        np.testing.assert_array_equal(log.telemetry(sid)[2], value)
        assert log.verify().ok


@pytest.mark.parametrize("kind", ["missing_dir", "is_dir", "not_a_db"])
def test_unusable_path_is_refused_at_construction(tmp_path: Path, kind: str) -> None:
    if kind == "missing_dir":
        path = tmp_path / "no" / "such" / "dir" / "log.sqlite3"
    elif kind == "is_dir":
        path = tmp_path
    else:
        path = tmp_path / "notes.txt"
        path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(SessionLogError) as info:
        SessionLog(path)
    assert isinstance(info.value.__cause__, sqlite3.Error)


@pytest.mark.skipif(os.geteuid() == 0, reason="file permissions do not stop root")
def test_read_only_file_is_refused_at_construction(db: Path) -> None:
    SessionLog(db).close()
    db.chmod(0o444)
    with pytest.raises(SessionLogError, match="for writing"):
        SessionLog(db)


def test_closed_log_refuses_and_close_is_idempotent(db: Path) -> None:
    log = SessionLog(db)
    sid = start(log)
    log.close()
    log.close()
    with pytest.raises(SessionLogError, match="closed"):
        log.append(sid, "pulse", {})


def test_read_only_open_reads_but_never_writes(filled: tuple[Path, str, str]) -> None:
    db, a, _ = filled
    with SessionLog(db, read_only=True) as log:
        assert log.verify().ok
        with pytest.raises(SessionLogError, match="read-only"):
            log.append(a, "note", {})


# -- append-only and tamper evidence -------------------------------------------------------


@pytest.mark.parametrize(
    "stmt",
    [
        "UPDATE events SET payload = '{}' WHERE seq = 3",
        "DELETE FROM events WHERE seq = 3",
        "UPDATE telemetry SET value = 0 WHERE idx = 0",
        "DELETE FROM telemetry WHERE idx = 0",
    ],
)
def test_database_refuses_update_and_delete(filled: tuple[Path, str, str], stmt: str) -> None:
    db, _, _ = filled
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(stmt)
    conn.close()
    with SessionLog(db) as log:
        assert log.verify().ok


def test_edited_payload_is_detected(filled: tuple[Path, str, str]) -> None:
    db, a, b = filled
    # Lower the logged fluence of event 3 (a's settings).
    tamper(
        db,
        """UPDATE events SET payload = '{"fluence_j_cm2":60.0,"pulse_ms":30.0}'
                  WHERE seq = 3""",
    )
    with SessionLog(db) as log:
        result = log.verify()
        assert not result.ok
        assert result.first_bad_seq == 3
        assert "does not match its hash" in result.reason
        assert not log.verify(a).ok
        assert log.verify(b).first_bad_seq == 3  # b's span includes seq 3 too


def test_edit_with_recomputed_hash_breaks_the_next_link(filled: tuple[Path, str, str]) -> None:
    db, _, _ = filled
    from monitor.record.sqlite_store import event_hash

    conn = sqlite3.connect(db)
    seq, sid, t_wall, kind, prev = conn.execute(
        "SELECT seq, session_id, t_wall, kind, prev_hash FROM events WHERE seq = 5"
    ).fetchone()
    conn.close()
    forged = {"n": 1, "fluence_j_cm2": 50.0}
    new_hash = event_hash(prev, seq, sid, t_wall, kind, forged)
    tamper(
        db,
        f"UPDATE events SET payload = '{json.dumps(forged)}', hash = '{new_hash}' WHERE seq = 5",
    )
    with SessionLog(db) as log:
        result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert "link" in result.reason


def test_deleted_event_is_detected(filled: tuple[Path, str, str]) -> None:
    db, _, _ = filled
    tamper(db, "DELETE FROM events WHERE seq = 4")
    with SessionLog(db) as log:
        result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "missing" in result.reason


def test_deleting_a_whole_session_is_detected(filled: tuple[Path, str, str]) -> None:
    db, _, b = filled
    tamper(db, f"DELETE FROM events WHERE session_id = '{b}'", "DELETE FROM telemetry")
    with SessionLog(db) as log:
        result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


@pytest.mark.parametrize(
    "stmt",
    [
        "UPDATE telemetry SET value = value - 5 WHERE batch_seq = 4 AND idx = 17",
        "DELETE FROM telemetry WHERE batch_seq = 4 AND idx = 299",
        "INSERT INTO telemetry VALUES (4, 300, 0.3, 0, 99.0)",
        "INSERT INTO telemetry VALUES (3, 0, 0.3, 0, 99.0)",
    ],
)
def test_telemetry_tamper_is_detected(filled: tuple[Path, str, str], stmt: str) -> None:
    db, a, _ = filled
    with SessionLog(db) as log:
        assert log.events(a, kinds=["telemetry_batch"])[0].seq == 4
    tamper(db, stmt)
    with SessionLog(db) as log:
        result = log.verify()
    assert not result.ok
    assert result.first_bad_seq in (3, 4)
    assert "telemetry" in result.reason


# -- crash safety --------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from monitor.record.sqlite_store import SessionLog

    log = SessionLog(sys.argv[1])
    sid = log.start_session(operator="op", patient_id="P-1", skin_type="II",
                            profile_name="p", profile_digest="d", mode="treatment")
    i = 0
    while True:
        if i % 10 == 9:
            e = log.append_telemetry(sid, np.arange(20.0) + i, np.zeros(20, np.int16),
                                     np.full(20, 30.0))
        else:
            e = log.append(sid, "pulse", {"n": i, "fluence_j_cm2": 100.0})
        print(e.seq, flush=True)
        i += 1
    """
)


def test_killed_writer_loses_nothing_committed(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 30.0
    try:
        while len(reported) < 60 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.stdout.close()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # Only whole lines count: a seq is printed after its commit returned.
    reported += [int(x) for x in rest.split("\n")[:-1]]
    assert len(reported) >= 60

    with SessionLog(db) as log:
        result = log.verify()
        assert result.ok, result.reason
        (info,) = log.sessions()
        seqs = {e.seq for e in log.events(info.session_id)}
    assert set(reported) <= seqs
    assert result.n_events >= max(reported)


# -- the CLI reads what the store wrote ----------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_sessions_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_list_show_verify(
    filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, a, b = filled
    assert run_cli(["sessions", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STARTED", "OPERATOR"]
    assert lines[1].startswith(b[:8]) and lines[2].startswith(a[:8])
    assert "completed" in lines[2] and "2023-11-14T22:13:20Z" in lines[2]

    assert run_cli(["sessions", "show", a[:8], "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert a in out and "nurse.a" in out and "settings" in out
    assert '"fluence_j_cm2":120.0' in out
    assert "telemetry 300 rows" in out
    assert "skin_temp_c            n=100" in out

    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    assert capsys.readouterr().out.strip() == "OK: 9 events, 350 telemetry rows, chain intact"

    assert run_cli(["sessions", "verify", a, "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["n_events"] == 6

    assert run_cli(["sessions", "list", "--db", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["session_id"] for s in listed] == [b, a]

    assert run_cli(["sessions", "show", b, "--db", str(db), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["telemetry"]["n_rows"] == 50 and len(shown["events"]) == 3


def test_cli_tampered_exits_1(
    filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = filled
    tamper(db, "UPDATE events SET t_wall = t_wall + 60 WHERE seq = 6")
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("TAMPERED/BROKEN at seq 6:")


def test_cli_missing_db_and_unknown_id_exit_2(
    filled: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = filled
    missing = tmp_path / "nowhere.sqlite3"
    for sub in (["list"], ["show", "abc"], ["verify"]):
        assert run_cli(["sessions", *sub, "--db", str(missing)]) == 2
        err = capsys.readouterr().err
        assert "no session log at" in err
    assert not missing.exists()  # looking must not create it
    assert run_cli(["sessions", "show", "ffffffffff", "--db", str(db)]) == 2
    assert "no session matching" in capsys.readouterr().err


def test_cli_db_default_comes_from_environment(
    filled: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, _, _ = filled
    monkeypatch.setenv("LASERGUARD_DB", str(db))
    assert run_cli(["sessions", "verify"]) == 0
    assert capsys.readouterr().out.startswith("OK:")


def test_a_batch_is_one_transaction_all_or_nothing(db: Path) -> None:
    with SessionLog(db) as log:
        sid = start(log)
        with log.batch():
            log.append(sid, "pulse", {"n": 1})
            log.append_telemetry(sid, *telemetry_arrays(10))
        assert [e.kind for e in log.events(sid)] == ["session_start", "pulse", "telemetry_batch"]
        # A failure anywhere in a batch leaves nothing of it, and its end does not count.
        with pytest.raises(SessionLogError, match="already ended"), log.batch():
            log.append(sid, "pulse", {"n": 2})
            log.end_session(sid, "completed")
            log.append(sid, "pulse", {"n": 3})
        assert [e.kind for e in log.events(sid)] == ["session_start", "pulse", "telemetry_batch"]
        log.append(sid, "pulse", {"n": 2})  # still open
        log.end_session(sid, "completed")
        assert log.verify().ok
