"""`sessions` subcommands: list, show, verify and plot the session log.

Exit codes: 0 success, 1 the log failed verification (a broken chain, or a damaged file:
``show`` and ``plot`` then refuse rather than display part of a session; for ``verify``
also a log behind its signed checkpoints, truncated, rolled back or replaced, or a forged
checkpoint), 2 the log could not be read (missing file, not a session log, unknown or
ambiguous session id, an unreadable checkpoint file, checkpoints but no key to check them).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_profiles.loader import load
from monitor.cli.common import DEFAULT_SETUP, add_db_arg
from monitor.cli.exit_status import ExitStatus
from monitor.record.anchor import AnchorCheck, Verdict, checkpoint_path, checkpoints_for
from monitor.record.channels import ChannelMap
from monitor.record.checkpoints import CheckpointForged
from monitor.record.sqlite_store import (
    Event,
    SessionInfo,
    SessionLog,
    SessionLogDamaged,
    SessionLogError,
    SessionRecord,
)

__all__ = ["add_sessions_parser"]

EXIT_OK = int(ExitStatus.OK)
EXIT_TAMPERED = int(ExitStatus.REFUSED)  # the log failed verification
EXIT_UNREADABLE = int(ExitStatus.BAD_INPUT)


def add_sessions_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sessions {list,show,verify,plot}` to a CLI's subparsers."""
    sessions = subparsers.add_parser(
        "sessions",
        help="list, show and verify logged treatment sessions",
        description="Read the tamper-evident session log.",
    )
    sub = sessions.add_subparsers(dest="sessions_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        add_db_arg(p)
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p_list = sub.add_parser("list", help="list sessions, newest first")
    common(p_list)
    p_list.set_defaults(func=cmd_list)

    p_show = sub.add_parser("show", help="show one session's events and telemetry summary")
    p_show.add_argument("session_id", metavar="ID", help="session id or a unique prefix of it")
    common(p_show)
    p_show.set_defaults(func=cmd_show)

    p_verify = sub.add_parser("verify", help="recompute the hash chain and telemetry digests")
    p_verify.add_argument(
        "session_id",
        metavar="ID",
        nargs="?",
        default=None,
        help="only the span of this session (id or unique prefix); default: the whole file",
    )
    p_verify.add_argument(
        "--fleet",
        default=None,
        metavar="DSN",
        help="also hold the log's head against what the fleet store holds of this bridge",
    )
    p_verify.add_argument(
        "--bridge", default=None, help="this log's bridge id in the fleet (default: the setup's)"
    )
    p_verify.add_argument(
        "--setup",
        default=DEFAULT_SETUP,
        help="setup whose anchor key checks the log's signed head checkpoints [%(default)s]",
    )
    common(p_verify)
    p_verify.set_defaults(func=cmd_verify)

    p_plot = sub.add_parser(
        "plot",
        help="draw a session: skin and plate temperature, limits, pulses, trips (SVG)",
    )
    p_plot.add_argument("session_id", metavar="ID", help="session id or a unique prefix of it")
    p_plot.add_argument(
        "--out", default=None, metavar="FILE", help="SVG file to write (default: session-ID.svg)"
    )
    common(p_plot)
    p_plot.set_defaults(func=cmd_plot)


def _open(db: str) -> SessionLog:
    path = Path(db)
    if not path.is_file():
        raise SessionLogError(f"no session log at {path}")
    # Read-only: reviewing or verifying a log must never change it.
    return SessionLog(path, read_only=True)


def _error(err: SessionLogError | str) -> int:
    """One line on stderr; a damaged log is a failed verification, anything else unreadable."""
    print(f"error: {err}", file=sys.stderr)
    return EXIT_TAMPERED if isinstance(err, SessionLogDamaged) else EXIT_UNREADABLE


def _iso(t_wall: float | None, ms: bool = False) -> str:
    if t_wall is None:
        return "-"
    stamp = datetime.fromtimestamp(t_wall, tz=UTC)
    return stamp.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def _json_number(x: float) -> float | str | None:
    """Strict JSON has no NaN or infinity."""
    if np.isnan(x):
        return None
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        with _open(args.db) as log:
            infos = log.sessions()
    except SessionLogError as e:
        return _error(e)
    if args.json:
        print(json.dumps([asdict(s) for s in infos], indent=2))
        return EXIT_OK
    header = ("ID", "STARTED", "OPERATOR", "PATIENT", "SKIN", "PROFILE", "MODE", "EVENTS", "END")
    rows = [
        (
            s.session_id[:8],
            _iso(s.started_at),
            s.operator,
            s.patient_id,
            s.skin_type,
            s.profile_name,
            s.mode,
            str(s.n_events),
            s.end_reason if s.end_reason is not None else "(open)",
        )
        for s in infos
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if not rows:
        print("(no sessions)")
    return EXIT_OK


def _telemetry_summary(
    channel: np.ndarray[Any, Any], value: np.ndarray[Any, Any]
) -> dict[int, dict[str, Any]]:
    summary: dict[int, dict[str, Any]] = {}
    for ch in np.unique(channel).tolist():
        v = value[channel == ch]
        finite = v[~np.isnan(v)]
        summary[int(ch)] = {
            "n": int(v.shape[0]),
            "min": float(finite.min()) if finite.size else float("nan"),
            "max": float(finite.max()) if finite.size else float("nan"),
            "n_nan": int(v.shape[0] - finite.shape[0]),
        }
    return summary


def _event_line(e: Event) -> str:
    payload = json.dumps(e.payload, sort_keys=True, separators=(",", ":"))
    return f"{e.seq:>7}  {_iso(e.t_wall, ms=True)}  {e.kind:<16} {payload}"


def _header_lines(s: SessionInfo) -> list[str]:
    return [
        f"session   {s.session_id}",
        f"started   {_iso(s.started_at, ms=True)}",
        f"ended     {_iso(s.ended_at, ms=True)}"
        + (f"  ({s.end_reason})" if s.end_reason is not None else "  (open)"),
        f"operator  {s.operator}",
        f"patient   {s.patient_id}   skin type {s.skin_type}",
        f"profile   {s.profile_name}  digest {s.profile_digest}",
        f"mode      {s.mode}",
        f"events    {s.n_events}",
    ]


def _read(args: argparse.Namespace) -> SessionRecord:
    """One whole, verified session from the log named by ``--db`` (raises SessionLogError)."""
    with _open(args.db) as log:
        return log.read_verified(args.session_id)


def cmd_show(args: argparse.Namespace) -> int:
    try:
        read = _read(args)
    except SessionLogError as err:
        return _error(err)
    info, events, channel, value = read.info, read.events, read.channel, read.value
    summary = _telemetry_summary(channel, value)
    policy = next((e.payload for e in events if e.kind == "telemetry_policy"), {})
    on_change = set(policy.get("on_change", []))
    channels = read.channels
    if args.json:
        doc = {
            "session": asdict(info),
            "events": [asdict(e) for e in events],
            "telemetry": {
                "n_rows": int(channel.shape[0]),
                "channels": {
                    str(ch): {
                        "name": channels.name(ch),
                        **{k: _json_number(x) if k in ("min", "max") else x for k, x in cs.items()},
                    }
                    for ch, cs in summary.items()
                },
                "channel_map": {
                    "source": "legacy" if channels.legacy else "recorded",
                    "channels": channels.as_record(),
                },
            },
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    for line in _header_lines(info):
        print(line)
    print(f"channels  {_map_note(channels)}")
    print()
    for e in events:
        print(_event_line(e))
    print()
    print(f"telemetry {channel.shape[0]} rows")
    for ch, s in summary.items():
        nan_note = f"  ({s['n_nan']} NaN)" if s["n_nan"] else ""
        name = channels.name(ch)
        step_note = "  (stored on change)" if name in on_change else ""
        print(
            f"  {name:<22} n={s['n']}  min={s['min']:.6g}  max={s['max']:.6g}{nan_note}{step_note}"
        )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    setup = load(args.setup).setup
    cp_file = checkpoint_path(Path(args.db))
    try:
        with _open(args.db) as log:
            result = log.verify(args.session_id)
            anchor: AnchorCheck | None = None
            if setup.anchor is not None:
                entries = checkpoints_for(Path(args.db), setup.anchor.public_key).read()
                anchor = log.compare_head(entries)
            elif cp_file.exists():
                raise SessionLogError(
                    f"{args.db} has signed checkpoints ({cp_file.name}) but setup {setup.name}"
                    " names no anchor key to check them: give its setup (--setup)"
                )
            if args.fleet and (anchor is None or anchor.ok):
                anchor = _fleet_check(log, args.fleet, args.bridge or setup.name) or anchor
    except CheckpointForged as e:
        print(f"FORGED CHECKPOINT: {e}")
        return EXIT_TAMPERED
    except SessionLogError as e:
        return _error(e)
    anchored = anchor is None or anchor.ok
    if args.json:
        doc: dict[str, Any] = asdict(result)
        doc["anchor"] = (
            None if anchor is None else {"verdict": str(anchor.verdict), "message": anchor.message}
        )
        print(json.dumps(doc, indent=2))
    elif not result.ok and result.damaged:
        print(f"DAMAGED: {result.reason}")
    elif not result.ok:
        print(f"TAMPERED/BROKEN at seq {result.first_bad_seq}: {result.reason}")
    elif anchor is not None and not anchor.ok:
        print(f"{str(anchor.verdict).upper()}: {anchor.message}")
    else:
        print(
            f"OK: {result.n_events} events, {result.n_telemetry_rows} telemetry rows, chain intact"
            + _legacy_note(result.legacy_channel_maps)
            + _anchor_note(anchor)
        )
    return EXIT_OK if result.ok and anchored else EXIT_TAMPERED


def _fleet_check(log: SessionLog, dsn: str, bridge: str) -> AnchorCheck | None:
    """The log next to the head the fleet store holds of it (None: nothing shipped yet)."""
    from monitor.fleet.errors import FleetError
    from monitor.fleet.store import FleetStore

    try:
        with FleetStore(dsn) as fleet:
            head = fleet.anchored_head(bridge)
    except FleetError as e:
        raise SessionLogError(f"the fleet store could not be asked: {e}") from e
    return None if head is None else log.compare_head([head])


def _anchor_note(anchor: AnchorCheck | None) -> str:
    # No key in the setup and no checkpoints beside the log: the line stays as it always was.
    if anchor is None:
        return ""
    if anchor.verdict is Verdict.NOT_ANCHORED:
        return "; head not anchored (no checkpoints yet)"
    return f"; {anchor.message}"


def _legacy_note(n_sessions: int) -> str:
    if not n_sessions:
        return ""
    which = "session has" if n_sessions == 1 else "sessions have"
    return f"; {n_sessions} {which} no recorded channel map (read with the legacy map)"


def cmd_plot(args: argparse.Namespace) -> int:
    from monitor.reports.plot import render_svg

    try:
        s = _read(args)
    except SessionLogError as err:
        return _error(err)
    out = Path(args.out or f"session-{s.info.session_id[:8]}.svg")
    try:
        out.write_text(
            render_svg(s.info, s.events, s.t_s, s.channel, s.value, channels=s.channels),
            encoding="utf-8",
        )
    except OSError as err:
        return _error(f"cannot write {out}: {err.strerror}")
    print(json.dumps({"plot": str(out)}) if args.json else f"wrote {out}")
    return EXIT_OK


def _map_note(channels: ChannelMap) -> str:
    """Where a session's channel names come from, in one line."""
    if channels.legacy:
        return "no channel map recorded with this session: read with the legacy channel map"
    return f"{len(channels.channels)} channels, as recorded with the session"
