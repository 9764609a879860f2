"""``laserguard incident`` and ``laserguard followup``: the clinic's records of complications.

Exit status (``monitor.cli.exit_status``): 0 done; 1 refused (the record's state does not
allow it: a draft closed as resolved, a step ticked twice, an outcome given twice) or the
log fails verification; 2 bad input (an unknown session or incident, a photo that is no
whole PNG or JPEG or is too large, a follow-up due in the past, a grade off the scale).
Every refusal is one sentence on stderr, and nothing is stored.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from device_profiles.protocols import ProtocolError
from monitor.cli.common import add_db_arg
from monitor.cli.exit_status import ExitStatus
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.incidents import DETAIL_FIELDS, Incident, IncidentStatus
from monitor.incidents.photos import PhotoStore
from monitor.incidents.streams import iso, parse_when
from monitor.incidents.trace import trace_around
from monitor.record.errors import SessionLogDamaged, SessionLogError
from monitor.record.sqlite_store import SessionLog

__all__ = ["add_followup_parser", "add_incident_parser", "clinic_records", "guarded"]

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@contextmanager
def clinic_records(db: str, *, write: bool = False) -> Iterator[ClinicRecords]:
    """The clinic's records over the log at ``db`` (read-only unless ``write``)."""
    path = Path(db)
    if not path.is_file():
        raise SessionLogError(f"no session log at {path}")
    with SessionLog(path, read_only=not write) as log:
        yield ClinicRecords.over(log, photos=PhotoStore.beside(path))


