"""The console's start page takes the patient's test spots (issue 10 item 4 on the page; the
API took them already): a type V patient at the legs, a test spot read with no reaction at
80 J/cm². The page names a missing field before anything is sent; the service records the
reading with the risk assessment; settings no harsher than the test spot's are sent on the
strength of that reading (without it the session would only do a test spot). A real browser (Debian's chromium) against real ``laserguard serve --demo``
processes, as the console's main browser test runs them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SETTINGS
from tests.e2e.test_console_loss import Served
from tests.e2e.test_dashboard_browser import (
    BROWSER_ARGS,
    add_user,
    chromium,
    niced,
    signed_in_page,
)

pytestmark = pytest.mark.e2e

TODAY = date.today()
DONE_ON = TODAY - timedelta(days=20)
READ_ON = TODAY - timedelta(days=5)  # read 15 days after: past the 14 days asked
SPOT = {"wavelength_nm": 1064, "fluence_j_cm2": 80, "pulse_ms": 30, "spot_mm": 3}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    users = tmp_path / "users.sqlite3"
    add_user(users, "op.jo", "operator")
    s = Served(tmp_path, users=users, realtime=True)
    try:
        yield s
    finally:
        s.stop()


def logged(db: Path, kind: str) -> list[dict[str, Any]]:
    """The payloads of one kind of event in the session log, in order."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        rows = c.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq", (kind,))
        return [json.loads(payload) for (payload,) in rows.fetchall()]


@pytest.mark.timeout(180)
def test_a_type_v_patient_starts_with_a_read_test_spot_entered_on_the_page(
    served: Served, tmp_path: Path
) -> None:
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=niced(executable, tmp_path), args=BROWSER_ARGS)
        try:
            page = signed_in_page(browser, served.port, "op.jo", height=900)
            expect(page.locator("#view-start")).to_be_visible()

            page.fill("#patient-id", "PAT-0505")
            page.select_option("#skin-type", "V")
            page.select_option("#site", "legs")
            questions = page.locator("#questions li")
            expect(questions.first).to_be_visible()
            for i in range(questions.count()):
                questions.nth(i).locator("input[value=no]").check()

            # A half-filled test spot is named before anything is sent.
            page.click("#add-test-spot")
            spot = page.locator("li.test-spot").first
            spot.locator("input[name=done_on]").fill(DONE_ON.isoformat())
            page.click("#start-button")
            expect(page.locator("#start-error")).to_have_text("Test spot 1: choose its site.")
            spot.locator("select[name=site]").select_option("legs")
            for name, value in SPOT.items():
                spot.locator(f"input[name={name}]").fill(str(value))
            spot.locator("select[name=result]").select_option("no_reaction")
            spot.locator("input[name=read_on]").fill(READ_ON.isoformat())
            page.click("#start-button")
            expect(page.locator("#start-error")).to_contain_text("who read it")
            # A second spot added and removed again is not sent.
            page.click("#add-test-spot")
            page.locator("li.test-spot").nth(1).locator("button.remove-spot").click()
            expect(page.locator("li.test-spot")).to_have_count(1)
            spot.locator("input[name=read_by]").fill("dr.vega")
            page.click("#start-button")
            expect(page.locator("#view-session")).to_be_visible()
            expect(page.locator("#s-skin")).to_have_text("V")

            # Settings no harsher than the test spot's: the reading vouches for them.
            for key, value in {**SETTINGS, "fluence_j_cm2": 80.0}.items():
                page.fill(f"#p-{key}", str(value))
            page.click("#preview-button")
            expect(page.locator("#verdict")).to_contain_text("passes")
            expect(page.locator("#verdict")).to_contain_text("test spot required first")
            page.click("#apply-button")
            expect(page.locator("#command-result")).to_contain_text("Settings sent")
            page.screenshot(path=str(tmp_path / "test-spots.png"))
        finally:
            browser.close()

    # The settings were sent on the strength of that reading, not as a new test spot.
    (applied,) = logged(served.db, "settings_applied")
    assert applied["test_spot"] == (
        f"test spot {DONE_ON} (legs, 1064 nm, 80 J/cm², 30 ms, 3 mm; "
        f"read {READ_ON} by dr.vega: no_reaction)"
    )
    assert not logged(served.db, "test_spot_mode")
    (recorded,) = [spot for a in logged(served.db, "risk_assessment") for spot in a["test_spots"]]
    assert recorded == {
        "done_on": DONE_ON.isoformat(), "read_on": READ_ON.isoformat(), "read_by": "dr.vega",
        "site": "legs", "wavelength_nm": 1064.0, "fluence_j_cm2": 80.0, "pulse_ms": 30.0,
        "spot_mm": 3.0, "result": "no_reaction",
    }  # fmt: skip
