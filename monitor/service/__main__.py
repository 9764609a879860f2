"""The console service's process: ``python -m monitor.service --socket PATH --db PATH ...``.

``laserguard serve`` starts it beside the bridge; it can also be started on its own against a
running bridge. It connects to the bridge's control socket as the console (its heartbeat keeps
a running session alive; losing it halts the session), reads the session log read-only, and
serves the API and pages with uvicorn on 127.0.0.1 unless told otherwise. With
``--parent-pid`` it ends when that process (the bridge) is gone.

It lowers its own scheduling priority (``--nice``, 10 by default): on a busy PC the bridge's
threads, which judge and halt, get the CPU before a flooded or slow console does. A person's
page is a few hundred milliseconds of work at most; a halt is a deadline of milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import uvicorn

from monitor.control.client import ControlClient
from monitor.service.app import create_app
from monitor.service.users import UserError, UserStore, users_path


def _watch_parent(parent_pid: int) -> None:
    """End this service (as Ctrl-C would) once the bridge that started it is gone."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


#: How far the console service lowers its priority below the bridge's (``os.nice``).
CONSOLE_NICE = 10


def _lower_priority(increment: int) -> None:
    """Nice this process; a platform that refuses says so once and the service goes on."""
    if increment <= 0:
        return
    try:
        os.nice(increment)
    except OSError as e:
        print(f"laserguard console: could not lower its priority: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitor.service", description=__doc__)
    p.add_argument("--socket", required=True, help="the bridge's control socket")
    p.add_argument("--db", required=True, help="the session log (read-only here)")
    p.add_argument("--users", default=None, help="users file (default: beside the session log)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [%(default)s]")
    p.add_argument("--port", type=int, default=8080, help="port to listen on [%(default)s]")
    p.add_argument(
        "--nice",
        type=int,
        default=CONSOLE_NICE,
        choices=range(0, 20),
        metavar="0..19",
        help="lower this process's priority by this much, below the bridge's [%(default)s]",
    )
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    _lower_priority(args.nice)
    try:
        users = UserStore(args.users or users_path(args.db))
    except UserError as e:
        print(f"laserguard console: {e}", file=sys.stderr)
        return 2
    client = ControlClient(Path(args.socket), console=True).start()
    if args.parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    app = create_app(client, users, args.db)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        # No per-message deflate on /ws/live: 20 snapshots a second to each page are a few
        # kilobytes on a local network, and compressing each one for each page was the
        # largest single cost of a flooded service (measured: docs/performance.md).
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            ws_per_message_deflate=False,
            # libuv's event loop and its HTTP parser (both C): less of the CPU per request
            # for a flooded service (docs/performance.md, the console flood).
            loop="uvloop",
            http="httptools",
        )
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
