"""Issue 11 item 4: the certificate, as chained records read back, HTML and JSON; service
shots accounted for in the next session's pulse reconciliation."""

from __future__ import annotations

import json

import pytest

from monitor.calibration.analysis import Verdict
from monitor.calibration.certificate import certificates, read_certificate
from monitor.calibration.report import render_html, render_json
from tests.monitor.calibration.bench import OpenCalBench, passing_status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_item4_service_shots_are_not_called_unlogged_by_the_next_session(
    bench: OpenCalBench,
) -> None:
    rig = bench()
    first = rig.session(passing_status())  # reads the laser's counter: 0
    first.end("before the calibration")
    cert = rig.run()
    assert cert.verdict is Verdict.PASS
    second = rig.session(passing_status())  # the counter now stands at 40
    second.recorder.flush()
    counter = rig.log.events(second.session_id, kinds=["laser_pulse_counter"])
    assert counter[0].payload["total"] == 40
    assert rig.log.events(second.session_id, kinds=["pulses_unlogged"]) == []


def test_item4_the_certificate_reads_back_from_the_chain_with_everything_it_must_say(
    bench: OpenCalBench,
) -> None:
    rig = bench()
    cert = rig.run()
    again = read_certificate(rig.log, cert.record_id)
    assert again == cert
    assert [c.record_id for c in certificates(rig.log, "demo-ndyag-1064-cal")] == [cert.record_id]
    assert certificates(rig.log, "another-laser") == []
    doc = json.loads(render_json(cert))
    assert doc["who"] == "B. Engineer" and doc["verdict"] == "pass" and doc["simulated"] is True
    assert (
        doc["laser"]["laser_id"] == "demo-ndyag-1064-cal" and doc["laser"]["wavelength_nm"] == 1064
    )
    assert doc["laser_identity"] == "ID NDYAG-1064 SN000123"
    assert len(doc["laser"]["policy_digest"]) == len(doc["laser"]["laser_digest"]) == 64
    pre = doc["preconditions"]
    assert pre["meter"] == {"model": "SIM-METER", "serial": "SIM00001", "firmware": "1.00"}
    assert pre["head"]["type"] == "SIM-HEAD" and pre["head_calibrated"] and pre["head_due"]
    assert pre["wavelength_nm"] == {"laser": 1064.0, "set": 1064.0, "read_back": 1064.0}
    assert doc["next_due"] == cert.next_due.isoformat() if cert.next_due else False
    raw = [r for p in doc["points"] for r in p["readings_j"]]
    assert len(raw) == 40  # every shot, raw
    assert {p["spot_mm"] for p in doc["points"]} == {2.0, 3.0}
    assert doc["result"]["energy"]["fit"]["n"] == 40


def test_item4_the_html_certificate_shows_the_plot_the_band_and_the_verdict(
    bench: OpenCalBench,
) -> None:
    rig = bench({"t_s": 0.0, "action": "laser_output_error", "gain": 1.3})
    cert = rig.run()
    html = render_html(cert)
    assert "FAIL: 8 of 8 points beyond ±20%" in html
    assert "SIMULATED" in html and "Not valid for treatment" in html
    assert "<svg" in html and "±20% band" in html and "<polygon" in html
    assert "B. Engineer" in html and "SIM00001" in html and "read back 1064 nm" in html
    assert "ID NDYAG-1064 SN000123" in html  # the laser's answer to its identify command
    worst = max(cert.points, key=lambda p: abs(p.deviation))
    assert worst.label in html
    for p in cert.points:  # the raw shots of every point are on the page
        assert ", ".join(f"{r:.4g}" for r in p.readings_j) in html
    assert html.count("BEYOND") == 8
