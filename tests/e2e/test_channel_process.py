"""Issue 15, the split's first step: the control channel in a process of its own. Fail-safe
both ways, with real processes: the channel's process killed or frozen during an armed
session halts it (console lost); the safety process killed under it ends the channel's
process and closes its clients; a socket path it cannot take is a refusal with its reason."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from device_profiles.loader import LoadedSetup
from monitor.control.channel_process import ChannelProcess, HostLink
from monitor.control.client import ControlClient
from monitor.core.records import State
from tests.e2e.conftest import wait_for
from tests.e2e.console_rig import ChannelRig, wait_snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def rig(loaded: LoadedSetup, tmp_path: Path) -> Iterator[ChannelRig]:
    r = ChannelRig(loaded, tmp_path)
    try:
        yield r
    finally:
        r.close()


def armed(rig: ChannelRig) -> tuple[ControlClient, ChannelProcess]:
    client = rig.start("normal", channel_process=True)
    rig.armed(client)
    assert isinstance(rig.server, ChannelProcess) and rig.server.pid is not None
    assert rig.server.pid != os.getpid()
    return client, rig.server


def halted_on_console_lost(rig: ChannelRig, within_s: float) -> str:
    assert rig.host is not None
    session = rig.host.session
    assert session is not None
    wait_for(lambda: session.state is State.HALTED, within_s, "the session HALTED")
    assert not session.bridge.permit and session.bridge.halted  # the relay's permit withdrawn

    def lost() -> str | None:
        trips = rig.log_events(session.session_id, ["trip"])
        words = [str(t.payload["reason"]) for t in trips if t.payload["check"] == "console_lost"]
        return words[0] if words else None

    why: str = wait_for(lost, 5, "the console_lost trip in the log")
    assert "console lost" in why and "nobody can see the alarms" in why
    return why


def test_a_killed_channel_process_halts_the_armed_session(rig: ChannelRig) -> None:
    client, channel = armed(rig)
    assert channel.pid is not None
    os.kill(channel.pid, signal.SIGKILL)
    t0 = time.monotonic()
    why = halted_on_console_lost(rig, 5.0)
    assert time.monotonic() - t0 < 2.0, "the pipe's end is the console's channel closing"
    assert "closed" in why
    assert channel.exited() == -signal.SIGKILL
    wait_for(lambda: not client.connected, 5, "the console's connection closed")


def test_a_frozen_channel_process_halts_the_armed_session_after_the_heartbeat(
    rig: ChannelRig,
) -> None:
    _, channel = armed(rig)
    assert channel.pid is not None
    os.kill(channel.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        why = halted_on_console_lost(rig, 5.0)
        waited = time.monotonic() - t0
    finally:
        os.kill(channel.pid, signal.SIGCONT)
    assert "no heartbeat" in why
    assert 0.5 < waited < 3.0, waited  # the 1 s heartbeat timeout, plus the watch's period


def test_commands_and_snapshots_cross_the_pipe(rig: ChannelRig) -> None:
    client, channel = armed(rig)
    snap = wait_snapshot(
        client, lambda s: s.session is not None and s.session.state == "READY", 3, "READY"
    )
    assert snap.bridge.pid == os.getpid()  # the host's own words, from the safety process
    assert channel.link is not None and channel.link.lost is None


_SAFETY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from device_profiles.loader import load
    from monitor.control.channel_process import ChannelProcess, HostLink
    from monitor.control.host import HostConfig, SessionHost
    from monitor.core.records import SessionMode

    loaded = load("demo-ndyag-1064")
    config = HostConfig(loaded, loaded.setup, Path(sys.argv[2]), SessionMode.TEST, realtime=False)
    host = SessionHost(config).start()
    channel = ChannelProcess(sys.argv[1], host).start()
    print(channel.pid, flush=True)
    time.sleep(120)
    """
)


def test_the_channel_process_ends_when_the_safety_process_is_killed(tmp_path: Path) -> None:
    sock = Path(os.path.join("/tmp", f"lgcp-{os.getpid()}.sock"))
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAFETY, str(sock), str(tmp_path / "log.sqlite3")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        channel_pid = int(proc.stdout.readline())
        client = ControlClient(sock, console=False).start()
        assert client.wait_connected(10.0), client.last_error
        wait_for(lambda: client.latest is not None, 5, "a snapshot from the channel's process")
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not client.connected, 10, "the client's connection closed")

        def gone() -> bool:
            try:
                os.kill(channel_pid, 0)
            except ProcessLookupError:
                return True
            # A zombie until its parent's reaper (init) collects it: ended all the same.
            with open(f"/proc/{channel_pid}/stat", encoding="ascii") as f:
                return f.read().split(")")[-1].split()[0] == "Z"

        wait_for(gone, 10, "the channel's process ended")
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
        sock.unlink(missing_ok=True)


