"""A throwaway PostgreSQL cluster for the fleet tests: one per test session, in a temporary
folder, reached over a Unix socket in that folder only (no TCP port).

The server comes from the distribution's packages (Debian's ``postgresql``; `.ci/run`
installs it). PostgreSQL refuses to run as root, so under root the cluster belongs to the
``postgres`` user (made by the package) and is started through ``runuser``.

Missing PostgreSQL is a failure in CI (``CI`` set), never a skip: the fleet store's tests are
the proof of its promises. Elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from monitor.fleet.schema import migrate


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return None if initdb is None else Path(initdb).parent


@dataclass
class Cluster:
    bin: Path
    data: Path
    socket_dir: Path
    log: Path
    as_user: list[str]

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-o", f"-k {self.socket_dir} -c listen_addresses='' -F", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} user=postgres dbname={dbname} connect_timeout=5"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    pg_bin = _pg_bin()
    if pg_bin is None:
        why = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="lg-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    root.chmod(0o755)
    cluster = Cluster(pg_bin, root / "data", root, root / "server.log", as_user)
    subprocess.run([*as_user, str(pg_bin / "initdb"), "-D", str(cluster.data), "-A", "trust",
                    "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fleet_dsn(pg_cluster: Cluster) -> str:
    """A new, migrated fleet database of its own for each test."""
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg_cluster.dsn(name)
    migrate(dsn)
    return dsn


@pytest.fixture
def sql(fleet_dsn: str) -> Callable[..., list[tuple[object, ...]]]:
    def run(query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(fleet_dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run
