"""Halt latency with the console service flooded, next to the same figure without it.

The bridge runs here, as ``laserguard serve`` runs it: the simulator in its own process, a
``SessionHost`` serving the control channel on a Unix socket, a session started and armed
over that channel by a console client (so the service's coming and going never halts it).
Halt trials are ``benchmarks.halt``'s: the simulated sensor forced over the limit, timed from
the over-limit sample served to the laser receiving the stop (both on the simulator's clock).

Blocks alternate (so a machine whose load changes meanwhile weighs on both figures alike):

- **without the service**: no console service process at all;
- **flooded**: the console service (``python -m monitor.service``, uvicorn, its own process)
  connected to the channel, and a flooder process (``benchmarks.flood_client``: its own process, so its work
  does not load the bridge's) sending REST requests at ``REST_PER_S`` over keep-alive
  connections (the live snapshot, the session, the gate preview that goes on to the bridge,
  the questionnaire) with ``WS_CLIENTS`` WebSocket clients reading ``/ws/live``; bounded in
  time (``FLOOD_MAX_S``), on 127.0.0.1.

Target: flooded p99 within 1.2x of unflooded p99 (issue 9).
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.flood_client import REST_PER_S, WS_CLIENTS
from benchmarks.halt import IDLE_SCENARIO, SETTINGS, SETUP, HaltRig, Trials
from device_profiles.loader import LoadedSetup, load, load_contraindications, with_endpoints
from device_profiles.schema import SkinType
from monitor.control.channel_process import ChannelProcess
from monitor.control.client import ControlClient
from monitor.control.host import HostConfig, SessionHost
from monitor.control.protocol import ApplySettings, Settings, StartSession
from monitor.control.server import ControlServer
from monitor.core.records import SessionMode
from monitor.core.session import Session
from monitor.record.sqlite_store import open_recorder
from monitor.service.roles import Role
from monitor.service.users import UserStore
from sim.control import SimControl, SimSpec

__all__ = ["REST_PER_S", "WS_CLIENTS", "FloodFigures", "console_flood"]

FLOOD_MAX_S = 600.0  # the flooder stops by itself after this, whatever happens here
SERVICE_START_S = 60.0
FLOOD_WARMUP_S = 5.0


@dataclass
class FloodFigures:
    quiet: Trials = field(default_factory=Trials)
    flooded: Trials = field(default_factory=Trials)
    flood: list[dict[str, Any]] = field(default_factory=list)  # each flooded block's flooder


class HostedHaltRig(HaltRig):
    """``HaltRig``'s trials on a session the ``SessionHost`` owns (started over the channel)."""

    def __init__(self, sim: SimControl, loaded: LoadedSetup, session: Session) -> None:
        # HaltRig's own __init__ makes a session; this one is the host's.
        self.sim = sim
        self.loaded = loaded
        self.setup = session.setup
        self.session = session
        self.limit_c = self.setup.limits.skin_temp_c.high
        self.poll_s = self.setup.sensor.poll_period_ms / 1000.0
        self.rng = random.Random(20240611)
        self._floor_client = self._bare_client()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _start_console(sock: Path) -> ControlClient:
    """A console on the channel that starts the bench's session and puts its settings."""
    console = ControlClient(sock, console=True).start()
    if not console.wait_connected(10.0):
        console.close()
        raise RuntimeError(f"the bench's console did not connect: {console.last_error}")
    answers = {q.id: False for q in load_contraindications().questions}
    console.call(
        StartSession(who="bench", patient_id="BENCH-0001", skin_type=SkinType.III, answers=answers)
    )
    console.call(ApplySettings(who="bench", settings=Settings(**SETTINGS)))
    return console


