"""The ``laserguard`` command: simulator, bridge, demo and session log tools."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from device_profiles.clinical import TreatmentSite
from device_profiles.loader import ProfileError, bundled_names, load, load_skin_meter
from device_profiles.protocols import ProtocolError, load_patient_information
from device_profiles.schema import LASER_SETTINGS, SkinType
from monitor.cli.common import (
    DEFAULT_SETUP,
    add_db_arg,
    add_settings_args,
    db_path,
    fail,
    load_setup,
    positive,
    settings_from,
    skin_type,
)
from monitor.cli.exit_status import EPILOG as EXIT_STATUS_EPILOG
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.cli.keys import add_anchor_key_arg
from monitor.cli.risk_file import load_risk
from monitor.core.risk import RiskOutcome
from monitor.core.session import no_contraindications_declared
from monitor.record.anchor import LogBehindCheckpoint
from monitor.record.checkpoints import CheckpointForged
from monitor.record.sqlite_store import SessionLogError
from sim.scenario import ScenarioError

#: Entry-point group of subcommands that other packages add (``benchmarks``: ``bench``).
COMMANDS_GROUP = "laserguard.commands"
EPILOG = (
    """\
examples:
  laserguard demo                                   simulated treatment, live view
  laserguard demo --headless --scenario cooling-failure --duration 30 --json
  laserguard sim --scenario normal                  simulator only (prints its endpoints)
  laserguard bridge --endpoints runs/X/endpoints.json --patient P-0042 --mode demo \\
      --skin-type III --fluence 120 --pulse-ms 30 --spot-mm 3 --rate-hz 1 --arm
  laserguard calibrate --demo --who "B. Engineer"   calibration against the simulator
  laserguard calibrate --daily --who NAME --endpoints FILE    the daily output check
  laserguard calibration list | show ID | report ID
  laserguard sessions list | show ID | verify [ID] [--setup NAME]
  laserguard keys init | anchor --setup NAME        sign checkpoints of the log's head
  laserguard fleet ship | status | verify --fleet DSN   the clinic chain's PostgreSQL store
  laserguard users add NAME --role admin             the console's first administrator
  laserguard serve --demo [--scenario cooling-failure]   bridge + console on the simulator
  laserguard profiles list | show NAME | validate FILE | schema | timing NAME
  laserguard check --skin-type V --fluence 170 --pulse-ms 30 --spot-mm 3 --rate-hz 1
  laserguard bench [--quick] [--json]               latency and throughput, with floors
  laserguard incident list | show ID | tick ID STEP | complete ID ... | close ID ...
  laserguard followup due [--as-of DATE] | record ID --outcome resolved
  laserguard report session ID --html FILE | clinic --from DATE --to DATE [--csv|--json]
  laserguard faults run [--json] [--write docs/fault-matrix.md]   the fault matrix

