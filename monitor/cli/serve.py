"""``laserguard serve``: the bridge and the treatment console, as two processes.

This process is the bridge: it holds the devices' workers, the interlock loop and the session
(``monitor.control.host``), and serves the control channel on a Unix socket
(``monitor.control.server``). The console service (``python -m monitor.service``, FastAPI and
uvicorn) is a second process, in a process group of its own, that reaches the session only
through that socket. ``--demo`` runs the devices in the simulator's process (``sim.control``).

Ctrl-C (or SIGTERM) ends them in order: the laser to STANDBY while the console still shows it,
then the console service, then the session (log closed) and the channel, the devices last.
If the console service dies meanwhile, the bridge halts a running session (console lost) and
this process starts the service again, a bounded number of times.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from device_profiles.loader import bundled_names, load, with_endpoints
from device_profiles.protocols import ProtocolError, load_patient_information
from monitor.calibration.status import calibration_status
from monitor.cli.common import DEFAULT_SETUP, add_db_arg, db_path, fail, load_setup, positive
from monitor.cli.demo import default_run_dir, simulator
from monitor.cli.exit_status import BadInput, ExitStatus
from monitor.cli.keys import add_anchor_key_arg, bridge_anchor, key_path
from monitor.cli.shutdown import sigint_deferred
from monitor.control.channel_process import ChannelProcess
from monitor.control.host import HEARTBEAT_TIMEOUT_S, HostConfig, SessionHost
from monitor.core.calibration_status import CalibrationStatus
from monitor.core.recorder import Recorder
from monitor.core.records import SessionMode
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.hook import IncidentRecorder
from monitor.incidents.photos import PhotoStore
from monitor.incidents.protocols import load_book
from monitor.record.sqlite_store import open_recorder
from monitor.service.roles import Role
from monitor.service.users import UserError, UserStore, users_path
from sim.control import SimControl, SimControlError

__all__ = ["add_serve_parser"]

MAX_RESTARTS = 5
SERVICE_START_S = 20.0
_SOCKET_PATH_MAX = 100  # a Unix socket's path is at most 107 bytes
DEMO_USERS = (
    ("demo-operator", Role.OPERATOR),
    ("demo-clinician", Role.CLINICIAN),
    ("demo-biomed", Role.BIOMED),
    ("demo-auditor", Role.AUDITOR),
    ("demo-admin", Role.ADMIN),
)


def _terminate_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def _demo_users(path: Path) -> str | None:
    """A fresh demo users file gets one user per role, all with one printed password."""
    store = UserStore(path)
    if store.list():
        return None
    password = secrets.token_urlsafe(12)
    for name, role in DEMO_USERS:
        store.add(name, role, password, by="laserguard serve --demo")
    return password


class ConsoleProcess:
    """The console service's process, started and restarted by the bridge's process."""

    def __init__(self, argv: list[str], url: str) -> None:
        self.argv = argv
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        # Its own session: a Ctrl-C in the terminal reaches only this process, which then
        # decides the order in which things stop.
        self.proc = subprocess.Popen(self.argv, start_new_session=True)
        deadline = time.monotonic() + SERVICE_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the console service exited with code {self.proc.returncode} at start "
                    "(is the port in use?)"
                )
            try:
                with urllib.request.urlopen(self.url + "api/health", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the console service did not answer at {self.url} within {SERVICE_START_S:g} s"
        )

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)


class ScenarioStart:
    """``--demo``: the simulator's scenario plays from the first arm (``SimSpec.hold_timeline``).

    A person needs a minute to sign in and start a session; a scenario timed from the
    simulator's start would have failed the cooler before anyone could arm. Runs on the
    channel's command thread; a simulator that does not answer is said, never raised into
    the session (its devices' silence is what the interlock judges)."""

    def __init__(self, sim: SimControl) -> None:
        self.sim = sim
        self.started = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self.started:
                return
            try:
                self.sim.start_timeline()  # False: it had started; either way it runs
                self.started = True
            except SimControlError as e:
                print(f"laserguard serve: the scenario did not start: {e}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    # Every input is checked before anything starts.
    if args.demo and args.endpoints:
        raise BadInput("--demo runs the simulator: it takes no --endpoints")
    db = db_path(args.db)
    run_dir = default_run_dir("serve") if args.demo else db.parent
    users_file = (
        Path(args.users)
        if args.users
        else (run_dir / "users.sqlite3" if args.demo else users_path(db))
    )
    sock = Path(args.socket) if args.socket else run_dir / "control.sock"
    if len(str(sock)) > _SOCKET_PATH_MAX:
        raise BadInput(f"the control socket's path {sock} is too long: give a shorter --socket")
    if args.demo:
        loaded = load(args.setup)
        setup = None
        from sim.scenario import load_scenario

        load_scenario(args.scenario)  # a wrong scenario is bad input, before anything starts
    else:
        loaded, setup = load_setup(args.setup, args.endpoints)
    run_dir.mkdir(parents=True, exist_ok=True)
    # The setup's anchor key, if any: each session's log is checked against its checkpoints.
    bridge_anchor(loaded.setup, db, key_path(args, db))  # refused now, before anything starts
    anchored = loaded.setup.anchor is not None

    # The clinic's records beside each console session's, as `laserguard bridge` keeps them:
    # draft incidents on halts, the patient sheets, the follow-up (unreadable data: refused).
    try:
        book, sheets = load_book(), load_patient_information()
    except ProtocolError as e:
        raise BadInput(str(e)) from e
    mode = SessionMode.DEMO if args.demo else SessionMode(args.mode)

    def recorder_for(path: Path) -> IncidentRecorder:
        anchor = bridge_anchor(loaded.setup, path, key_path(args, path)) if anchored else None
        # The session's log is written by a process of its own.
        inner = open_recorder(path, anchor=anchor, log_process=True, realtime=args.realtime)
        clinic = ClinicRecords.over(
            inner.log, photos=PhotoStore.beside(path), book=book, sheets=sheets
        )
        return IncidentRecorder(inner, clinic)

    def calibration_for(recorder: Recorder) -> CalibrationStatus | None:
        """The laser's calibration as its log records it; only a real laser's certificates
        count for a clinical session (as for `laserguard bridge`)."""
        assert isinstance(recorder, IncidentRecorder)
        return calibration_status(
            recorder.log, loaded.setup, accept_simulated=mode is not SessionMode.CLINICAL
        )

    try:
        password = _demo_users(users_file) if args.demo and not args.users else None
        if UserStore(users_file).enabled_count() == 0:
            raise BadInput(
                f"no enabled user in {users_file}: add the first administrator with "
                f"`laserguard users add NAME --role admin --db {db}`"
            )
    except UserError as e:
        raise BadInput(str(e)) from e

    url = f"http://{args.host}:{args.port}/"
    previous = signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    stack = ExitStack()
    host: SessionHost | None = None
    console: ConsoleProcess | None = None
    on_armed: ScenarioStart | None = None
    code = int(ExitStatus.OK)
    try:
        try:
            meta: dict[str, object] = {"console_url": url}
            if args.demo:
                sim = stack.enter_context(
                    simulator(
                        loaded.source,
                        args.scenario,
                        speed=args.speed,
                        run_dir=run_dir,
                        hold_timeline=True,
                        realtime=args.realtime,
                    )
                )
                setup = with_endpoints(loaded.setup, sim.endpoints)
                meta.update(scenario=args.scenario, speed=args.speed, endpoints=sim.endpoints)
                on_armed = ScenarioStart(sim)
            assert setup is not None
            config = HostConfig(
                loaded,
                setup,
                db,
                mode,
                realtime=args.realtime,
                heartbeat_timeout_s=args.heartbeat_timeout_s,
                meta=meta,
                on_armed=on_armed,
                calibration_for=calibration_for,
            )
            host = SessionHost(config, recorder_factory=recorder_for).start()
            # The channel's clients, lines and encodings in a process of their own: none of
            # that work takes the GIL the interlock loop needs (issue 15).
            channel = ChannelProcess(sock, host, realtime=args.realtime).start()
            stack.callback(channel.close)
            console = ConsoleProcess(
                [
                    sys.executable, "-m", "monitor.service", "--socket", str(sock),
                    "--db", str(db), "--users", str(users_file), "--host", args.host,
                    "--port", str(args.port), "--parent-pid", str(os.getpid()),
                ],
                url,
            )  # fmt: skip
            console.start()
            print(
                f"LaserGuard console: {url}  (bridge pid {os.getpid()}, console pid "
                f"{console.pid}, control channel pid {channel.pid})"
            )
            print(
                f"  setup {setup.name} v{setup.version}, {config.mode} mode; control socket {sock}"
            )
            if args.demo:
                print(
                    f"  scenario {args.scenario}: its timeline starts when the laser is first armed"
                )
            if password is not None:
                names = ", ".join(n for n, _ in DEMO_USERS)
                print(f"  demo users {names}; password {password}")
            print(
                "  Ctrl-C ends the console, then the session (laser to STANDBY), then the devices"
            )
            sys.stdout.flush()
            while True:
                time.sleep(0.5)
                if (gone := channel.exited()) is not None:
                    if channel.restarts >= MAX_RESTARTS:
                        code = fail(
                            "serve",
                            ExitStatus.REFUSED,
                            "the control channel's process does not stay up: stopping",
                        )
                        break
                    channel.restarts += 1
                    why = f": {channel.lost}" if channel.lost else ""
                    print(
                        f"laserguard serve: the control channel's process exited ({gone}{why}); a "
                        "running session was halted (console lost); starting it again "
                        f"({channel.restarts}/{MAX_RESTARTS})",
                        file=sys.stderr,
                    )
                    channel.restart()
                status = console.exited()
                if status is None:
                    continue
                if console.restarts >= MAX_RESTARTS:
                    code = fail(
                        "serve",
                        ExitStatus.REFUSED,
                        "the console service does not stay up: stopping",
                    )
                    break
                console.restarts += 1
                print(
                    f"laserguard serve: the console service exited ({status}); a running session "
                    f"was halted (console lost); starting it again ({console.restarts}/{MAX_RESTARTS})",
                    file=sys.stderr,
                )
                console.start()
        except KeyboardInterrupt:
            pass
        except (RuntimeError, OSError) as e:
            code = fail("serve", ExitStatus.REFUSED, e)
        finally:
            with sigint_deferred():  # the order below runs to its end, whatever the terminal does
                if host is not None:
                    host.shutting_down()  # laser to STANDBY while the console still shows it
                if console is not None:
                    console.stop()
                if host is not None:
                    host.close("laserguard serve stopped")  # the session ends, log closed
                stack.close()  # the channel, then the simulated devices last
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the bridge and the treatment console (web service), as three processes (bridge, control channel, console)",
        description="Start the bridge (devices, interlock, session) in this process, its control "
        "channel in a second and the console service (FastAPI, uvicorn) in a third, bound to 127.0.0.1 "
        "unless --host says otherwise. Open the printed address in a browser and sign in.",
    )
    p.add_argument(
        "--setup",
        default=DEFAULT_SETUP,
        help=f"setup name or file (bundled: {', '.join(bundled_names())})",
    )
    p.add_argument("--endpoints", default=None, help="JSON file of device addresses")
    p.add_argument("--demo", action="store_true", help="run the devices in the simulator")
    p.add_argument("--scenario", default="normal", help="with --demo: the scenario [%(default)s]")
    p.add_argument("--speed", type=positive, default=1.0, help="with --demo: simulator speed")
    add_db_arg(p)
    add_anchor_key_arg(p)
    p.add_argument(
        "--users", default=None, metavar="PATH", help="users file (default: beside --db)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address the console listens on [%(default)s]"
    )
    p.add_argument(
        "--port", type=int, default=8080, help="port the console listens on [%(default)s]"
    )
    p.add_argument("--socket", default=None, metavar="PATH", help="the control channel's socket")
    p.add_argument(
        "--mode",
        choices=["clinical", "test"],
        default="clinical",
        help="without --demo: recorded with every session [%(default)s]",
    )
    p.add_argument(
        "--heartbeat-timeout-s",
        type=positive,
        default=HEARTBEAT_TIMEOUT_S,
        help="a running session halts when the console is silent this long "
        "[%(default)s; clinic default, review]",
    )
    p.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="do not ask for SCHED_FIFO for the interlock loop",
    )
    p.set_defaults(func=cmd_serve)
