"""The session log: how fast it takes telemetry, and how much it writes per treatment hour.

**Throughput.** Telemetry into the session store with its integrity chain, next to raw
SQLite. Both write the same rows, in batches of the same size, one transaction per batch, to
a file with the same PRAGMAs (WAL, ``synchronous=FULL``: one fsync per commit). The
difference is what the chain costs: the canonical-bytes digest, the chained
``telemetry_batch`` event and the conversions around them.

**Size.** A real session (simulator child process, bridge, interlock, log), armed and firing
at 1 Hz in the ``normal`` scenario, for a measured window; the figure is the bytes the log
file grew by in that window, scaled to an hour. "Before" is the same session recorded the
way LaserGuard did before the log was bounded (``legacy_writer``: the first file format,
every sample of every device channel, a telemetry batch every 50 ms, no coalescing), in the
same run. "Flooding" is the current recording while the laser answers every command with a
1 MB line of garbage (``benchmarks.flood``).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.flood import flooding_laser
from device_profiles.loader import LoadedSetup, load, with_endpoints
from device_profiles.schema import SkinType
from firmware_bridge.live import SETTING_CHANNELS, Ch
from monitor.core.session import (
    Refused,
    Session,
    SessionMode,
    SessionParams,
    State,
    no_contraindications_declared,
)
from monitor.record.policy import TelemetryPolicy
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl, SimSpec

#: The store's telemetry table, for the raw floor.
TELEMETRY_DDL = """
CREATE TABLE telemetry (
    batch_seq  INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    t_s        REAL    NOT NULL,
    channel    INTEGER NOT NULL,
    value      REAL,
    PRIMARY KEY (batch_seq, idx)
) WITHOUT ROWID;
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
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, n_rows, batch)):
            n = len(t_s[i : i + batch])
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO telemetry (batch_seq, idx, t_s, channel, value) VALUES (?, ?, ?, ?, ?)",
                zip(
                    [k] * n,
                    range(n),
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


# --- bytes per treatment hour --------------------------------------------------------------

SIZE_SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
#: The log's first file format: telemetry rows carried their session id, indexed by it.
FIRST_FORMAT_DDL = """
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL,
    t_wall     REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_kind ON events (kind, session_id);
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


#: Strings were not bounded before: as good as no limit.
UNBOUNDED_CHARS = 1 << 40


@dataclass(frozen=True)
class LogGrowth:
    """What the log file took on during a measured window of a session."""

    bytes: int  # logical size (pages in use, WAL included) at the end minus at the start
    seconds: float
    n_events: int
    largest_event_bytes: int  # the longest payload written in the window
    telemetry_rows: int
    trips_in_window: int  # halts during the window (a flooding laser causes them)
    rearmed: int  # transient trips before the window that were acknowledged to arm

    @property
    def bytes_per_hour(self) -> float:
        return self.bytes / self.seconds * 3600.0


def logical_bytes(db: Path) -> int:
    """Pages in use times page size, as a reader sees the file (the WAL included)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)
    finally:
        conn.close()


def legacy_recorder(log: SessionLog) -> LogRecorder:
    """The session's log written as before the log was bounded (the size figure's floor)."""
    laser = frozenset({int(Ch.LASER_STATE), *(int(c) for c in SETTING_CHANNELS.values())})
    return LogRecorder(
        log,
        telemetry_flush_s=0.05,  # a batch at every 50 ms drain
        telemetry_policy=TelemetryPolicy(on_change=frozenset(), dropped=laser),
        repeats=None,
        max_field_chars=UNBOUNDED_CHARS,
    )


def measure_session_log(
    run_dir: Path,
    seconds: float,
    *,
    legacy: bool = False,
    flood: bool = False,
    loaded: LoadedSetup | None = None,
    settle_s: float = 1.0,
) -> LogGrowth:
    """Run an armed, firing session and measure what its log takes on in ``seconds``."""
    loaded = loaded or load("demo-ndyag-1064")
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "log.sqlite3"
    if legacy:
        conn = sqlite3.connect(db)
        conn.executescript(FIRST_FORMAT_DDL)
        conn.close()
    with (
        SimControl(
            SimSpec(
                run_dir=str(run_dir / "sim"),
                setup=loaded.source,
                log_file=str(run_dir / "sim" / "sim.log"),
            )
        ) as sim,
        flooding_laser(sim.endpoints["laser"], run_dir) as flooder,
    ):
        endpoints = {**sim.endpoints, "laser": flooder.path}
        log = SessionLog(db, max_field_chars=UNBOUNDED_CHARS if legacy else None)
        params = SessionParams(
            "bench",
            "BENCH-0001",
            SkinType.III,
            no_contraindications_declared(),
            mode=SessionMode.TEST,
        )
        recorder = legacy_recorder(log) if legacy else LogRecorder(log)
        session = Session(loaded, recorder, params, setup=with_endpoints(loaded.setup, endpoints))
        try:
            session.start()
            if not session.request_settings(SIZE_SETTINGS).ok:
                raise RuntimeError("the size benchmark's settings were refused")
            rearmed = _arm(session)
            time.sleep(settle_s)
            session.recorder.flush()
            b0, seq0, t0 = logical_bytes(db), _head(db), time.monotonic()
            if flood:
                flooder.flood(True)
            time.sleep(seconds)
            session.recorder.flush()
            b1, seq1, t1 = logical_bytes(db), _head(db), time.monotonic()
            flooder.flood(False)
        finally:
            session.end("benchmark finished")
            log.close()
    conn = sqlite3.connect(db)
    try:
        n_events, largest = conn.execute(
            "SELECT COUNT(*), MAX(LENGTH(payload)) FROM events WHERE seq > ? AND seq <= ?",
            (seq0, seq1),
        ).fetchone()
        (rows,) = conn.execute(
            "SELECT COUNT(*) FROM telemetry WHERE batch_seq > ? AND batch_seq <= ?", (seq0, seq1)
        ).fetchone()
        (trips,) = conn.execute(
            "SELECT COUNT(*) FROM events WHERE seq > ? AND seq <= ? AND kind = 'trip'",
            (seq0, seq1),
        ).fetchone()
    finally:
        conn.close()
    return LogGrowth(
        b1 - b0, t1 - t0, int(n_events), int(largest or 0), int(rows), int(trips), rearmed
    )


def _arm(session: Session, attempts: int = 3) -> int:
    """Arm; a transient trip before the window (a late poll on a loaded machine) is
    acknowledged and arming retried, and counted: the size figure is not about trips."""
    for attempt in range(attempts):
        try:
            session.arm()
            return attempt
        except Refused:
            if session.state is not State.HALTED or attempt == attempts - 1:
                raise
        deadline = time.monotonic() + 5.0
        while session.loop.halt_conditions_active() and time.monotonic() < deadline:
            time.sleep(0.05)
        session.acknowledge("bench", "transient trip before the size measurement")
    raise AssertionError("unreachable")


def _head(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0)
    finally:
        conn.close()


def log_sizes(seconds: float) -> dict[str, LogGrowth]:
    """Before (legacy recording), after, and after with a flooding laser; fresh files each."""
    with tempfile.TemporaryDirectory(prefix="laserguard-bench-size-") as tmp:
        return {
            name: measure_session_log(Path(tmp) / name, seconds, legacy=legacy, flood=flood)
            for name, legacy, flood in (
                ("before", True, False),
                ("after", False, False),
                ("flooding", False, True),
            )
        }
