"""`laserguard calibrate` (the guided procedure) and `laserguard calibration` (certificates).

Exit codes (``exit_status``): 0 the calibration or daily check passed (or a listing/report
was written); 1 it failed, was cut short or was refused (one sentence on stderr says why);
2 bad input (an unknown setup, references that do not fit the policy, an unreadable log).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from device_profiles.loader import with_endpoints
from device_profiles.schema import CalibrationPolicy
from monitor.calibration.analysis import SENSOR_WORDS, Verdict
from monitor.calibration.certificate import (
    CHAIN,
    Certificate,
    certificates,
    read_certificate,
)
from monitor.calibration.procedure import CalibrationRefused, CalibrationRun, ReferenceSource
from monitor.calibration.report import render_html, render_json
from monitor.calibration.rig import CalibrationRig
from monitor.cli.common import add_db_arg, db_path, fail, load_setup
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.cli.shutdown import sigint_deferred
from monitor.record.records import find_records
from monitor.record.sqlite_store import SessionLog, SessionLogDamaged, SessionLogError

__all__ = ["add_calibrate_parser", "add_calibration_parser"]

#: The bundled setup with an energy meter and a calibration policy.
DEFAULT_CALIBRATION_SETUP = "demo-ndyag-1064-cal"
#: The reference temperatures the simulator holds the skin sensor at with ``--demo``.
DEMO_SKIN_REFERENCES_C = (30.0, 40.0)


# --- reference thermometers ---------------------------------------------------------------------


def _temperatures(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"reference temperatures are numbers in °C separated by commas, not {text!r}"
        ) from None
    if not values or not all(-50.0 <= v <= 150.0 for v in values):
        raise argparse.ArgumentTypeError(
            f"reference temperatures must lie in -50..150 °C: {text!r}"
        )
    return values


class GivenReferences:
    """Reference temperatures given on the command line; with a terminal, the engineer says
    when each point is ready."""

    def __init__(self, values: dict[str, list[float]], ask: bool) -> None:
        self.values = values
        self.ask = ask

    def reference_c(self, sensor: str, index: int, total: int) -> float:
        value = self.values[sensor][index]
        if self.ask:
            input(
                f"{SENSOR_WORDS[sensor]}, point {index + 1} of {total}: put it on the reference "
                f"at {value:g} °C; press Enter when the reading is steady "
            )
        return value


class PromptedReferences:
    """The engineer types what the reference thermometer reads, point by point."""

    def reference_c(self, sensor: str, index: int, total: int) -> float:
        while True:
            text = input(
                f"{SENSOR_WORDS[sensor]}, point {index + 1} of {total}: put it on the "
                "reference; when steady, type what the reference thermometer reads (°C): "
            )
            try:
                value = float(text.strip())
            except ValueError:
                print(f"  {text!r} is not a number in °C", file=sys.stderr)
                continue
            if -50.0 <= value <= 150.0:
                return value
            print("  a reference temperature lies in -50..150 °C", file=sys.stderr)


class SimulatorReferences:
    """``--demo``: the simulator holds the skin sensor's reference at each temperature, and
    the plate's true temperature is the reference thermometer's reading."""

    def __init__(self, sim: Any, skin_c: list[float]) -> None:
        self.sim = sim
        self.skin_c = skin_c

    def reference_c(self, sensor: str, index: int, total: int) -> float:
        del total
        if sensor == "skin_sensor":
            value = self.skin_c[index]
            self.sim.hold_skin(value)
            time.sleep(0.1)  # the sensor's next measurements see it
            return value
        self.sim.hold_skin(None)
        return float(self.sim.snapshot()["plate_temp_c"])


def _references(
    args: argparse.Namespace, policy: CalibrationPolicy, sim: Any | None
) -> ReferenceSource | None:
    """Where the reference temperatures come from; None for a daily check."""
    if args.daily:
        return None
    wanted = {"skin_sensor": policy.skin_sensor.points, "plate": policy.plate.points}
    given = {"skin_sensor": args.skin_ref, "plate": args.plate_ref}
    for sensor, values in given.items():
        if values is not None and len(values) != wanted[sensor]:
            flag = "--skin-ref" if sensor == "skin_sensor" else "--plate-ref"
            raise BadInput(
                f"{flag} gives {len(values)} reference temperatures; the setup's policy checks "
                f"the {SENSOR_WORDS[sensor]} at {wanted[sensor]}"
            )
    if sim is not None:
        skin = args.skin_ref or list(DEMO_SKIN_REFERENCES_C[: wanted["skin_sensor"]])
        if len(skin) != wanted["skin_sensor"]:
            raise BadInput(f"give --skin-ref with {wanted['skin_sensor']} temperatures")
        return SimulatorReferences(sim, skin)
    interactive = sys.stdin.isatty()
    if args.skin_ref is not None and args.plate_ref is not None:
        if not interactive and not args.references_in_place:
            # Without a terminal nobody presses Enter at each point: the readings would be
            # taken at once, whether or not the sensor sits on the reference yet.
            raise BadInput(
                "without a terminal no one confirms that each sensor sits on its reference "
                "before it is read: give --references-in-place to state that they do (or run "
                "it in a terminal, which asks at each point)"
            )
        return GivenReferences({"skin_sensor": args.skin_ref, "plate": args.plate_ref}, interactive)
    if interactive:
        return PromptedReferences()
    raise BadInput(
        "a full calibration checks the skin sensor and the plate against a reference "
        "thermometer: give --skin-ref and --plate-ref (there is no terminal to ask)"
    )


# --- progress -------------------------------------------------------------------------------


class RichProgress:
    """A progress bar for the sweep, on stderr (stdout stays for the result and --json)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.console,
            transient=False,
        )
        self._task: Any = None

    def begin(self, total_shots: int, title: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task(title, total=total_shots)

    def shot(self, label: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, description=label)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self._bar.stop()


# --- calibrate ------------------------------------------------------------------------------


def add_calibrate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="the guided calibration of the laser's output (or the daily check)",
        description="Fire test shots in the laser's service mode into the setup's energy "
        "meter across the calibration sweep, check the skin sensor and the plate against a "
        "reference thermometer, and record the certificate in the session log. Arming is "
        "refused while the last calibration failed, is missing or has expired.",
    )
    p.add_argument(
        "--setup",
        default=DEFAULT_CALIBRATION_SETUP,
        help="setup name or file, with an energy meter and a calibration policy [%(default)s]",
    )
    p.add_argument("--endpoints", default=None, help="JSON file of device addresses")
    p.add_argument("--who", required=True, help="who performs the calibration (recorded)")
    p.add_argument("--daily", action="store_true", help="the short daily check instead")
    p.add_argument(
        "--skin-ref",
        type=_temperatures,
        default=None,
        metavar="C[,C]",
        help="reference temperatures for the skin sensor (°C; else asked at each point)",
    )
    p.add_argument(
        "--plate-ref",
        type=_temperatures,
        default=None,
        metavar="C",
        help="reference temperature(s) for the plate (°C; else asked)",
    )
    p.add_argument(
        "--references-in-place",
        action="store_true",
        help="without a terminal: the skin sensor and the plate already sit on their "
        "references (read at once, no confirmation per point)",
    )
    p.add_argument("--demo", action="store_true", help="against the simulator (recorded so)")
    p.add_argument("--scenario", default="normal", help="the simulator's scenario (--demo)")
    p.add_argument("--report", default=None, metavar="FILE", help="write the certificate (HTML)")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")
    add_db_arg(p)
    p.set_defaults(func=cmd_calibrate)


