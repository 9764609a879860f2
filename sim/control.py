"""The simulator in a child process, driven from the parent through a pipe.

The devices then live in their own process, with their own GIL, as real devices would: the
parent's interlock threads never wait for the simulator's, nor the other way round. The
parent holds a `SimControl`; the child runs `serve`, a `SimRunner` plus a loop that answers
one request at a time::

    with SimControl(SimSpec(setup="demo-ndyag-1064", run_dir="runs/x")) as sim:
        since = sim.event_count()
        sim.force_skin(45.0)
        stop = sim.wait_event("stop_received", since, timeout_s=1.0)

Requests block in the child on a condition (``wait_event``), never by polling, so waiting for
an event costs the simulated devices nothing.

Only the parent ends the child: a ``stop`` request, or the pipe closing when the parent dies
(kill -9 included), after which the devices stop cleanly. The child leads its own process
group and ignores SIGINT, so a Ctrl-C in the terminal reaches the parent alone, which can
put the laser in STANDBY while the devices still answer and stop them last. This is the
one way LaserGuard starts the simulator in another process (the demo, the benchmarks).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from device_profiles.loader import DEFAULT_SETUP, load
from sim.modbus_devices import SensorLine
from sim.runner import SimRunner
from sim.scenario import load_scenario

_START_TIMEOUT_S = 20.0


class SimControlError(RuntimeError):
    """The simulator process failed, refused a request or did not answer in time."""


@dataclass(frozen=True)
class SimSpec:
    """What the child starts: plain data, so it crosses the process boundary."""

    run_dir: str
    setup: str = DEFAULT_SETUP
    scenario: str = "normal"
    speed: float = 1.0
    sensor_framing: SensorLine = "tcp"
    sensor_baudrate: int = 115200  # the pty line's speed, with "rtu_pty"
    sensor_noise_sd_c: float = 0.05
    # The devices are other hardware; on one shared CPU the simulator standing in for them
    # may ask for real-time priority so that a load test loads the bridge, not the devices.
    realtime: bool = False
    # Where the child's stdout and stderr go (a live view in the parent's terminal must not
    # be torn by them); None: the parent's.
    log_file: str | None = None
    # The scenario's events wait for ``start_timeline`` (the console's demo: the first arm).
    hold_timeline: bool = False

    @property
    def events_file(self) -> Path:
        return Path(self.run_dir) / "sim_events.jsonl"


def _handle(runner: SimRunner, command: str, args: tuple[Any, ...]) -> Any:
    match command:
        case "force_skin":
            return runner.force_skin(float(args[0]))
        case "release_skin":
            return runner.release_skin()
        case "hold_skin":
            runner.hold_skin(None if args[0] is None else float(args[0]))
            return None
        case "start_timeline":
            return runner.start_timeline()
        case "event_count":
            return runner.event_count()
        case "events_since":
            return runner.events_since(int(args[0]))
        case "wait_event":
            return runner.wait_event(str(args[0]), int(args[1]), float(args[2]))
        case "snapshot":
            return runner.snapshot()
    raise ValueError(f"unknown simulator request {command!r}")


def _detach(spec: SimSpec) -> None:
    """Out of the parent's process group and its terminal's SIGINT; output to the log file."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.log_file is not None:
        path = Path(spec.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def serve(conn: multiprocessing.connection.Connection, spec: SimSpec) -> None:
    """The child's main: start the devices, send the endpoints, answer until ``stop``."""
    _detach(spec)
    if spec.realtime and hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):  # not allowed: run at normal priority
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(45))  # threads inherit it
    try:
        loaded = load(spec.setup)
        runner = SimRunner(
            loaded.setup,
            load_scenario(spec.scenario),
            speed=spec.speed,
            run_dir=Path(spec.run_dir),
            sensor_noise_sd_c=spec.sensor_noise_sd_c,
            sensor_framing=spec.sensor_framing,
            sensor_baudrate=spec.sensor_baudrate,
            meter=loaded.meter.description if loaded.meter is not None else None,
            hold_timeline=spec.hold_timeline,
        ).start()
    except Exception as e:  # reported to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        conn.close()
        return
    try:
        conn.send(("ok", runner.endpoints))
        while True:
            try:
                command, args = conn.recv()
            except EOFError:  # the parent went away: stop the devices
                return
            if command == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", _handle(runner, command, args)))
            except Exception as e:  # one bad request does not end the run
                conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        runner.stop()
        conn.close()


