"""``laserguard check``: would the gate pass these settings for this patient, and why not?

One setting from the command line or many from a CSV file, for a skin type (or a melanin
index), against a setup's limit table (or a bundled table). Each refusal is explained in
plain words. Exit status: 0 all pass, 1 any refused, 2 bad input.

CSV columns (a header row is required): ``fluence_j_cm2, pulse_ms, spot_mm, rep_rate_hz`` and
optionally ``skin_type`` (I–VI) per row, which then replaces ``--skin-type``. The file is UTF-8
text (a byte-order mark is allowed); each row has exactly one value per header column.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from device_profiles.clinical import CoolingMethod, TreatmentSite
from device_profiles.loader import ProfileError, load, load_skin_meter, load_table
from device_profiles.schema import LASER_SETTINGS, SkinType
from monitor.cli.common import (
    DEFAULT_SETUP,
    SETTINGS_FLAGS,
    add_settings_args,
    fail,
    settings_from,
    skin_type,
)
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.core.gate import GateResult, LimitTable, NoRowsForTreatment, table_from_file
from monitor.core.skin_typing import SkinTyping, SkinTypingError

OK, REFUSED, BAD_INPUT = ExitStatus.OK, ExitStatus.REFUSED, ExitStatus.BAD_INPUT


@dataclass(frozen=True)
class Row:
    settings: dict[str, float]
    skin_type: SkinType


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="check proposed laser settings against the limits for a skin type",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--setup", default=None, help=f"setup name or file ({DEFAULT_SETUP})")
    where.add_argument("--table", default=None, help="a limit table name or file instead")
    p.add_argument("--skin-type", type=skin_type, help="Fitzpatrick type I..VI")
    p.add_argument("--melanin-index", type=float, help="reflectance meter reading")
    p.add_argument(
        "--skin-meter",
        default=None,
        help="the meter that read --melanin-index: a bundled skin meter description "
        "(example-reflectance-0-99) or a file; its cut-offs map the index to a type",
    )
    add_settings_args(p)
    p.add_argument(
        "--site",
        type=TreatmentSite,
        choices=list(TreatmentSite),
        default=TreatmentSite.LEGS,
        help="treatment site: only its limit rows apply [%(default)s]",
    )
    p.add_argument(
        "--cooling",
        type=CoolingMethod,
        choices=list(CoolingMethod),
        default=None,
        help="cooling method (default: the setup's cooler; with --table, every method's rows)",
    )
    p.add_argument("--csv", type=Path, help="a CSV file of settings, one per row")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_check)
    return p


def cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        table = _table(args)
        typing = _typing(args)
        rows = _csv_rows(args.csv, typing) if args.csv is not None else [_one_row(args, typing)]
    except (BadInput, ProfileError, SkinTypingError) as e:
        return fail("check", BAD_INPUT, e)
    cols = {k: np.array([r.settings[k] for r in rows]) for k in LASER_SETTINGS}
    ranks = [r.skin_type.rank for r in rows]
    f, pw, spot, rate = (cols[k] for k in LASER_SETTINGS)
    ok = table.evaluate(f, pw, spot, rate, ranks)
    results = [table.check(r.skin_type, r.settings) for r in rows]
    assert [res.ok for res in results] == ok.tolist()  # the batch and the words agree
    if args.json:
        json.dump(_as_json(table, typing, rows, results), out, indent=2, default=_no_nan)
        out.write("\n")
    elif len(rows) == 1 and args.csv is None:
        _print_one(out, table, typing, rows[0], results[0])
    else:
        _print_table(out, table, rows, results)
    return int(OK if all(res.ok for res in results) else REFUSED)


def _table(args: argparse.Namespace) -> LimitTable:
    """The rows for the site and the cooling method (``LimitTable.for_treatment``)."""
    if args.table is not None:
        table = table_from_file(load_table(args.table, Path.cwd()).table)
        cooling = args.cooling
    else:
        loaded = load(args.setup or DEFAULT_SETUP)
        wl = loaded.setup.laser.wavelength_nm
        name = loaded.table_name or f"{loaded.setup.name} (inline)"
        table = LimitTable(loaded.setup.limits.settings, name=name, wavelength_nm=(wl, wl))
        cooling = args.cooling or loaded.setup.cooler.method
    try:
        return table.for_treatment(args.site, cooling)
    except NoRowsForTreatment as e:
        raise BadInput(str(e)) from e


def _typing(args: argparse.Namespace) -> SkinTyping | None:
    if args.skin_type is None and args.melanin_index is None:
        return None
    meter = None if args.skin_meter is None else load_skin_meter(args.skin_meter).description
    return SkinTyping.combine(args.skin_type, args.melanin_index, meter)


def _one_row(args: argparse.Namespace, typing: SkinTyping | None) -> Row:
    settings = settings_from(args)
    if settings is None:
        raise BadInput(f"give all four settings ({SETTINGS_FLAGS}) or --csv")
    if typing is None:
        raise BadInput("give --skin-type or --melanin-index")
    return Row(settings, typing.skin_type)


def _csv_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(
            f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}): "
            "save the CSV as UTF-8"
        ) from e
    if "\x00" in text:
        raise BadInput(f"{path} is not a text file (it holds NUL bytes): give a CSV")
    return text


def _csv_rows(path: Path, typing: SkinTyping | None) -> list[Row]:
    reader = csv.reader(_csv_text(path).splitlines())
    try:
        header = [h.strip() for h in next(reader, [])]
        dupes = sorted({h for h in header if h and header.count(h) > 1})
        if dupes:
            raise BadInput(f"{path}: the header names {', '.join(dupes)} more than once")
        missing = [k for k in LASER_SETTINGS if k not in header]
        if missing:
            raise BadInput(f"{path}: the header lacks {', '.join(missing)}")
        records = [(reader.line_num, values) for values in reader if any(v.strip() for v in values)]
    except csv.Error as e:
        raise BadInput(f"{path} line {reader.line_num}: not CSV: {e}") from e
    rows = []
    for n, values in records:
        if len(values) != len(header):
            raise BadInput(
                f"{path} line {n}: {len(values)} value{'' if len(values) == 1 else 's'} for the "
                f"{len(header)} header columns"
            )
        rec = {k: v.strip() for k, v in zip(header, values, strict=True)}
        try:
            settings = {k: float(rec[k]) for k in LASER_SETTINGS}
        except ValueError as e:
            raise BadInput(f"{path} line {n}: {e}") from e
        if rec.get("skin_type"):
            try:
                skin = skin_type(rec["skin_type"])
            except argparse.ArgumentTypeError as e:
                raise BadInput(f"{path} line {n}: {e}") from e
        elif typing is not None:
            skin = typing.skin_type
        else:
            raise BadInput(f"{path} line {n}: no skin_type column and no --skin-type")
        rows.append(Row(settings, skin))
    if not rows:
        raise BadInput(f"{path}: no settings rows")
    return rows


def _no_nan(x: object) -> object:
    raise TypeError(f"not JSON: {x!r}")


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _as_json(
    table: LimitTable, typing: SkinTyping | None, rows: list[Row], results: list[GateResult]
) -> dict[str, Any]:
    return {
        "table": table.name,
        "skin_typing": None if typing is None else typing.as_record(),
        "results": [
            {
                "row": i + 1,
                "skin_type": r.skin_type.value,
                "settings": {k: _num(v) for k, v in r.settings.items()},
                "ok": res.ok,
                "notes": res.notes(),
                "violations": [
                    {k: (_num(v) if isinstance(v, float) else v) for k, v in viol.as_dict().items()}
                    for viol in res.violations
                ],
            }
            for i, (r, res) in enumerate(zip(rows, results, strict=True))
        ],
    }


def _print_one(
    out: TextIO, table: LimitTable, typing: SkinTyping | None, row: Row, res: GateResult
) -> None:
    s = row.settings
    who = typing.explain() if typing is not None else f"type {row.skin_type.value}"
    print(
        f"{s['fluence_j_cm2']:g} J/cm², {s['pulse_ms']:g} ms, {s['spot_mm']:g} mm, "
        f"{s['rep_rate_hz']:g} Hz for skin {who}, limit table {table.name}:",
        file=out,
    )
    if res.ok:
        print("  PASS: within limits", file=out)
    else:
        print("  REFUSED:", file=out)
        for v in res.violations:
            print(f"  - {v.explain()}", file=out)
    for note in res.notes():
        print(f"  note: {note}", file=out)


def _print_table(out: TextIO, table: LimitTable, rows: list[Row], res: list[GateResult]) -> None:
    print(f"limit table {table.name}", file=out)
    head = ["row", "type", "fluence", "pulse", "spot", "rate", "verdict", "why"]
    lines = [head]
    for i, (r, g) in enumerate(zip(rows, res, strict=True), start=1):
        s = r.settings
        lines.append(
            [str(i), r.skin_type.value]
            + [f"{s[k]:g}" for k in LASER_SETTINGS]
            + ["PASS" if g.ok else "REFUSED", g.explain() if not g.ok else "; ".join(g.notes())]
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(head) - 1)]
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    refused = sum(not g.ok for g in res)
    print(f"{len(res) - refused} passed, {refused} refused", file=out)
