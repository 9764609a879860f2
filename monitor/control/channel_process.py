"""The control channel served by a process of its own (issue 15: the split, its first step).

``laserguard serve`` used to run the control channel's three threads (I/O over every client,
the commands, the 20-a-second publisher) in the safety process, where they took the GIL in
turn with the interlock loop and the device workers. Now the channel's socket, its clients,
their lines, their queues and every JSON encoding live in a spawned process of their own
(``ChannelProcess``); the safety process keeps the session and its host, and talks to the
channel's process over one pipe (``multiprocessing`` connection, pickled tuples):

- from the channel: ``("ping", conn)`` (a console's heartbeat, forwarded as it comes: the
  host judges it, as before), ``("closed", conn)``, ``("halt", rid, cmd)`` (carried out at
  once on the link's receiving thread, never behind a command), ``("cmd", rid, conn, cmd)``;
- to the channel: ``("publish", events, body)`` ``SNAPSHOT_HZ`` times a second (the host's
  snapshot as a dict, the session's new events), and ``("reply", rid, outcome, value)``.

The channel's process builds nothing the session decides: every command is still the host's
(and the session's) own method, run in the safety process. What moved is the work on the
clients' behalf.

**Fail-safe both ways.** The channel's process dies or its pipe breaks: the safety process
takes it as the console's channel closing, and the console watch halts a running session
("console lost"); ``serve`` starts the channel again. The channel's process stalls: no ping
reaches the host, and the same watch halts after its heartbeat timeout. The safety process
dies: the pipe closes, the channel's process closes every client's connection and ends (the
laser's heartbeat and the relay's watchdog stop emission, as for any death of the bridge).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from firmware_bridge.realtime import BackgroundRealtime
from monitor.control.feed import FedEvent
from monitor.control.host import CommandFailed, SessionHost
from monitor.control.protocol import SNAPSHOT_HZ, Command, EmergencyHalt, ErrorKind, Ping
from monitor.control.server import ControlServer, paced

__all__ = ["ChannelProcess", "HostLink", "RemoteHost"]

#: The longest a command waits for the safety process's answer (a session's start waits up to
#: 30 s for its log's first commit).
COMMAND_TIMEOUT_S = 60.0
#: The channel's process must be serving within this long of its start.
START_TIMEOUT_S = 30.0
#: A connection's pings reach the host at most this often (each is answered here).
PING_FORWARD_S = 0.05
#: Events held in the channel's process between two publishes.
FEED_EVENTS = 4096


class HostLink:
    """The safety process's end of the pipe: runs what the channel asks on the host, and
    publishes the host's snapshots and events (three threads, none a safety thread)."""

    def __init__(
        self, host: SessionHost, conn: Connection, *, snapshot_hz: float = SNAPSHOT_HZ
    ) -> None:
        self.host = host
        self.conn = conn
        self.period_s = 1.0 / snapshot_hz
        self.lost: str | None = None
        self._send_lock = threading.Lock()  # the link's threads only; no device worker
        self._stop = threading.Event()
        self._commands: queue.Queue[tuple[int, int, Command] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._receive, name="laserguard-channel-link", daemon=True),
            threading.Thread(target=self._work, name="laserguard-channel-commands", daemon=True),
            threading.Thread(target=self._publish, name="laserguard-channel-publish", daemon=True),
        ]

    def start(self) -> HostLink:
        for t in self._threads:
            t.start()
        return self

    def stopping(self) -> None:
        """From now on the pipe's end is expected: it halts nothing."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._commands.put(None)
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(2.0)

    def send(self, msg: tuple[Any, ...]) -> bool:
        try:
            with self._send_lock:
                self.conn.send(msg)
        except (OSError, ValueError, EOFError) as e:
            self._lose(f"the pipe to the channel's process failed: {e}")
            return False
        return True

    def _lose(self, why: str) -> None:
        if self.lost is None and not self._stop.is_set():
            self.lost = why
            self.host.channel_closed(why)  # a running session halts: nobody sees the alarms

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.conn.recv()
            except (EOFError, OSError) as e:
                self._lose(f"the channel's process went away ({type(e).__name__})")
                return
            except Exception as e:  # it did not unpickle: not this protocol's message
                why = f"a message that could not be read ({type(e).__name__}: {e})"
                break
            if (bad := _malformed(msg)) is not None:
                why = bad
                break
            kind = msg[0]
            if kind == "ping":
                self.host.ping(msg[1])
            elif kind == "closed":
                self.host.connection_closed(msg[1])
            elif kind == "halt":  # at once, never behind a command
                self._answer(msg[1], functools.partial(self.host.emergency_halt, msg[2]))
            else:
                self._commands.put((msg[1], msg[2], msg[3]))
        else:
            return
        # The channel's process does not speak the protocol: nothing more from it is believed.
        # The link is lost (a running session halts, with these words), and the pipe is cut so
        # that the process sees its end and stops; ``serve`` starts a fresh one.
        self._lose(f"the channel's process sent {why[:200]}")
        _sever(self.conn)

    def _work(self) -> None:
        while (item := self._commands.get()) is not None:
            rid, conn, cmd = item
            self._answer(rid, functools.partial(self.host.execute, cmd, conn))

    def _answer(self, rid: int, run: Callable[[], dict[str, object]]) -> None:
        try:
            reply: tuple[Any, ...] = ("reply", rid, "ok", run())
        except CommandFailed as e:
            reply = ("reply", rid, "failed", (str(e.kind), str(e), e.detail))
        except Exception as e:  # a bug here is the client's answer, never the bridge's end
            reply = ("reply", rid, "error", f"{type(e).__name__}: {e}")
        self.send(reply)

    def _publish(self) -> None:
        paced(self.period_s, self._stop, self.publish_once)

    def publish_once(self) -> bool:
        try:
            body = self.host.snapshot()
        except Exception as e:  # a bug in a snapshot: said to the clients, the bridge goes on
            return self.send(("snapshot_failed", f"{type(e).__name__}: {e}"))
        return self.send(("publish", self.host.feed.drain(), body))


_COMMAND_TYPES = typing.get_args(Command)[0]  # the union of the commands' classes
#: What the channel's process may send: its kind, then the types of the rest.
_FROM_CHANNEL: dict[str, tuple[type | types.UnionType, ...]] = {
    "ping": (int,),
    "closed": (int,),
    "halt": (int, EmergencyHalt),
    "cmd": (int, int, _COMMAND_TYPES),
}


def _malformed(msg: object) -> str | None:
    """Why ``msg`` is not a message the channel's process may send, or None when it is one."""
    if not isinstance(msg, tuple) or not msg:
        return f"a malformed message (a {type(msg).__name__}, not a message)"
    kind = msg[0]
    shape = _FROM_CHANNEL.get(kind) if isinstance(kind, str) else None
    if shape is None:
        return f"a message of an unknown kind ({str(kind)[:40]!r})"
    args = msg[1:]
    if len(args) != len(shape) or not all(
        isinstance(a, t) and not isinstance(a, bool) for a, t in zip(args, shape, strict=False)
    ):
        got = ", ".join(type(a).__name__ for a in args)
        return f"a malformed {kind!r} message ({got})"
    return None


