"""Item 5: the telemetry channel map is part of the record, and old logs keep their labels.

A channel is stored as a number: its position in ``firmware_bridge.live.Ch``. These tests
reorder that enum (as a later change to the code might) and show that a session written
before still reads with its own labels, through the real ``laserguard sessions`` commands
on real SQLite files, and through the chain on every store.
"""

from __future__ import annotations

import argparse
import json
import shutil
import xml.etree.ElementTree as ET
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import firmware_bridge.live
from monitor.cli.sessions import add_sessions_parser
from monitor.record.chain import event_hash
from monitor.record.chain_log import ChainLog
from monitor.record.channels import LEGACY_CHANNEL_MAP, current_channel_map
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.sqlite_store import SessionLog
from monitor.record.writer import LogWriter
from tests.monitor.record.stores import Backend, MemoryBackend, SqliteBackend

OLD_LOG = Path(__file__).parent / "data" / "pre_issue8_log.sqlite3"
SVG = "{http://www.w3.org/2000/svg}"


class ReorderedCh(IntEnum):
    """``Ch`` after a hypothetical change: the plate first, the skin second."""

    PLATE_TEMP_C = 0
    SKIN_TEMP_C = 1
    FLOW_L_MIN = 2
    COOLER_SETPOINT_C = 3
    SENSOR_FAULT_CODE = 4
    COOLER_FAULT_CODE = 5
    FLUENCE_J_CM2 = 6
    PULSE_MS = 7
    SPOT_MM = 8
    REP_RATE_HZ = 9
    LASER_STATE = 10
    LASER_PULSES = 11


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="laserguard")
    add_sessions_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def start(log: ChainLog, **kw: Any) -> str:
    return log.start_session(
        operator="nurse.a",
        patient_id="P-0042",
        skin_type="III",
        profile_name="demo v2",
        profile_digest="ab" * 32,
        mode="test",
        meta={"skin_temp_band_c": [2.0, 44.0]},
        **kw,
    )


def skin_and_plate(log: ChainLog, sid: str, ch: type[IntEnum]) -> None:
    """Skin at 30-40 degC and the plate at 5 degC, coded with the enum the writer has."""
    t = np.linspace(0.0, 10.0, 200)
    codes = np.concatenate(
        [np.full(200, int(ch["SKIN_TEMP_C"])), np.full(200, int(ch["PLATE_TEMP_C"]))]
    )
    values = np.concatenate([30.0 + t, np.full(200, 5.0)])
    log.append_telemetry(sid, np.concatenate([t, t]), codes.astype(np.int32), values)


