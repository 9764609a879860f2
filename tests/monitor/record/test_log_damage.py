"""A damaged session log file is reported as damaged, and never shown or drawn in part.

The files here are broken the way disks and people break them: one byte flipped in an index
page or a table page, the file cut short, a file that is not SQLite at all, and an SQLite
file of some other program. Everything goes through the real ``laserguard sessions``
commands on real SQLite files.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.live import Ch
from monitor.cli.sessions import add_sessions_parser
from monitor.record.sqlite_store import SessionLog

PAGE_SIZE = 4096


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_sessions_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def treatment_log(db: Path) -> str:
    """One ended session shaped like a real one: many telemetry batches between pulses."""
    with SessionLog(db) as log:
        sid = log.start_session(
            operator="nurse.a",
            patient_id="P-0042",
            skin_type="III",
            profile_name="demo v2",
            profile_digest="ab" * 32,
            mode="test",
            meta={"skin_temp_band_c": [2.0, 44.0]},
        )
        for b in range(30):
            t = np.arange(300) * 0.005 + b * 1.5
            channel = np.where(np.arange(300) % 2 == 0, int(Ch.SKIN_TEMP_C), int(Ch.PLATE_TEMP_C))
            log.append_telemetry(sid, t, channel.astype(np.int32), 30.0 + np.sin(t))
            log.append(sid, "pulses", {"t_s": float(t[-1]), "n": 1, "total": b + 1})
        log.end_session(sid, "completed")
    return sid


def leaf_pages(db: Path) -> list[tuple[str, str, int]]:
    """(kind, name, page number) of every leaf page: kind is 'index' or 'table'."""
    conn = sqlite3.connect(db)
    try:
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master").fetchall())
        rows = conn.execute(
            "SELECT name, pageno FROM dbstat WHERE pagetype = 'leaf' ORDER BY name, pageno"
        ).fetchall()
    finally:
        conn.close()
    out = []
    for name, pageno in rows:
        # An automatic index (PRIMARY KEY of a rowid table) is named sqlite_autoindex_*.
        kind = "index" if name.startswith("sqlite_autoindex") else kinds.get(name, "?")
        out.append((kind, name, int(pageno)))
    return out


def flip_in_page(db: Path, pageno: int, needle: bytes, at: int) -> bool:
    """Flip one bit inside the first copy of ``needle`` on the page; False if not there."""
    data = bytearray(db.read_bytes())
    start = (pageno - 1) * PAGE_SIZE
    i = bytes(data[start : start + PAGE_SIZE]).find(needle)
    if i < 0:
        return False
    data[start + i + at] ^= 0x01
    db.write_bytes(bytes(data))
    return True


def outputs(
    db: Path, sid: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, tuple[int, str]]:
    """Exit code and output (stdout + stderr) of verify, show and plot on the file."""
    results = {}
    svg = tmp_path / "s.svg"
    for name, argv in (
        ("verify", ["sessions", "verify", "--db", str(db)]),
        ("show", ["sessions", "show", sid[:8], "--db", str(db)]),
        ("plot", ["sessions", "plot", sid[:8], "--db", str(db), "--out", str(svg)]),
    ):
        code = run_cli(argv)
        captured = capsys.readouterr()
        results[name] = (code, captured.out + captured.err)
    results["svg_written"] = (int(svg.exists()), "")
    return results


def assert_refused(results: dict[str, tuple[int, str]]) -> None:
    for name in ("verify", "show", "plot"):
        code, text = results[name]
        assert code != 0, f"{name} accepted a damaged file:\n{text[:2000]}"
        assert "Traceback" not in text
    assert results["svg_written"][0] == 0, "plot drew part of a damaged file"
    for name in ("show", "plot"):
        err_lines = [ln for ln in results[name][1].splitlines() if ln.startswith("error:")]
        assert len(err_lines) == 1, results[name][1][:2000]


def test_item8_flipped_index_byte_fails_verify_and_show_and_plot_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One flipped bit in an index page: the file is damaged, not "chain intact"."""
    db = tmp_path / "log.sqlite3"
    sid = treatment_log(db)
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    capsys.readouterr()
    # Flip a bit inside the session id in an index entry, in every index that holds one:
    # reads that go through that index no longer find the entry.
    flipped = []
    for kind, name, pageno in leaf_pages(db):
        if kind == "index" and name not in flipped and flip_in_page(db, pageno, sid.encode(), 5):
            flipped.append(name)
    assert flipped, "no index page holds the session id"

    results = outputs(db, sid, tmp_path, capsys)
    assert_refused(results)
    code, text = results["verify"]
    assert code == 1 and "damaged" in text, text
    assert "damaged" in results["show"][1] and "damaged" in results["plot"][1]


@pytest.mark.parametrize("table", ["events", "telemetry"])
def test_flipped_table_byte_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str
) -> None:
    db = tmp_path / "log.sqlite3"
    sid = treatment_log(db)
    pages = [p for kind, name, p in leaf_pages(db) if kind == "table" and name == table]
    page = pages[len(pages) // 2]
    data = bytearray(db.read_bytes())
    data[(page - 1) * PAGE_SIZE + PAGE_SIZE - 40] ^= 0x10  # inside a row near the page's end
    db.write_bytes(bytes(data))
    assert_refused(outputs(db, sid, tmp_path, capsys))


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keep: float
) -> None:
    db = tmp_path / "log.sqlite3"
    sid = treatment_log(db)
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep) // PAGE_SIZE * PAGE_SIZE + 100])
    results = outputs(db, sid, tmp_path, capsys)
    assert_refused(results)
    assert "damaged" in results["verify"][1]


def test_binary_file_is_not_a_session_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "log.sqlite3"
    db.write_bytes(np.random.default_rng(8).bytes(64 * 1024))
    for argv in (["verify"], ["show", "abcd"], ["plot", "abcd"], ["list"]):
        assert run_cli(["sessions", *argv, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "not an SQLite database" in err


def test_other_sqlite_schema_is_not_a_session_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients (name) VALUES ('someone')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for argv in (["verify"], ["show", "abcd"], ["list"]):
        assert run_cli(["sessions", *argv, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert "not a LaserGuard session log" in err and err.count("\n") == 1, err
    # Nor does the bridge write its tables into another program's database.
    with pytest.raises(Exception, match="not a LaserGuard session log"):
        SessionLog(db)
    assert db.read_bytes() == before


FIRST_FORMAT = """
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL,
    t_wall     REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_kind ON events (kind, session_id);
CREATE TABLE telemetry (
    batch_seq  INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    t_s        REAL    NOT NULL,
    channel    INTEGER NOT NULL,
    value      REAL,
    PRIMARY KEY (batch_seq, idx)
);
CREATE INDEX telemetry_by_session ON telemetry (session_id, batch_seq);
"""


def test_first_format_file_is_written_in_its_format_and_never_shown_in_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs written before the format change: appended to, verified, and the index that
    item 8 was found in (telemetry rows by session) can no longer hide rows from a report."""
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(FIRST_FORMAT)
    conn.close()
    sid = treatment_log(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(DISTINCT session_id) FROM telemetry").fetchone() == (1,)
    conn.close()
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    assert "9000 telemetry rows" in capsys.readouterr().out

    flipped = [
        p
        for kind, name, p in leaf_pages(db)
        if name == "telemetry_by_session" and flip_in_page(db, p, sid.encode(), 5)
    ]
    assert flipped
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    # show reads the rows from the table, never through that index: all of them, verified.
    assert run_cli(["sessions", "show", sid, "--db", str(db)]) == 0
    assert "telemetry 9000 rows" in capsys.readouterr().out