@contextmanager
def _simulator(args: argparse.Namespace, source: str) -> Iterator[Any]:
    from monitor.cli.demo import default_run_dir
    from sim.control import SimControl, SimSpec

    run_dir = default_run_dir(f"calibrate-{args.scenario}")
    spec = SimSpec(
        run_dir=str(run_dir),
        setup=source,
        scenario=args.scenario,
        log_file=str(run_dir / "sim.log"),
    )
    with SimControl(spec) as sim:
        yield sim


def cmd_calibrate(args: argparse.Namespace) -> int:
    try:
        return _calibrate(args)
    except KeyboardInterrupt:  # outside the run (which records its own Ctrl-C)
        print("laserguard calibrate: interrupted outside the measurement", file=sys.stderr)
        return 130


def _calibrate(args: argparse.Namespace) -> int:
    if args.demo and args.endpoints:
        raise BadInput("--demo starts its own simulator: give --endpoints or --demo, not both")
    if args.demo:
        from sim.scenario import load_scenario

        load_scenario(args.scenario)  # a wrong scenario is bad input, before anything starts
    loaded, setup = load_setup(args.setup, args.endpoints)
    policy = setup.calibration
    if policy is None or loaded.meter is None:
        raise BadInput(
            f"setup {setup.name} has no calibration policy (a `calibration` block and an "
            "`energy_meter`): nothing to calibrate"
        )
    path = db_path(args.db)
    with ExitStack() as stack:
        sim = stack.enter_context(_simulator(args, loaded.source)) if args.demo else None
        if sim is not None:
            setup = with_endpoints(setup, sim.endpoints)
        references = _references(args, policy, sim)
        log = stack.enter_context(SessionLog(path))
        rig = CalibrationRig(setup, loaded.meter.description)
        stack.callback(rig.close)
        progress = RichProgress()
        stack.callback(progress.close)
        try:
            run = CalibrationRun(
                loaded,
                setup,
                log,
                rig,
                who=args.who,
                daily=args.daily,
                references=references,
                progress=progress,
                simulated=args.demo,
                defer_interrupts=sigint_deferred,
            )
        except CalibrationRefused as e:
            return fail("calibrate", ExitStatus.REFUSED, f"refused: {e}")
        cert = run.run()
        progress.close()
    if args.report:
        _write(Path(args.report), render_html(cert))
    if args.json:
        print(render_json(cert))
    else:
        _print_summary(cert, path)
    if cert.verdict is Verdict.PASS:
        return int(ExitStatus.OK)
    return fail("calibrate", ExitStatus.REFUSED, f"{cert.verdict.value.upper()}: {cert.reason}")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror}") from e


