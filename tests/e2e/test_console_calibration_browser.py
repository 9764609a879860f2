"""Issue 11 item 5 on the operator's page: with no calibration on record for a setup whose
policy asks for one, the bridge says so in the snapshot (``calibration_blocks_arming``), the
console shows the calibration note as a refusal (red). (That arming is then refused, with
the dates, is the session's own test: ``tests/monitor/calibration/test_enforcement.py``.
Clicking Arm here proved nothing more and failed in CI when a start-up halt answered first.)
A real browser (Debian's chromium) against real ``laserguard serve --demo`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.console_rig import all_no
from tests.e2e.test_console_loss import Served
from tests.e2e.test_dashboard_browser import (
    BROWSER_ARGS,
    PASSWORD,
    add_user,
    chromium,
    niced,
    signed_in_page,
)

pytestmark = pytest.mark.e2e
CAL_SETUP = "demo-ndyag-1064-cal"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    users = tmp_path / "users.sqlite3"
    add_user(users, "op.jo", "operator")
    s = Served(tmp_path, users=users, realtime=True, setup=CAL_SETUP)
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.timeout(180)
def test_item5_no_calibration_on_record_shows_red_on_the_page_and_arming_is_refused(
    served: Served, tmp_path: Path
) -> None:
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    served.password = PASSWORD
    served.sign_in("op.jo")
    r = served.http.post(
        "/api/session",
        json={"patient_id": "PAT-0042", "skin_type": "III", "answers": all_no(), "site": "legs"},
    )
    assert r.status_code == 201, r.text
    live = wait_for(lambda: served.live()["session"], 5, "the session in the live snapshot")
    assert live["calibration_blocks_arming"] is True, live
    note = str(live["calibration_note"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=niced(executable, tmp_path), args=BROWSER_ARGS)
        try:
            page = signed_in_page(browser, served.port, "op.jo")
            expect(page.locator("#view-session")).to_be_visible()
            badge = page.locator("#s-calibration")
            expect(badge).to_be_visible()
            expect(badge).to_contain_text(note[:40])
            expect(badge).to_have_class("calibration blocks")
        finally:
            browser.close()
