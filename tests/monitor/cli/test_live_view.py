"""The operator's terminal view shows state, values with units, alarms and what a halt needs."""

from __future__ import annotations

import io
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from device_profiles.schema import SkinType
from monitor.cli.live_view import LiveView, frame_of, sparkline
from monitor.core.checks import Severity
from monitor.core.records import State, Trip
from monitor.core.snapshot import AnswerTimes, ReactionTimes, SettingsReading, Snapshot


def snapshot(state: str, skin: float | None, **changes: Any) -> Snapshot:
    answers = AnswerTimes(assumed_ms=2.5, typical_ms=1.0, recent_worst_ms=1.5)
    snap = Snapshot(
        session_id="d4aa84530821",
        t_s=13.0,
        state=State(state),
        laser_state="STANDBY",
        skin_type=SkinType.III,
        skin_temp_c=skin,
        plate_temp_c=24.59,
        flow_l_min=2.0,
        settings=SettingsReading(fluence_j_cm2=120.0, pulse_ms=30.0, spot_mm=3.0, rep_rate_hz=1.0),
        pulses=11.0,
        pulses_out_of_limits=0,
        links={"sensor": True, "cooler": True, "laser": False, "interlock": True},
        permit=False,
        active_conditions=(),
        trips=(Trip("skin_temp_high", "skin 44.06 °C", 11.96, Severity.HALT),),
        warnings=(),
        test_spots=None,
        reaction_time=ReactionTimes(
            required_ms=50.0,
            measured_worst_case_ms=None,
            answer_ms={d: answers for d in ("sensor", "cooler", "laser", "interlock")},
        ),
        skin_temp_band_c=(2.0, 44.0),
    )
    return replace(snap, **changes)


def render(state: str, skin: float | None, recent: tuple[float, ...] = (30.0, 40.0, 44.5)) -> str:
    history = np.array(recent)
    session = SimpleNamespace(
        snapshot=lambda: snapshot(state, skin),
        loop=SimpleNamespace(recent_skin=lambda s: (np.zeros(len(history)), history)),
    )
    console = Console(width=140, record=True, color_system=None)
    console.print(LiveView("cooling-failure", 20.0).render(frame_of(session, 13.0)))  # type: ignore[arg-type]
    return console.export_text()


def test_a_halted_session_says_what_releases_it() -> None:
    text = render("HALTED", 44.06)
    assert "HALTED" in text and "relay OPEN" in text
    assert "HALT LATCHED" in text and "acknowledges it with a reason" in text
    assert "skin_temp_high" in text and "44.06" in text
    assert "laser LOST" in text
    assert "13.0 s / 20 s" in text


def test_missing_values_show_as_dashes_not_zero() -> None:
    text = render("CONNECTING", None)
    assert "—" in text
    assert "HALT LATCHED" not in text


def test_sparkline_spans_its_range() -> None:
    assert sparkline([0.0, 5.0, 10.0], 0.0, 10.0) == "▁▄█"
    assert sparkline([], 0.0, 1.0) == ""


@pytest.mark.parametrize(
    "stuck_c",
    [46.5, 60.0, 327.67, float("inf")],  # hot, very hot, an int16 0x7FFF at 0.01 °C, overflow
)
def test_item1_a_sustained_high_skin_temperature_renders(stuck_c: float) -> None:
    """Every reading far above the limit (stuck-hot sensor, sentinel, overheating): the view
    still shows the halt, the value and a full-height chart, instead of raising."""
    text = render("HALTED", stuck_c, recent=(stuck_c,) * 60)
    assert "HALT LATCHED" in text
    assert "█" * 60 in text
    assert "43–45 °C scale, limit 44 °C ▲ above scale" in text


def test_item1_sparkline_is_total() -> None:
    assert sparkline([50.0, 50.0], 49.0, 45.0) == "██"  # a reversed scale is read the right way
    assert sparkline([float("nan"), 1.0, float("-inf")], 0.0, 1.0) == " █▁"
    assert sparkline([1.0], float("nan"), 2.0) == "█"


def test_item2_a_laser_that_did_not_stop_is_shown_above_everything() -> None:
    session = SimpleNamespace(
        snapshot=lambda: snapshot(
            "HALTED", 30.0, active_conditions=("laser_did_not_stop",), pulses_out_of_limits=1
        ),
        loop=SimpleNamespace(recent_skin=lambda s: (np.zeros(1), np.array([30.0]))),
    )
    console = Console(width=140, record=True, color_system=None)
    console.print(LiveView("laser-ignores-stop", None).render(frame_of(session, 3.0)))  # type: ignore[arg-type]
    text = console.export_text()
    assert "*** THE LASER DID NOT STOP: the relay is the only barrier, use the emergency" in text
    assert "*** 1 pulse(s) fired at settings outside the approved limits" in text


def render_dose(dose: object, **changes: Any) -> str:
    snap = snapshot("READY", 38.0, thermal_dose=dose, **changes)
    history = np.array((30.0, 38.0))
    session = SimpleNamespace(
        snapshot=lambda: snap,
        loop=SimpleNamespace(recent_skin=lambda s: (np.zeros(len(history)), history)),
    )
    console = Console(width=160, record=True, color_system=None)
    console.print(LiveView("slow-burn", 20.0).render(frame_of(session, 13.0)))  # type: ignore[arg-type]
    return console.export_text()


def test_issue13_item2_the_view_shows_the_live_dose_against_its_levels() -> None:
    from device_profiles.schema import ThermalDoseLimits
    from monitor.core.dose_meter import DoseMeter

    meter = DoseMeter(ThermalDoseLimits(cem43_warn_min=1.0, cem43_halt_min=2.0), gap_ns=40e6)
    for k in range(2 * 60 * 200 + 1):  # 2 minutes at 43.5 °C: 2^0.5 × 2 ≈ 2.83 CEM43
        meter.add(43.5, k * 5_000_000)
    text = render_dose(meter.frozen())
    assert "thermal dose, area default: 2.83 CEM43 (warn 1, limit 2)" in text
    assert "session 2.83 CEM43" in text

    meter.add(float("nan"), 2 * 60 * 200 * 5_000_000 + 5_000_000)  # a sentinel: unknown
    assert "area default: ≥2.83 CEM43" in render_dose(meter.frozen())
    assert "thermal dose —" in render_dose(None)


def test_issue13_item3_the_view_shows_both_skin_sensors() -> None:
    links = {"sensor": True, "cooler": True, "laser": True, "interlock": True, "sensor2": True}
    text = render_dose(None, links=links, skin_temp_2_c=37.25)
    assert "skin 2 °C" in text and "37.25" in text
    assert "skin 2 °C" not in render_dose(None)


def test_the_last_frame_ends_its_line_when_the_output_is_not_a_terminal() -> None:
    """Piped (``laserguard demo | tee``), rich leaves the last frame's line open: the report
    printed next would start on the panel's bottom border."""
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=False)
    with LiveView("normal", 10.0, console=console):
        pass
    console.print("session 1234 scenario normal")
    lines = out.getvalue().splitlines()
    assert lines[-1] == "session 1234 scenario normal"
    assert "connecting" in out.getvalue()  # the last frame was drawn, on lines of its own