def _print_summary(cert: Certificate, db: Path) -> None:
    kind = "daily check" if cert.check == "daily" else "calibration"
    print(f"{kind} {cert.record_id[:8]}  {cert.verdict.value.upper()}  by {cert.who}")
    print(f"  {cert.reason}")
    if cert.result is not None:
        fit = cert.result.get("energy", {}).get("fit")
        if isinstance(fit, dict):
            print(
                f"  fit: delivered = {fit['slope']:.4f} x set {fit['offset_j']:+.4f} J, "
                f"R² {fit['r2']:.4f} over {fit['n']} shots"
            )
    if cert.next_due is not None:
        print(f"  next due {cert.next_due}")
    if cert.simulated:
        print("  SIMULATED: measured on the simulator; never valid for a clinical session")
    print(f"  certificate: laserguard calibration report {cert.record_id[:8]} --db {db}")


# --- calibration list | show | report ---------------------------------------------------------


def add_calibration_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibration",
        help="list, show and report calibration certificates",
        description="Read the calibration certificates in the session log (verified).",
    )
    cmds = p.add_subparsers(dest="calibration_command", required=True, metavar="COMMAND")
    p_list = cmds.add_parser("list", help="every calibration and daily check, newest first")
    p_list.add_argument("--laser", default=None, help="only this laser (its setup name)")
    p_show = cmds.add_parser("show", help="one certificate in text")
    p_report = cmds.add_parser("report", help="one certificate as HTML (and JSON)")
    for q in (p_show, p_report):
        q.add_argument("record_id", metavar="ID", help="its id or a unique prefix")
    p_report.add_argument(
        "--out", default=None, metavar="FILE", help="default: calibration-ID.html"
    )
    for q in (p_list, p_show, p_report):
        add_db_arg(q)
        q.add_argument("--json", action="store_true", help="machine-readable JSON")
    p_list.set_defaults(func=cmd_list)
    p_show.set_defaults(func=cmd_show)
    p_report.set_defaults(func=cmd_report)


