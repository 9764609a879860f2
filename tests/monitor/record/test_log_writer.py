"""LogWriter over a real SessionLog: everything enqueued gets committed, failure halts once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.record.sqlite_store import SessionLog, SessionLogError
from monitor.record.writer import LogWriter


class Halts:
    """Stands in for the interlock's halt: records every on_failure call."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.called = threading.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.called.set()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SessionLog]:
    with SessionLog(tmp_path / "sessions.sqlite3") as store:
        yield store


@pytest.fixture
def session_id(log: SessionLog) -> str:
    return log.start_session(
        operator="nurse.a",
        patient_id="P-0042",
        skin_type="IV",
        profile_name="diode-940",
        profile_digest="cd" * 32,
        mode="treatment",
    )


def make_writer(log: SessionLog, halts: Halts, **kwargs: Any) -> LogWriter:
    writer = LogWriter(log, on_failure=halts, flush_interval_s=0.01, **kwargs)
    writer.start()
    return writer


def test_flush_commits_events_and_telemetry_in_order(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = make_writer(log, halts)
    try:
        for i in range(1000):
            writer.telemetry(session_id, i * 0.001, i % 4, 30.0 + i * 0.01)
            if i % 100 == 99:
                writer.event(session_id, "pulse", {"n": i // 100, "fluence_j_cm2": 90.0})
        assert writer.flush()
        assert writer.backlog == 0
    finally:
        writer.close()
    assert halts.reasons == [] and writer.failed is None

    events = log.events(session_id)
    pulses = [e for e in events if e.kind == "pulse"]
    assert [e.payload["n"] for e in pulses] == list(range(10))
    # Each pulse comes after the telemetry that was enqueued before it.
    covered = 0
    for e in events[1:]:
        if e.kind == "telemetry_batch":
            covered += e.payload["n"]
        else:
            assert covered == (e.payload["n"] + 1) * 100
    t_s, channel, value = log.telemetry(session_id)
    np.testing.assert_allclose(t_s, np.arange(1000) * 0.001)
    np.testing.assert_array_equal(channel, np.arange(1000) % 4)
    np.testing.assert_allclose(value, 30.0 + np.arange(1000) * 0.01)
    assert log.verify().ok


def test_concurrent_producers_lose_nothing(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = make_writer(log, halts)

    def produce(k: int) -> None:
        for i in range(500):
            writer.event(session_id, "note", {"producer": k, "i": i})

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert writer.flush()
    finally:
        writer.close()
    notes = log.events(session_id, kinds=["note"])
    assert len(notes) == 2000
    for k in range(4):
        assert [e.payload["i"] for e in notes if e.payload["producer"] == k] == list(range(500))


def test_close_flushes_and_is_idempotent(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = make_writer(log, halts)
    writer.event(session_id, "pulse", {"n": 1})
    writer.telemetry(session_id, 0.0, 1, 31.0)
    writer.event(session_id, "session_end", {"reason": "completed"})
    writer.close()
    writer.close()
    assert [e.kind for e in log.events(session_id)] == [
        "session_start",
        "pulse",
        "telemetry_batch",
        "session_end",
    ]
    assert log.session(session_id).end_reason == "completed"
    assert halts.reasons == []


def test_failed_write_halts_exactly_once(
    log: SessionLog, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    halts = Halts()
    writer = make_writer(log, halts)
    writer.event(session_id, "pulse", {"n": 1})
    assert writer.flush()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise SessionLogError("session log write failed: database or disk is full")

    monkeypatch.setattr(log, "append_many", disk_full)
    monkeypatch.setattr(log, "append_telemetry", disk_full)
    for i in range(50):
        writer.event(session_id, "pulse", {"n": i})
        writer.telemetry(session_id, i * 0.001, 0, 30.0)
    assert halts.called.wait(5.0)
    assert not writer.flush(timeout_s=1.0)
    # After the halt the hot path keeps working and drops silently.
    for i in range(50):
        writer.event(session_id, "pulse", {"n": i})
    writer.close()
    assert len(halts.reasons) == 1
    assert writer.failed == halts.reasons[0]
    assert "disk is full" in halts.reasons[0]


def test_closed_store_connection_halts(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = make_writer(log, halts)
    log.close()  # the store is gone underneath the writer
    writer.telemetry(session_id, 0.0, 0, 30.0)
    writer.event(session_id, "pulse", {"n": 1})
    assert halts.called.wait(5.0)
    writer.close()
    assert len(halts.reasons) == 1 and "closed" in halts.reasons[0]


def test_unloggable_payload_halts(log: SessionLog, session_id: str) -> None:
    # A NaN reaching the log is a bug upstream; it must stop treatment, not vanish.
    halts = Halts()
    writer = make_writer(log, halts)
    writer.event(session_id, "settings", {"fluence_j_cm2": float("nan")})
    assert not writer.flush()
    writer.close()
    assert len(halts.reasons) == 1 and "NaN" in halts.reasons[0]


def test_queue_overflow_halts_without_blocking(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = LogWriter(log, on_failure=halts, max_queue=100)  # never started: nothing drains
    t0 = time.perf_counter()
    for i in range(1000):
        writer.telemetry(session_id, i * 0.001, 0, 30.0)
    assert time.perf_counter() - t0 < 1.0
    assert len(halts.reasons) == 1 and "queue full" in halts.reasons[0]
    assert writer.backlog == 100
    assert not writer.flush(timeout_s=0.1)


def test_enqueue_after_close_halts(log: SessionLog, session_id: str) -> None:
    halts = Halts()
    writer = make_writer(log, halts)
    writer.close()
    writer.event(session_id, "pulse", {"n": 1})
    writer.event(session_id, "pulse", {"n": 2})
    assert len(halts.reasons) == 1 and "closed" in halts.reasons[0]
    assert log.events(session_id, kinds=["pulse"]) == []