def shown_channels(db: Path, sid: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``sessions show --json``'s telemetry per channel name: n, min, max."""
    assert run_cli(["sessions", "show", sid, "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    return {c["name"]: c for c in doc["telemetry"]["channels"].values()}


def shown_text(db: Path, sid: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_cli(["sessions", "show", sid, "--db", str(db)]) == 0
    return capsys.readouterr().out


def plotted_heights(
    db: Path, sid: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, float]:
    """Mean y of each drawn curve, by its title (smaller y: drawn higher, warmer)."""
    out = tmp_path / f"{sid[:8]}.svg"
    assert run_cli(["sessions", "plot", sid, "--db", str(db), "--out", str(out)]) == 0
    capsys.readouterr()
    heights = {}
    for line in ET.parse(out).getroot().iter(f"{SVG}polyline"):
        title = line.find(f"{SVG}title")
        ys = [float(p.split(",")[1]) for p in line.get("points", "").split()]
        heights[(title.text if title is not None else "") or ""] = sum(ys) / len(ys)
    return heights


def test_item5_reordered_channel_enum_does_not_relabel_old_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "log.sqlite3"
    with SessionLog(db) as log:
        before = start(log)
        skin_and_plate(log, before, firmware_bridge.live.Ch)
        log.end_session(before, "completed")

    with monkeypatch.context() as m:
        m.setattr(firmware_bridge.live, "Ch", ReorderedCh)
        with SessionLog(db) as log:
            after = start(log)
            skin_and_plate(log, after, ReorderedCh)
            log.end_session(after, "completed")
        # Read while the code has the new order: the old session keeps its own labels.
        for sid in (before, after):
            assert "skin_temp_c            n=200  min=30  max=40" in shown_text(db, sid, capsys)
            shown = shown_channels(db, sid, capsys)
            assert shown["skin_temp_c"]["min"] == 30.0 and shown["skin_temp_c"]["max"] == 40.0
            assert shown["plate_temp_c"]["min"] == shown["plate_temp_c"]["max"] == 5.0

    # And back to the order of today: the newer session keeps its labels too.
    for sid in (before, after):
        shown = shown_channels(db, sid, capsys)
        assert shown["skin_temp_c"]["max"] == 40.0 and shown["plate_temp_c"]["max"] == 5.0
        text = shown_text(db, sid, capsys)
        assert "skin_temp_c            n=200  min=30  max=40" in text
        assert "as recorded with the session" in text
        heights = plotted_heights(db, sid, tmp_path, capsys)
        assert heights["skin"] < heights["cooling plate"]  # the warm curve is drawn higher
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    assert capsys.readouterr().out.strip() == "OK: 6 events, 800 telemetry rows, chain intact"


def test_item5_log_written_before_channel_maps_still_verifies_and_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written by the code before maps were recorded (kept in tests/.../data)."""
    db = tmp_path / "old.sqlite3"
    shutil.copyfile(OLD_LOG, db)
    # Even with the enum reordered, the old sessions read as they were written.
    monkeypatch.setattr(firmware_bridge.live, "Ch", ReorderedCh)
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 20 events, 249 telemetry rows, chain intact")
    assert "2 sessions have no recorded channel map (read with the legacy map)" in out

    text = shown_text(db, "bc4721ad", capsys)
    assert "no channel map recorded with this session: read with the legacy channel map" in text
    assert "skin_temp_c            n=80  min=29.001  max=30.9985" in text
    assert "plate_temp_c           n=80  min=4.90017  max=5.09988" in text
    assert "cooler_setpoint_c      n=4  min=4  max=4  (stored on change)" in text
    assert run_cli(["sessions", "show", "bc4721ad", "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["telemetry"]["channel_map"]["source"] == "legacy"
    out_svg = tmp_path / "old.svg"
    assert run_cli(["sessions", "plot", "bc47", "--db", str(db), "--out", str(out_svg)]) == 0
    capsys.readouterr()
    assert "channels: legacy map (none recorded)" in out_svg.read_text(encoding="utf-8")

    # A new session appended to the old file records its map; the old ones keep theirs.
    monkeypatch.undo()
    with SessionLog(db) as log:
        sid = start(log)
        skin_and_plate(log, sid, firmware_bridge.live.Ch)
        log.end_session(sid, "completed")
        assert not log.read_verified(sid).channels.legacy
        assert log.read_verified("bc4721ad").channels == LEGACY_CHANNEL_MAP
    assert run_cli(["sessions", "verify", "--db", str(db)]) == 0
    assert "2 sessions have no recorded channel map" in capsys.readouterr().out


# -- on every store ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "sessions.sqlite3")
    return MemoryBackend()


def rechain(backend: Backend, log: ChainLog) -> None:
    """Recompute every hash from the first event on, as a forger (or an old writer) would."""
    prev = None
    for seq in range(1, sum(s.n_events for s in log.sessions()) + 1):
        e = backend.event(seq)
        prev = e.prev_hash if prev is None else prev
        payload = json.loads(e.payload_text)
        digest = event_hash(prev, e.seq, e.session_id, e.t_wall, e.kind, payload)
        backend.replace_event(seq, prev_hash=prev, hash=digest)
        prev = digest


def test_item5_the_map_is_in_the_chained_start_record(backend: Backend) -> None:
    with backend.open() as log:
        sid = start(log)
        (first,) = log.events(sid)
        assert first.payload["channels"] == current_channel_map().as_record()
        assert {"code": 0, "name": "skin_temp_c", "unit": "degC"} in first.payload["channels"]
        assert log.read_verified(sid).channels == current_channel_map()
        assert log.verify().legacy_channel_maps == 0


def test_item5_a_session_without_a_map_is_read_with_the_legacy_map(backend: Backend) -> None:
    with backend.open() as log:
        sid = start(log)
        log.append_telemetry(sid, np.arange(3.0), np.array([0, 1, 11], np.int32), np.ones(3))
        log.end_session(sid, "completed")
        start_event = backend.event(1)
        payload = json.loads(start_event.payload_text)
        del payload["channels"]  # what every start record looked like before maps
        backend.replace_event(1, payload_text=json.dumps(payload, sort_keys=True))
        rechain(backend, log)
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert result.ok and result.legacy_channel_maps == 1
        record = log.read_verified(sid)
        assert record.channels.legacy
        assert [record.channels.name(c) for c in record.channel] == [
            "skin_temp_c",
            "plate_temp_c",
            "laser_pulses",
        ]


# 14: one past the last channel (issue 13 added 12 and 13, the second skin sensor).
@pytest.mark.parametrize("stray", [14, -1, 5000, 2**31 - 1])
def test_item5_a_channel_outside_the_sessions_map_is_refused(backend: Backend, stray: int) -> None:
    with backend.open() as log:
        sid = start(log)
        with pytest.raises(SessionLogError, match=f"channel {stray} is not in session"):
            log.append_telemetry(sid, np.arange(3.0), np.array([0, stray, 1], np.int32), np.ones(3))
        assert [e.kind for e in log.events(sid)] == ["session_start"]
        assert log.telemetry(sid)[0].shape == (0,)


def test_item5_a_writer_sending_an_unnamed_channel_halts_treatment(backend: Backend) -> None:
    """Rows nobody could label later are not logged, and unlogged data stops treatment."""
    halts: list[str] = []
    with backend.open() as log:
        sid = start(log)
        writer = LogWriter(log, on_failure=halts.append, flush_interval_s=0.01)
        writer.start()
        try:
            writer.telemetry(sid, 0.0, 0, 31.0)
            writer.telemetry(sid, 0.001, 99, 31.0)
            writer.event(sid, "pulse", {"n": 1})
            assert not writer.flush(timeout_s=5.0)
        finally:
            writer.close()
        assert len(halts) == 1 and "channel 99 is not in session" in halts[0]
        assert log.verify().ok


def test_item5_a_channel_without_a_unit_cannot_start_a_session(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown = IntEnum("Ch", [*(m.name for m in firmware_bridge.live.Ch), "HANDPIECE_TEMP_C"], start=0)
    monkeypatch.setattr(firmware_bridge.live, "Ch", grown)
    with backend.open() as log:
        with pytest.raises(SessionLogError, match="handpiece_temp_c has no unit"):
            start(log)
        assert log.sessions() == []


@pytest.mark.parametrize(
    "bad_map",
    [
        "garbage",
        [],
        [{"code": 0, "name": "skin_temp_c"}],
        [{"code": 0, "name": "a", "unit": "u"}, {"code": 0, "name": "b", "unit": "u"}],
        [{"code": "0", "name": "skin_temp_c", "unit": "degC"}],
    ],
)
def test_item5_an_unreadable_map_fails_verification_and_is_never_shown(
    backend: Backend, bad_map: object
) -> None:
    """A start record whose map cannot be read, with a valid hash (a buggy or foreign writer)."""
    with backend.open() as log:
        sid = start(log)
    start_event = backend.event(1)
    payload = json.loads(start_event.payload_text)
    payload["channels"] = bad_map
    backend.replace_event(1, payload_text=json.dumps(payload, sort_keys=True))
    with backend.open(read_only=True) as log:
        rechain(backend, log)
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, 1)
        assert "channel map" in result.reason
        with pytest.raises(SessionLogDamaged, match="channel map"):
            log.read_verified(sid)