def _open(db: str) -> SessionLog:
    path = Path(db)
    if not path.is_file():
        raise SessionLogError(f"no session log at {path}")
    return SessionLog(path, read_only=True)


def _read_error(e: SessionLogError) -> int:
    status = ExitStatus.REFUSED if isinstance(e, SessionLogDamaged) else ExitStatus.BAD_INPUT
    return fail("calibration", status, e)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        with _open(args.db) as log:
            certs = certificates(log, args.laser)
    except SessionLogError as e:
        return _read_error(e)
    if args.json:
        print(json.dumps([_brief(c) for c in certs], indent=2))
        return int(ExitStatus.OK)
    if not certs:
        print("(no calibrations)")
    for c in certs:
        b = _brief(c)
        print(
            f"{b['id']}  {b['performed_at']}  {b['check']:<5}  {b['laser']:<22}  "
            f"{b['verdict'].upper():<10}  due {b['next_due'] or '-':<10}  {b['who']}"
            + ("  (simulated)" if c.simulated else "")
        )
    return int(ExitStatus.OK)


def _brief(c: Certificate) -> dict[str, Any]:
    return {
        "id": c.record_id[:8],
        "record_id": c.record_id,
        "performed_at": c.performed_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        "check": c.check,
        "laser": c.laser_id,
        "verdict": c.verdict.value,
        "reason": c.reason,
        "next_due": None if c.next_due is None else c.next_due.isoformat(),
        "who": c.who,
        "simulated": c.simulated,
    }


def _certificate(args: argparse.Namespace) -> Certificate:
    with _open(args.db) as log:
        info = find_records(log, CHAIN, args.record_id)
        return read_certificate(log, info.records_id)


def cmd_show(args: argparse.Namespace) -> int:
    try:
        cert = _certificate(args)
    except SessionLogError as e:
        return _read_error(e)
    if args.json:
        print(render_json(cert))
        return int(ExitStatus.OK)
    _print_summary(cert, Path(args.db))
    pre = cert.preconditions or {}
    if pre:
        meter, head = pre.get("meter") or {}, pre.get("head") or {}
        print(
            f"  meter {meter.get('model')} {meter.get('serial') or ''}, head {head.get('type')}"
            f" calibrated {pre.get('head_calibrated')} ({pre.get('head_calibrated_source')}), "
            f"due {pre.get('head_due')}"
        )
    for p in cert.points:
        print(f"  {p.describe(cert.tolerance)}")
    for r in cert.references:
        tol = cert.policy.get(r.sensor, {}).get("tolerance_c", float("nan"))
        print(f"  {r.describe(float(tol))}")
    for label, note in (
        ("refused", cert.refused),
        ("stopped early", cert.aborted),
        ("interrupted", cert.interrupted),
        ("laser left", cert.standby),
    ):
        if note:
            print(f"  {label}: {note}")
    return int(ExitStatus.OK)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        cert = _certificate(args)
    except SessionLogError as e:
        return _read_error(e)
    out = Path(args.out or f"calibration-{cert.record_id[:8]}.html")
    _write(out, render_html(cert))
    if args.json:
        print(json.dumps({"report": str(out), "certificate": cert.as_record()}, indent=2))
    else:
        print(f"wrote {out}")
    return int(ExitStatus.OK)
