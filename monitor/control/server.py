"""The control channel's server: a Unix-domain socket in the bridge process.

Three threads, none of them a safety thread, none holding a lock the halt path takes:

- **I/O** (``laserguard-control-io``): one selector over the listening socket and every
  client, all non-blocking. It reads lines, answers ``ping`` and carries out
  ``emergency_halt`` at once (never behind a queued command), hands every other command to
  the command thread, and writes what is queued for each client as far as its socket takes.
- **commands** (``laserguard-control-commands``): runs the queued commands one at a time
  through ``SessionHost.execute`` (the session's own methods).
- **publisher** (``laserguard-control-publish``): ``SNAPSHOT_HZ`` times a second, one
  snapshot and the session's new events, encoded once, queued for every client.

A client cannot hold the bridge up. Each has a bounded outgoing queue: when it does not read,
its oldest queued snapshot is dropped for the new one, and a client whose queue is full of
replies and events is disconnected; nothing ever blocks on its socket. A line longer than
64 KiB, more than ``MAX_BAD_LINES`` malformed lines in a row, or more than
``LINES_PER_S`` lines a second (beyond a burst) disconnects it with one error line saying why.
Past ``MAX_CLIENTS`` a new connection gets that error line and is closed.

The socket file is made readable and writable by its owner only (0600).
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from monitor.control.feed import FedEvent
from monitor.control.host import CommandFailed
from monitor.control.protocol import (
    MAX_EVENT_PAYLOAD_BYTES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    SNAPSHOT_HZ,
    BadMessage,
    Command,
    EmergencyHalt,
    ErrorKind,
    Ping,
    decode_command,
    encode,
    json_safe,
)

__all__ = ["ChannelHost", "ControlServer", "ServerStats", "paced"]


class _Feed(Protocol):
    def drain(self, limit: int = 1024) -> list[FedEvent]: ...


class ChannelHost(Protocol):
    """What the server calls: ``SessionHost`` in the same process, or ``RemoteHost`` in the
    channel's own (``monitor.control.channel_process``)."""

    @property
    def feed(self) -> _Feed: ...

    def status(self) -> dict[str, object]: ...

    def snapshot(self) -> dict[str, object]: ...

    def connection_closed(self, conn: int) -> None: ...

    def emergency_halt(self, cmd: EmergencyHalt) -> dict[str, object]: ...

    def execute(self, cmd: Command, conn: int) -> dict[str, object]: ...


MAX_CLIENTS = 16
#: Messages queued for one client; past it the oldest snapshot goes, or the client does.
QUEUE_MESSAGES = 64
QUEUE_BYTES = 2 * 1024 * 1024
#: Lines one client may send each second, and the burst above that rate; past it, it is cut
#: off. The console sends 5 pings a second and a person's commands.
LINES_PER_S = 200.0
LINES_BURST = 400.0
MAX_BAD_LINES = 20
COMMAND_QUEUE = 16
_READ_CHUNK = 65536


@dataclass
class ServerStats:
    """What the server refused or dropped, for tests, benchmarks and the log."""

    accepted: int = 0
    refused_connections: int = 0
    dropped_snapshots: int = 0
    disconnected: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    commands: int = 0

    def cut(self, why: str) -> None:
        self.disconnected[why] = self.disconnected.get(why, 0) + 1