def _console_process_main(sock: str, conn: Connection) -> None:
    """The bench's console in a process of its own, as ``serve``'s console service is: its
    heartbeat and its snapshots' decoding never take the safety process's GIL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        console = _start_console(Path(sock))
    except Exception as e:
        conn.send(f"{type(e).__name__}: {e}")
        return
    conn.send("ok")
    with contextlib.suppress(EOFError, OSError):
        conn.recv()  # until the bench says stop or goes away
    console.close()


@contextmanager
def _console_process(sock: Path) -> Iterator[None]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_console_process_main, args=(str(sock), theirs), daemon=True)
    proc.start()
    theirs.close()
    try:
        if not ours.poll(60.0):
            raise RuntimeError("the bench's console process did not start in 60 s")
        if (said := ours.recv()) != "ok":
            raise RuntimeError(f"the bench's console failed: {said}")
        yield
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        proc.join(10.0)
        if proc.is_alive():
            proc.kill()
            proc.join(5.0)
        ours.close()


@contextmanager
def _bridge(
    base: Path, *, log_process: bool = True, channel_process: bool = True
) -> Iterator[tuple[SimControl, SessionHost, Path]]:
    """The bridge as ``laserguard serve`` runs it; ``log_process``: the session log written
    by a process of its own, as ``serve`` does (off: by a thread of the safety process);
    ``channel_process``: the control channel served by a process of its own and the console
    in another, as ``serve`` does (off: both in the safety process, as before)."""
    loaded = load(SETUP)
    scenario = base / "bench-idle.yaml"
    scenario.write_text(IDLE_SCENARIO, encoding="utf-8")
    spec = SimSpec(
        run_dir=str(base / "sim"),
        setup=SETUP,
        scenario=str(scenario),
        realtime=True,
        log_file=str(base / "sim" / "sim.log"),  # stderr is the bench's progress lines
    )
    sock = base / "c.sock"
    with SimControl(spec) as sim:
        config = HostConfig(
            loaded,
            with_endpoints(loaded.setup, sim.endpoints),
            base / "bench-console.sqlite3",
            SessionMode.TEST,
            realtime=True,
        )
        factory = functools.partial(open_recorder, log_process=log_process, realtime=True)
        host = SessionHost(config, recorder_factory=factory).start()
        with ExitStack() as stack:
            try:
                if channel_process:
                    stack.callback(ChannelProcess(sock, host, realtime=True).start().close)
                    stack.enter_context(_console_process(sock))
                else:
                    stack.callback(ControlServer(sock, host).start().close)
                    stack.callback(_start_console(sock).close)
                yield sim, host, sock
            finally:
                host.close("benchmark finished")  # the session ends while its console is on


class _Service:
    """The console service in its own process, and a signed-in operator's token."""

    def __init__(self, base: Path, sock: Path, password: str) -> None:
        users = base / "users.sqlite3"
        self.password = password
        store = UserStore(users)
        if store.get("bench-op") is None:
            store.add("bench-op", Role.OPERATOR, self.password, by="benchmark")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (base / "service.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.service", "--socket", str(sock),
             "--db", str(base / "bench-console.sqlite3"), "--users", str(users),
             "--port", str(self.port), "--parent-pid", str(os.getpid())],
            stdout=self.log, stderr=self.log, start_new_session=True,
        )  # fmt: skip
        try:
            self.token = self._sign_in()
        except BaseException:  # never leave a service behind a failed start
            self.close()
            raise

    def _sign_in(self) -> str:
        deadline = time.monotonic() + SERVICE_START_S
        body = json.dumps({"username": "bench-op", "password": self.password}).encode()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the console service exited ({self.proc.returncode})")
            request = urllib.request.Request(
                self.url + "/api/auth/sign-in",
                data=body,
                headers={"content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5.0) as r:
                    token: str = json.loads(r.read())["token"]
                    return token
            except urllib.error.HTTPError as e:  # it answers, and refuses: say why
                raise RuntimeError(f"the bench's sign-in was refused: {e.read()[:200]!r}") from e
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the console service did not answer within {SERVICE_START_S:g} s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10.0)
        self.log.close()


class _Flooder:
    def __init__(self, service: _Service, max_s: float = FLOOD_MAX_S) -> None:
        self.proc = subprocess.Popen(
            # "--token=T" in one word: a token may begin with "-" (token_urlsafe), which
            # argparse would take for an option (it failed a CI run that way).
            [sys.executable, "-m", "benchmarks.flood_client", service.url,
             f"--token={service.token}", "--max-s", str(max_s)],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()  # the flood is running
        if not ready.startswith("flooding"):
            raise RuntimeError(f"the flooder did not start: {ready!r}")

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30.0)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"the flooder reported nothing (exit {self.proc.returncode})")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def console_flood(n: int, blocks: int = 2) -> FloodFigures:
    """``n`` halt trials without the service and ``n`` flooded, in ``blocks`` pairs."""
    figures = FloodFigures()
    per_block = max(1, n // blocks)
    password = secrets.token_urlsafe(12)  # one per run: each block's service signs in anew
    with tempfile.TemporaryDirectory(prefix="lgf-") as tmp:
        base = Path(tmp)
        with _bridge(base) as (sim, host, sock):
            session = host.session
            if session is None:
                raise RuntimeError("the session did not start over the channel")
            rig = HostedHaltRig(sim, load(SETUP), session)
            rig.recover(Trials())  # armed as a person would, past a halt at the start
            try:
                for _ in range(blocks):
                    rig.run(per_block, figures.quiet)
                    service = _Service(base, sock, password)
                    try:
                        flooder = _Flooder(service)
                        time.sleep(FLOOD_WARMUP_S)  # the flood running before the first trial
                        t0 = time.monotonic()
                        rig.run(per_block, figures.flooded)
                        stats = flooder.stop()
                        stats["trials_s"] = round(time.monotonic() - t0, 1)
                        figures.flood.append(stats)
                    finally:
                        service.close()
            finally:
                if rig._floor_client is not None:
                    rig._floor_client.close()
    return figures
