"""The control channel's client: what the console service uses to reach the bridge.

::

    client = ControlClient("runs/control.sock", console=True).start()
    info = client.call(StartSession(who="jo", patient_id="P-0042", skin_type=SkinType.III,
                                    answers={...}))
    snap = client.latest            # the newest SnapshotMessage, or None
    events = client.events_since(0)

``start()`` connects in the background and keeps reconnecting (every ``RECONNECT_S``) while
the bridge is away; ``connected`` says whether it is connected now. As a console it sends the
heartbeat (a ``ping`` every ``HEARTBEAT_S``) on a thread of its own, and after a reconnect it
attaches itself to a running session that has lost its console (the bridge has halted it by
then; the halt stays latched until a person resets it).

``call`` sends one command and waits for its reply: the reply's ``result``, or
``ControlError`` with the bridge's error kind and its one-sentence message;
``ControlUnavailable`` (kind ``unavailable``) when the bridge cannot be reached or does not
answer in time. Nothing here imports the session or its threads.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.control.protocol import (
    MAX_MESSAGE_BYTES,
    AttachConsole,
    EventMessage,
    Hello,
    Ping,
    SnapshotMessage,
    encode,
)

__all__ = ["ControlClient", "ControlError", "ControlUnavailable"]

HEARTBEAT_S = 0.2
RECONNECT_S = 0.5
CALL_TIMEOUT_S = 15.0
SILENCE_S = 2.0
#: Events kept for readers that come late (a page that reconnects asks for those since).
KEPT_EVENTS = 1000


class ControlError(Exception):
    """The bridge did not carry out a command: ``kind`` (``ErrorKind``) and why."""

    def __init__(self, kind: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


class ControlUnavailable(ControlError):
    """The bridge cannot be reached, or did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)