def _sever(conn: Connection) -> None:
    """Cut the pipe both ways without closing our descriptor (another thread may be sending
    on it, and a closed number can be reused): the far end reads its end, ours fails."""
    with contextlib.suppress(OSError, ValueError):
        s = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()


class _RemoteFeed:
    def __init__(self) -> None:
        self.events: deque[FedEvent] = deque(maxlen=FEED_EVENTS)

    def drain(self, limit: int = 1024) -> list[FedEvent]:
        out: list[FedEvent] = []
        while self.events and len(out) < limit:
            out.append(self.events.popleft())
        return out


class RemoteHost:
    """What ``ControlServer`` calls, in the channel's process: the host across the pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.feed = _RemoteFeed()
        self.body: dict[str, object] = {}
        self.gone: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, object]]] = {}
        self._pinged: dict[int, float] = {}  # on the server's I/O thread only
        self._lock = threading.Lock()  # the pending answers and the pipe's sending end

    def status(self) -> dict[str, object]:
        bridge = self.body.get("bridge")
        return dict(bridge) if isinstance(bridge, dict) else {}

    def snapshot(self) -> dict[str, object]:
        return self.body

    def ping(self, conn: int) -> dict[str, object]:
        """Answered here; forwarded to the host at most every ``PING_FORWARD_S`` per
        connection (the console pings 5 times a second against a 1 s timeout), so a client
        that floods pings costs the safety process nothing more."""
        now = time.monotonic()
        if now - self._pinged.get(conn, -PING_FORWARD_S) >= PING_FORWARD_S:
            self._pinged[conn] = now
            self.send(("ping", conn))
        return {"t_wall": time.time()}

    def connection_closed(self, conn: int) -> None:
        self._pinged.pop(conn, None)
        self.send(("closed", conn))

    def emergency_halt(self, cmd: EmergencyHalt) -> dict[str, object]:
        return self._call("halt", cmd)

    def execute(self, cmd: Command, conn: int) -> dict[str, object]:
        if isinstance(cmd, Ping):  # the heartbeat: forwarded, never queued behind a command
            return self.ping(conn)
        return self._call("cmd", conn, cmd)

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._lock:
            if self.gone is None:
                with contextlib.suppress(OSError, ValueError):
                    self.conn.send(msg)

    def _call(self, kind: str, *args: object) -> dict[str, object]:
        fut: Future[dict[str, object]] = Future()
        with self._lock:
            if self.gone is not None:
                raise CommandFailed(ErrorKind.INTERNAL, self.gone)
            rid = next(self._ids)
            self._pending[rid] = fut
            try:
                self.conn.send((kind, rid, *args))
            except (OSError, ValueError) as e:
                self._pending.pop(rid, None)
                raise CommandFailed(ErrorKind.INTERNAL, f"the bridge is unreachable: {e}") from e
        try:
            return fut.result(COMMAND_TIMEOUT_S)
        except FutureTimeout:
            with self._lock:
                self._pending.pop(rid, None)
            raise CommandFailed(
                ErrorKind.BUSY, f"the bridge did not answer within {COMMAND_TIMEOUT_S:g} s"
            ) from None

    def answered(self, rid: int, outcome: str, value: Any) -> None:
        with self._lock:
            fut = self._pending.pop(rid, None)
        if fut is None:
            return  # its caller gave up waiting
        if outcome == "ok":
            fut.set_result(value)
        elif outcome == "failed":
            kind, message, detail = value
            fut.set_exception(CommandFailed(ErrorKind(kind), message, detail))
        else:
            fut.set_exception(RuntimeError(str(value)))

    def lose(self, why: str) -> None:
        with self._lock:
            self.gone = why
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            fut.set_exception(CommandFailed(ErrorKind.INTERNAL, why))


def serve_channel(path: str, conn: Connection, realtime: bool = False) -> None:
    """The channel's process: serve ``path`` for the host at the other end of ``conn`` until
    the safety process says stop or goes away. ``realtime``: every thread of it at the safety
    process's background priority (SCHED_RR 1), as its channel threads were there: a console's
    heartbeat and an emergency halt pass through here, and a CPU hog must not hold them up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session's process ends this one
    scheduling = "SCHED_OTHER"
    remote = RemoteHost(conn)
    try:
        first = conn.recv()
    except (EOFError, OSError):
        return
    if first[0] == "publish":
        remote.feed.events.extend(first[1])
        remote.body = first[2]
    try:
        server = ControlServer(path, remote, snapshot_hz=None).start()
    except OSError as e:
        with contextlib.suppress(OSError):
            conn.send(("ready", str(e), scheduling))
        return
    if realtime:  # every thread it has now (the server's, the main one), at the same class
        scheduling = BackgroundRealtime().apply()
    try:
        conn.send(("ready", None, scheduling))
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "publish":
                remote.feed.events.extend(msg[1])
                remote.body = msg[2]
                server.publish_once()
            elif kind == "reply":
                remote.answered(msg[1], msg[2], msg[3])
            elif kind == "snapshot_failed":
                server.say_internal_error(f"snapshot failed: {msg[1]}")
            elif kind == "stop":
                break
    finally:
        remote.lose("the bridge's safety process is gone")
        server.close()


