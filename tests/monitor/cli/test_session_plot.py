"""A logged session drawn as SVG: the curves, the limits, the pulses and the trip."""

from __future__ import annotations

import argparse
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from firmware_bridge.live import Ch
from monitor.cli.sessions import add_sessions_parser
from monitor.record.sqlite_store import SessionLog
from monitor.reports.plot import LEFT, RIGHT, W

SVG = "{http://www.w3.org/2000/svg}"


def logged_session(path: Path) -> str:
    with SessionLog(path) as log:
        sid = log.start_session(
            operator="nurse-1",
            patient_id="PAT-3",
            skin_type="III",
            profile_name="demo v2",
            profile_digest="0" * 64,
            mode="test",
            meta={"skin_temp_band_c": [2.0, 44.0]},
        )
        t = np.linspace(0.0, 10.0, 500)
        skin = 20.0 + 2.5 * t
        plate = np.full_like(t, 5.0)
        log.append_telemetry(
            sid,
            np.concatenate([t, t]),
            np.concatenate([np.full(500, int(Ch.SKIN_TEMP_C)), np.full(500, int(Ch.PLATE_TEMP_C))]),
            np.concatenate([skin, plate]),
        )
        for k in range(1, 10):
            log.append(sid, "pulses", {"t_s": float(k), "n": 1})
        log.append(sid, "trip", {"t_s": 9.6, "check": "skin_temp_high", "reason": "44.1 °C"})
        log.end_session(sid, "test finished")
    return sid


def test_plot_command_draws_the_session(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    sid = logged_session(db)
    parser = argparse.ArgumentParser()
    add_sessions_parser(parser.add_subparsers())
    out = tmp_path / "s.svg"
    args = parser.parse_args(["sessions", "plot", sid[:8], "--db", str(db), "--out", str(out)])
    assert args.func(args) == 0

    root = ET.parse(out).getroot()  # well-formed SVG
    assert len(root.findall(f"{SVG}polyline")) == 2  # skin and plate
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "skin_temp_high at 9.60 s" in texts
    assert "skin limit 44 °C" in texts
    assert "temperature (°C)" in texts and "session time (s)" in texts
    assert "patient PAT-3" in texts
    ticks = [ln for ln in root.findall(f"{SVG}line") if ln.get("stroke") == "#7d3c98"]
    assert len(ticks) >= 9  # one per logged pulse (plus the legend)


def test_plot_of_an_unknown_session_is_a_clear_error(tmp_path: Path, capsys: object) -> None:
    db = tmp_path / "log.sqlite3"
    logged_session(db)
    parser = argparse.ArgumentParser()
    add_sessions_parser(parser.add_subparsers())
    args = parser.parse_args(["sessions", "plot", "ffffffff", "--db", str(db)])
    assert args.func(args) == 2


def test_an_on_change_channel_is_drawn_as_a_step_series(tmp_path: Path) -> None:
    """The setpoint is stored on change: 5 °C, kept by keyframes, then 8 °C at t = 5 s."""
    db = tmp_path / "log.sqlite3"
    with SessionLog(db) as log:
        sid = log.start_session(
            operator="nurse-1", patient_id="PAT-3", skin_type="III", profile_name="demo v2",
            profile_digest="0" * 64, mode="test", meta={"skin_temp_band_c": [2.0, 44.0]},
        )  # fmt: skip
        log.append(sid, "telemetry_policy", {"on_change": ["cooler_setpoint_c"], "keyframe_s": 1})
        t = np.linspace(0.0, 10.0, 500)
        t_set = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        v_set = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 8.0, 8.0])
        log.append_telemetry(
            sid,
            np.concatenate([t, t_set]),
            np.concatenate(
                [np.full(500, int(Ch.SKIN_TEMP_C)), np.full(7, int(Ch.COOLER_SETPOINT_C))]
            ),
            np.concatenate([20.0 + 2.0 * t, v_set]),
        )
        log.end_session(sid, "test finished")
    parser = argparse.ArgumentParser()
    add_sessions_parser(parser.add_subparsers())
    out = tmp_path / "s.svg"
    args = parser.parse_args(["sessions", "plot", sid[:8], "--db", str(db), "--out", str(out)])
    assert args.func(args) == 0
    root = ET.parse(out).getroot()
    (step,) = [
        p
        for p in root.findall(f"{SVG}polyline")
        if "stored on change" in p.findtext(f"{SVG}title", "")
    ]
    points = [tuple(map(float, p.split(","))) for p in (step.get("points") or "").split()]
    xs = [x for x, _ in points]
    assert xs == sorted(xs)  # left to right, no sample drawn out of place
    # A vertical jump where the value changed, and flat everywhere else.
    jumps = [(a, b) for a, b in itertools.pairwise(points) if a[1] != b[1]]
    assert len(jumps) == 1 and jumps[0][0][0] == jumps[0][1][0]
    # The last value is held one keyframe period past its last row: to 7 s, not to 10 s.
    assert abs(xs[-1] - (LEFT + (W - LEFT - RIGHT) * 7.0 / 10.0)) < 0.2