class SimControl:
    """The parent's handle on a simulator child process; a context manager."""

    def __init__(self, spec: SimSpec) -> None:
        self.spec = spec
        ctx = multiprocessing.get_context("spawn")  # no forked copies of the parent's threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child, spec), name="laserguard-sim")
        self._child_conn = child
        self._endpoints: dict[str, Any] | None = None

    def start(self) -> SimControl:
        self._proc.start()
        self._child_conn.close()  # the child holds its own end now
        try:
            self._endpoints = self._reply("start", _START_TIMEOUT_S)
        except BaseException:  # a refused start, or Ctrl-C meanwhile: no child left behind
            self.stop()
            raise
        return self

    @property
    def endpoints(self) -> dict[str, Any]:
        if self._endpoints is None:
            raise SimControlError("the simulator is not running")
        return self._endpoints

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _reply(self, what: str, timeout_s: float) -> Any:
        if not self._conn.poll(timeout_s):
            raise SimControlError(f"simulator did not answer {what!r} within {timeout_s:g} s")
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as e:  # closed, or reset by a child on its way out
            raise SimControlError(
                f"simulator process ended during {what!r}{self._log_tail()}"
            ) from e
        if status != "ok":
            raise SimControlError(f"simulator refused {what!r}: {value}")
        return value

    def request(self, command: str, *args: Any, timeout_s: float = 5.0) -> Any:
        try:
            self._conn.send((command, args))
        except (BrokenPipeError, OSError) as e:
            raise SimControlError(f"simulator process is gone ({command!r})") from e
        return self._reply(command, timeout_s)

    def force_skin(self, temp_c: float) -> float:
        """The sensor serves ``temp_c`` from its next read; the wall time it took effect."""
        t: float = self.request("force_skin", temp_c)
        return t

    def start_timeline(self) -> bool:
        """A held scenario (``SimSpec.hold_timeline``) plays from now on; False if it was not
        held or has started already."""
        started: bool = self.request("start_timeline")
        return started

    def release_skin(self) -> float:
        t: float = self.request("release_skin")
        return t

    def hold_skin(self, temp_c: float | None) -> None:
        """The sensor looks at a reference held at ``temp_c`` (None: at the skin again)."""
        self.request("hold_skin", temp_c)

    def event_count(self) -> int:
        n: int = self.request("event_count")
        return n

    def events_since(self, index: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.request("events_since", index)
        return events

    def wait_event(self, kind: str, since: int, timeout_s: float) -> dict[str, Any] | None:
        event: dict[str, Any] | None = self.request(
            "wait_event", kind, since, timeout_s, timeout_s=timeout_s + 5.0
        )
        return event

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = self.request("snapshot")
        return snap

    def events(self) -> list[dict[str, Any]]:
        """Every event in the run's events file (readable after the child has gone, too).

        A last line the child is still writing is left out, not taken for a broken file.
        """
        try:
            lines = self.spec.events_file.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return []
        if lines and not lines[-1].endswith("\n"):
            lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def _log_tail(self) -> str:
        if self.spec.log_file is None:
            return ""
        try:
            tail = Path(self.spec.log_file).read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""
        return f"; its log ends: {tail.strip()}" if tail.strip() else ""

    def kill(self) -> None:
        """Kill the child the hard way (every device gone at once, nothing cleaned up)."""
        if self._proc.pid is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)

    def stop(self) -> None:
        """Stop the devices and the process; safe to call twice."""
        if self._proc.pid is None:
            return
        if self._proc.is_alive():
            # A child that does not answer is going down anyway; the join (or kill) makes sure.
            with contextlib.suppress(SimControlError):
                self.request("stop", timeout_s=10.0)
            self._proc.join(10.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
        self._conn.close()

    def __enter__(self) -> SimControl:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
