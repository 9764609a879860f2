"""``laserguard faults run [--json] [--only A,B] [--write FILE]``: the fault matrix.

Runs every bundled scenario that has a ``matrix`` block (or the ones named) through the
real bridge against the simulator (``monitor.faults``), prints one line per scenario (or the
rows as JSON), and writes the Markdown table (``docs/fault-matrix.md`` by convention) with
``--write``. Exit status 0 when every scenario ended safe within its deadline, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.faults import MatrixRow, matrix_scenarios, render_markdown, run_one


def add_faults_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "faults", help="the fault matrix: every fault scenario through the real bridge"
    )
    sub = parser.add_subparsers(dest="faults_command", required=True)
    run = sub.add_parser("run", help="run the fault matrix against the simulator")
    run.add_argument("--json", action="store_true", help="print the rows as JSON")
    run.add_argument("--only", default="", help="comma-separated scenario names")
    run.add_argument("--write", type=Path, default=None, help="write the Markdown table here")
    run.set_defaults(func=cmd_faults_run)
    return parser


def _selected(only: str) -> list[str]:
    names = matrix_scenarios()
    if not only.strip():
        return names
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise BadInput(
            f"not a fault-matrix scenario: {', '.join(unknown)}; one of {', '.join(names)}"
        )
    return wanted


def _line(row: MatrixRow) -> str:
    verdict = "safe" if row.ok else "FAILED: " + "; ".join(row.problems)
    return (
        f"{row.scenario:<24} {row.detected_by or '-':<22} halt {row.halt_ms!s:>7} ms "
        f"/ {row.deadline_ms or 0:.1f} ms (from {row.measured_from})  {verdict}"
    )


def cmd_faults_run(args: argparse.Namespace) -> int:
    names = _selected(args.only)
    rows: list[MatrixRow] = []
    load_1m = os.getloadavg()[0]
    t0 = time.monotonic()
    for name in names:
        row = run_one(name)
        rows.append(row)
        if not args.json:
            print(_line(row), flush=True)
    took_s = time.monotonic() - t0
    if args.json:
        out = {"duration_s": round(took_s, 1), "rows": [r.as_dict() for r in rows]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        passed = sum(r.ok for r in rows)
        print(f"{passed} of {len(rows)} ended safe within their deadline ({took_s:.0f} s)")
    if args.write is not None:
        try:
            header = (
                f"This run: {len(rows)} scenarios in {took_s:.0f} s on {os.cpu_count()} cores, "
                f"load average {load_1m:.1f} at the start (a halt for a stale sample or a lost "
                "link on a loaded host is the host's load, not the scenario's fault)."
            )
            args.write.write_text(render_markdown(rows, header=header), encoding="utf-8")
        except OSError as e:
            print(f"faults: cannot write {args.write}: {e.strerror}", file=sys.stderr)
            return ExitStatus.REFUSED
    return ExitStatus.OK if all(r.ok for r in rows) else ExitStatus.REFUSED