class ControlClient:
    """A connection to the bridge's control socket (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        console: bool = True,
        who: str = "console service",
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.path = Path(path)
        self.console = console
        self.who = who
        self.heartbeat_s = heartbeat_s
        self.latest: SnapshotMessage | None = None
        self.hello: Hello | None = None
        self._events: deque[EventMessage] = deque(maxlen=KEPT_EVENTS)
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()  # _sock and _pending
        self._send_lock = threading.Lock()  # one writer on the socket at a time
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.disconnects = 0
        self.last_error: str | None = None
        self._threads = [
            threading.Thread(target=self._run, name="laserguard-control-client", daemon=True)
        ]
        if console:
            self._threads.append(
                threading.Thread(
                    target=self._beat, name="laserguard-console-heartbeat", daemon=True
                )
            )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> ControlClient:
        for t in self._threads:
            t.start()
        return self

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        self._stop.set()
        self._disconnect("client closed")
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(2.0)

    def __enter__(self) -> ControlClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls ------------------------------------------------------------------------------

    def call(self, command: BaseModel, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        """Send one command (a ``protocol`` model; its ``id`` is set here) and wait for its reply."""
        msg_id = next(self._ids)
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            sock = self._sock
            if sock is None:
                raise ControlUnavailable(self._why_down())
            self._pending[msg_id] = fut
        line = encode(command.model_copy(update={"id": msg_id}).model_dump(mode="json"))
        try:
            self._send(sock, line)
            return fut.result(timeout=timeout_s)
        except FutureTimeout:
            raise ControlUnavailable(f"the bridge did not answer within {timeout_s:g} s") from None
        finally:
            with self._lock:
                self._pending.pop(msg_id, None)

    def events_since(self, seq: int) -> list[EventMessage]:
        """Read for each page 20 times a second: a look at the newest first, and then a walk
        back over the new ones only (never over the whole ``KEPT_EVENTS``)."""
        events = self._events
        if not events or events[-1].seq <= seq:
            return []
        held = list(events)  # a copy: the reader thread appends meanwhile
        i = len(held)
        while i > 0 and held[i - 1].seq > seq:
            i -= 1
        return held[i:]

    def _why_down(self) -> str:
        detail = f" ({self.last_error})" if self.last_error else ""
        return f"the bridge's control channel is not connected{detail}"

    def _send(self, sock: socket.socket, line: bytes) -> None:
        if len(line) > MAX_MESSAGE_BYTES:
            raise ControlError("bad_request", f"a command is at most {MAX_MESSAGE_BYTES} bytes")
        try:
            with self._send_lock:
                sock.sendall(line)
        except OSError as e:
            self._disconnect(f"send failed: {e}")
            raise ControlUnavailable(f"the bridge's control channel failed: {e}") from e

    # --- threads ----------------------------------------------------------------------------

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                sock = self._sock
            if sock is None:
                continue
            with contextlib.suppress(ControlError):
                self._send(sock, encode(Ping(id=0).model_dump(mode="json")))

    def _run(self) -> None:
        while not self._stop.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # Both ways: a bridge that sends nothing (it sends 20 snapshots a second) or stops
            # reading for this long is taken for gone, and the channel is made anew.
            sock.settimeout(SILENCE_S)
            try:
                sock.connect(str(self.path))
            except OSError as e:
                self.last_error = f"cannot connect to {self.path}: {e.strerror or e}"
                sock.close()
                self._stop.wait(RECONNECT_S)
                continue
            with self._lock:
                self._sock = sock
            self.last_error = None
            try:
                self._read(sock)
            finally:
                self._disconnect(self.last_error or "the bridge closed the channel")
            self._stop.wait(RECONNECT_S)

    def _read(self, sock: socket.socket) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                self.last_error = f"the bridge sent nothing for {SILENCE_S:g} s"
                return
            except OSError as e:
                self.last_error = f"read failed: {e}"
                return
            if not data:
                return
            buf += data
            while (end := buf.find(b"\n")) >= 0:
                line = bytes(buf[:end])
                del buf[: end + 1]
                self._message(line)
            if len(buf) > MAX_MESSAGE_BYTES:
                self.last_error = "the bridge sent a line longer than the protocol allows"
                return

    def _message(self, line: bytes) -> None:
        try:
            raw = json.loads(line)
            kind = raw.get("type")
            if kind == "snapshot":
                self.latest = SnapshotMessage.model_validate(raw)
            elif kind == "event":
                self._events.append(EventMessage.model_validate(raw))
            elif kind == "reply":
                self._reply(raw)
            elif kind == "hello":
                self.hello = Hello.model_validate(raw)
                self._connected.set()
                if (
                    self.console
                    and raw["bridge"].get("session_id")
                    and not raw["bridge"].get("console_attached")
                ):
                    threading.Thread(target=self._attach, daemon=True).start()
        except (ValueError, ValidationError, AttributeError, KeyError) as e:
            self.last_error = f"unreadable message from the bridge: {type(e).__name__}: {e}"

    def _attach(self) -> None:
        with contextlib.suppress(ControlError):
            self.call(AttachConsole(who=self.who), timeout_s=5.0)

    def _reply(self, raw: dict[str, Any]) -> None:
        msg_id = raw.get("id")
        with self._lock:
            fut = self._pending.get(msg_id) if isinstance(msg_id, int) else None
        if fut is None or fut.done():
            return  # a heartbeat's pong, or an answer nobody waits for any more
        if raw.get("ok"):
            fut.set_result(dict(raw.get("result") or {}))
        else:
            err = raw.get("error") or {}
            fut.set_exception(
                ControlError(str(err.get("kind")), str(err.get("message")), err.get("detail"))
            )

    def _disconnect(self, why: str) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            pending = list(self._pending.values())
            self._pending.clear()
        self._connected.clear()
        if sock is None:
            return
        self.disconnects += 1
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        for fut in pending:
            if not fut.done():
                fut.set_exception(ControlUnavailable(f"the control channel closed: {why}"))
