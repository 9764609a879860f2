"""Shippers killed mid-COPY, ten bridges at once, the database crashing under them (issue 16
items 1 and 4): every chain ends complete and verified, nothing stored twice, nothing lost.

Shippers are real processes (``python -m monitor.cli fleet ship``) against a real
PostgreSQL; kills are SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.pg_cluster import Cluster
from monitor.fleet.errors import FleetError
from monitor.fleet.shipper import ship
from monitor.fleet.store import FleetStore
from monitor.record.verify import walk_span
from tests.monitor.fleet.logs import local_counts, make_log

pytestmark = pytest.mark.fleet

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
Sql = Callable[..., list[tuple[object, ...]]]

# A shipper that dies by SIGKILL half-way through the COPY of its Nth telemetry chunk.
DIES_MID_COPY = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import monitor.fleet.store as store
    from monitor.fleet.shipper import ship

    calls = 0
    def half_then_die(cur, data, table="telemetry"):
        global calls
        calls += 1
        if calls < int(sys.argv[3]):
            return real(cur, data, table)
        with cur.copy("COPY telemetry (bridge_id, batch_seq, idx, t_s, channel, value)"
                      " FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data[: len(data) // 2])
            print("mid-copy", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    real, store.copy_telemetry = store.copy_telemetry, half_then_die
    with store.FleetStore(sys.argv[2]) as fleet:
        ship(Path(sys.argv[1]), fleet, "laser-a", chunk_events=6)
    """
)


def _ship_and_exit(db: Path, dsn: str, bridge: str, chunk: int) -> None:
    try:
        with FleetStore(dsn) as fleet:
            ship(db, fleet, bridge, chunk_events=chunk)
    except FleetError as e:  # the database crashed under it: a one-line exit, as the CLI's
        print(f"{bridge}: {e}", file=sys.stderr)
        os._exit(1)
    os._exit(0)


def shipper(db: Path, dsn: str, bridge: str, chunk: int) -> multiprocessing.Process:
    """A shipper process, forked from this one: it starts at once, however busy the machine
    (the CLI's own start is tested above)."""
    p = multiprocessing.get_context("fork").Process(
        target=_ship_and_exit, args=(db, dsn, bridge, chunk), daemon=True
    )
    p.start()
    return p


def chain_verified(dsn: str, bridge: str) -> tuple[bool, int, int]:
    with FleetStore(dsn) as fleet:
        head = fleet.head(bridge)
        assert head is not None
        result, _ = walk_span(fleet.reader(bridge), 1, head[0], None)
    return result.ok and result.n_events == head[0], result.n_events, result.n_telemetry_rows


def test_item1_shipper_sigkilled_mid_copy_resumes_nothing_duplicated_or_lost(
    fleet_dsn: str, sql: Sql, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=3)
    child = subprocess.run(
        [sys.executable, "-c", DIES_MID_COPY, str(db), fleet_dsn, "3"],
        capture_output=True, text=True, env=ENV, timeout=60,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "mid-copy" in child.stdout
    partial = sql("SELECT count(*) FROM telemetry")[0][0]
    head = sql("SELECT seq FROM chain_heads")[0][0]
    assert head == 12, "only the two whole chunks before the kill are stored"
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "fleet", "ship", "--db", str(db), "--fleet",
         fleet_dsn, "--bridge", "laser-a"],
        capture_output=True, text=True, env=ENV, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ok, n_events, n_rows = chain_verified(fleet_dsn, "laser-a")
    assert ok and (n_events, n_rows) == local_counts(db)
    assert sql("SELECT count(*) FROM telemetry")[0][0] == n_rows > partial
    print(f"\nkilled mid-COPY with {partial} rows stored; resumed to {n_events} events, "
          f"{n_rows} telemetry rows, none twice")  # fmt: skip


@pytest.mark.timeout(300)
def test_item1_ten_bridges_ship_concurrently_through_kills_and_a_database_crash(
    pg_cluster: Cluster, fleet_dsn: str, sql: Sql, tmp_path: Path
) -> None:
    rng = random.Random(16)
    bridges = {f"laser-{i:02d}": tmp_path / f"bridge-{i:02d}.sqlite3" for i in range(10)}
    for i, db in enumerate(bridges.values()):
        make_log(db, sessions=3, batches=3, rows=100, seed=i)
    # Two shippers for some bridges at once: they must take turns, not store twice.
    procs = [shipper(db, fleet_dsn, b, chunk=2) for b, db in bridges.items()]
    procs += [shipper(bridges[b], fleet_dsn, b, chunk=2) for b in rng.sample(sorted(bridges), 3)]
    # Processes start slowly on a busy machine: strike once shipping is under way.
    deadline = time.monotonic() + 240
    while not sql("SELECT 1 FROM chain_heads WHERE seq > 0") and time.monotonic() < deadline:
        time.sleep(0.05)
    kills = 0
    for p in rng.sample(procs, 5):
        time.sleep(rng.uniform(0.0, 0.2))
        if p.is_alive():
            p.kill()  # SIGKILL
            kills += 1
    mid_way = sql("SELECT count(*) FROM chain_heads WHERE seq > 0")[0][0]
    pg_cluster.stop("immediate")  # the database crashes under the rest
    pg_cluster.start()
    outcomes = []
    for p in procs:
        p.join(timeout=240)
        outcomes.append(p.exitcode)
        assert p.exitcode in (0, 1, -signal.SIGKILL), p.exitcode  # never an uncaught error
    # Everyone ships again, now undisturbed: each finishes what was left.
    again = [shipper(db, fleet_dsn, b, chunk=50) for b, db in bridges.items()]
    for p in again:
        p.join(timeout=240)
        assert p.exitcode == 0
    total_events = total_rows = 0
    for b, db in bridges.items():
        ok, n_events, n_rows = chain_verified(fleet_dsn, b)
        assert ok, b
        assert (n_events, n_rows) == local_counts(db), b
        total_events += n_events
        total_rows += n_rows
    print(f"\n10 bridges, {len(procs)} shippers, {kills} SIGKILLed and the database crashed"
          f" with {mid_way} bridges part-shipped; {sum(o != 0 for o in outcomes)} shippers"
          f" ended early; afterwards {total_events} events and {total_rows} telemetry rows,"
          " every chain complete and verified")  # fmt: skip