def test_a_socket_path_that_is_not_a_socket_is_refused_with_its_reason(
    rig: ChannelRig, tmp_path: Path
) -> None:
    rig.start("normal")  # a host to serve; its own channel is in-process on another path
    assert rig.host is not None
    taken = rig.sock_dir / "taken.sock"
    taken.write_text("a file, not a socket", encoding="utf-8")
    with pytest.raises(OSError, match="exists and is not a socket"):
        ChannelProcess(taken, rig.host).start()
    assert taken.read_text(encoding="utf-8") == "a file, not a socket"  # nothing lost


# --- hostile clients: the channel's process takes them, the session never notices -----------


def _raw(rig: ChannelRig) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(rig.socket))
    s.settimeout(10.0)
    return s


def _lines_until_closed(s: socket.socket, limit_s: float = 10.0) -> list[dict[str, object]]:
    """Every line the channel sent before it closed the connection (hello, snapshots, errors)."""
    buf = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not data:
            break
        buf += data
    else:
        raise AssertionError("the channel did not close the connection")
    return [json.loads(x) for x in buf.split(b"\n") if x.strip()]


def _errors(lines: list[dict[str, object]]) -> list[str]:
    return [str(m["error"]["message"]) for m in lines if m.get("ok") is False]  # type: ignore[index]


HOSTILE = {
    "garbage": lambda s: s.sendall(b"\x00\xff not json at all\n" * 25),
    "a-line-over-64-kib": lambda s: s.sendall(b"{" + b"x" * 70_000),
    "a-flood-of-pings": lambda s: s.sendall(b'{"v": 1, "id": 1, "cmd": "ping"}\n' * 2_000),
}
CUT_FOR = {
    "garbage": "malformed lines in a row",
    "a-line-over-64-kib": "a line longer than",
    "a-flood-of-pings": "does not read",  # its replies fill its queue before its budget runs out
}