def guarded(command: str, fn: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """``fn`` with every refusal turned into one sentence and its exit status."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except IncidentRefused as e:
            return _fail(command, ExitStatus.REFUSED, f"refused: {e}")
        except SessionLogDamaged as e:
            return _fail(command, ExitStatus.REFUSED, e)
        except (IncidentInputError, SessionLogError, ProtocolError) as e:
            return _fail(command, ExitStatus.BAD_INPUT, e)

    return run


def _fail(command: str, status: ExitStatus, why: object) -> int:
    print(f"laserguard {command}: {why}", file=sys.stderr)
    return int(status)


def _by(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--by", default=os.environ.get("USER", ""), help="who does this (recorded) [%(default)s]"
    )


def _output(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="JSON")
    g.add_argument("--csv", action="store_true", help="CSV")


def _details_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", help="the complication: a protocol id (see `incident protocols`)")
    p.add_argument("--severity", help="a grade of the protocol book's scale (1-5)")
    p.add_argument("--site", dest="body_site", help="body site")
    p.add_argument("--noticed-at", help="when noticed (ISO 8601; no zone: local time)")
    p.add_argument("--noticed-by", help="who noticed it")
    p.add_argument("--actions", dest="actions_taken", help="actions taken")
    p.add_argument("--referral", help="referral (or 'none')")


def _details(args: argparse.Namespace) -> dict[str, object]:
    return {k: getattr(args, k) for k in DETAIL_FIELDS if getattr(args, k, None) is not None}


def _write_table(rows: list[dict[str, Any]], as_csv: bool) -> None:
    if as_csv:
        out = io.StringIO()
        if rows:
            w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
        sys.stdout.write(out.getvalue())
    else:
        print(json.dumps(rows, indent=2))


def _cell(v: object) -> object:
    return json.dumps(v) if isinstance(v, dict | list) else v


# --- incident -------------------------------------------------------------------------------


def add_incident_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "incident",
        help="incident records: open, complete, amend, close, tick, attach, list, show",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s = p.add_subparsers(dest="incident_command", required=True, metavar="COMMAND")

    o = s.add_parser("open", help="document an incident of a session (noticed later, or now)")
    o.add_argument("session_id", metavar="SESSION")
    _details_args(o)
    o.add_argument("--trigger", type=int, default=None, metavar="SEQ", help="the halt's seq")
    c = s.add_parser("complete", help="a draft's details: it is documented from now on")
    c.add_argument("incident_id", metavar="ID")
    _details_args(c)
    a = s.add_parser("amend", help="correct an incident: a new entry, both versions kept")
    a.add_argument("incident_id", metavar="ID")
    a.add_argument("--why", required=True, help="why the correction")
    _details_args(a)
    cl = s.add_parser("close", help="close: a draft as no_injury; documented: resolved/referred")
    cl.add_argument("incident_id", metavar="ID")
    cl.add_argument("--outcome", required=True, choices=["no_injury", "resolved", "referred"])
    cl.add_argument("--reason", required=True)
    t = s.add_parser("tick", help="one step of the incident's protocol done")
    t.add_argument("incident_id", metavar="ID")
    t.add_argument("step", type=int, metavar="STEP", help="the step's number (1 is the first)")
    t.add_argument("--note", default="")
    at = s.add_parser("attach", help="attach a photo (PNG or JPEG), stored by content hash")
    at.add_argument("incident_id", metavar="ID")
    at.add_argument("photo", metavar="FILE")
    at.add_argument("--caption", default="")
    for q, fn in ((o, _open), (c, _complete), (a, _amend), (cl, _close), (t, _tick), (at, _attach)):
        add_db_arg(q)
        _by(q)
        q.add_argument("--json", action="store_true", help="print the incident as JSON")
        q.set_defaults(func=guarded("incident", fn))

    ls = s.add_parser("list", help="incidents, oldest first")
    ls.add_argument("--session", default=None)
    ls.add_argument("--status", choices=[x.value for x in IncidentStatus], default=None)
    _output(ls)
    add_db_arg(ls)
    ls.set_defaults(func=guarded("incident", _list))
    sh = s.add_parser("show", help="one incident: protocol, checklist, details, history")
    sh.add_argument("incident_id", metavar="ID")
    sh.add_argument("--json", action="store_true")
    add_db_arg(sh)
    sh.set_defaults(func=guarded("incident", _show))
    pr = s.add_parser("protocol", help="the protocol shown for a halt cause, or by its id")
    pr.add_argument("name", metavar="CHECK_OR_ID")
    pr.set_defaults(func=guarded("incident", _protocol))
    ps = s.add_parser("protocols", help="every protocol and the severity scale")
    ps.set_defaults(func=guarded("incident", _protocols))


def _print_incident(clinic: ClinicRecords, incident: Incident, as_json: bool) -> int:
    if as_json:
        print(json.dumps(incident.as_dict(), indent=2))
        return 0
    i = incident
    print(f"incident  {i.incident_id}  {i.status}{'  (amended)' if i.amended else ''}")
    print(f"session   {i.session_id}  patient {i.patient_id}")
    print(f"opened    {iso(i.opened_at)} by {i.opened_by} ({i.origin})")
    if i.trigger is not None:
        tr = i.trigger
        print(f"halt      {tr['check']} at {tr['t_s']} s (seq {tr['seq']}): {tr['reason']}")
    for k in DETAIL_FIELDS:
        if k in i.details:
            print(f"{k:<13} {i.details[k]}")
    if i.protocol is not None:
        proto = clinic.book.protocol(str(i.protocol["id"]))
        done = {t.step: t for t in i.ticks}
        print(f"protocol  {proto.title} (book v{i.protocol['book_version']})")
        for n, step in enumerate(proto.immediate_steps, 1):
            t = done.get(n)
            mark = f"[x] {t.by} {iso(t.t_wall)}" if t else "[ ]"
            print(f"  {n}. {mark}  {step}")
        print(f"  tell: {', '.join(proto.notify)}")
        for r in proto.refer_when:
            print(f"  refer: {r}")
    for a in i.photos:
        problem = clinic.incidents.photos.check(a.photo)
        print(f"photo     {a.photo.sha256[:16]} {a.photo.media_type} {a.caption} "
              f"({problem or 'intact'})")  # fmt: skip
    if i.closure is not None:
        print(f"closed    {i.closure['outcome']} by {i.closure['by']}: {i.closure['reason']}")
    print("history (nothing is overwritten):")
    for e in i.history:
        print(f"  {e.seq:>7}  {iso(e.t_wall)}  {e.by:<14} {e.summary()}")
    return 0


def _open(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.open(
            args.session_id, by=args.by, details=_details(args), trigger_seq=args.trigger
        )
        return _print_incident(clinic, incident, args.json)


def _complete(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.complete(args.incident_id, by=args.by, details=_details(args))
        return _print_incident(clinic, incident, args.json)


def _amend(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.amend(
            args.incident_id, by=args.by, why=args.why, changes=_details(args)
        )
        return _print_incident(clinic, incident, args.json)


def _close(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.close(
            args.incident_id, by=args.by, outcome=args.outcome, reason=args.reason
        )
        return _print_incident(clinic, incident, args.json)


def _tick(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.tick(args.incident_id, args.step, by=args.by, note=args.note)
        return _print_incident(clinic, incident, args.json)


def _attach(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = clinic.incidents.attach(
            args.incident_id, args.photo, by=args.by, caption=args.caption
        )
        return _print_incident(clinic, incident, args.json)


def _list(args: argparse.Namespace) -> int:
    with clinic_records(args.db) as clinic:
        session = None
        if args.session is not None:
            from monitor.incidents.streams import resolve_session

            session = resolve_session(clinic.log, args.session).session_id
        status = None if args.status is None else IncidentStatus(args.status)
        found = clinic.incidents.select(session_id=session, status=status)
    rows: list[dict[str, Any]] = [
        {
            "incident_id": i.incident_id,
            "session_id": i.session_id,
            "patient_id": i.patient_id,
            "status": str(i.status),
            "opened_at": iso(i.opened_at),
            "trigger": None if i.trigger is None else i.trigger.get("check"),
            "protocol": None if i.protocol is None else i.protocol.get("id"),
            **{k: i.details.get(k) for k in DETAIL_FIELDS},
            "amended": i.amended,
        }
        for i in found
    ]
    if args.json or args.csv:
        _write_table(rows, args.csv)
        return 0
    for r in rows:
        print(f"{r['incident_id'][:8]}  {r['opened_at']}  {r['status']:<10}  "
              f"session {r['session_id'][:8]}  {r['patient_id']}  {r['type'] or r['protocol']}"
              f"  grade {r['severity'] or '-'}")  # fmt: skip
    if not rows:
        print("(no incidents)")
    return 0


def _show(args: argparse.Namespace) -> int:
    with clinic_records(args.db) as clinic:
        incident = clinic.incidents.get(args.incident_id)
        code = _print_incident(clinic, incident, args.json)
        if not args.json and incident.trigger is not None:
            record = clinic.log.read_verified(incident.session_id)
            t = trace_around(record, float(incident.trigger["t_s"]))
            print(f"around the halt (from the log): highest skin {t.max_skin_temp_c} °C in "
                  f"{t.t_from_s:.0f}..{t.t_to_s:.0f} s; settings approved {t.approved}; "
                  f"read back {t.read_back}")  # fmt: skip
        return code


def _protocol(args: argparse.Namespace) -> int:
    from monitor.incidents.protocols import load_book

    book = load_book()
    proto = book.protocol_for_halt(args.name)
    if proto is None:
        if book.for_halt(args.name) is not None:
            print(f"a halt on {args.name} implies no exposure of the patient: no protocol")
            return 0
        proto = book.protocol(args.name)
    print(f"{proto.title}  ({proto.id}; protocols v{book.version})")
    print(f"signs: {proto.signs}")
    for n, step in enumerate(proto.immediate_steps, 1):
        print(f"  {n}. [ ] {step}")
    print(f"tell: {', '.join(proto.notify)}")
    for r in proto.refer_when:
        print(f"refer: {r}")
    print(f"source: {proto.source}")
    return 0


def _protocols(args: argparse.Namespace) -> int:
    from monitor.incidents.protocols import load_book

    book = load_book()
    print(f"emergency protocols v{book.version}, sha256 {book.digest}")
    for p in book.book.protocols:
        print(f"  {p.id:<24} {p.title}")
    print(f"severity scale ({book.book.severity_source}):")
    for g in book.book.severity_scale:
        print(f"  {g.grade} {g.name}: {g.meaning}")
    return 0


# --- followup -------------------------------------------------------------------------------


def add_followup_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "followup",
        help="follow-ups: schedule, record an outcome, list, due and overdue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s = p.add_subparsers(dest="followup_command", required=True, metavar="COMMAND")
    sc = s.add_parser("schedule", help="a follow-up of a session (or of one of its incidents)")
    sc.add_argument("session_id", metavar="SESSION")
    sc.add_argument("--due-by", required=True, help="the latest date (ISO 8601)")
    sc.add_argument("--due-from", default=None, help="the earliest date (default: now)")
    sc.add_argument("--method", default="phone call")
    sc.add_argument("--reason", required=True)
    sc.add_argument("--incident", default=None, metavar="ID")
    rec = s.add_parser("record", help="the outcome of a follow-up (it is done)")
    rec.add_argument("followup_id", metavar="ID")
    rec.add_argument(
        "--outcome",
        required=True,
        choices=["resolved", "improving", "unchanged", "worse", "referred", "not_reached"],
    )
    rec.add_argument("--note", default="")
    for q, fn in ((sc, _schedule), (rec, _record)):
        add_db_arg(q)
        _by(q)
        q.set_defaults(func=guarded("followup", fn))
    for name, fn, what in (
        ("list", _fl_list, "every follow-up, by due date"),
        ("due", _fl_due, "follow-ups due or overdue"),
    ):
        q = s.add_parser(name, help=what)
        q.add_argument("--as-of", default=None, help="judge due and overdue at this time")
        q.add_argument("--session", default=None)
        _output(q)
        add_db_arg(q)
        q.set_defaults(func=guarded("followup", fn))


def _schedule(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        incident = None
        if args.incident is not None:
            found = clinic.incidents.get(args.incident, verified=False)
            incident = found.incident_id
        f = clinic.followups.schedule(
            args.session_id,
            due_by=parse_when(args.due_by, "--due-by"),
            due_from=None if args.due_from is None else parse_when(args.due_from, "--due-from"),
            by=args.by,
            method=args.method,
            reason=args.reason,
            incident_id=incident,
        )
        print(f"follow-up {f.followup_id} due {iso(f.due_from)} .. {iso(f.due_by)}")
    return 0


def _record(args: argparse.Namespace) -> int:
    with clinic_records(args.db, write=True) as clinic:
        f = clinic.followups.record(
            args.followup_id, outcome=args.outcome, by=args.by, note=args.note
        )
        print(f"follow-up {f.followup_id}: {args.outcome}")
    return 0


def _fl_rows(args: argparse.Namespace, only_due: bool) -> int:
    with clinic_records(args.db) as clinic:
        now = clinic.followups.clock() if args.as_of is None else parse_when(args.as_of, "--as-of")
        found = clinic.followups.due(now) if only_due else clinic.followups.select()
    rows = [f.as_dict(now) for f in found]
    if args.session is not None:
        rows = [r for r in rows if str(r["session_id"]).startswith(args.session)]
    if args.json or args.csv:
        _write_table(rows, args.csv)
        return 0
    for r in rows:
        print(f"{r['followup_id'][:8]}  {r['status']:<9}  due {r['due_from']} .. {r['due_by']}  "
              f"{r['patient_id']}  {r['method']}: {r['reason']}")  # fmt: skip
    if not rows:
        print("(none)")
    return 0


def _fl_list(args: argparse.Namespace) -> int:
    return _fl_rows(args, only_due=False)


def _fl_due(args: argparse.Namespace) -> int:
    return _fl_rows(args, only_due=True)
