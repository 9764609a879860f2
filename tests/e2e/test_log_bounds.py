"""A misbehaving device cannot fill the disk that holds the record, and a quiet one does not.

Real parts: the simulator in its own process, a laser in front of it (its own process too)
that answers every command with a 1 MB line of random garbage, the bridge, the interlock
and the log on a real SQLite file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.log_bench import measure_session_log
from device_profiles.loader import LoadedSetup
from firmware_bridge.live import Ch
from monitor.record.policy import DEFAULT_REPEATS
from monitor.record.sqlite_store import SessionLog

pytestmark = pytest.mark.e2e

FLOOD_S = 4.0
#: The bound this test holds the log to over FLOOD_S of flooding, normal telemetry included
#: (about 6 kB/s). Before payloads were bounded and failures coalesced: 31.7 MB in 6 s.
FLOOD_BOUND_BYTES = 256 * 1024
#: A bounded string is 256 characters plus its size and SHA-256: no event gets near this.
EVENT_BOUND_BYTES = 2048
#: What a laser that answers garbage produces on every poll or stop attempt.
FAILURE_KINDS = ("laser_protocol_error", "halt_stop_failed")


@pytest.mark.timeout(120)
def test_item10_a_laser_answering_1mb_garbage_lines_keeps_the_log_bounded(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    growth = measure_session_log(tmp_path, FLOOD_S, flood=True, loaded=loaded)
    assert growth.largest_event_bytes < EVENT_BOUND_BYTES, growth
    assert growth.bytes < FLOOD_BOUND_BYTES, growth

    with SessionLog(tmp_path / "log.sqlite3", read_only=True) as log:
        (info,) = log.sessions()
        failures = log.events(info.session_id, kinds=list(FAILURE_KINDS))
        summaries = [
            e.payload
            for e in log.events(info.session_id, kinds=["repeated"])
            if e.payload["of"] in FAILURE_KINDS
        ]
        assert log.verify().ok
    # The garbage was seen, and kept as evidence: a prefix, its size and its hash (in a
    # failure written, or in the last one a summary of the run counted)...
    assert failures, "the flood never reached the log"
    kept = [e.payload for e in failures] + [s["last"] for s in summaries]
    assert any("bytes, sha256 " in json.dumps(k) for k in kept), kept
    # ...written once per run of failures, then counted. How many failures a garbage laser
    # makes in the window varies (its link is down for part of it, and a 1 MB line takes a
    # while on the pty): what never varies is that a failure of a device is not written again
    # within the policy's report interval of the last one written.
    written: dict[tuple[str, object], list[float]] = {}
    for e in failures:
        written.setdefault((e.kind, e.payload.get("device")), []).append(e.t_wall)
    for key, times in written.items():
        gaps = np.diff(times)
        assert (gaps >= DEFAULT_REPEATS.report_s - 0.5).all(), (key, gaps)
    # Usually dozens: the ones not written are counted in the runs' summaries.
    assert len(failures) + sum(int(s["count"]) for s in summaries) >= 2


@pytest.mark.timeout(120)
def test_status_channels_are_stored_on_change_and_skin_temperature_at_full_rate(
    loaded: LoadedSetup, tmp_path: Path
) -> None:
    """A fault code that is always 0 is a few rows, and still reads back as a step series."""
    growth = measure_session_log(tmp_path, 3.0, loaded=loaded)
    with SessionLog(tmp_path / "log.sqlite3", read_only=True) as log:
        (info,) = log.sessions()
        record = log.read_verified(info.session_id)
        (policy,) = log.events(info.session_id, kinds=["telemetry_policy"])
    t, ch, v = record.t_s, record.channel, record.value
    skin = t[ch == Ch.SKIN_TEMP_C]
    fault = ch == Ch.SENSOR_FAULT_CODE
    assert "sensor_fault_code" in policy.payload["on_change"]
    assert "skin_temp_c" not in policy.payload["on_change"]
    # Skin temperature: every poll (5 ms period; allow for a loaded machine).
    assert np.median(np.diff(skin)) < 0.010
    # The fault code: its first value, then a keyframe about every second.
    span = t.max() - t.min()
    assert fault.sum() <= span / policy.payload["keyframe_s"] + 2
    assert (v[fault] == 0).all()
    assert growth.telemetry_rows > 0