class _Client:
    def __init__(self, cid: int, sock: socket.socket) -> None:
        self.id = cid
        self.sock = sock
        self.inbuf = bytearray()
        self.lock = threading.Lock()  # guards out/out_bytes between the threads; never I/O
        self.out: deque[tuple[bool, bytes]] = deque()  # (is a snapshot, line)
        self.out_bytes = 0
        self.partial: bytes = b""  # the unsent rest of the line being written
        self.bad_lines = 0
        self.tokens = LINES_BURST
        self.refilled = time.monotonic()
        self.dead: str | None = None  # why it is to be cut off (set by any thread)

    def queue(self, line: bytes, *, snapshot: bool, stats: ServerStats) -> None:
        """Queue a line without blocking; the oldest snapshot makes room, else the client is
        marked for disconnection (it does not read)."""
        with self.lock:
            if self.dead is not None:
                return
            while len(self.out) >= QUEUE_MESSAGES or self.out_bytes + len(line) > QUEUE_BYTES:
                victim = next((i for i, (snap, _) in enumerate(self.out) if snap), None)
                if victim is None:
                    self.dead = "does not read: its queue is full of replies and events"
                    return
                _, gone = self.out[victim]
                del self.out[victim]
                self.out_bytes -= len(gone)
                stats.dropped_snapshots += 1
            self.out.append((snapshot, line))
            self.out_bytes += len(line)

    def take(self) -> bytes:
        with self.lock:
            if not self.out:
                return b""
            _, line = self.out.popleft()
            self.out_bytes -= len(line)
            return line

    def spend(self) -> bool:
        """One line's worth of the rate budget; False once it is overspent."""
        now = time.monotonic()
        self.tokens = min(LINES_BURST, self.tokens + (now - self.refilled) * LINES_PER_S)
        self.refilled = now
        self.tokens -= 1.0
        return self.tokens >= 0.0


def paced(period_s: float, stop: threading.Event, once: Callable[[], bool]) -> None:
    """Call ``once`` every ``period_s`` until ``stop`` is set or it returns False; far behind,
    start afresh rather than catch up in a burst (the publishers of the snapshots)."""
    due = time.monotonic()
    while not stop.is_set():
        due += period_s
        delay = due - time.monotonic()
        if delay < -10 * period_s:
            due = time.monotonic()
        elif delay > 0:
            stop.wait(delay)
        if stop.is_set() or not once():
            return


def _error_line(kind: ErrorKind, message: str, msg_id: int | None = None) -> bytes:
    return encode(
        {
            "v": PROTOCOL_VERSION,
            "type": "reply",
            "id": msg_id,
            "ok": False,
            "error": {"kind": str(kind), "message": message},
        }
    )


def _reply_line(msg_id: int, result: dict[str, object]) -> bytes:
    line = encode(
        {
            "v": PROTOCOL_VERSION,
            "type": "reply",
            "id": msg_id,
            "ok": True,
            "result": json_safe(result),
        }
    )
    if len(line) > MAX_MESSAGE_BYTES:
        return _error_line(
            ErrorKind.INTERNAL, f"the reply was larger than {MAX_MESSAGE_BYTES} bytes", msg_id
        )
    return line


