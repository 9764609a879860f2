"""Telemetry into the fleet store (PostgreSQL): shipped rows per second next to raw COPY.

**Figure.** ``ship`` of a local SQLite log holding ``rows`` telemetry rows (in batches of
``batch`` rows, as the log writer makes them): read from SQLite, every link and every batch
digest checked, encoded, binary COPY, one transaction per chunk of events. **Floor.** The
same rows, already encoded in PostgreSQL's binary COPY format, COPYed into a table of the
same shape in one transaction: what the database takes at best. Same cluster, same run.
Target: the figure ≥ 0.5 × the floor (issue 16).

    python -m benchmarks.fleet_bench [--rows N] [--fleet DSN]

Without ``--fleet`` a throwaway cluster is started (``benchmarks.pg_cluster``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.pg_cluster import pg_bin, throwaway_cluster
from monitor.fleet.schema import migrate
from monitor.fleet.shipper import ship
from monitor.fleet.store import FleetStore, _telemetry_copy_bytes, copy_telemetry
from monitor.record.sqlite_store import SessionLog
from monitor.record.store import TelemetryRows

TARGET_RATIO = 0.5


def _local_log(db: Path, rows: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    with SessionLog(db) as log:
        sid = log.start_session(operator="bench", patient_id="P-0", skin_type="III",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        with log.batch():
            for b in range(rows // batch):
                t = np.arange(batch, dtype=np.float64) * 0.001 + b
                ch = (np.arange(batch) % 6).astype(np.int32)
                log.append_telemetry(sid, t, ch, rng.normal(33.0, 0.5, batch))
        log.end_session(sid, "done")


def measure(dsn: str, rows: int, batch: int) -> dict[str, float]:
    migrate(dsn)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        _local_log(db, rows, batch)
        # Floor: the same rows, pre-encoded, into a table of the same shape.
        with SessionLog(db, read_only=True) as log, log.store.reading() as r:
            head = r.head()
            assert head is not None
            batches: list[TelemetryRows] = list(r.scan_telemetry(1, head[0]))
        data = _telemetry_copy_bytes("bench-floor", batches)
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE floor (LIKE telemetry INCLUDING ALL)")
            conn.commit()
            t0 = time.perf_counter()
            with conn.transaction():
                copy_telemetry(conn.cursor(), data, table="floor")
            floor_s = time.perf_counter() - t0
        with FleetStore(dsn) as fleet:
            t0 = time.perf_counter()
            result = ship(db, fleet, f"bench-{uuid.uuid4().hex[:6]}")
            ship_s = time.perf_counter() - t0
    assert result.telemetry_rows == rows
    shipped = rows / ship_s
    floor = rows / floor_s
    return {"rows": rows, "shipped_rows_per_s": round(shipped), "floor_rows_per_s": round(floor),
            "ratio": round(shipped / floor, 3), "target_ratio": TARGET_RATIO}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fleet_bench", description=__doc__)
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--batch", type=int, default=1000, help="rows per telemetry batch")
    p.add_argument("--fleet", default=None, metavar="DSN", help="a fleet database to use")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.fleet:
        figures = measure(args.fleet, args.rows, args.batch)
    else:
        bin_dir = pg_bin()
        if bin_dir is None:
            print("fleet_bench: PostgreSQL is not installed", file=sys.stderr)
            return 2
        with throwaway_cluster(bin_dir) as cluster:
            figures = measure(cluster.new_database("bench"), args.rows, args.batch)
    if args.json:
        print(json.dumps(figures))
    else:
        verdict = "PASS" if figures["ratio"] >= TARGET_RATIO else "MISS"
        print(f"telemetry into PostgreSQL: {figures['shipped_rows_per_s']:,} rows/s shipped"
              f" (links and digests checked) vs {figures['floor_rows_per_s']:,} rows/s raw COPY"
              f" floor: {figures['ratio']}x, target >= {TARGET_RATIO}x: {verdict}"
              f"  [{figures['rows']:,} rows]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
