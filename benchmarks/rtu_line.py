"""Modbus RTU at the wire's speed: a read's cost over a real pty against its computed floor.

The simulated sensor serves RTU frames on a pty whose bytes take their time on the wire at
the line's baud rate (`sim.rtu_line`). The floor is what the reaction-time budget computes
for one read of the sensor's block (`device_profiles.timing`: request and reply frames at
11-bit characters, two t3.5 silences), without the device's answer time: no client on this
line can do better. Three figures per baud rate:

- the bridge's read (`ModbusRegisterTransport` on `FramedSerialClient`: the reply read by
  its frame length);
- pymodbus' own ``ModbusSerialClient`` (the reply waited for by polling ``in_waiting``);
- the floor.

The halt latency with the sensor on this line is ``halt_latency_rtu_pty_ms`` (benchmarks/run.py).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusSerialClient

from benchmarks.halt import IDLE_SCENARIO, SETUP, BenchError
from device_profiles.schema import ModbusRtuTransport
from device_profiles.timing import modbus_ms
from firmware_bridge.transport import ModbusRegisterTransport
from sim.control import SimControl, SimSpec

BAUD_RATES = (19200, 115200)
TIMEOUT_MS = 200.0


def wire_floor_ms(t: ModbusRtuTransport, count: int) -> float:
    """The budget's time for one FC3 read of ``count`` registers, without the device."""
    return modbus_ms(t, 8, 5 + 2 * count, 0.0)


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    fn()  # the first transaction opens the port: no read time
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
        time.sleep(0.002)
    return out


def rtu_line_reads(baudrate: int, n: int) -> dict[str, Any]:
    """Read costs (ms) of the bridge's and pymodbus' clients and the floor, at ``baudrate``."""
    with tempfile.TemporaryDirectory(prefix="laserguard-rtu-") as tmp:
        scenario = Path(tmp) / "bench-idle.yaml"
        scenario.write_text(IDLE_SCENARIO, encoding="utf-8")
        spec = SimSpec(
            run_dir=str(Path(tmp) / "sim"),
            setup=SETUP,
            scenario=str(scenario),
            sensor_framing="rtu_pty",
            sensor_baudrate=baudrate,
            realtime=True,
            log_file=str(Path(tmp) / "sim" / "sim.log"),
        )
        with SimControl(spec) as sim:
            port = sim.endpoints["sensor"]["port"]
            t = ModbusRtuTransport(
                kind="modbus_rtu", port=port, baudrate=baudrate, parity="N", stopbits=2,
                timeout_ms=TIMEOUT_MS,
            )  # fmt: skip
            count = 3  # the demo sensor's block
            bridge = ModbusRegisterTransport(t)
            try:
                framed = _timed(lambda: bridge.read_registers(0, count), n)
            finally:
                bridge.close()
            stock = ModbusSerialClient(
                port,
                baudrate=baudrate,
                parity="N",
                stopbits=2,
                timeout=TIMEOUT_MS / 1000,
                retries=0,
            )
            if not stock.connect():
                raise BenchError(f"pymodbus' client cannot open {port}")

            def stock_read() -> None:
                if stock.read_holding_registers(0, count=count, device_id=1).isError():
                    raise BenchError("pymodbus' client read an exception reply")

            try:
                polled = _timed(stock_read, n)
            finally:
                stock.close()  # type: ignore[no-untyped-call]
            return {"bridge": framed, "pymodbus": polled, "floor": wire_floor_ms(t, count)}
