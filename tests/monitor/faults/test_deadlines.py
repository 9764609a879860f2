"""Issue 13 item 5: the fault matrix's deadlines come from the setup's reaction budget, and
its table and command say what happened (no simulator here: the rows are built by hand)."""

from __future__ import annotations

import pytest

from device_profiles.loader import load
from device_profiles.timing import reaction_budget
from monitor.cli.main import main
from monitor.faults import MatrixRow, deadline_for, render_markdown


def test_issue13_item5_deadlines_are_the_budget_plus_the_named_wait() -> None:
    setup = load("demo-ndyag-1064").setup
    budget = reaction_budget(setup).total_ms
    stale = deadline_for("stale", setup)
    assert stale.deadline_ms == pytest.approx(setup.limits.stale_ms["sensor"] + budget)
    assert stale.measured_from == "fault"
    assert deadline_for("crossing", setup).deadline_ms == pytest.approx(budget)
    assert deadline_for("crossing", setup).measured_from == "trip"
    stuck = deadline_for("stuck", setup)
    assert stuck.deadline_ms == pytest.approx((setup.limits.sensor_stuck_ms or 0) + budget)
    with pytest.raises(ValueError, match="sensor_disagreement"):
        deadline_for("disagreement", setup)  # a one-sensor setup has no such deadline
    with pytest.raises(ValueError, match="cannot judge"):
        deadline_for("answer_time", setup)


def test_issue13_item5_the_table_shows_failures_and_the_host_load() -> None:
    ok = MatrixRow("a", "h", "s", "harm", "ctl", "f", ["x"], detected_by="x", halt_ms=3.0)
    bad = MatrixRow("b", "h", "s", "harm", "ctl", "f", ["x"], problems=["no halt within 5 s"])
    bad.pre_fault_halts = 1
    text = render_markdown([ok, bad])
    assert "**1 of 2 scenarios ended safe" in text
    assert "| a | h → s → harm | ctl | x |" in text and "| safe |" in text
    assert "FAILED: no halt within 5 s (host load: 0 arm retries, 1 pre-fault halts)" in text


def test_issue13_item5_an_unknown_scenario_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults", "run", "--only", "no-such-fault"]) == 2
    err = capsys.readouterr().err
    assert "not a fault-matrix scenario: no-such-fault" in err and "Traceback" not in err