class ControlServer:
    """Serves a ``SessionHost`` on a Unix-domain socket (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        host: ChannelHost,
        *,
        max_clients: int = MAX_CLIENTS,
        snapshot_hz: float | None = SNAPSHOT_HZ,
    ) -> None:
        """``snapshot_hz`` None: no publisher thread; the owner calls ``publish_once`` (the
        channel's own process, on each snapshot the safety process sends)."""
        self.path = Path(path)
        self.host = host
        self.max_clients = max_clients
        self.period_s = 1.0 / (snapshot_hz or SNAPSHOT_HZ)
        self.stats = ServerStats()
        self.seq = 0
        self._clients: dict[int, _Client] = {}
        self._clients_lock = threading.Lock()  # the dict only
        self._next_id = 1
        self._commands: queue.Queue[tuple[int, Command] | None] = queue.Queue(COMMAND_QUEUE)
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._listener: socket.socket | None = None
        self._threads = [
            threading.Thread(target=self._io, name="laserguard-control-io", daemon=True),
            threading.Thread(target=self._work, name="laserguard-control-commands", daemon=True),
        ]
        if snapshot_hz is not None:
            self._threads.append(
                threading.Thread(
                    target=self._publish, name="laserguard-control-publish", daemon=True
                )
            )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> ControlServer:
        self._listener = self._bind()
        self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        for t in self._threads:
            t.start()
        return self

    def _bind(self) -> socket.socket:
        path = self.path
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(f"{path} exists and is not a socket: refusing to replace it")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a bridge that died: nobody listens on it
            else:
                probe.close()
                raise OSError(f"another bridge is already serving {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket file is born 0600: only its owner may connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        """Stop the threads and close every connection; safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        with contextlib.suppress(queue.Full):
            self._commands.put_nowait(None)
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(5.0)
        with self._clients_lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for c in clients:
            with contextlib.suppress(OSError):
                c.sock.close()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client_count(self) -> int:
        with self._clients_lock:
            return len(self._clients)

    # --- the I/O thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _io(self) -> None:
        while not self._stop.is_set():
            for key, mask in self._sel.select(timeout=0.05):
                if key.data == "listen":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError, OSError):
                        self._wake_r.recv(4096)
                else:
                    client: _Client = key.data
                    if mask & selectors.EVENT_READ:
                        self._read(client)
            self._flush_all()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of file descriptors, say: the clients we have go on
            sock.setblocking(False)
            with self._clients_lock:
                full = len(self._clients) >= self.max_clients
                if not full:
                    cid = self._next_id
                    self._next_id += 1
                    client = _Client(cid, sock)
                    self._clients[cid] = client
            if full:
                self.stats.refused_connections += 1
                self._last_words(sock, f"the bridge serves at most {self.max_clients} clients")
                continue
            self.stats.accepted += 1
            self._sel.register(sock, selectors.EVENT_READ, client)
            hello = {
                "v": PROTOCOL_VERSION,
                "type": "hello",
                "bridge": json_safe(self.host.status()),
                "max_message_bytes": MAX_MESSAGE_BYTES,
            }
            client.queue(encode(hello), snapshot=False, stats=self.stats)

    def _last_words(self, sock: socket.socket, why: str) -> None:
        with contextlib.suppress(OSError):
            sock.send(_error_line(ErrorKind.BUSY, why))
        with contextlib.suppress(OSError):
            sock.close()

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._drop(client, f"read failed: {e}")
            return
        if not data:
            self._drop(client, None)
            return
        client.inbuf += data
        while client.dead is None:
            end = client.inbuf.find(b"\n")
            if end < 0:
                if len(client.inbuf) > MAX_MESSAGE_BYTES:
                    client.dead = f"sent a line longer than {MAX_MESSAGE_BYTES} bytes"
                break
            line = bytes(client.inbuf[:end])
            del client.inbuf[: end + 1]
            if line.strip():
                self._line(client, line)

    def _line(self, client: _Client, line: bytes) -> None:
        if not client.spend():
            client.dead = f"sent more than {LINES_PER_S:g} lines a second"
            return
        try:
            cmd = decode_command(line)
        except BadMessage as e:
            self.stats.bad_lines += 1
            client.bad_lines += 1
            if client.bad_lines > MAX_BAD_LINES:
                client.dead = f"sent more than {MAX_BAD_LINES} malformed lines in a row"
                return
            client.queue(
                _error_line(ErrorKind.BAD_REQUEST, str(e), e.msg_id),
                snapshot=False,
                stats=self.stats,
            )
            return
        client.bad_lines = 0
        self.stats.commands += 1
        if isinstance(cmd, Ping | EmergencyHalt):  # never behind a queued command
            self._run(client.id, cmd)
            return
        try:
            self._commands.put_nowait((client.id, cmd))
        except queue.Full:
            client.queue(
                _error_line(ErrorKind.BUSY, "too many commands queued: try again", cmd.id),
                snapshot=False,
                stats=self.stats,
            )

    def _flush_all(self) -> None:
        with self._clients_lock:
            clients = list(self._clients.values())
        for c in clients:
            if c.dead is not None:
                self._cut(c)
                continue
            self._write(c)

    def _write(self, client: _Client) -> None:
        while True:
            if not client.partial:
                client.partial = client.take()
                if not client.partial:
                    break
            try:
                sent = client.sock.send(client.partial)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._drop(client, f"write failed: {e}")
                return
            client.partial = client.partial[sent:]
            if client.partial:
                break  # the socket is full: the rest waits for the next turn
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.partial or client.out else 0)
        with contextlib.suppress(KeyError, ValueError):
            if self._sel.get_key(client.sock).events != want:
                self._sel.modify(client.sock, want, client)

    def _cut(self, client: _Client) -> None:
        why = client.dead or "cut off"
        self.stats.cut(why)
        self._forget(client)
        self._last_words(client.sock, f"disconnected: {why}")
        self.host.connection_closed(client.id)

    def _drop(self, client: _Client, why: str | None) -> None:
        """The client went away (``why`` None) or its socket failed."""
        if why is not None:
            self.stats.cut(why)
        self._forget(client)
        with contextlib.suppress(OSError):
            client.sock.close()
        self.host.connection_closed(client.id)

    def _forget(self, client: _Client) -> None:
        with self._clients_lock:
            self._clients.pop(client.id, None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(client.sock)

    # --- commands ---------------------------------------------------------------------------

    def _run(self, cid: int, cmd: Command) -> None:
        try:
            if isinstance(cmd, EmergencyHalt):
                result = self.host.emergency_halt(cmd)
            else:
                result = self.host.execute(cmd, cid)
            line = _reply_line(cmd.id, result)
        except CommandFailed as e:
            line = encode(
                {
                    "v": PROTOCOL_VERSION,
                    "type": "reply",
                    "id": cmd.id,
                    "ok": False,
                    "error": {
                        "kind": str(e.kind),
                        "message": str(e),
                        "detail": json_safe(e.detail),
                    },
                }
            )
        except Exception as e:  # a bug here is the client's answer, never the bridge's end
            line = _error_line(ErrorKind.INTERNAL, f"{type(e).__name__}: {e}", cmd.id)
        with self._clients_lock:
            client = self._clients.get(cid)
        if client is not None:
            client.queue(line, snapshot=False, stats=self.stats)
            self._wake()

    def _work(self) -> None:
        while True:
            item = self._commands.get()
            if item is None or self._stop.is_set():
                return
            self._run(*item)

    # --- the publisher ----------------------------------------------------------------------

    def _publish(self) -> None:
        paced(self.period_s, self._stop, self._publish_or_say)

    def _publish_or_say(self) -> bool:
        try:
            self.publish_once()
        except Exception as e:  # a bug in a snapshot: said to the clients, the bridge goes on
            self.say_internal_error(f"snapshot failed: {e}")
        return True

    def say_internal_error(self, message: str) -> None:
        """An error line to every client (a snapshot that could not be built)."""
        self._broadcast(_error_line(ErrorKind.INTERNAL, message), False)

    def publish_once(self) -> None:
        """One snapshot and the events since the last, to every client."""
        events = self.host.feed.drain()
        if self.client_count == 0:
            return
        for ev in events:
            self.seq += 1
            msg = {
                "v": PROTOCOL_VERSION,
                "type": "event",
                "seq": self.seq,
                "t_wall": ev.t_wall,
                "session_id": ev.session_id,
                "kind": ev.kind,
                "payload": json_safe(ev.payload),
            }
            line = encode(msg)
            if len(line) > MAX_EVENT_PAYLOAD_BYTES:
                msg["payload"] = {"truncated": True, "bytes": len(line)}
                line = encode(msg)
            self._broadcast(line, False)
        self.seq += 1
        body = self.host.snapshot()
        line = encode(
            {
                "v": PROTOCOL_VERSION,
                "type": "snapshot",
                "seq": self.seq,
                "t_wall": time.time(),
                **body,
            }
        )
        if len(line) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a snapshot of {len(line)} bytes is over {MAX_MESSAGE_BYTES}")
        self._broadcast(line, True)

    def _broadcast(self, line: bytes, snapshot: bool) -> None:
        with self._clients_lock:
            clients = list(self._clients.values())
        for c in clients:
            c.queue(line, snapshot=snapshot, stats=self.stats)
        self._wake()
