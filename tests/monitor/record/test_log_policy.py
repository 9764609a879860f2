"""What the log keeps: bounded payloads, repeated failures once with a count, status channels
on change. Real SessionLog files; the LogWriter's thread runs as in a session."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_bridge.live import Ch
from monitor.record.chain import MAX_LIST_ITEMS, MAX_PAYLOAD_BYTES, bound_text
from monitor.record.policy import RepeatPolicy, TelemetryPolicy
from monitor.record.sqlite_store import SessionLog
from monitor.record.writer import LogWriter


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SessionLog]:
    with SessionLog(tmp_path / "log.sqlite3") as store:
        yield store


@pytest.fixture
def sid(log: SessionLog) -> str:
    return log.start_session(
        operator="nurse.a", patient_id="P-1", skin_type="III", profile_name="p",
        profile_digest="0" * 64, mode="test",
    )  # fmt: skip


def writer(log: SessionLog, **kwargs: Any) -> tuple[LogWriter, list[str]]:
    failures: list[str] = []
    w = LogWriter(log, on_failure=failures.append, flush_interval_s=0.01, **kwargs)
    w.start()
    return w, failures


# -- bounded payloads ----------------------------------------------------------------------


def test_a_megabyte_string_is_stored_as_a_prefix_its_size_and_its_hash(
    log: SessionLog, sid: str
) -> None:
    reply = "".join(chr(0x21 + i % 90) for i in range(1 << 20))
    event = log.append(sid, "laser_protocol_error", {"error": reply, "t_s": 1.0})
    stored = event.payload["error"]
    digest = hashlib.sha256(reply.encode()).hexdigest()
    assert stored.startswith(reply[:4096]) and len(stored) < 4300
    assert stored.endswith(f"… ({1 << 20} bytes, sha256 {digest})")
    assert log.events(sid, kinds=["laser_protocol_error"])[0].payload == event.payload
    assert log.verify().ok


def test_clinic_text_is_kept_whole_and_device_words_are_bounded_tighter(
    log: SessionLog, sid: str
) -> None:
    aftercare = "Cool compresses for 10 minutes every hour on the first day. " * 6  # 360 chars
    log.append(sid, "patient_information", {"aftercare_instructions": aftercare})
    w, failures = writer(log)
    w.event(sid, "laser_protocol_error", {"error": "x" * 1000})
    w.close()
    assert not failures
    (info,) = log.events(sid, kinds=["patient_information"])
    assert info.payload["aftercare_instructions"] == aftercare
    (err,) = log.events(sid, kinds=["laser_protocol_error"])
    assert err.payload["error"] == bound_text("x" * 1000, 256)


def test_long_lists_and_many_fields_are_bounded_too(log: SessionLog, sid: str) -> None:
    event = log.append(sid, "note", {"values": list(range(5000))})
    values = event.payload["values"]
    assert values[:MAX_LIST_ITEMS] == list(range(MAX_LIST_ITEMS))
    assert values[-1] == f"… ({5000 - MAX_LIST_ITEMS} more items not recorded)"
    wide = {f"field_{i}": "y" * 4000 for i in range(100)}  # 400 kB of short-enough strings
    event = log.append(sid, "note", wide)
    assert list(event.payload) == ["payload_bounded"]
    assert "bytes, sha256" in event.payload["payload_bounded"]
    assert len(event.payload["payload_bounded"]) < MAX_PAYLOAD_BYTES


# -- repeated failures ---------------------------------------------------------------------


def test_a_repeated_failure_is_logged_once_then_counted(log: SessionLog, sid: str) -> None:
    w, failures = writer(log, repeats=RepeatPolicy(report_s=30.0))
    for i in range(200):
        w.event(sid, "laser_protocol_error", {"error": f"garbage {i % 7}", "t_s": i * 0.02})
        w.event(sid, "link_lost", {"device": "sensor", "error": "timeout", "t_s": i * 0.02})
    w.event(sid, "link_lost", {"device": "cooler", "error": "timeout", "t_s": 4.0})
    w.event(sid, "pulses", {"n": 1, "total": 1, "t_s": 4.0})  # never coalesced
    w.event(sid, "pulses", {"n": 1, "total": 2, "t_s": 5.0})
    w.event(sid, "session_end", {"reason": "completed"})  # the counts go in before it
    w.close()
    assert not failures
    kinds = [e.kind for e in log.events(sid)]
    assert kinds.count("laser_protocol_error") == 1
    assert kinds.count("link_lost") == 2  # one per device
    assert kinds.count("pulses") == 2
    summaries = {e.payload["of"]: e.payload for e in log.events(sid, kinds=["repeated"])}
    errors = summaries["laser_protocol_error"]
    assert errors["count"] == 199 and errors["distinct"] == 7
    assert (errors["first_t_s"], errors["last_t_s"]) == (0.02, 199 * 0.02)
    assert errors["last"]["error"] == "garbage 3"
    assert summaries["link_lost"]["device"] == "sensor"
    assert summaries["link_lost"]["count"] == 199
    assert kinds[-1] == "session_end" and kinds.index("repeated") < kinds.index("session_end")
    assert log.verify().ok


def test_a_run_that_goes_on_is_summarised_periodically_and_a_new_run_logged_again(
    log: SessionLog, sid: str
) -> None:
    # report_s 25 times the spacing: a loaded CI machine stalled this thread for more than
    # 10 times the spacing once, which ended the run early and failed the test.
    w, failures = writer(log, repeats=RepeatPolicy(report_s=0.5), telemetry_flush_s=0.05)
    stop = threading.Event()
    for i in range(60):  # 1.2 s of a failure every 20 ms
        w.event(sid, "halt_stop_failed", {"error": "ERR BUSY", "t_s": i * 0.02})
        stop.wait(0.02)
    assert w.flush()
    stop.wait(1.0)  # quiet for longer than report_s: the run is over
    w.event(sid, "halt_stop_failed", {"error": "ERR BUSY", "t_s": 2.0})
    w.close()
    assert not failures
    full = log.events(sid, kinds=["halt_stop_failed"])
    summaries = [e.payload for e in log.events(sid, kinds=["repeated"])]
    assert [e.payload["t_s"] for e in full] == [0.0, 2.0]  # first of each run, in full
    assert len(summaries) >= 2  # a count at least every report_s while the run went on
    assert sum(s["count"] for s in summaries) == 59
    assert summaries[-1]["total_in_run"] == 59


# -- status channels on change -------------------------------------------------------------


def test_status_channels_are_stored_on_change_with_keyframes(log: SessionLog, sid: str) -> None:
    w, failures = writer(log, telemetry_policy=TelemetryPolicy(keyframe_s=1.0))
    t = np.arange(2000) * 0.005  # 10 s at 200 Hz
    skin = 30.0 + 0.01 * np.arange(2000)
    fault = np.where((t >= 4.0) & (t < 4.5), 3.0, 0.0)  # a fault for half a second
    for ti, s, f in zip(t, skin, fault, strict=True):
        w.telemetry(sid, float(ti), int(Ch.SKIN_TEMP_C), float(s))
        w.telemetry(sid, float(ti), int(Ch.SENSOR_FAULT_CODE), float(f))
        w.telemetry(sid, float(ti), int(Ch.COOLER_FAULT_CODE), float("nan"))  # NaN is NaN
    w.close()
    assert not failures
    t_s, ch, v = log.telemetry(sid)
    assert (ch == Ch.SKIN_TEMP_C).sum() == 2000  # full rate
    ft, fv = t_s[ch == Ch.SENSOR_FAULT_CODE], v[ch == Ch.SENSOR_FAULT_CODE]
    assert len(ft) <= 13  # the first value, two changes, a keyframe a second
    # Rebuilt as a step series, the stored rows give the fault's value at every sample.
    rebuilt = fv[np.searchsorted(ft, t, side="right") - 1]
    np.testing.assert_array_equal(rebuilt, fault)
    assert (ch == Ch.COOLER_FAULT_CODE).sum() <= 11
    (policy,) = log.events(sid, kinds=["telemetry_policy"])
    assert "sensor_fault_code" in policy.payload["on_change"]
    assert log.verify().ok