class ChannelProcess:
    """The control channel in a spawned process of its own, fed by a ``HostLink`` here."""

    #: What the spawned process runs (a test gives it a channel that breaks the protocol).
    serve = staticmethod(serve_channel)

    def __init__(self, path: str | Path, host: SessionHost, *, realtime: bool = False) -> None:
        self.path = Path(path)
        self.host = host
        self.realtime = realtime
        self.restarts = 0
        self.process: BaseProcess | None = None
        self.link: HostLink | None = None

    def start(self) -> ChannelProcess:
        """Spawn the channel's process; it serves the socket before this returns. ``OSError``
        with its reason when it cannot (the socket's path taken, say)."""
        ctx = multiprocessing.get_context("spawn")  # never forked from a threaded process
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=self.serve,
            args=(str(self.path), theirs, self.realtime),
            name="laserguard-channel",
            daemon=True,
        )
        proc.start()
        theirs.close()
        link = HostLink(self.host, ours)
        try:
            link.publish_once()  # the channel knows the bridge before its first client
            if not ours.poll(START_TIMEOUT_S):
                raise OSError(
                    f"the control channel's process did not start in {START_TIMEOUT_S:g} s"
                )
            kind, error, scheduling = ours.recv()
        except (EOFError, OSError) as e:
            proc.kill()
            proc.join(5.0)
            ours.close()
            raise OSError(f"the control channel's process failed to start: {e}") from e
        if kind != "ready" or error is not None:
            proc.join(5.0)
            ours.close()
            raise OSError(str(error))
        self.scheduling: str = scheduling
        self.process, self.link = proc, link.start()
        return self

    def restart(self) -> None:
        """After the channel's process died: the old pipe closed, a new process on the same
        socket path (the dead one's socket file is replaced)."""
        self.close()
        self.start()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def lost(self) -> str | None:
        """Why the link to the channel's process was lost, once it was."""
        return None if self.link is None else self.link.lost

    def exited(self) -> int | None:
        """The channel's process's exit code once it ended, else None. A process whose link was
        lost (it broke the protocol, say) is ended here if it has not ended itself."""
        proc = self.process
        if proc is None:
            return None
        if proc.is_alive() and self.lost is not None:
            proc.join(1.0)  # the link cut its pipe: it should be ending by itself
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        return None if proc.is_alive() else proc.exitcode

    def close(self) -> None:
        """Stop the channel's process (every client's connection closes). Safe twice."""
        link, proc = self.link, self.process
        self.link = self.process = None
        if link is not None:
            link.stopping()
            link.send(("stop",))
        if proc is not None:
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        if link is not None:
            link.close()  # its receiving thread ends on the pipe's end
            link.conn.close()
