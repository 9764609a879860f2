"""The fleet store's schema, created and migrated by yoyo-migrations from plain SQL files.

Why yoyo: the migrations are plain SQL files a database administrator can read and run by
hand (``migrations/NNNN.name.sql``, each with its ``.rollback.sql``); yoyo records which have
been applied in the database itself, applies each in its own transaction, and takes a lock
in the database so two shippers starting at once do not both migrate. Alembic would bring
SQLAlchemy, which nothing else here uses.

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

from monitor.fleet.errors import FleetError, FleetUnreachable

__all__ = ["MIGRATIONS_TABLE", "migrate", "migrations_dir", "pending"]

MIGRATIONS_TABLE = "_laserguard_migrations"


def migrations_dir() -> Path:
    return Path(str(files("monitor.fleet") / "migrations"))


def _yoyo_uri(dsn: str) -> str:
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as e:
        raise FleetError(f"the fleet connection string is not valid: {e}") from e
    database = params.pop("dbname", None)
    path = "/" + (database or "")  # yoyo reads the database from the path after its "/"
    return str(DatabaseURI("postgresql+psycopg", None, None, None, None, path, params))


def _backend(dsn: str):  # type: ignore[no-untyped-def]  # yoyo is untyped
    try:
        return get_backend(_yoyo_uri(dsn), migration_table=MIGRATIONS_TABLE)
    except psycopg.OperationalError as e:
        raise FleetUnreachable(f"cannot reach the fleet store: {e}".strip()) from e


def pending(dsn: str) -> list[str]:
    """Ids of the migrations not yet applied."""
    backend = _backend(dsn)
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir())))]
    finally:
        backend.connection.close()


def migrate(dsn: str) -> list[str]:
    """Apply every pending migration (under yoyo's lock); returns the ids applied."""
    backend = _backend(dsn)
    try:
        with backend.lock():
            todo = backend.to_apply(read_migrations(str(migrations_dir())))
            backend.apply_migrations(todo)
            return [m.id for m in todo]
    except psycopg.Error as e:
        raise FleetError(f"migrating the fleet store failed: {e}") from e
    finally:
        backend.connection.close()
