"""The fleet store on a real PostgreSQL (issue 16 item 1): shipped once, in order, whole,
checked on arrival; refused (and reported) when it does not continue the bridge's chain."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from benchmarks.pg_cluster import Cluster
from monitor.cli.main import main
from monitor.fleet.errors import FleetUnreachable, ShipmentRefused
from monitor.fleet.schema import pending
from monitor.fleet.shipper import ship
from monitor.fleet.store import FleetStore, Shipment
from monitor.record.sqlite_store import SessionLog
from monitor.record.verify import walk_span
from tests.monitor.fleet.logs import local_counts, make_log

pytestmark = pytest.mark.fleet

Sql = Callable[..., list[tuple[object, ...]]]


def fleet_counts(sql: Sql, bridge: str) -> tuple[int, int]:
    n_events = sql("SELECT count(*) FROM events WHERE bridge_id = %s", bridge)[0][0]
    n_rows = sql("SELECT count(*) FROM telemetry WHERE bridge_id = %s", bridge)[0][0]
    assert isinstance(n_events, int) and isinstance(n_rows, int)
    return n_events, n_rows


def verified(dsn: str, bridge: str) -> tuple[bool, int, int, str]:
    with FleetStore(dsn) as fleet:
        head = fleet.head(bridge)
        assert head is not None
        result, _ = walk_span(fleet.reader(bridge), 1, head[0], None)
    return result.ok, result.n_events, result.n_telemetry_rows, result.reason


def test_item1_schema_is_migrated_by_yoyo_and_current(fleet_dsn: str) -> None:
    assert pending(fleet_dsn) == []


def test_item1_ship_is_whole_verified_and_idempotent(
    fleet_dsn: str, sql: Sql, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db)
    with FleetStore(fleet_dsn) as fleet:
        first = ship(db, fleet, "laser-a", chunk_events=7)
        again = ship(db, fleet, "laser-a")
    assert fleet_counts(sql, "laser-a") == local_counts(db)
    assert (again.events, again.telemetry_rows) == (0, 0)
    assert first.head == again.head
    ok, n_events, n_rows, reason = verified(fleet_dsn, "laser-a")
    assert ok, reason
    assert (n_events, n_rows) == local_counts(db)
    # NaN arrives as NaN (the digest covers it)
    assert sql("SELECT count(*) FROM telemetry WHERE value = 'NaN'::float8")[0][0] > 0


def test_item1_resumes_where_the_fleet_left_off(fleet_dsn: str, sql: Sql, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
        make_log(db, sessions=2, seed=1)  # the bridge went on treating
        more = ship(db, fleet, "laser-a")
    assert more.events > 0
    assert fleet_counts(sql, "laser-a") == local_counts(db)
    assert verified(fleet_dsn, "laser-a")[0]


def test_item1_forged_link_is_refused_reported_and_never_merged(
    fleet_dsn: str, sql: Sql, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=2)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute('UPDATE events SET payload = \'{"n":99,"total":1}\' WHERE seq = 20')
    conn.commit()
    conn.close()
    with FleetStore(fleet_dsn) as fleet, pytest.raises(ShipmentRefused, match="at seq 20"):
        ship(db, fleet, "laser-a", chunk_events=5)
    head = sql("SELECT seq FROM chain_heads WHERE bridge_id = 'laser-a'")[0][0]
    assert head == 15  # every whole chunk before the forged one, nothing of it
    assert sql("SELECT max(seq) FROM events")[0][0] == 15
    refusals = sql("SELECT seq, reason FROM refusals WHERE bridge_id = 'laser-a'")
    assert refusals and refusals[0][0] == 20 and "forged" in str(refusals[0][1])
    assert main(["fleet", "status", "--fleet", fleet_dsn]) == 0


def test_item1_gap_is_refused(fleet_dsn: str, sql: Sql, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
        make_log(db, sessions=1, seed=2)
        with SessionLogReader(db) as events:
            head = fleet.head("laser-a")
            assert head is not None
            skipping = [e for e in events if e.seq > head[0] + 1]
        with pytest.raises(ShipmentRefused, match="gap"):
            fleet.receive(Shipment("laser-a", skipping, []))
    assert "gap" in str(sql("SELECT reason FROM refusals")[0][0])


def test_item1_a_rolled_back_local_log_is_refused(fleet_dsn: str, sql: Sql, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(db.read_bytes())
    make_log(db, sessions=1, seed=3)
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
        with pytest.raises(ShipmentRefused, match="rolled back or truncated"):
            ship(copy, fleet, "laser-a")
        other = tmp_path / "other.sqlite3"
        make_log(other, sessions=3, seed=4)
        with pytest.raises(ShipmentRefused, match="replaced"):
            ship(other, fleet, "laser-a")
    assert len(sql("SELECT * FROM refusals")) == 2


def test_item1_a_forged_telemetry_row_is_refused(fleet_dsn: str, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    with SessionLogReader(db) as events, SessionLogReader(db, telemetry=True) as rows:
        bad = [dataclasses.replace(rows[0], value=rows[0].value + 0.5), *rows[1:]]
        with FleetStore(fleet_dsn) as fleet, pytest.raises(ShipmentRefused, match="digest"):
            fleet.receive(Shipment("laser-a", events, bad))


def test_item1_the_store_is_append_only(fleet_dsn: str, sql: Sql, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM telemetry",
                      "TRUNCATE events CASCADE"):  # fmt: skip
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(statement)


def test_item1_database_stopped_mid_shipping_loses_and_duplicates_nothing(
    pg_cluster: Cluster, fleet_dsn: str, sql: Sql, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=3)
    stopped = False
    with FleetStore(fleet_dsn) as fleet:

        def stop_after_two(done: int, total: int) -> None:
            nonlocal stopped
            if done >= 20 and not stopped:
                stopped = True
                pg_cluster.stop("immediate")  # a crash, not a shutdown

        try:
            with pytest.raises(FleetUnreachable):
                ship(db, fleet, "laser-a", chunk_events=10, on_chunk=stop_after_two)
        finally:
            pg_cluster.start()
    # Unreachable now is one sentence and exit 1, not a traceback.
    assert main(["fleet", "ship", "--db", str(db), "--fleet", fleet_dsn,
                 "--bridge", "laser-a"]) == 0  # fmt: skip
    assert fleet_counts(sql, "laser-a") == local_counts(db)
    assert verified(fleet_dsn, "laser-a")[0]


def test_item1_unreachable_store_is_one_sentence_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=1)
    dsn = f"host={tmp_path} user=postgres dbname=nowhere connect_timeout=2"
    code = main(["fleet", "ship", "--db", str(db), "--fleet", dsn])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("laserguard fleet ship: cannot reach the fleet store")
    assert "Traceback" not in err and err.count("\n") == 1


class SessionLogReader:
    """The events (or telemetry batches) of a local log, read as the shipper reads them."""

    def __init__(self, db: Path, *, telemetry: bool = False) -> None:
        from monitor.record.sqlite_store import SessionLog

        self._log = SessionLog(db, read_only=True)
        self._telemetry = telemetry

    def __enter__(self) -> list:  # type: ignore[type-arg]
        with self._log.store.reading() as r:
            head = r.head()
            assert head is not None
            if self._telemetry:
                return list(r.scan_telemetry(1, head[0]))
            return list(r.scan_events(1, head[0]))

    def __exit__(self, *exc: object) -> None:
        self._log.close()


def test_item1_fleet_verify_finds_an_edit_made_in_the_database(
    fleet_dsn: str, sql: Sql, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        db = tmp_path / f"{name}.sqlite3"
        make_log(db, sessions=1)
        with FleetStore(fleet_dsn) as fleet:
            ship(db, fleet, f"laser-{name}")
    assert main(["fleet", "verify", "--fleet", fleet_dsn]) == 0
    capsys.readouterr()
    # Someone with the database's owner role drops the guard and edits one value.
    sql("ALTER TABLE telemetry DISABLE TRIGGER telemetry_append_only")
    sql("UPDATE telemetry SET value = value + 1 WHERE bridge_id = 'laser-b' AND idx = 7")
    assert main(["fleet", "verify", "--fleet", fleet_dsn]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("OK: laser-a")
    assert out[1].startswith("BROKEN: laser-b") and "do not match digest" in out[1]


def test_item2_fleet_status_shows_each_lasers_sessions_and_halts_by_cause(
    fleet_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=2)
    with SessionLog(db) as log:
        sid = log.start_session(operator="op", patient_id="P-7", skin_type="IV",
                                profile_name="p", profile_digest="d", mode="test")  # fmt: skip
        for check in ("skin_temp_high", "skin_temp_high", "cooler_flow_low"):
            log.append(sid, "trip", {"check": check, "reason": "r", "t_s": 1.0,
                                     "severity": "HALT"})  # fmt: skip
        log.end_session(sid, "halted")
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
    assert main(["fleet", "status", "--fleet", fleet_dsn]) == 0
    out = capsys.readouterr().out
    assert "laser-a" in out and "3 sessions" in out
    assert "halts by cause: skin_temp_high 2, cooler_flow_low 1" in out


def test_item3_sessions_verify_holds_the_log_against_the_fleets_head(
    fleet_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.sqlite3"
    make_log(db, sessions=2)
    with FleetStore(fleet_dsn) as fleet:
        ship(db, fleet, "laser-a")
    verify = ["sessions", "verify", "--db", str(db), "--fleet", fleet_dsn, "--bridge", "laser-a"]
    assert main(verify) == 0
    capsys.readouterr()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DROP TRIGGER telemetry_no_delete")
    conn.execute("DELETE FROM events WHERE seq > 10")
    conn.execute("DELETE FROM telemetry WHERE batch_seq > 10")
    conn.commit()
    conn.close()
    assert main(verify) == 1
    out = capsys.readouterr().out
    assert out.startswith("TRUNCATED:") and "events seq 11.." in out