@pytest.mark.parametrize("attack", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_client_is_cut_off_by_the_channel_and_the_session_stays_armed(
    rig: ChannelRig, attack: str
) -> None:
    client, channel = armed(rig)
    assert rig.host is not None and rig.host.session is not None
    session = rig.host.session
    s = _raw(rig)
    try:
        HOSTILE[attack](s)
        lines = _lines_until_closed(s)
    finally:
        s.close()
    assert lines[0]["type"] == "hello"
    errors = _errors(lines)
    assert errors and errors[-1].startswith("disconnected: "), errors
    assert CUT_FOR[attack] in errors[-1], errors[-1]
    # The console goes on: its snapshots keep coming, the session armed, nothing halted.
    seq = client.latest.seq if client.latest is not None else 0
    wait_snapshot(client, lambda m: m.seq > seq + 5, 3, "snapshots after the attack")
    assert session.state is State.READY and not session.bridge.halted
    assert channel.link is not None and channel.link.lost is None


def test_past_the_client_limit_a_connection_is_told_why_and_closed(rig: ChannelRig) -> None:
    client, _ = armed(rig)
    held = [_raw(rig) for _ in range(15)]  # the console and these 15: the limit of 16
    try:
        extra = _raw(rig)
        lines = _lines_until_closed(extra)
        extra.close()
        assert _errors(lines) == ["the bridge serves at most 16 clients"]
    finally:
        for s in held:
            s.close()
    assert rig.host is not None and rig.host.session is not None
    assert rig.host.session.state is State.READY
    assert client.connected


def test_a_flood_of_pings_is_answered_by_the_channel_not_forwarded_to_the_safety_process(
    rig: ChannelRig,
) -> None:
    armed(rig)
    host = rig.host
    assert host is not None
    seen: list[int] = []
    original = host.ping

    def counted(conn: int) -> dict[str, object]:
        seen.append(conn)
        return original(conn)

    host.ping = counted  # type: ignore[method-assign]
    wait_for(lambda: seen, 2, "the console's heartbeat")
    console = seen[0]
    s = _raw(rig)
    try:
        t0 = time.monotonic()
        buf = b""
        for batch in range(1, 11):  # 300 pings, under the line budget, 30 in flight at most
            s.sendall(b'{"v": 1, "id": 7, "cmd": "ping"}\n' * 30)
            while buf.count(b'"id":7,') < 30 * batch:  # each answered by the channel's process
                data = s.recv(65536)
                assert data, _errors([json.loads(x) for x in buf.split(b"\n") if x.strip()])
                buf += data
        spent = time.monotonic() - t0
    finally:
        s.close()
    time.sleep(0.2)
    flood = [c for c in seen if c != console]
    assert flood, "the flooding connection's pings reach the host too, at a bounded rate"
    assert len(flood) <= 2 + spent / 0.05, (len(flood), spent)


def test_a_real_time_channel_process_runs_every_thread_at_the_background_priority(
    rig: ChannelRig,
) -> None:
    """A console's heartbeat and an emergency halt pass through the channel's process: in a
    real-time bridge it runs at SCHED_RR 1, as its threads did in the safety process, so a
    CPU hog at ordinary priority cannot hold them up."""
    rig.start("normal")
    assert rig.host is not None
    channel = ChannelProcess(rig.sock_dir / "rt.sock", rig.host, realtime=True).start()
    try:
        if channel.scheduling.startswith("SCHED_OTHER"):
            pytest.skip(f"no real-time scheduling here: {channel.scheduling}")
        assert channel.scheduling.startswith("SCHED_RR priority 1 (")
        tids = [int(t) for t in os.listdir(f"/proc/{channel.pid}/task")]
        assert len(tids) >= 3  # the main thread, the server's I/O and command threads
        for tid in tids:
            assert os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR, tid
            assert os.sched_getparam(tid).sched_priority == 1
    finally:
        channel.close()
    ordinary = ChannelProcess(rig.sock_dir / "ord.sock", rig.host).start()
    try:
        assert ordinary.scheduling == "SCHED_OTHER"
        assert os.sched_getscheduler(ordinary.pid or 0) == os.SCHED_OTHER
    finally:
        ordinary.close()


# --- a channel's process that breaks the protocol: the link is lost, with its words ---------

BROKEN: dict[str, Callable[[Connection], None]] = {
    "bytes-that-are-no-pickle": lambda c: c.send_bytes(b"\x00\xffgarbage"),
    "a-pickle-of-a-class-that-is-not-here": lambda c: c.send_bytes(b"cno_such_lg_module\nX\n(tR."),
    "not-a-tuple": lambda c: c.send("ping"),
    "an-empty-tuple": lambda c: c.send(()),
    "a-kind-of-no-message": lambda c: c.send(("arm_now", 1)),
    "a-ping-without-its-connection": lambda c: c.send(("ping",)),
    "a-connection-that-is-no-number": lambda c: c.send(("closed", "the console")),
    "a-command-that-is-no-command": lambda c: c.send(("cmd", 1, 1, {"cmd": "arm"})),
    "a-halt-that-is-no-halt": lambda c: c.send(("halt", 1, {"cmd": "emergency_halt"})),
}
SAID = {
    "bytes-that-are-no-pickle": "a message that could not be read (UnpicklingError",
    "a-pickle-of-a-class-that-is-not-here": "a message that could not be read (ModuleNotFoundError",
    "not-a-tuple": "a malformed message (a str, not a message)",
    "an-empty-tuple": "a malformed message (a tuple, not a message)",
    "a-kind-of-no-message": "a message of an unknown kind ('arm_now')",
    "a-ping-without-its-connection": "a malformed 'ping' message ()",
    "a-connection-that-is-no-number": "a malformed 'closed' message (str)",
    "a-command-that-is-no-command": "a malformed 'cmd' message (int, int, dict)",
    "a-halt-that-is-no-halt": "a malformed 'halt' message (int, dict)",
}


@pytest.mark.parametrize("message", list(BROKEN), ids=list(BROKEN))
def test_a_message_off_the_protocol_loses_the_link_and_halts_with_its_words(
    rig: ChannelRig, message: str
) -> None:
    """The link believes nothing more from a channel's process that broke the protocol: the
    armed session halts (console lost) saying what came, and the pipe is cut. Before, such a
    message ended the link's receiving thread without a word (or was silently ignored), and the
    halt came a second later as a missed heartbeat."""
    armed(rig)
    assert rig.host is not None
    ours, theirs = multiprocessing.Pipe(duplex=True)
    link = HostLink(rig.host, ours).start()
    try:
        BROKEN[message](theirs)
        t0 = time.monotonic()
        why = halted_on_console_lost(rig, 5.0)
        assert time.monotonic() - t0 < 1.0, "at once, not after the heartbeat's timeout"
        assert f"the channel to the console closed: the channel's process sent {SAID[message]}" in (
            why
        ), why
        assert link.lost is not None and SAID[message] in link.lost

        def cut() -> bool:  # what was already on its way, then the pipe's end
            try:
                while theirs.poll(0.1):
                    theirs.recv()
            except (EOFError, OSError):
                return True
            return False

        wait_for(cut, 5, "the pipe cut")
    finally:
        link.close()
        ours.close()
        theirs.close()


def _lying_channel(path: str, conn: Connection, realtime: bool = False) -> None:
    """A channel's process that starts as it should, then sends a ping for no connection, and
    reads whatever comes until its pipe ends."""
    conn.recv()  # the host's first publish
    conn.send(("ready", None, "SCHED_OTHER"))
    conn.send(("ping", "a console"))
    while True:
        try:
            conn.recv()
        except (EOFError, OSError):
            return


class _LyingChannel(ChannelProcess):
    serve = staticmethod(_lying_channel)


def test_a_channel_process_that_breaks_the_protocol_is_cut_off_and_ends(
    rig: ChannelRig,
) -> None:
    """Its link cut, the process reads its pipe's end and ends by itself (exit 0: not killed),
    so that ``serve`` starts a fresh one and says why."""
    rig.start("normal")
    assert rig.host is not None
    channel = _LyingChannel(rig.sock_dir / "lying.sock", rig.host).start()
    try:
        wait_for(lambda: channel.lost, 5, "the link lost")
        assert channel.lost == "the channel's process sent a malformed 'ping' message (str)"
        proc = channel.process
        assert proc is not None
        proc.join(5.0)
        assert proc.exitcode == 0, "it ended by itself on the cut pipe"
        assert channel.exited() == 0
    finally:
        channel.close()
