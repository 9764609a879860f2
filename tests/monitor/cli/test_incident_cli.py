"""``laserguard incident``, ``followup`` and ``report`` (issue 10, items 2, 3 and 5): what a
clinician sees, the exit status, and that a refusal stores nothing."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.record.sqlite_store import SessionLog
from tests.monitor.incidents.made_sessions import Made, write_png, write_session

DETAILS = [
    "--type", "burn_or_blister", "--severity", "2", "--site", "left calf",
    "--noticed-at", "2026-05-28T20:30:00Z", "--noticed-by", "nurse-a",
    "--actions", "cooled", "--referral", "none", "--by", "dr-b",
]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "log.sqlite3"
    with SessionLog(path) as log:
        write_session(log, Made(trips=[("skin_temp_high", 12.0)]))
    return path


def n_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def sid_of(db: Path) -> str:
    with SessionLog(db, read_only=True) as log:
        return log.sessions()[0].session_id


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def refused_cleanly(err: str, command: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"laserguard {command}: "), err
    assert "Traceback" not in err


def test_item2_cli_an_incident_for_an_unknown_session_exits_2_and_stores_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = n_events(db)
    code, _, err = run(capsys, "incident", "open", "deadbeef", *DETAILS, "--db", str(db))
    assert code == 2
    refused_cleanly(err, "incident")
    assert "no session matching 'deadbeef'" in err
    assert n_events(db) == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not an image at all", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated"),
    ],
)
def test_item2_cli_a_non_image_photo_exits_2_and_stores_nothing(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, why: str
) -> None:
    code, out, _ = run(
        capsys, "incident", "open", sid_of(db)[:8], *DETAILS, "--json", "--db", str(db)
    )
    assert code == 0
    incident = json.loads(out)["incident_id"]
    before = n_events(db)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(content)
    code, _, err = run(
        capsys, "incident", "attach", incident[:8], str(bad), "--by", "dr-b", "--db", str(db)
    )
    assert code == 2 and why in err
    refused_cleanly(err, "incident")
    assert n_events(db) == before
    assert not (tmp_path / "log.sqlite3.photos").exists()


def test_item3_cli_a_follow_up_in_the_past_exits_2_and_stores_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = n_events(db)
    code, _, err = run(
        capsys, "followup", "schedule", sid_of(db)[:8], "--due-by", "2020-01-01",
        "--reason", "call", "--by", "nurse-a", "--db", str(db),
    )  # fmt: skip
    assert code == 2 and "in the past" in err
    refused_cleanly(err, "followup")
    assert n_events(db) == before


def test_item2_cli_draft_round_trip_tick_refuse_close_show(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.incidents.clinic import ClinicRecords
    from monitor.incidents.photos import PhotoStore

    with SessionLog(db) as log:
        clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db))
        sid = log.sessions()[0].session_id
        draft = clinic.incidents.open_draft(sid, log.events(sid, ["trip"])[0], by="laserguard")
    iid = draft.incident_id[:8]
    assert run(capsys, "incident", "tick", iid, "1", "--by", "nurse-a", "--db", str(db))[0] == 0
    code, _, err = run(capsys, "incident", "tick", iid, "1", "--by", "nurse-a", "--db", str(db))
    assert code == 1 and "ticked already" in err
    before = n_events(db)
    code, _, err = run(
        capsys, "incident", "close", iid, "--outcome", "resolved", "--reason", "x",
        "--by", "dr-b", "--db", str(db),
    )  # fmt: skip
    assert code == 1 and "is a draft" in err
    refused_cleanly(err, "incident")
    assert n_events(db) == before
    assert run(capsys, "incident", "complete", iid, *DETAILS, "--db", str(db))[0] == 0
    photo = write_png(tmp_path / "p.png")
    assert (
        run(capsys, "incident", "attach", iid, str(photo), "--by", "dr-b", "--db", str(db))[0] == 0
    )
    code, out, _ = run(capsys, "incident", "show", iid, "--db", str(db))
    assert code == 0
    assert "1. [x] nurse-a" in out and "2. [ ]" in out
    assert "intact" in out and "around the halt (from the log)" in out
    code, out, _ = run(capsys, "incident", "list", "--csv", "--db", str(db))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["status"] == "documented" and rows[0]["trigger"] == "skin_temp_high"
    code, out, _ = run(
        capsys, "followup", "due", "--as-of", "2099-01-01", "--json", "--db", str(db)
    )
    assert code == 0 and [r["status"] for r in json.loads(out)] == ["overdue"]
    report = tmp_path / "r.html"
    code, out, _ = run(capsys, "report", "session", sid[:8], "--html", str(report), "--db", str(db))
    assert code == 0 and "chain verified" in out
    assert "Incidents (1)" in report.read_text()


def test_item5_cli_a_report_of_a_tampered_session_is_refused(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = sid_of(db)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute(
        "UPDATE events SET payload = replace(payload, 'PAT-0001', 'PAT-0002') WHERE seq = 1"
    )
    conn.commit()
    conn.close()
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "session", sid[:8], "--html", str(out), "--db", str(db))
    assert code == 1 and "fails verification" in err
    refused_cleanly(err, "report")
    assert not out.exists()


def test_item4_cli_the_sheet_is_printed_and_compared_with_the_one_given(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "after.html"
    code, _, err = run(
        capsys, "report", "sheet", sid_of(db)[:8], "after", "--html", str(html), "--db", str(db)
    )
    assert code == 0 and "no sheet of this kind is recorded as given" in err
    assert "Call now if you notice" in html.read_text()


def test_item1_cli_the_protocol_for_a_halt(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "incident", "protocol", "skin_temp_high")
    assert code == 0 and out.startswith("Thermal burn or blister") and "1. [ ]" in out
    code, out, _ = run(capsys, "incident", "protocol", "sensor_link")
    assert code == 0 and "no protocol" in out
    code, _, err = run(capsys, "incident", "protocol", "nonsense")
    assert code == 2
    refused_cleanly(err, "incident")
