"""``sim``: run the simulated devices for a setup and a scenario until stopped.

Prints the endpoints (also written to ``RUN_DIR/endpoints.json`` for the bridge), then one
status line per wall second. Stops cleanly on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from device_profiles.loader import DEFAULT_SETUP, ProfileError, load
from sim.runner import SimRunner
from sim.scenario import ScenarioError, load_scenario


def add_sim_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="run the device simulator", description=__doc__
    )
    parser.add_argument("--setup", default=DEFAULT_SETUP, help="bundled setup name or file")
    parser.add_argument("--scenario", default="normal", help="bundled scenario name or file")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="default: a new runs/sim-*")
    parser.add_argument(
        "--duration", type=float, default=None, help="simulated seconds; default until stopped"
    )
    parser.add_argument(
        "--sensor-rtu",
        action="store_true",
        help="serve the skin sensor with Modbus RTU framing on its TCP socket "
        "(reach it as a modbus_rtu transport with port socket://HOST:PORT)",
    )
    parser.add_argument(
        "--until-stdin-closes",
        action="store_true",
        help="also stop when stdin reaches end of file (a parent that holds a pipe to it: "
        "the devices end with that parent, however it ends)",
    )
    parser.set_defaults(func=run_sim)
    return parser


def _new_run_dir() -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = Path("runs") / (f"sim-{stamp}" + (f"-{n}" if n else ""))
        if not path.exists():
            return path
    raise RuntimeError("no free run directory name under runs/")


def _status_line(snap: dict[str, Any]) -> str:
    return (
        f"t={snap['sim_time_s']:7.1f} s  laser {snap['state']:<7} pulses {snap['pulses']:4d}  "
        f"skin {snap['skin_temp_c']:5.1f} degC  plate {snap['plate_temp_c']:5.1f} degC  "
        f"relay {'closed' if snap['relay_closed'] else 'open'}"
    )


def _stop_at_eof(stop: threading.Event) -> None:
    """Read stdin to its end (the parent closed the pipe, or died), then stop the devices."""
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except (OSError, ValueError) as e:  # no readable stdin: as good as closed
        print(f"sim: stdin unreadable ({e}); stopping", file=sys.stderr, flush=True)
    stop.set()


def run_sim(args: argparse.Namespace) -> int:
    if not args.speed > 0:
        print("sim: --speed must be positive", file=sys.stderr)
        return 2
    try:
        loaded = load(args.setup)
        scenario = load_scenario(args.scenario)
    except (ProfileError, ScenarioError) as e:
        print(f"sim: {e}", file=sys.stderr)
        return 2
    run_dir = args.run_dir if args.run_dir is not None else _new_run_dir()

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if args.until_stdin_closes:
        threading.Thread(
            target=_stop_at_eof, args=(stop,), name="sim-stdin-watch", daemon=True
        ).start()
    try:
        with SimRunner(
            loaded.setup,
            scenario,
            speed=args.speed,
            run_dir=run_dir,
            sensor_framing="rtu" if args.sensor_rtu else "tcp",
            meter=loaded.meter.description if loaded.meter is not None else None,
        ) as runner:
            print(json.dumps(runner.endpoints), flush=True)
            print(f"scenario {scenario.name} at speed {args.speed}; run dir {run_dir}", flush=True)
            next_line = time.monotonic()
            while not stop.is_set():
                snap = runner.snapshot()
                if args.duration is not None and snap["sim_time_s"] >= args.duration:
                    break
                if time.monotonic() >= next_line:
                    print(_status_line(snap), flush=True)
                    next_line += 1.0
                stop.wait(0.05)
            print(_status_line(runner.snapshot()), flush=True)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.cli")
    add_sim_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
