"""Issue 11, "must show": a certificate image rendered from a real run.

A full calibration over the simulator (laser and meter on real ptys, sensor, cooler and
relay over Modbus TCP, a real SQLite log), its certificate written by `laserguard
calibration report` from the verified chain, and the page drawn by a real browser (Debian's
headless Chromium, as the session report is drawn). With LASERGUARD_CERT_PNG set the image
is copied there: that is how docs/img/calibration-certificate.png is made.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.calibration.analysis import Verdict
from monitor.calibration.report import VERDICT_COLOURS
from monitor.cli.main import main
from tests.e2e.png_pixels import colour_count, read_png
from tests.e2e.test_incidents_over_sim import CHROMIUM, png_size, screenshot
from tests.monitor.calibration.bench import OpenCalBench, cal_benches

pytestmark = pytest.mark.e2e
SIMULATED_BAR = "#333333"  # the report's "SIMULATED: ... Not valid for treatment" bar


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[OpenCalBench]:
    yield from cal_benches(tmp_path)


@pytest.mark.timeout(240)
def test_must_show_a_certificate_image_rendered_from_a_real_calibration_run(
    bench: OpenCalBench, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if CHROMIUM is None:
        assert not os.environ.get("LASERGUARD_REQUIRE_BROWSER"), "chromium is required here"
        pytest.skip("chromium is not installed (apt-get install chromium): no certificate image")
    rig = bench()
    cert = rig.run()
    assert cert.verdict is Verdict.PASS, cert.reason

    # Written as the engineer writes it: from the log, by the record's short id.
    html = tmp_path / "certificate.html"
    db = tmp_path / "log0.sqlite3"
    assert db.is_file()
    report = ["calibration", "report", cert.record_id[:8], "--db", str(db), "--out", str(html)]
    assert main(report) == 0
    assert f"wrote {html}" in capsys.readouterr().out
    text = html.read_text(encoding="utf-8")
    assert "PASS: all 8 points within ±20%" in text and "Not valid for treatment" in text
    assert "set energy (J)" in text and "B. Engineer" in text

    png = tmp_path / "certificate.png"
    screenshot(html, png, tmp_path)
    assert png_size(png) == (1100, 2400)
    pixels = read_png(png)
    # Drawn, not a blank page: the verdict banner in its colour, the SIMULATED bar, and the
    # page's content running down past the plot into the tables below it.
    assert colour_count(pixels, VERDICT_COLOURS[Verdict.PASS]) > 20_000
    assert colour_count(pixels, SIMULATED_BAR) > 10_000
    drawn_rows = np.nonzero(np.any(pixels != 255, axis=(1, 2)))[0]
    assert drawn_rows.max() > 1200
    assert np.mean(np.any(pixels != 255, axis=2)) > 0.03

    keep = os.environ.get("LASERGUARD_CERT_PNG")  # regenerates docs/img/calibration-certificate.png
    if keep:
        shutil.copyfile(png, keep)
