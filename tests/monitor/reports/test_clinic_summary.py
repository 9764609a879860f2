"""The clinic summary (issue 10, item 5) over a generated month of sessions, some with
complications, written straight into a real log through the record API: its counts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.photos import PhotoStore
from monitor.record.sqlite_store import SessionLog
from monitor.reports.clinic_summary import build_clinic_summary, fluence_band
from tests.monitor.incidents.made_sessions import DAY_S, T0, Made, write_session
from tests.monitor.incidents.test_incidents import DETAILS, Clock

MONTH_START = T0  # 2026-05-28T...; a 30-day month from here


def month(tmp_path: Path) -> tuple[Path, Clock]:
    """40 sessions over 30 days: 30 type III at 120 J/cm² on Nd:YAG, 10 type V at 60 J/cm²
    on the 755 nm table; 5 halts on skin temperature (3 in type V), 2 on a lost sensor link.
    Incidents: 2 burns (grades 2 and 3) and 1 hyperpigmentation (grade 1) in type V,
    1 matting (grade 1) in type III; 1 draft closed as no injury, 1 draft left open.
    A session outside the month (and its incident) must not count."""
    db = tmp_path / "month.sqlite3"
    clock = Clock(MONTH_START)
    with SessionLog(db) as log:
        clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db), clock=clock)
        sids: list[str] = []
        for k in range(40):
            darker = k % 4 == 0  # 10 of 40
            trips: list[tuple[str, float]] = []
            if k in (0, 4, 8, 1, 2):  # 3 type V (0, 4, 8) and 2 type III
                trips.append(("skin_temp_high", 12.0))
            if k in (5, 6):
                trips.append(("sensor_link", 3.0))
            made = Made(
                skin_type="V" if darker else "III",
                patient_id=f"PAT-{k:04d}",
                table="alexandrite-755" if darker else "nd-yag-1064",
                fluence_j_cm2=60.0 if darker else 120.0,
                trips=trips,
                t_wall=MONTH_START + k * 0.7 * DAY_S,
            )
            clock.now = made.t_wall + 100
            sids.append(write_session(log, made))
        outside = write_session(
            log, Made(t_wall=MONTH_START + 40 * DAY_S, trips=[("skin_temp_high", 5.0)])
        )
        clock.now = MONTH_START + 41 * DAY_S
        book = clinic.incidents
        for sid, typ, grade in (
            (sids[0], "burn_or_blister", 2),
            (sids[4], "burn_or_blister", 3),
            (sids[8], "hyperpigmentation", 1),
            (sids[1], "telangiectatic_matting", 1),
            (outside, "burn_or_blister", 2),
        ):
            book.open(sid, by="dr-b", details={**DETAILS, "type": typ, "severity": grade})
        trip = log.events(sids[2], ["trip"])[0]
        draft = book.open_draft(sids[2], trip, by="laserguard")
        book.close(draft.incident_id, by="dr-b", outcome="no_injury", reason="intact")
        book.open_draft(sids[1], log.events(sids[1], ["trip"])[0], by="laserguard")
    return db, clock


def test_item5_the_clinic_summary_counts_a_generated_month(tmp_path: Path) -> None:
    db, clock = month(tmp_path)
    with SessionLog(db, read_only=True) as log:
        clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db), clock=clock)
        s = build_clinic_summary(
            clinic, MONTH_START, MONTH_START + 30 * DAY_S, as_of=MONTH_START + 45 * DAY_S
        )
    assert s.verification.ok
    assert s.n_sessions == 40
    assert s.halts_by_cause() == {"skin_temp_high": 5, "sensor_link": 2}
    assert len(s.incidents) == 4  # the no-injury draft, the open draft and the outside one: not
    assert len(s.drafts_open) == 1
    assert {r["type"]: (r["incidents"], r["per_100_sessions"]) for r in s.by_type()} == {
        "burn_or_blister": (2, 5.0),
        "hyperpigmentation": (1, 2.5),
        "telangiectatic_matting": (1, 2.5),
    }
    assert {r["severity"]: r["incidents"] for r in s.by_severity()} == {1: 2, 2: 1, 3: 1}
    rows = {(r["dimension"], r["value"]): r for r in s.breakdown()}
    assert rows[("skin_type", "V")]["sessions"] == 10
    assert rows[("skin_type", "V")]["incidents"] == 3
    assert rows[("skin_type", "V")]["per_100_sessions"] == 30.0
    assert rows[("skin_type", "III")]["per_100_sessions"] == pytest.approx(100 / 30, abs=0.01)
    assert rows[("laser_family", "alexandrite-755")]["incidents"] == 3
    assert rows[("fluence_band_j_cm2", "50-100")]["sessions"] == 10
    assert rows[("fluence_band_j_cm2", "100-150")]["incidents"] == 1
    # Every incident of grade >= 1 got its follow-up by the policy; at 41 days all are overdue.
    assert len(s.overdue) == 5


def test_item5_the_clinic_summary_exports_csv_and_json_and_the_cli_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = month(tmp_path)
    args = ["report", "clinic", "--db", str(db), "--from", "2026-05-28T00:00:00Z",
            "--to", "2026-06-27T00:00:00Z", "--as-of", "2026-07-10"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sessions"] == 40 and doc["incidents"] == 4
    assert doc["halts_by_cause"] == {"skin_temp_high": 5, "sensor_link": 2}
    assert main([*args, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    total = next(r for r in rows if r["table"] == "total")
    assert (total["sessions"], total["incidents"], total["per_100_sessions"]) == ("40", "4", "10.0")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "sessions: 40" in text and "log verification: OK" in text


def test_item5_fluence_bands() -> None:
    assert fluence_band(None) == "no settings"
    assert fluence_band(24.9) == "0-25"
    assert fluence_band(100.0) == "100-150"
    assert fluence_band(350.0) == "200+"
