"""`fleet` subcommands: ship a bridge's session log to the fleet store, its status, verify it.

The fleet store is PostgreSQL, named by a libpq connection string (``--fleet`` or
``$LASERGUARD_FLEET_DSN``, e.g. ``host=records.clinic dbname=laserguard user=shipper``).
``ship`` migrates the schema first (yoyo; nothing to do once current).

Exit codes (``exit_status``): 0 done; 1 refused or not done: the store could not be reached
(nothing changed: run it again), a shipment was refused (a gap, a forged link, a local log
behind the fleet: reported in the store's ``refusals``), a chain in the store fails
verification; 2 bad input (no connection string, a local log that cannot be read).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from monitor.cli.common import DEFAULT_SETUP, add_db_arg, fail
from monitor.cli.exit_status import BadInput, ExitStatus

# The fleet's driver (psycopg, yoyo) is imported by these commands only: a bridge process,
# which builds the same parser, never loads it.
DEFAULT_CHUNK_EVENTS = 500  # as monitor.fleet.shipper.DEFAULT_CHUNK_EVENTS

__all__ = ["DSN_ENV_VAR", "add_fleet_parser"]

DSN_ENV_VAR = "LASERGUARD_FLEET_DSN"


def add_fleet_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = subparsers.add_parser(
        "fleet",
        help="ship session logs to the clinic chain's PostgreSQL fleet store; status; verify",
        description="The fleet store: every bridge's chained records in one PostgreSQL database.",
    )
    sub = fleet.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")

    def dsn(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--fleet",
            default=os.environ.get(DSN_ENV_VAR),
            metavar="DSN",
            help=f"libpq connection string of the fleet store (default: ${DSN_ENV_VAR})",
        )
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p_ship = sub.add_parser("ship", help="ship what the fleet lacks of this bridge's log")
    dsn(p_ship)
    add_db_arg(p_ship)
    p_ship.add_argument(
        "--bridge", default=None, help="this bridge's id in the fleet (default: the setup's name)"
    )
    p_ship.add_argument("--setup", default=DEFAULT_SETUP, help="this bridge's setup")
    p_ship.add_argument(
        "--chunk-events", type=int, default=DEFAULT_CHUNK_EVENTS, help=argparse.SUPPRESS
    )
    p_ship.set_defaults(func=cmd_ship)

    p_status = sub.add_parser("status", help="every bridge's shipped head and refusals")
    dsn(p_status)
    p_status.set_defaults(func=cmd_status)

    p_verify = sub.add_parser("verify", help="recompute every bridge's chain in the fleet store")
    dsn(p_verify)
    p_verify.add_argument("--bridge", default=None, help="only this bridge")
    p_verify.set_defaults(func=cmd_verify)


def _dsn(args: argparse.Namespace) -> str:
    if not args.fleet:
        raise BadInput(f"no fleet store named: give --fleet DSN or set ${DSN_ENV_VAR}")
    return str(args.fleet)


def _command(args: argparse.Namespace) -> str:
    return f"fleet {args.fleet_command}"


def cmd_ship(args: argparse.Namespace) -> int:
    from device_profiles.loader import load
    from monitor.fleet.errors import FleetError, ShipmentRefused
    from monitor.fleet.schema import migrate
    from monitor.fleet.shipper import ship
    from monitor.fleet.store import FleetStore

    db = Path(args.db)
    if not db.is_file():
        raise BadInput(f"no session log at {db}")
    setup = load(args.setup).setup
    bridge = args.bridge or setup.name
    clinic = setup.clinic.name if setup.clinic is not None else None
    dsn = _dsn(args)
    try:
        migrate(dsn)
        with FleetStore(dsn) as fleet:
            result = ship(db, fleet, bridge, clinic=clinic, chunk_events=args.chunk_events)
    except ShipmentRefused as e:
        return fail(_command(args), ExitStatus.REFUSED, f"refused, nothing of it merged: {e}")
    except FleetError as e:
        return fail(_command(args), ExitStatus.REFUSED, e)
    if args.json:
        print(json.dumps({"bridge": bridge, "events": result.events,
                          "telemetry_rows": result.telemetry_rows,
                          "head_seq": None if result.head is None else result.head[0]}))  # fmt: skip
    else:
        seq = 0 if result.head is None else result.head[0]
        print(
            f"{bridge}: shipped {result.events} events, {result.telemetry_rows} telemetry rows;"
            f" the fleet holds up to seq {seq} of {result.local_head}"
        )
    return int(ExitStatus.OK)


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.fleet.errors import FleetError
    from monitor.fleet.store import FleetStore

    try:
        with FleetStore(_dsn(args)) as fleet:
            bridges = fleet.bridges()
            activity = {a.bridge_id: a for a in fleet.activity()}
    except FleetError as e:
        return fail(_command(args), ExitStatus.REFUSED, e)
    if args.json:
        doc = [{**b.__dict__, "activity": getattr(activity.get(b.bridge_id), "__dict__", None)}
               for b in bridges]  # fmt: skip
        print(json.dumps(doc, indent=2))
        return int(ExitStatus.OK)
    for b in bridges:
        refused = f"; {b.n_refusals} refused, last: {b.last_refusal}" if b.n_refusals else ""
        print(f"{b.bridge_id}  clinic {b.clinic or '-'}  head seq {b.head_seq}{refused}")
        a = activity.get(b.bridge_id)
        if a is not None and a.last_session_at is not None:
            last = datetime.fromtimestamp(a.last_session_at, tz=UTC).isoformat(timespec="minutes")
            halts = ", ".join(f"{k} {n}" for k, n in a.halts_by_cause.items()) or "none"
            print(f"  {a.sessions} sessions, last started {last}; halts by cause: {halts}")
    if not bridges:
        print("(no bridges have shipped)")
    return int(ExitStatus.OK)


def cmd_verify(args: argparse.Namespace) -> int:
    from monitor.fleet.errors import FleetError
    from monitor.fleet.store import FleetStore
    from monitor.record.verify import walk_span

    broken = 0
    out: list[dict[str, object]] = []
    try:
        with FleetStore(_dsn(args)) as fleet:
            for b in fleet.bridges():
                if args.bridge is not None and b.bridge_id != args.bridge:
                    continue
                result, _ = walk_span(fleet.reader(b.bridge_id), 1, b.head_seq, None)
                ok = result.ok and result.n_events == b.head_seq
                reason = result.reason
                if result.ok and not ok:
                    reason = f"{result.n_events} events stored, head says {b.head_seq}"
                broken += not ok
                out.append({"bridge": b.bridge_id, "ok": ok, "events": result.n_events,
                            "telemetry_rows": result.n_telemetry_rows, "reason": reason})  # fmt: skip
    except FleetError as e:
        return fail(_command(args), ExitStatus.REFUSED, e)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in out:
            word = "OK" if r["ok"] else "BROKEN"
            print(f"{word}: {r['bridge']}: {r['events']} events, {r['telemetry_rows']}"
                  f" telemetry rows; {r['reason']}")  # fmt: skip
    return int(ExitStatus.REFUSED if broken else ExitStatus.OK)
