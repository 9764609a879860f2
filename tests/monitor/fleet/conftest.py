"""A throwaway PostgreSQL cluster for the fleet tests (``benchmarks.pg_cluster``): one per
test session, a new migrated database per test. `.ci/run` installs the server.

Missing PostgreSQL is a failure in CI (``CI`` set), never a skip: the fleet store's tests are
the proof of its promises. Elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from benchmarks.pg_cluster import Cluster, pg_bin, throwaway_cluster
from monitor.fleet.schema import migrate

__all__ = ["Cluster"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bin_dir = pg_bin()
    if bin_dir is None:
        why = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with throwaway_cluster(bin_dir) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fleet_template(pg_cluster: Cluster) -> str:
    """A database migrated once, that each test's database is copied from."""
    migrate(pg_cluster.new_database("fleet_template"))
    return "fleet_template"


@pytest.fixture
def fleet_dsn(pg_cluster: Cluster, fleet_template: str) -> str:
    """A new, migrated fleet database of its own for each test."""
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {fleet_template}")
    return pg_cluster.dsn(name)


@pytest.fixture
def sql(fleet_dsn: str) -> Callable[..., list[tuple[object, ...]]]:
    def run(query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(fleet_dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run
