"""``laserguard profiles``: list, show, validate the bundled setups and limit tables; print
the file formats as JSON Schema; print a setup's reaction-time budget.

``validate`` tells the kind of each file by its keys (a setup, a limit table, the
contraindications, a scenario, an energy meter) and validates it with that kind's own schema.

Exit status: 0 on success, 1 when a file is invalid, 2 when a name is unknown.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from device_profiles.datafile import DataKind, UnknownKind, detect_kind, load_yaml, yaml_problem
from device_profiles.loader import (
    LoadedTable,
    ProfileError,
    bundled_names,
    bundled_table_names,
    load,
    load_table,
    parse,
    parse_contraindications,
    parse_meter,
    parse_skin_meter,
    parse_table,
)
from device_profiles.poll_choice import poll_plan
from device_profiles.schema import Contraindications, LimitTableFile, SettingsLimit, Setup
from device_profiles.timing import reaction_budget


def add_profiles_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "profiles", help="list, show and validate setups and limit tables", description=__doc__
    )
    sub = p.add_subparsers(dest="profiles_cmd", required=True)
    sub.add_parser("list", help="bundled setups and limit tables").set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="one setup or limit table, with its limits")
    show.add_argument("name", help="a bundled name or a file")
    show.set_defaults(func=cmd_show)
    val = sub.add_parser(
        "validate",
        help="load files as the bridge would (setups, limit tables, contraindications, "
        "scenarios); report each",
    )
    val.add_argument("paths", nargs="+", type=Path)
    val.set_defaults(func=cmd_validate)
    sch = sub.add_parser("schema", help="the setup file format as JSON Schema")
    kind = sch.add_mutually_exclusive_group()
    kind.add_argument("--table", action="store_true", help="the limit table format instead")
    kind.add_argument(
        "--contraindications", action="store_true", help="the risk questions format instead"
    )
    sch.set_defaults(func=cmd_schema)
    tim = sub.add_parser(
        "timing",
        help="a setup's worst-case reaction-time budget, and the sensor poll period it needs",
    )
    tim.add_argument("name")
    tim.add_argument(
        "--required-ms",
        type=float,
        metavar="MS",
        help="the reaction time to plan the skin-sensor poll for "
        "(default: the profile's required_reaction_ms)",
    )
    tim.set_defaults(func=cmd_timing)
    return p


def _out(args: argparse.Namespace) -> TextIO:
    out: TextIO = getattr(args, "out", None) or sys.stdout
    return out


def cmd_list(args: argparse.Namespace) -> int:
    out = _out(args)
    print("setups:", file=out)
    for name in bundled_names():
        try:
            ld = load(name)
        except ProfileError as e:
            print(f"  {name:24} INVALID: {e}", file=out)
            continue
        s = ld.setup
        table = ld.table_name or "inline settings"
        print(
            f"  {name:24} v{s.version}  {s.laser.wavelength_nm:g} nm  limits: {table}  "
            f"digest {ld.digest[:12]}",
            file=out,
        )
    print("limit tables:", file=out)
    for name in bundled_table_names():
        try:
            lt = load_table(name)
        except ProfileError as e:
            print(f"  {name:24} INVALID: {e}", file=out)
            continue
        print(f"  {name:24} v{lt.table.version}  {_wavelength(lt)}  {len(lt.table.rows)} rows  "
              f"digest {lt.digest[:12]}", file=out)  # fmt: skip
    return 0


def _wavelength(lt: LoadedTable) -> str:
    lo, hi = lt.table.wavelength_range
    return f"{lo:g} nm" if lo == hi else f"{lo:g}–{hi:g} nm"


def _print_rows(out: TextIO, rows: list[SettingsLimit]) -> None:
    for i, r in enumerate(rows):
        types = ",".join(t.value for t in r.skin_types)
        where = (
            f"  {i:>2}  {types:10} spot {r.spot_mm.min:g}–{r.spot_mm.max:g} mm, "
            f"pulse {r.pulse_ms.min:g}–{r.pulse_ms.max:g} ms: "
        )
        if r.contraindicated:
            what = "CONTRAINDICATED"
        else:
            flags = [f for f, on in (("cooling", r.cooling_required),
                                     ("test spot", r.test_spot_required)) if on]  # fmt: skip
            what = (
                f"{r.fluence_j_cm2.min:g}–{r.fluence_j_cm2.max:g} J/cm², "
                f"≤ {r.rep_rate_hz_max:g} Hz" + (f" [{', '.join(flags)}]" if flags else "")
            )
        print(where + what, file=out)
        sites, cooling = "/".join(r.sites), "/".join(r.cooling)
        print(f"      for: {sites}; {cooling} cooling", file=out)
        print(f"      source: {r.source}", file=out)


def cmd_show(args: argparse.Namespace) -> int:
    out = _out(args)
    name = str(args.name)
    kind = _kind_of_file(Path(name))
    if kind in (
        DataKind.CONTRAINDICATIONS,
        DataKind.SCENARIO,
        DataKind.METER,
        DataKind.SKIN_METER,
    ):
        print(
            f"laserguard profiles: {name} is a {kind} file, and `show` shows setups and limit "
            f"tables: check it with `laserguard profiles validate {name}`",
            file=sys.stderr,
        )
        return 2
    is_table = name in bundled_table_names() or kind is DataKind.LIMIT_TABLE
    try:
        if is_table:
            lt = load_table(name, Path.cwd())
            t = lt.table
            print(
                f"limit table {t.name} v{t.version}, {_wavelength(lt)}: {t.description}", file=out
            )
            print(f"file {lt.source}\nsha256 {lt.digest}", file=out)
            _print_rows(out, t.rows)
            return 0
        ld = load(name)
    except ProfileError as e:
        print(f"laserguard profiles: {e}", file=sys.stderr)
        return 2 if "no setup file or bundled" in str(e) or "no limit table" in str(e) else 1
    s = ld.setup
    print(f"setup {s.name} v{s.version}: {s.description}", file=out)
    print(f"file {ld.source}\ndigest {ld.digest}", file=out)
    print(f"laser {s.laser.model}, {s.laser.wavelength_nm:g} nm", file=out)
    if ld.table_name is not None:
        print(f"limit table {ld.table_name} v{ld.table_version} ({ld.table_source})", file=out)
        print(f"  table sha256 {ld.table_digest}; setup file sha256 {ld.setup_digest}", file=out)
    lim = s.limits
    print(f"skin temperature {lim.skin_temp_c.low:g}–{lim.skin_temp_c.high:g} °C", file=out)
    print("settings limits:", file=out)
    _print_rows(out, lim.settings)
    if s.clinic is not None:
        c = s.clinic
        print(f"clinic {c.name}; emergency contact: {c.emergency_contact}", file=out)
        print(f"aftercare: {c.aftercare_instructions}", file=out)
    else:
        print("clinic: not filled in (emergency contact and aftercare missing)", file=out)
    return 0


def _kind_of_file(path: Path) -> DataKind | None:
    """The kind of data in a readable file; None otherwise (the loaders then say why)."""
    try:
        return detect_kind(load_yaml(path.read_bytes()))
    except (OSError, yaml.YAMLError, UnknownKind):
        return None


def _validate_one(path: Path) -> str:
    """What the file is, in one line; raises ProfileError saying what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(f"{path}: cannot read: {e.strerror}") from e
    try:
        kind = detect_kind(load_yaml(raw))
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {yaml_problem(e)}") from e
    except UnknownKind as e:
        raise ProfileError(f"{path}: {e}") from e
    source = str(path)
    if kind is DataKind.SETUP:
        ld = parse(raw, source)
        return f"setup {ld.setup.name} v{ld.setup.version}, digest {ld.digest}"
    if kind is DataKind.LIMIT_TABLE:
        lt = parse_table(raw, source)
        return f"limit table {lt.table.name} v{lt.table.version}, sha256 {lt.digest}"
    if kind is DataKind.CONTRAINDICATIONS:
        ci = parse_contraindications(raw, source)
        return f"contraindications v{ci.version}, {len(ci.questions)} questions"
    if kind is DataKind.METER:
        lm = parse_meter(raw, source)
        return f"energy meter {lm.description.name} v{lm.description.version}, sha256 {lm.digest}"
    if kind in (DataKind.PROTOCOLS, DataKind.PATIENT_INFORMATION):
        return _validate_clinic_data(kind, raw, source)
    if kind is DataKind.SKIN_METER:
        sm = parse_skin_meter(raw, source)
        return f"skin meter {sm.description.label}, sha256 {sm.digest}"
    from sim.scenario import ScenarioError, parse_scenario

    try:
        sc = parse_scenario(raw.decode("utf-8"), source)
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: a scenario is UTF-8 text: {e.reason}") from e
    except ScenarioError as e:
        raise ProfileError(str(e)) from e
    n = len(sc.events)
    return f"scenario {sc.name}, {n} event{'' if n == 1 else 's'}"


