"""The fleet store's schema, created and migrated by yoyo-migrations from plain SQL files.

Why yoyo: the migrations are plain SQL files a database administrator can read and run by
hand (``migrations/NNNN.name.sql``, each with its ``.rollback.sql``); yoyo records which have
been applied in the database itself and applies each in its own transaction. Alembic would
bring SQLAlchemy, which nothing else here uses.

Two shippers starting at once must not both migrate. yoyo's own lock is a committed row,
which a shipper killed while holding it leaves behind, blocking every later one; so the
migration runs under a PostgreSQL advisory lock instead, which dies with its connection.

The connection is a libpq connection string or URI (``host=... dbname=... user=...``), the
same one the shipper uses: ``LASERGUARD_FLEET_DSN``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations
from yoyo.connections import DatabaseURI

from monitor.fleet.errors import FleetError, FleetUnreachable, one_line

__all__ = ["MIGRATIONS_TABLE", "migrate", "migrations_dir", "pending"]

MIGRATIONS_TABLE = "_laserguard_migrations"
_MIGRATION_LOCK = 0x4C47_464C  # "LGFL": the advisory lock key of LaserGuard's fleet schema


def migrations_dir() -> Path:
    return Path(str(files("monitor.fleet") / "migrations"))


def _yoyo_uri(dsn: str) -> str:
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as e:
        raise FleetError(f"the fleet connection string is not valid: {one_line(e)}") from e
    database = params.pop("dbname", None)
    path = "/" + (database or "")  # yoyo reads the database from the path after its "/"
    return str(DatabaseURI("postgresql+psycopg", None, None, None, None, path, params))


def _backend(dsn: str):  # type: ignore[no-untyped-def]  # yoyo is untyped
    try:
        return get_backend(_yoyo_uri(dsn), migration_table=MIGRATIONS_TABLE)
    except psycopg.OperationalError as e:
        raise FleetUnreachable(f"cannot reach the fleet store: {one_line(e)}".strip()) from e


def pending(dsn: str) -> list[str]:
    """Ids of the migrations not yet applied."""
    backend = _backend(dsn)
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir())))]
    finally:
        backend.connection.close()


def migrate(dsn: str) -> list[str]:
    """Apply every pending migration (under an advisory lock); returns the ids applied."""
    try:
        lock = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as e:
        raise FleetUnreachable(f"cannot reach the fleet store: {one_line(e)}".strip()) from e
    except psycopg.Error as e:
        raise FleetError(f"cannot open the fleet store: {one_line(e)}") from e
    try:
        with lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            backend = _backend(dsn)
            try:
                # Under the advisory lock no yoyo lock row can be live: one left by a killed
                # migrator would make yoyo wait, then fail.
                backend.break_lock()
                todo = backend.to_apply(read_migrations(str(migrations_dir())))
                backend.apply_migrations(todo)
                return [m.id for m in todo]
            finally:
                backend.connection.close()
    except psycopg.OperationalError as e:
        raise FleetUnreachable(f"the fleet store went away while migrating: {one_line(e)}") from e
    except psycopg.Error as e:
        raise FleetError(f"migrating the fleet store failed: {one_line(e)}") from e
