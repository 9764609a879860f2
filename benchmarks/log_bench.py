"""Telemetry into the session store with its integrity chain, next to raw SQLite.

Both write the same rows, in batches of the same size, one transaction per batch, to a file
with the same PRAGMAs (WAL, ``synchronous=FULL``: one fsync per commit). The difference is
what the chain costs: the canonical-bytes digest, the chained ``telemetry_batch`` event and
the conversions around them.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from monitor.session_log import SessionLog

TELEMETRY_DDL = """
CREATE TABLE telemetry (
    batch_seq  INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    t_s        REAL    NOT NULL,
    channel    INTEGER NOT NULL,
    value      REAL,
    PRIMARY KEY (batch_seq, idx)
);
CREATE INDEX telemetry_by_session ON telemetry (session_id, batch_seq);
"""


F64 = npt.NDArray[np.float64]


def _rows(n: int, seed: int = 2) -> tuple[F64, npt.NDArray[np.int32], F64]:
    rng = np.random.default_rng(seed)
    t_s = np.cumsum(rng.uniform(0.0, 0.002, n))
    channel = rng.integers(0, 12, n).astype(np.int32)
    value = rng.normal(20.0, 5.0, n)
    return t_s, channel, value


def chained_rows_per_s(n_rows: int, batch: int, directory: Path) -> float:
    t_s, channel, value = _rows(n_rows)
    with SessionLog(directory / "chained.sqlite3") as log:
        sid = log.start_session(
            operator="bench",
            patient_id="BENCH-0001",
            skin_type="III",
            profile_name="bench",
            profile_digest="0" * 64,
            mode="test",
        )
        t0 = time.perf_counter()
        for i in range(0, n_rows, batch):
            log.append_telemetry(
                sid, t_s[i : i + batch], channel[i : i + batch], value[i : i + batch]
            )
        return n_rows / (time.perf_counter() - t0)


def raw_rows_per_s(n_rows: int, batch: int, directory: Path) -> float:
    t_s, channel, value = _rows(n_rows)
    conn = sqlite3.connect(directory / "raw.sqlite3", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(TELEMETRY_DDL)
        sid = "0" * 32
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, n_rows, batch)):
            n = len(t_s[i : i + batch])
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO telemetry (batch_seq, idx, session_id, t_s, channel, value)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                zip(
                    [k] * n,
                    range(n),
                    [sid] * n,
                    t_s[i : i + batch].tolist(),
                    channel[i : i + batch].tolist(),
                    value[i : i + batch].tolist(),
                    strict=True,
                ),
            )
            conn.execute("COMMIT")
        return n_rows / (time.perf_counter() - t0)
    finally:
        conn.close()


def log_throughput(n_rows: int, batch: int = 1000) -> tuple[float, float]:
    """(chained rows/s, raw rows/s), in a fresh directory each."""
    with tempfile.TemporaryDirectory(prefix="laserguard-bench-log-") as tmp:
        directory = Path(tmp)
        raw = raw_rows_per_s(n_rows, batch, directory)
        chained = chained_rows_per_s(n_rows, batch, directory)
    return chained, raw