def _validate_clinic_data(kind: DataKind, raw: bytes, source: str) -> str:
    """Emergency protocols (checked against the interlock's halt causes too) or patient
    information sheets, in one line; raises ProfileError."""
    from device_profiles.protocols import ProtocolError, parse_patient_information
    from monitor.incidents.protocols import ProtocolBookError, parse_book

    try:
        if kind is DataKind.PROTOCOLS:
            book = parse_book(raw, source)
            n = len(book.loaded.book.protocols)
            return f"emergency protocols v{book.version}, {n} protocols, sha256 {book.digest}"
        sheets = parse_patient_information(raw, source)
        return f"patient information v{sheets.sheets.version}, sha256 {sheets.digest}"
    except (ProtocolError, ProtocolBookError) as e:
        raise ProfileError(str(e)) from e


def cmd_validate(args: argparse.Namespace) -> int:
    out = _out(args)
    bad = 0
    for path in args.paths:
        try:
            print(f"ok  {path}: {_validate_one(path)}", file=out)
        except ProfileError as e:
            bad += 1
            print(f"BAD {e}", file=out)
    return 1 if bad else 0


def cmd_schema(args: argparse.Namespace) -> int:
    model: type[Setup] | type[LimitTableFile] | type[Contraindications] = Setup
    if args.table:
        model = LimitTableFile
    elif args.contraindications:
        model = Contraindications
    json.dump(model.model_json_schema(), _out(args), indent=2)
    _out(args).write("\n")
    return 0


def cmd_timing(args: argparse.Namespace) -> int:
    try:
        ld = load(args.name)
    except ProfileError as e:
        print(f"laserguard profiles: {e}", file=sys.stderr)
        return 2
    required = args.required_ms
    if required is not None and not (math.isfinite(required) and 0 < required <= 10_000):
        print(
            f"laserguard profiles: --required-ms must be above 0 and at most 10000 ms, "
            f"not {required:g}",
            file=sys.stderr,
        )
        return 2
    print(reaction_budget(ld.setup).format(), file=_out(args))
    print(poll_plan(ld.setup, required).format(), file=_out(args))
    return 0
