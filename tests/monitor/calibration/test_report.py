"""Issue 11 item 4: the certificate's plot, read as the SVG a browser draws (no devices)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

from monitor.calibration.analysis import EnergyPoint, Verdict
from monitor.calibration.certificate import Certificate
from monitor.calibration.report import render_svg

SVG = "{http://www.w3.org/2000/svg}"


def passed_certificate() -> Certificate:
    points = tuple(
        EnergyPoint(spot_mm=3.0, target_j=e, fluence_j_cm2=e * 14.15, set_j=e,
                    readings_j=(e * 0.99, e, e * 1.01))
        for e in (0.5, 1.0, 1.5, 2.0)
    )  # fmt: skip
    fit = {"slope": 1.0, "offset_j": 0.0, "r2": 0.999, "n": 12}
    return Certificate(
        record_id="a" * 32, check="full", who="B. Engineer",
        performed_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC), simulated=True,
        laser={"laser_id": "demo", "wavelength_nm": 1064}, policy={"tolerance_fraction": 0.2},
        preconditions=None, points=points, references=(),
        result={"energy": {"fit": fit}}, verdict=Verdict.PASS, reason="all points within",
        next_due=date(2027, 6, 1), refused=None, aborted=None, standby=None, interrupted=None,
        ended=True, started_t_wall=0.0, ended_t_wall=1.0,
    )  # fmt: skip


def test_item4_the_plot_shows_its_axis_titles_and_tick_numbers_outside_the_clip() -> None:
    # The plot is clipped to its frame so the band cannot run past it; the axis titles and
    # tick numbers lie outside that frame, so inside the clipped group they were never drawn
    # (the first certificate image had a plot with no scale).
    svg = ET.fromstring(render_svg(passed_certificate()))
    (clipped,) = [g for g in svg.iter(f"{SVG}g") if g.get("clip-path")]
    inside = {t.text for t in clipped.iter(f"{SVG}text")}
    every = {t.text for t in svg.iter(f"{SVG}text")}
    drawn = every - inside
    assert "set energy (J)" in drawn
    assert "delivered energy, meter reading (J)" in drawn
    assert {"0", "0.5", "1", "1.5", "2"} <= drawn  # the tick numbers on both axes
    assert not inside & {"set energy (J)", "0", "1", "2"}