"""
    + EXIT_STATUS_EPILOG
)


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.cli.demo import default_run_dir, run_demo
    from monitor.cli.live_view import LiveViewProcess
    from sim.scenario import load_scenario

    loaded = load(args.setup)
    scenario = load_scenario(args.scenario)
    settings = settings_from(args) or {
        k: float(getattr(scenario.settings, k)) for k in LASER_SETTINGS
    }
    skin = args.skin_type or SkinType(str(scenario.skin_type))
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(scenario.name)
    duration = 30.0 if args.headless and args.duration is None else args.duration
    view = None if args.headless else LiveViewProcess(scenario.name, duration)
    try:
        with view if view is not None else contextlib.nullcontext():
            result = run_demo(
                loaded,
                args.scenario,
                settings,
                skin,
                db_path=db_path(args.db),
                run_dir=run_dir,
                duration_s=duration,
                speed=args.speed,
                on_tick=view.update if view is not None else None,
            )
    except RuntimeError as e:  # the simulator did not start, or the report failed (ReportFailed)
        print(f"laserguard demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the session started: nothing was armed
        print("laserguard demo: interrupted before the session started", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result))
    else:
        _print_report(result)
    return 0


def _print_report(r: dict[str, Any]) -> None:
    """The summary, from the report read back from the session log: it agrees with the log."""
    print(f"session {r['session_id']}  scenario {r['scenario']}  skin type {r['skin_type']}")
    print(f"  final state      {r['final_state']}")
    print(f"  pulses fired     {r['pulses_fired']} (after halt: {r['pulses_after_halt']})")
    if r["pulses_out_of_limits"]:
        print(f"  OUT OF LIMITS    {r['pulses_out_of_limits']} pulse(s) fired at settings outside")
        print("                   the approved limits:")
        for p in r["out_of_limit_pulses"]:
            why = "; ".join(str(v["message"]) for v in p["violations"])
            print(f"    t={p['t_s']:7.3f} s  {p['n']} pulse(s): {why}")
    print(f"  max skin temp    {r['max_skin_temp_c']} °C (limit {r['skin_temp_limit_c']} °C)")
    if r["halted"]:
        latency = r["halt_latency_ms"]
        if latency is None:
            print("  HALTED           (no skin-temperature crossing: no halt latency measured)")
        else:
            print(f"  HALTED; latency  {latency} ms (sensor served → laser got stop)")
        for t in r["trips"]:
            note = "  (not in the log: the log failed)" if t.get("logged") is False else ""
            print(f"    t={t['t_s']:7.3f} s  {t['check']}: {t['reason']}{note}")
        for reason in r["halts_requested"]:
            if reason != "interlock trip":  # that one is the trips above
                print(f"    halt requested: {reason}")
    else:
        print("  no trip")
    if r["end_standby_failed"]:
        print(f"  end of session   {r['end_standby_failed']}")
    if r["log_failed"]:
        print(f"  SESSION LOG FAILED: {r['log_failed']}")
    if r["view_failures"]:
        print("  the live view failed during the session (view_failed in the log)")
    for w in r["warnings"]:
        print(f"  warning t={w['t_s']:7.3f} s  {w['check']}: {w['reason']}")
    incidents = r.get("incidents") or {}
    for d in incidents.get("drafts", []):
        title = (d.get("protocol") or {}).get("title")
        print(f"  DRAFT INCIDENT   {d['incident_id'][:8]}: {title} (laserguard incident show "
              f"{d['incident_id'][:8]})")  # fmt: skip
    if incidents.get("followup"):
        print(
            f"  follow-up        {incidents['followup'][:8]} scheduled (laserguard followup list)"
        )
    for problem in incidents.get("problems", []):
        print(f"  NOT RECORDED     {problem}")
    print(f"  session log      {r['db']}  (laserguard sessions show {r['session_id'][:8]})")


def _risk_from(
    args: argparse.Namespace, wavelength_nm: float, site: TreatmentSite | None
) -> RiskOutcome:
    """The pre-treatment risk assessment: a file in clinical mode; none declared otherwise.
    Judged for this laser and site (a recent tan weighs by wavelength, reflux by site)."""
    if args.risk is None:
        if args.mode == "clinical":
            raise BadInput("a clinical session needs --risk FILE (the risk assessment)")
        return no_contraindications_declared()
    return load_risk(Path(args.risk), wavelength_nm=wavelength_nm, site=site)


def _bridge_exit(refused: str | None, trips: list[Any]) -> int:
    """A session that refused or halted is not a success (exit_status.ExitStatus)."""
    if refused is not None:
        return fail("bridge", ExitStatus.REFUSED, f"refused: {refused}")
    if trips:
        first = trips[0]
        return fail("bridge", ExitStatus.REFUSED, f"halted: {first.check}: {first.reason}")
    return int(ExitStatus.OK)


def cmd_bridge(args: argparse.Namespace) -> int:
    import time

    from monitor.calibration.status import calibration_status
    from monitor.cli.keys import bridge_anchor, key_path
    from monitor.cli.live_view import LiveViewProcess
    from monitor.cli.shutdown import sigint_deferred
    from monitor.cli.view_guard import ViewGuard
    from monitor.core.session import Refused, Session, SessionParams
    from monitor.core.skin_typing import SkinTyping, SkinTypingError
    from monitor.incidents.clinic import ClinicRecords
    from monitor.incidents.hook import IncidentRecorder
    from monitor.incidents.photos import PhotoStore
    from monitor.incidents.protocols import load_book
    from monitor.record.sqlite_store import open_recorder

    # Every input is checked before a device is touched: bad input starts nothing.
    loaded, setup = load_setup(args.setup, args.endpoints)
    try:
        meter = None if args.skin_meter is None else load_skin_meter(args.skin_meter).description
        typing = SkinTyping.combine(args.skin_type, args.melanin_index, meter)
    except SkinTypingError as e:
        raise BadInput(str(e)) from e
    risk = _risk_from(args, setup.laser.wavelength_nm, args.site)
    if args.mode == "clinical" and args.site is None:
        raise BadInput("a clinical session needs --site (face, periorbital, legs or body)")
    settings = settings_from(args)
    if args.arm and settings is None:
        raise BadInput(
            "--arm needs the settings to arm with: --fluence --pulse-ms --spot-mm --rate-hz"
        )
    book, sheets = load_book(), load_patient_information()  # unreadable: refused, nothing opened
    db = db_path(args.db)
    anchor = bridge_anchor(loaded.setup, db, key_path(args, db))
    # Behind its checkpoints: refused. The session's log is written by a process of its own.
    log_recorder = open_recorder(db, anchor=anchor, log_process=True, realtime=args.realtime)
    try:  # only a real laser's certificates count for a clinical session
        calibration = calibration_status(
            log_recorder.log, setup, accept_simulated=args.mode != "clinical"
        )
    except BaseException:
        log_recorder.close()
        raise
    # The clinic's records beside the session's: draft incidents on halts, sheets, follow-up.
    clinic = ClinicRecords.over(
        log_recorder.log, photos=PhotoStore.beside(db_path(args.db)), book=book, sheets=sheets
    )
    recorder = IncidentRecorder(log_recorder, clinic)
    params = SessionParams(
        operator=args.operator,
        patient_id=args.patient,
        skin_type=typing.skin_type,
        risk=risk,
        mode=args.mode,
        skin_typing=typing,
        calibration=calibration,
        site=args.site,
    )
    try:
        session = Session(loaded, recorder, params, setup=setup, realtime=args.realtime)
    except Refused as e:
        recorder.close()
        return fail("bridge", ExitStatus.REFUSED, f"refused: {e}")
    view = LiveViewProcess("bridge", args.duration)
    refused: str | None = None
    # The view beside the session may fail; the session (and its halt) outlives it.
    tick = ViewGuard("live view", view.update)
    try:
        session.start()
        if args.eye_shields_confirmed_by is not None:
            session.confirm_eye_shields(args.eye_shields_confirmed_by)
        if settings is not None:
            gate = session.request_settings(settings)
            if not gate.ok:
                raise Refused(f"the settings do not pass the gate: {gate.explain()}")
            if args.arm:
                session.arm()
        t0 = time.monotonic()
        with view:
            while args.duration is None or time.monotonic() - t0 < args.duration:
                tick(session, time.monotonic() - t0)
                time.sleep(0.25)
    except Refused as e:
        refused = str(e)
    except KeyboardInterrupt:  # the operator's way to end a session: not a failure
        pass
    finally:
        with sigint_deferred():  # laser to STANDBY and the log closed, to the end
            tick.close(session)
            session.end("bridge stopped")
            recorder.close()
    out_of_limits = session.pulses_out_of_limits
    for incident_id in recorder.drafts:
        print(f"draft incident {incident_id[:8]} opened: a clinician must close or complete it")
    for problem in recorder.problems:
        print(f"laserguard bridge: {problem}", file=sys.stderr)
    if recorder.failed:  # a full or read-only disk: the reason cannot be in the log itself
        print(f"laserguard bridge: the session log failed: {recorder.failed}", file=sys.stderr)
    print(
        f"session {session.session_id} ended; trips: {[t.check for t in session.trips]}"
        + (f"; PULSES OUT OF LIMITS: {out_of_limits}" if out_of_limits else "")
        + (f"; the live view failed {tick.total_failures} time(s)" if tick.total_failures else "")
    )
    return _bridge_exit(refused, session.trips)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laserguard",
        description="LaserGuard: an independent safety interlock and session monitor for "
        "cosmetic vascular lasers and their skin-cooling units.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a simulated treatment (simulator + bridge + interlock) and report",
        description="Start the simulator in its own process, connect the bridge over a real "
        "pty and Modbus TCP, run a scripted session and report what happened.",
    )
    demo.add_argument(
        "--setup",
        default=DEFAULT_SETUP,
        help=f"setup name or file (bundled: {', '.join(bundled_names())})",
    )
    demo.add_argument(
        "--scenario", default="normal", help="scenario name or file (e.g. normal, cooling-failure)"
    )
    demo.add_argument(
        "--duration",
        type=positive,
        default=None,
        help="simulated seconds (default: until Ctrl-C; 30 with --headless)",
    )
    demo.add_argument(
        "--speed", type=positive, default=1.0, help="simulator clock speed (1 = real time)"
    )
    demo.add_argument(
        "--skin-type",
        type=skin_type,
        default=None,
        help="override the scenario's Fitzpatrick type I..VI",
    )
    demo.add_argument("--headless", action="store_true", help="no live view")
    demo.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_db_arg(demo)
    demo.add_argument("--run-dir", default=None, help="folder for the simulator's files")
    add_settings_args(demo)
    demo.set_defaults(func=cmd_demo)

    bridge = sub.add_parser(
        "bridge",
        help="run a session against real devices or a running simulator",
        description="Connect to the devices of a setup, gate the settings, arm on request and "
        "keep the interlock running until Ctrl-C or --duration.",
    )
    bridge.add_argument("--setup", default=DEFAULT_SETUP, help="setup name or file")
    bridge.add_argument(
        "--endpoints",
        default=None,
        help="JSON file of device addresses (as written by `laserguard sim`)",
    )
    bridge.add_argument(
        "--skin-type", type=skin_type, default=None, help="Fitzpatrick skin type I..VI"
    )
    bridge.add_argument(
        "--melanin-index",
        type=float,
        default=None,
        help="melanin index from a reflectance meter, with --skin-meter (the darker of the "
        "two types wins)",
    )
    bridge.add_argument(
        "--skin-meter",
        default=None,
        help="the meter that read --melanin-index: a bundled skin meter description "
        "(example-reflectance-0-99) or a file; an index from an unknown meter is refused",
    )
    bridge.add_argument(
        "--risk",
        default=None,
        help="YAML risk assessment: answers (every question id: yes or no) and an optional "
        "attestation (clinician, statement, covers: the relative questions it accepts); "
        "required in clinical mode. An unknown or unanswered question, or any answer but "
        "yes/no, is refused (the questions: device_profiles/bundled/contraindications.yaml)",
    )
    bridge.add_argument(
        "--site",
        type=TreatmentSite,
        choices=list(TreatmentSite),
        default=None,
        help="the treatment site; required in clinical mode (demo and test: legs). Only the "
        "limit rows published for it, and for the setup's cooling method, apply",
    )
    bridge.add_argument(
        "--eye-shields-confirmed-by",
        default=None,
        metavar="NAME",
        help="who checked the patient's eye shields (periorbital treatment arms only then)",
    )
    bridge.add_argument(
        "--operator", default=os.environ.get("USER", "operator"), help="who operates"
    )
    bridge.add_argument("--patient", required=True, help="pseudonymous patient id")
    bridge.add_argument(
        "--mode",
        choices=["clinical", "demo", "test"],
        default="clinical",
        help="recorded with every session [%(default)s]",
    )
    bridge.add_argument("--arm", action="store_true", help="arm after the settings pass the gate")
    bridge.add_argument(
        "--duration", type=positive, default=None, help="seconds to run (default: until Ctrl-C)"
    )
    bridge.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="do not ask for SCHED_FIFO for the interlock loop (asked for by default)",
    )
    add_db_arg(bridge)
    add_anchor_key_arg(bridge)
    add_settings_args(bridge)
    bridge.set_defaults(func=cmd_bridge)

    from monitor.cli.calibrate import add_calibrate_parser, add_calibration_parser
    from monitor.cli.check import add_check_parser
    from monitor.cli.faults import add_faults_parser
    from monitor.cli.fleet import add_fleet_parser
    from monitor.cli.incidents import add_followup_parser, add_incident_parser
    from monitor.cli.keys import add_keys_parser
    from monitor.cli.profiles import add_profiles_parser
    from monitor.cli.reports import add_report_parser
    from monitor.cli.serve import add_serve_parser
    from monitor.cli.sessions import add_sessions_parser
    from monitor.cli.users import add_users_parser
    from sim.cli import add_sim_parser

    add_sim_parser(sub)
    add_sessions_parser(sub)
    add_profiles_parser(sub)
    add_check_parser(sub)
    add_serve_parser(sub)
    add_users_parser(sub)
    add_incident_parser(sub)
    add_followup_parser(sub)
    add_report_parser(sub)
    add_calibrate_parser(sub)
    add_calibration_parser(sub)
    add_faults_parser(sub)
    add_keys_parser(sub)
    add_fleet_parser(sub)
    add_registered_commands(sub)
    return parser


def add_registered_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands that other installed packages register under ``COMMANDS_GROUP``.

    Each entry point names a function that adds its subparser (as ``benchmarks.run:register``
    adds ``bench``), so monitor imports none of those packages. One that fails to load is
    said on stderr and left out: the other commands, the bridge among them, still run.
    """
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as e:  # a broken add-on must not take the bridge command with it
            print(
                f"laserguard: the {ep.name} command ({ep.value}) is left out: "
                f"{type(e).__name__}: {e}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    # pymodbus reports each timeout on stderr; LaserGuard turns them into lost-link trips in
    # the session log, and the messages would tear the live view.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (LogBehindCheckpoint, CheckpointForged) as e:  # the log's head is not as signed
        return fail(args.command, ExitStatus.REFUSED, e)
    except (BadInput, ProfileError, ProtocolError, ScenarioError, SessionLogError) as e:
        return fail(args.command, ExitStatus.BAD_INPUT, e)
    except BrokenPipeError:  # `laserguard ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
