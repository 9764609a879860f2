"""A throwaway PostgreSQL cluster: the fleet store's benchmark and tests run against one.

The server comes from the distribution's packages (Debian's ``postgresql``). The cluster
lives in a temporary folder and listens only on a Unix socket there (no TCP port).
PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
user (made by the package) and is run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["Cluster", "pg_bin", "throwaway_cluster"]


def pg_bin() -> Path | None:
    """The newest installed server's bin folder, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        return Path(max(found, key=lambda p: int(Path(p).parts[4]))).parent
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
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        # -F: no fsync. A throwaway cluster; what is measured is the work, not this disk.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-o", f"-k {self.socket_dir} -c listen_addresses='' -F", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} user=postgres dbname={dbname} connect_timeout=5"

    def new_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="lg-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    root.chmod(0o755)
    cluster = Cluster(bin_dir, root / "data", root, root / "server.log", as_user)
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(cluster.data), "-A",
                        "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
