"""Issue 10, "must show": a cooling-failure session over the simulator halts; its draft
incident opens with the burn protocol while the session runs; the operator's checklist ticks
are in the log in order; the clinician completes the incident with a photo; follow-ups are
scheduled, fall overdue on a controlled clock and close with an outcome; an amendment keeps
both versions and the log still verifies; the session report renders in headless Chromium.

Real parts: the simulator on a real pty and Modbus TCP sockets, the bridge, the interlock,
a real SQLite log; the report opened by a real browser.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup, with_endpoints
from device_profiles.schema import SkinType
from monitor.cli.main import main
from monitor.core.session import Session, SessionMode, SessionParams, no_contraindications_declared
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.followups import FollowUpStatus
from monitor.incidents.hook import KIND_DRAFT_OPENED, IncidentRecorder
from monitor.incidents.incidents import IncidentStatus
from monitor.incidents.photos import PhotoStore
from monitor.incidents.sheets import KIND_SHEET_GIVEN
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from monitor.reports.session_report import build_session_report
from sim.runner import SimRunner
from sim.scenario import load_scenario
from tests.e2e.conftest import SETTINGS, wait_for
from tests.monitor.incidents.made_sessions import write_png
from tests.monitor.incidents.test_incidents import DETAILS, Clock

pytestmark = pytest.mark.e2e
DAY = 86400.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: Path, png: Path, tmp: Path) -> None:
    """The page as a real browser draws it (Debian's chromium, headless, a fresh profile)."""
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp / 'chromium-profile'}",
            "--hide-scrollbars", "--window-size=1100,2400", f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.mark.timeout(240)
def test_must_show_cooling_failure_incident_from_halt_to_follow_up_and_report(
    loaded: LoadedSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "log.sqlite3"
    log = SessionLog(db)
    clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db))
    sim = SimRunner(
        loaded.setup, load_scenario("cooling-failure"), speed=2.0, run_dir=tmp_path / "sim"
    ).start()
    recorder = IncidentRecorder(LogRecorder(log), clinic)
    params = SessionParams(
        "e2e-operator", "PAT-0042", SkinType.III, no_contraindications_declared(),
        mode=SessionMode.TEST,
    )  # fmt: skip
    session = Session(loaded, recorder, params, setup=with_endpoints(loaded.setup, sim.endpoints))
    try:
        session.start()
        assert session.request_settings(SETTINGS).ok
        session.arm()
        wait_for(lambda: session.trips, 40, "the cooling-failure halt")
        assert session.trips[0].check == "cooler_plate_high"
        # The draft opens while the session runs, with the burn protocol shown at once.
        wait_for(lambda: recorder.drafts, 10, "the draft incident")
        shown = recorder.protocol_for("cooler_plate_high")
        assert shown is not None and shown.id == "burn_or_blister"
        draft = clinic.incidents.get(recorder.drafts[0])
        assert draft.status is IncidentStatus.DRAFT
        assert draft.protocol is not None and draft.protocol["id"] == "burn_or_blister"
        assert draft.trigger is not None and draft.trigger["check"] == "cooler_plate_high"
        # The operator ticks the checklist as the steps are done, still in the session.
        for step, who in ((1, "nurse-a"), (2, "nurse-a"), (3, "nurse-b")):
            clinic.incidents.tick(draft.incident_id, step, by=who)
    finally:
        session.end("test finished")
        sim.stop()
    sid = session.session_id
    # In the session's chain: the draft opened after its trip, and both sheets given.
    kinds = [e.kind for e in log.events(sid)]
    assert kinds.index("trip") < kinds.index(KIND_DRAFT_OPENED)
    given = [e.payload["sheet"] for e in log.events(sid, [KIND_SHEET_GIVEN])]
    assert given == ["before", "after"]
    # The halt on skin temperature made the session's patient higher-risk: a follow-up.
    assert recorder.followup is not None and recorder.problems == []

    # After the session: a clinician, on a controlled clock.
    clock = Clock(log.session(sid).ended_at or 0.0)
    clinic = ClinicRecords.over(log, photos=PhotoStore.beside(db), clock=clock)
    ticks = clinic.incidents.get(draft.incident_id).ticks
    assert [(t.step, t.by) for t in ticks] == [(1, "nurse-a"), (2, "nurse-a"), (3, "nurse-b")]
    assert [t.seq for t in ticks] == sorted(t.seq for t in ticks)
    clock.now += 600
    done = clinic.incidents.complete(draft.incident_id, by="dr-b", details=DETAILS)
    assert done.status is IncidentStatus.DOCUMENTED
    photo = write_png(tmp_path / "calf.png")
    clinic.incidents.attach(draft.incident_id, str(photo), by="dr-b", caption="day 0")
    (followup,) = clinic.followups.select(incident_id=draft.incident_id)
    assert followup.status(clock.now) is FollowUpStatus.SCHEDULED
    clock.now += 3 * DAY  # the visit was due within 24-48 h: it is overdue now
    assert followup.followup_id in [f.followup_id for f in clinic.followups.due()]
    assert clinic.followups.get(followup.followup_id).status(clock.now) is FollowUpStatus.OVERDUE
    clinic.followups.record(followup.followup_id, outcome="resolved", by="dr-b", note="healed")
    assert clinic.followups.get(followup.followup_id).status(clock.now) is FollowUpStatus.DONE

    amended = clinic.incidents.amend(
        draft.incident_id, by="dr-c", why="blister at review", changes={"severity": 3}
    )
    assert [e.kind for e in amended.history].count("incident_completed") == 1
    assert amended.history[-1].payload["changes"]["severity"] == {"from": 2, "to": 3}
    report = build_session_report(clinic, sid)
    html = tmp_path / "report.html"
    html.write_text(report.html(), encoding="utf-8")
    log.close()

    assert main(["sessions", "verify", "--db", str(db)]) == 0
    assert "OK" in capsys.readouterr().out
    text = html.read_text()
    assert "Chain verified" in text and "Thermal burn or blister" in text
    assert "blister at review" in text and "data:image/png;base64," in text
    assert "<svg" in text and "cooler_plate_high" in text

    if CHROMIUM is None:
        assert not os.environ.get("LASERGUARD_REQUIRE_BROWSER"), "chromium is required here"
        pytest.skip("chromium is not installed (apt-get install chromium): no rendered report")
    png = tmp_path / "report.png"
    screenshot(html, png, tmp_path)
    width, height = png_size(png)
    assert (width, height) == (1100, 2400)
    assert png.stat().st_size > 50_000  # a drawn page, not a blank one
    keep = os.environ.get("LASERGUARD_REPORT_PNG")  # regenerates docs/img/session-report.png
    if keep:
        shutil.copyfile(png, keep)
