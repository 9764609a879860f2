"""Issue 16 item 2: the fleet view in the console, over a real PostgreSQL fleet store that two
bridges of two clinics shipped their real SQLite logs into (sessions, halts, incidents,
follow-ups, calibration certificates: all events of each bridge's chain)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from benchmarks.pg_cluster import Cluster
from monitor.fleet.shipper import ship
from monitor.fleet.store import FleetStore
from monitor.fleet.view import FleetView
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.photos import PhotoStore
from monitor.incidents.streams import iso
from monitor.record.chain_log import ChainLog
from monitor.record.sqlite_store import SessionLog
from monitor.reports.clinic_summary import build_clinic_summary
from monitor.service.roles import ROLE_PERMISSIONS, Permission, Role
from tests.monitor.incidents.made_sessions import DAY_S, T0, Made, write_session
from tests.monitor.incidents.test_incidents import DETAILS, Clock
from tests.monitor.service.conftest import Console

pytestmark = pytest.mark.fleet

PERIOD = {"from": "2026-05-28T00:00:00Z", "to": "2026-06-27T00:00:00Z", "as_of": "2026-07-10"}
AS_OF = datetime(2026, 7, 10, tzinfo=UTC).timestamp()


def iso_day(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).date().isoformat()


def write_calibration(log: ChainLog, laser_id: str, *, passed: bool, at: float) -> None:
    """A completed full calibration run, as the procedure leaves it (its records chain)."""
    rid = log.start_records(
        "calibration",
        {
            "check": "full",
            "by": "biomed-1",
            "performed_at": datetime.fromtimestamp(at, tz=UTC).isoformat(),
            "simulated": False,
            "laser": {"laser_id": laser_id},
            "policy": {"tolerance_fraction": 0.2, "warning_days": 14},
        },
        t_wall=at,
    )
    verdict = "pass" if passed else "fail"
    log.append(
        rid,
        "calibration_result",
        {
            "verdict": verdict,
            "reason": "all points within ±20%" if passed else "3 of 8 points beyond ±20%",
            "next_due": iso_day(at + 180 * DAY_S) if passed else None,
        },
        at + 60,
    )
    log.end_session(rid, "calibration done", at + 61)


def clinic_log(db: Path, *, clinic: str, skin: str, trips: int, burn: bool, passed: bool) -> None:
    """Five sessions in the month; ``trips`` of them halted on skin temperature; a burn
    (grade 2, whose follow-up is overdue by AS_OF) if ``burn``; a calibration."""
    clock = Clock(T0)
    with SessionLog(db) as log:
        records = ClinicRecords.over(log, photos=PhotoStore.beside(db), clock=clock)
        write_calibration(log, db.stem, passed=passed, at=T0 - 10 * DAY_S)
        sids = []
        for k in range(5):
            made = Made(
                skin_type=skin,
                patient_id=f"{clinic[:3].upper()}-{k:03d}",
                trips=[("skin_temp_high", 12.0)] if k < trips else [],
                t_wall=T0 + k * DAY_S,
                clinic={"clinic": clinic, "emergency_contact": "+44 20 0000 0000"},
            )
            clock.now = made.t_wall + 100
            sids.append(write_session(log, made))
        if burn:
            records.incidents.open(sids[0], by="dr-b", details=dict(DETAILS))


@dataclass
class Fleet:
    dsn: str
    logs: dict[str, Path]


@pytest.fixture
def fleet(fleet_dsn: str, tmp_path: Path) -> Fleet:
    """Two bridges of two clinics, each log shipped whole into one fleet store."""
    logs = {
        "laser-north-1": tmp_path / "laser-north-1.sqlite3",
        "laser-south-1": tmp_path / "laser-south-1.sqlite3",
    }
    clinic_log(logs["laser-north-1"], clinic="North", skin="III", trips=2, burn=True, passed=True)
    clinic_log(logs["laser-south-1"], clinic="South", skin="V", trips=1, burn=False, passed=False)
    with FleetStore(fleet_dsn) as store:
        for bid, db in logs.items():
            ship(db, store, bid, clinic="North Clinic" if "north" in bid else "South Clinic")
    return Fleet(fleet_dsn, logs)


@pytest.fixture
def console(tmp_path: Path, fleet: Fleet) -> Iterator[Console]:
    c = Console(tmp_path / "console")
    c.app.state.fleet_dsn = fleet.dsn
    with c.client:
        yield c


def test_item2_every_laser_of_two_clinics_with_its_halts_calibration_and_follow_ups(
    console: Console,
) -> None:
    r = console.client.get(
        "/api/fleet/lasers", params={"as_of": PERIOD["as_of"]}, headers=console.as_(Role.AUDITOR)
    )
    assert r.status_code == 200, r.text
    lasers = {x["bridge_id"]: x for x in r.json()["lasers"]}
    assert set(lasers) == {"laser-north-1", "laser-south-1"}
    north, south = lasers["laser-north-1"], lasers["laser-south-1"]
    assert north["clinic"] == "North Clinic" and south["clinic"] == "South Clinic"
    assert north["sessions"] == 5 and south["sessions"] == 5
    assert north["halts_by_cause"] == {"skin_temp_high": 2}
    assert south["halts_by_cause"] == {"skin_temp_high": 1}
    assert north["last_session"]["started_at"] == iso(T0 + 4 * DAY_S)  # the fifth
    assert north["calibration"]["state"] == "ok"
    assert north["calibration"]["last_calibration"]["verdict"] == "pass"
    assert south["calibration"]["state"] == "failed"
    assert "3 of 8 points" in south["calibration"]["last_calibration"]["reason"]
    # The burn's follow-up (grade 2: a visit at 24-48 h) is long overdue by July.
    assert north["followups"]["overdue"] == 1 and south["followups"]["overdue"] == 0
    assert north["followups"]["overdue_list"][0]["patient_id"] == "NOR-000"
    assert north["incidents_open"] == 1


def test_item2_one_clinic_and_the_clinics_list(console: Console) -> None:
    h = console.as_(Role.CLINICIAN)
    r = console.client.get("/api/fleet/clinics", headers=h)
    assert r.json() == {"clinics": ["North Clinic", "South Clinic"]}
    r = console.client.get("/api/fleet/lasers", params={"clinic": "South Clinic"}, headers=h)
    assert [x["bridge_id"] for x in r.json()["lasers"]] == ["laser-south-1"]


def test_item2_the_clinic_summary_over_the_fleet_equals_the_local_summaries_together(
    console: Console, fleet: Fleet
) -> None:
    r = console.client.get("/api/fleet/summary", params=PERIOD, headers=console.as_(Role.AUDITOR))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["verification"] == {"ok": True, "reason": ""}
    assert doc["sessions"] == 10
    assert doc["halts_by_cause"] == {"skin_temp_high": 3}
    assert doc["incidents"] == 1 and doc["incidents_per_100_sessions"] == 10.0
    assert len(doc["followups_overdue"]) == 1
    skin = {r["value"]: r for r in doc["breakdown"] if r["dimension"] == "skin_type"}
    assert skin["III"]["incidents"] == 1 and skin["V"]["sessions"] == 5
    # The same computation over the two local logs, read as one, says the same.
    logs = [SessionLog(p, read_only=True) for p in fleet.logs.values()]
    try:
        local = build_clinic_summary(
            [
                (str(p), ClinicRecords.over(log, photos=PhotoStore.beside(p)))
                for p, log in zip(fleet.logs.values(), logs, strict=True)
            ],
            T0 - DAY_S,
            T0 + 29 * DAY_S,
            as_of=AS_OF,
        )
    finally:
        for log in logs:
            log.close()
    ours = {k: v for k, v in doc.items() if k not in ("period", "clinic")}
    assert ours == {k: v for k, v in local.as_dict().items() if k != "period"}
    one = console.client.get(
        "/api/fleet/summary", params={**PERIOD, "clinic": "South Clinic"},
        headers=console.as_(Role.AUDITOR),
    )  # fmt: skip
    assert one.json()["sessions"] == 5 and one.json()["incidents"] == 0
    csv = console.client.get(
        "/api/fleet/summary", params={**PERIOD, "format": "csv"}, headers=console.as_(Role.ADMIN)
    )
    assert csv.status_code == 200 and csv.text.startswith("table,key,value")
    assert "total,sessions,,10,1,10.0" in csv.text


def test_item2_the_administrator_sees_the_fleet_without_patient_pseudonyms(
    console: Console,
) -> None:
    r = console.client.get(
        "/api/fleet/lasers", params={"as_of": PERIOD["as_of"]}, headers=console.as_(Role.ADMIN)
    )
    assert r.status_code == 200
    assert "NOR-000" not in r.text and "patient_id" not in r.text
    assert r.json()["lasers"][0]["followups"]["overdue"] == 1


ROUTES = ["/api/fleet/lasers", "/api/fleet/clinics", "/api/fleet/summary"]


@pytest.mark.parametrize("path", ROUTES)
def test_item2_every_role_without_read_fleet_is_refused_in_words(
    console: Console, path: str
) -> None:
    refused = [r for r in Role if Permission.READ_FLEET not in ROLE_PERMISSIONS[r]]
    assert set(refused) == {Role.OPERATOR, Role.BIOMED}
    for role in refused:
        r = console.client.get(path, params=PERIOD, headers=console.as_(role))
        assert r.status_code == 403, r.text
        assert f"({role.value}) may not read the fleet view" in r.json()["detail"]
    r = console.client.get(path, params=PERIOD)
    assert r.status_code == 401 and r.json()["detail"] == "sign in first"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "yesterday", "to": "2026-06-01"}, "is not a date or time"),
        ({"from": "2026-06-01", "to": "2026-05-01"}, "ends"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366 days"),
        ({"from": "2026-05-01"}, "to"),
        ({"from": "2026-05-01", "to": "2026-06-01", "format": "pdf"}, "format"),
        ({"from": "2026-05-01", "to": "2026-06-01", "clinic": ""}, "clinic"),
        ({"from": "2026-05-01", "to": "2026-06-01", "as_of": "x" * 41}, "as_of"),
    ],
)
def test_item2_bad_query_parameters_are_422_in_words(
    console: Console, params: dict[str, str], words: str
) -> None:
    r = console.client.get("/api/fleet/summary", params=params, headers=console.as_(Role.AUDITOR))
    assert r.status_code == 422, r.text
    assert words in r.text


def test_item2_no_fleet_store_configured_is_404_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LASERGUARD_FLEET_DSN", raising=False)
    c = Console(tmp_path)
    with c.client:
        for path in ROUTES:
            r = c.client.get(path, params=PERIOD, headers=c.as_(Role.AUDITOR))
            assert r.status_code == 404, r.text
            assert r.json()["detail"].startswith("this console has no fleet store: set ")


def test_item2_the_fleet_dsn_comes_from_the_environment(
    tmp_path: Path, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASERGUARD_FLEET_DSN", fleet.dsn)
    c = Console(tmp_path)
    with c.client:
        r = c.client.get("/api/fleet/clinics", headers=c.as_(Role.AUDITOR))
    assert r.status_code == 200 and len(r.json()["clinics"]) == 2


def test_item2_a_fleet_store_that_is_not_there_is_503_in_words(console: Console) -> None:
    console.app.state.fleet_dsn = f"host={os.path.abspath('no-such-dir')} dbname=x"
    for path in ROUTES:
        r = console.client.get(path, params=PERIOD, headers=console.as_(Role.AUDITOR))
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith("the fleet store cannot be reached now, try again")


def test_item2_a_fleet_store_that_goes_away_mid_read_is_503_not_500(
    console: Console, fleet: Fleet, pg_cluster: Cluster
) -> None:
    """The database ends every connection while the console reads: each request answers
    503 in words (the summary reads many queries: the cut lands inside one)."""
    dbname = psycopg.conninfo.conninfo_to_dict(fleet.dsn)["dbname"]

    real_lasers = FleetView.lasers

    def cut_then_read(self: FleetView, as_of: float, clinic: str | None = None) -> object:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
        return real_lasers(self, as_of, clinic)

    mp = pytest.MonkeyPatch()
    mp.setattr(FleetView, "lasers", cut_then_read)
    try:
        r = console.client.get("/api/fleet/lasers", headers=console.as_(Role.AUDITOR))
    finally:
        mp.undo()
    assert r.status_code == 503, r.text
    assert "the fleet store cannot be reached now" in r.json()["detail"]
    # And the next request, on a new connection, reads again.
    assert console.client.get("/api/fleet/lasers", headers=console.as_(Role.AUDITOR)).is_success


def test_item2_a_forged_row_in_the_fleet_fails_the_summary_verification_naming_the_laser(
    console: Console, sql: object, fleet: Fleet
) -> None:
    with psycopg.connect(fleet.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        conn.execute(
            "UPDATE events SET payload = replace(payload, 'skin_temp_high', 'sensor_link')"
            " WHERE bridge_id = 'laser-south-1' AND kind = 'trip'"
        )
    r = console.client.get("/api/fleet/summary", params=PERIOD, headers=console.as_(Role.AUDITOR))
    assert r.status_code == 200
    v = r.json()["verification"]
    assert v["ok"] is False and v["reason"].startswith("laser-south-1: ")


def test_item2_the_fleet_page_is_served_and_linked_from_the_console(console: Console) -> None:
    page = console.client.get("/fleet.html")
    assert page.status_code == 200 and "fleet.js" in page.text
    assert 'href="console.css"' in page.text
    assert console.client.get("/fleet.js").status_code == 200
    assert 'href="fleet.html"' in console.client.get("/").text
