"""The console flood's client, run as its own process (``python -m benchmarks.flood_client
URL --token T``): REST requests at ``REST_PER_S`` over ``REST_CONNECTIONS`` keep-alive
connections and ``WS_CLIENTS`` WebSocket clients reading ``/ws/live``, until SIGTERM or
``--max-s``; then one JSON line of what it did. Standard library and ``websockets`` only, so
it starts fast and loads nothing of the bridge's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from typing import Any

import uvloop
import websockets

REST_PER_S = 240.0
WS_CLIENTS = 20
REST_CONNECTIONS = 8
_GATE = json.dumps({"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0})
#: The live snapshot, the session, the bridge, the gate preview (it goes on to the bridge),
#: the questionnaire.
_PATHS = (
    ("GET", "/api/session/live", None),
    ("GET", "/api/session", None),
    ("GET", "/api/bridge", None),
    ("POST", "/api/session/gate-preview", _GATE),
    ("GET", "/api/contraindications", None),
)


async def _rest_worker(
    host: str, port: int, token: str, period_s: float, stop: asyncio.Event, tally: Counter[str]
) -> None:
    """One keep-alive HTTP/1.1 connection, paced to ``period_s`` per request."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:  # counted, as every other failure is
        tally[f"error {type(e).__name__}"] += 1
        return
    i = 0
    due = time.monotonic()
    try:
        while not stop.is_set():
            method, path, body = _PATHS[i % len(_PATHS)]
            i += 1
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            data = (body or "").encode()
            if body is not None:
                head += f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
            writer.write(head.encode() + b"\r\n" + data)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            parts = status_line.split()
            tally[parts[1].decode() if len(parts) > 1 else "none"] += 1
            due += period_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        tally[f"error {type(e).__name__}"] += 1
    finally:
        writer.close()


def _messages_in(frame: str | bytes) -> int:
    text = frame.decode() if isinstance(frame, bytes) else frame
    if text.startswith('{"type":"batch"'):
        batch: dict[str, Any] = json.loads(text)
        return len(batch["messages"])
    return 1


async def _ws_worker(url: str, token: str, stop: asyncio.Event, tally: Counter[str]) -> None:
    try:
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                    # A tick with several messages comes as one batch frame: count messages.
                    tally["ws_messages"] += _messages_in(frame)
                    tally["ws_frames"] += 1
    except (OSError, websockets.WebSocketException) as e:
        tally[f"ws error {type(e).__name__}"] += 1


async def _flood(url: str, token: str, max_s: float) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(max_s, stop.set)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    tally: Counter[str] = Counter()
    t0 = time.monotonic()
    period = REST_CONNECTIONS / REST_PER_S
    tasks = [
        asyncio.create_task(_rest_worker(host, int(port), token, period, stop, tally))
        for _ in range(REST_CONNECTIONS)
    ]
    ws_url = "ws://" + url.removeprefix("http://") + "/ws/live"
    tasks += [
        asyncio.create_task(_ws_worker(ws_url, token, stop, tally)) for _ in range(WS_CLIENTS)
    ]
    print("flooding", flush=True)
    await stop.wait()
    await asyncio.wait(tasks, timeout=5.0)
    seconds = time.monotonic() - t0
    rest = sum(v for k, v in tally.items() if k.isdigit())
    return {
        "seconds": round(seconds, 1),
        "rest_requests": rest,
        "rest_per_s": round(rest / seconds, 1),
        "ws_clients": WS_CLIENTS,
        "ws_messages_per_s": round(tally["ws_messages"] / seconds, 1),
        "ws_frames_per_s": round(tally["ws_frames"] / seconds, 1),
        "statuses": {
            k: v for k, v in sorted(tally.items()) if k not in ("ws_messages", "ws_frames")
        },
    }


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # until the flood's own handler
    p = argparse.ArgumentParser(prog="python -m benchmarks.flood_client")
    p.add_argument("flood", metavar="URL", help="the console service")
    p.add_argument("--token", required=True)
    p.add_argument("--max-s", type=float, default=600.0)
    args = p.parse_args(argv)
    # uvloop, as the service runs: the flooder shares the machine's cores with what it
    # measures, and every cycle it spends is one the service does not get.
    print(json.dumps(uvloop.run(_flood(args.flood, args.token, args.max_s))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
