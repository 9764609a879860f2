"""Local session logs to ship: real SQLite files written through the chain, with telemetry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.record.sqlite_store import SessionLog


def make_log(
    db: Path, *, sessions: int = 2, batches: int = 5, rows: int = 200, seed: int = 0
) -> int:
    """Append ``sessions`` whole sessions to ``db``; returns its head seq."""
    rng = np.random.default_rng(seed)
    with SessionLog(db) as log:
        for s in range(sessions):
            sid = log.start_session(operator="op", patient_id=f"P-{seed}-{s}", skin_type="III",
                                    profile_name="p", profile_digest="d", mode="test")  # fmt: skip
            for b in range(batches):
                t = np.arange(rows, dtype=np.float64) * 0.001 + b
                ch = (np.arange(rows) % 3).astype(np.int32)
                v = rng.normal(33.0, 0.5, rows)
                v[::50] = np.nan  # a sensor that said NaN is a fact worth keeping
                log.append_telemetry(sid, t, ch, v)
                log.append(sid, "pulses", {"n": 1, "total": b})
            log.end_session(sid, "done")
        with log.store.reading() as r:
            head = r.head()
    assert head is not None
    return head[0]


def local_counts(db: Path) -> tuple[int, int]:
    """(events, telemetry rows) in the local log, from the rows themselves."""
    with SessionLog(db, read_only=True) as log:
        result = log.verify()
    assert result.ok, result.reason
    return result.n_events, result.n_telemetry_rows
