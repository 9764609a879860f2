"""``laserguard report``: the session report (HTML), the clinic summary over a period (text,
CSV, JSON), and a session's patient information sheets (HTML and text).

A session that fails verification has no report (exit 1); an unknown session, a period that
is not one, or an unwritable file is bad input (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.cli.common import add_db_arg
from monitor.cli.incidents import Sub, clinic_records, guarded
from monitor.incidents.errors import IncidentInputError
from monitor.incidents.sheets import Which, given_note
from monitor.incidents.streams import parse_when

__all__ = ["add_report_parser"]


def add_report_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "report",
        help="session report (HTML), clinic summary (text, CSV, JSON), patient sheets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s = p.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    se = s.add_parser("session", help="one session's report as a printable HTML page")
    se.add_argument("session_id", metavar="ID")
    se.add_argument("--html", default=None, metavar="FILE", help="default: report-ID.html")
    se.add_argument("--json", action="store_true", help="the report's data as JSON instead")
    se.add_argument("--as-of", default=None, help="judge follow-ups at this time")
    add_db_arg(se)
    se.set_defaults(func=guarded("report", _session))
    cl = s.add_parser("clinic", help="the clinic summary over a period")
    cl.add_argument("--from", dest="t_from", required=True, help="first day (ISO 8601)")
    cl.add_argument("--to", dest="t_to", required=True, help="end, exclusive (ISO 8601)")
    cl.add_argument("--as-of", default=None, help="judge follow-ups overdue at this time")
    cl.add_argument("--mode", default=None, choices=["clinical", "demo", "test"])
    g = cl.add_mutually_exclusive_group()
    g.add_argument("--csv", action="store_true")
    g.add_argument("--json", action="store_true")
    add_db_arg(cl)
    cl.set_defaults(func=guarded("report", _clinic))
    sh = s.add_parser("sheet", help="a session's patient information sheet, as given")
    sh.add_argument("session_id", metavar="ID")
    sh.add_argument("which", choices=[w.value for w in Which])
    sh.add_argument("--html", default=None, metavar="FILE")
    sh.add_argument("--text", default=None, metavar="FILE")
    add_db_arg(sh)
    sh.set_defaults(func=guarded("report", _sheet))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise IncidentInputError(f"cannot write {path}: {e.strerror or e}") from e


def _session(args: argparse.Namespace) -> int:
    from monitor.reports.session_report import build_session_report

    as_of = None if args.as_of is None else parse_when(args.as_of, "--as-of")
    with clinic_records(args.db) as clinic:
        report = build_session_report(clinic, args.session_id, as_of=as_of)
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
            return 0
        out = Path(args.html or f"report-{report.info.session_id[:8]}.html")
        _write(out, report.html())
    print(f"wrote {out}; chain {'verified' if report.verification.ok else 'NOT VERIFIED'}")
    return 0 if report.verification.ok else 1


def _clinic(args: argparse.Namespace) -> int:
    from monitor.reports.clinic_summary import build_clinic_summary

    t_from, t_to = parse_when(args.t_from, "--from"), parse_when(args.t_to, "--to")
    if t_to <= t_from:
        raise IncidentInputError(f"--to {args.t_to} is not after --from {args.t_from}")
    as_of = None if args.as_of is None else parse_when(args.as_of, "--as-of")
    with clinic_records(args.db) as clinic:
        summary = build_clinic_summary(clinic, t_from, t_to, as_of=as_of, mode=args.mode)
    print(summary.csv() if args.csv else summary.json() if args.json else summary.text(), end="")
    if args.json:
        print()
    return 0 if summary.verification.ok else 1


def _sheet(args: argparse.Namespace) -> int:
    which = Which(args.which)
    with clinic_records(args.db) as clinic:
        sheet, given = clinic.sheet(args.session_id, which)
    if args.html is None and args.text is None:
        print(sheet.text, end="")
    if args.html is not None:
        _write(Path(args.html), sheet.html)
    if args.text is not None:
        _write(Path(args.text), sheet.text)
    note = given_note(sheet, given)
    print(f"laserguard report sheet: {note}", file=sys.stderr)
    return 0
