"""A laser that floods its serial line: a pty in front of the simulated laser.

Passes each command line through to the real (simulated) laser and its reply back, until
told to flood; then it answers every command with a line of ``line_bytes`` random printable
garbage (a different line each time, so no two failures are alike). Runs in its own process,
as a real device would, started by ``flooding_laser()``; SIGUSR1 starts the flood, SIGUSR2
ends it. Used by the log-size benchmark and the hostile tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import serial

LINE_BYTES = 1 << 20
_PRINTABLE = np.frombuffer(bytes(range(0x21, 0x7F)), dtype=np.uint8)


def garbage_lines(n: int, line_bytes: int, seed: int = 7) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [_PRINTABLE[rng.integers(0, len(_PRINTABLE), line_bytes)].tobytes() for _ in range(n)]


class _Proxy:
    def __init__(self, upstream: str, line_bytes: int, terminator: bytes) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.term = terminator
        self.upstream = serial.Serial(upstream, timeout=0.5)
        self.flooding = threading.Event()
        self.garbage = garbage_lines(8, line_bytes)
        self.sent = 0

    def reply(self, line: bytes) -> bytes:
        if self.flooding.is_set():
            self.sent += 1
            return self.garbage[self.sent % len(self.garbage)]
        self.upstream.reset_input_buffer()
        self.upstream.write(line + self.term)
        answer: bytes = self.upstream.read_until(self.term)
        return answer.rstrip(b"\r\n")

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 2.0  # a reader that stopped reading: give up the line
        while view and time.monotonic() < deadline:
            _, writable, _ = select.select([], [self.master], [], 0.05)
            if writable:
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(self.master, view) :]

    def serve(self) -> None:
        buf = b""
        while True:
            readable, _, _ = select.select([self.master], [], [], 0.05)
            if not readable:
                continue
            try:
                buf += os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.rstrip(b"\r")
                if line.strip():
                    self.write_all(self.reply(line) + self.term)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="the real laser's serial port")
    parser.add_argument("--line-bytes", type=int, default=LINE_BYTES)
    parser.add_argument("--path-file", required=True, help="write the pty's path here")
    args = parser.parse_args(argv)
    proxy = _Proxy(args.upstream, args.line_bytes, b"\r\n")
    signal.signal(signal.SIGUSR1, lambda *_: proxy.flooding.set())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.flooding.clear())
    tmp = Path(args.path_file + ".tmp")
    tmp.write_text(proxy.path)
    tmp.rename(args.path_file)
    proxy.serve()
    return 0


@dataclass
class FloodingLaser:
    proc: subprocess.Popen[bytes]
    path: str  # the pty the bridge should open as the laser's port

    def flood(self, on: bool) -> None:
        self.proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)


@contextlib.contextmanager
def flooding_laser(
    upstream: str, run_dir: Path, line_bytes: int = LINE_BYTES
) -> Iterator[FloodingLaser]:
    """Start the proxy in a child process in front of ``upstream``; stop it on exit."""
    path_file = run_dir / "flooding-laser.path"
    path_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "benchmarks.flood", "--upstream", upstream,
            "--line-bytes", str(line_bytes), "--path-file", str(path_file),
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10.0
        while not path_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the flooding laser did not start (exit {proc.poll()})")
            time.sleep(0.02)
        yield FloodingLaser(proc, path_file.read_text())
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
