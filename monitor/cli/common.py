"""What every ``laserguard`` subcommand shares: argument types, the settings arguments, the
default setup and session log, the endpoints of a running simulator, the one-sentence failure.

Written once here, so ``demo``, ``bridge``, ``check`` and ``sessions`` parse a skin type, a
setting or a log path the same way and agree on their defaults.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from device_profiles.loader import DEFAULT_SETUP, LoadedSetup, load, load_endpoints, with_endpoints
from device_profiles.schema import LASER_SETTINGS, Setup, SkinType
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.record.sqlite_store import SessionLogError

__all__ = [
    "DB_ENV_VAR",
    "DEFAULT_DB",
    "DEFAULT_SETUP",
    "add_db_arg",
    "add_settings_args",
    "db_path",
    "default_db",
    "fail",
    "load_setup",
    "positive",
    "settings_from",
    "skin_type",
]

DB_ENV_VAR = "LASERGUARD_DB"
DEFAULT_DB = "runs/laserguard.sqlite3"
SETTINGS_FLAGS = "--fluence --pulse-ms --spot-mm --rate-hz"


def default_db() -> str:
    """The session log named by ``$LASERGUARD_DB``, else ``runs/laserguard.sqlite3``."""
    return os.environ.get(DB_ENV_VAR) or DEFAULT_DB


def add_db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=default_db(),
        metavar="PATH",
        help=f"session log file, SQLite (default: ${DB_ENV_VAR} or {DEFAULT_DB}) [%(default)s]",
    )


def db_path(text: str) -> Path:
    """A session log to write; its folder is made if missing (a fresh clone has no runs/)."""
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SessionLogError(f"cannot make the folder for the session log {path}: {e}") from e
    return path


def positive(text: str) -> float:
    """A positive, finite number (seconds, a speed): `nan`, 0 and -1 are usage errors."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def skin_type(text: str) -> SkinType:
    """A Fitzpatrick type I..VI, in any case, with or without surrounding spaces."""
    try:
        return SkinType(text.strip().upper())
    except ValueError:
        raise argparse.ArgumentTypeError(f"skin type must be one of I..VI, not {text!r}") from None


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """The four laser settings, all optional: ``settings_from`` takes all four or none."""
    p.add_argument("--fluence", type=float, help="fluence, J/cm²")
    p.add_argument("--pulse-ms", type=float, help="pulse width, ms")
    p.add_argument("--spot-mm", type=float, help="spot diameter, mm")
    p.add_argument("--rate-hz", type=float, help="repetition rate, Hz")


def settings_from(args: argparse.Namespace) -> dict[str, float] | None:
    """The settings given, by name; None when none was given; some but not all is bad input."""
    vals = [args.fluence, args.pulse_ms, args.spot_mm, args.rate_hz]
    if all(v is None for v in vals):
        return None
    if any(v is None for v in vals):
        raise BadInput(f"give all four settings: {SETTINGS_FLAGS}")
    return dict(zip(LASER_SETTINGS, [float(v) for v in vals], strict=True))


def load_setup(name: str, endpoints_file: str | None = None) -> tuple[LoadedSetup, Setup]:
    """A setup as loaded (its digest is what the session records), and the setup to connect
    to: with the devices moved to the addresses of an endpoints file, when one is given."""
    loaded = load(name)
    if endpoints_file is None:
        return loaded, loaded.setup
    return loaded, with_endpoints(loaded.setup, load_endpoints(endpoints_file))


def fail(command: str, status: ExitStatus, why: object) -> int:
    """Say in one sentence on stderr why ``laserguard COMMAND`` did not do as asked."""
    print(f"laserguard {command}: {why}", file=sys.stderr)
    return int(status)
