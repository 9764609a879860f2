"""Run the simulated laser, cooler, sensor and relay module for one scenario.

All devices share one asyncio loop in a background thread, so the models need no locks and a
test (or the CLI) keeps its own thread free. Outputs go to ``run_dir``:

- ``endpoints.json``: where the devices are (the input of
  ``device_profiles.loader.with_endpoints``); ``meter`` when the setup names an energy meter;
- ``sim_events.jsonl``: every notable event, one JSON object per line, flushed per line,
  each with ``t_wall`` (``time.time()``), ``t_sim_s`` and ``kind``.

A caller in the same process controls a run through ``force_skin`` / ``release_skin`` and
reads it through ``events_since`` / ``wait_event``; ``sim.control`` offers the same to
another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from device_profiles.loader import load_meter
from device_profiles.meter import MeterDescription
from device_profiles.schema import ModbusCoilOutput, Setup
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.laser_wires import LaserWire
from sim.meter import MeterModel, SimMeter
from sim.modbus_devices import SensorLine, SimCooler, SimRelay, SimSensor
from sim.rtu_line import PtyRtuLine
from sim.scenario import Scenario
from sim.world import World

#: How often (wall time) timeouts are checked and the world is brought up to date.
TICK_S = 0.005
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0

T = TypeVar("T")


class SimRunner:
    """The simulated devices for one setup and one scenario; a context manager.

    A setup that names an energy meter gets a simulated meter on its own pty, answering
    ``meter`` (the description, e.g. ``LoadedSetup.meter.description``); without it the
    setup's ``energy_meter.device`` is loaded as given (a bundled name or a path).
    """

    def __init__(
        self,
        setup: Setup,
        scenario: Scenario,
        *,
        speed: float = 1.0,
        run_dir: Path,
        ports: dict[str, int] | None = None,
        sensor_noise_sd_c: float = 0.05,
        sensor_framing: SensorLine = "tcp",
        sensor_baudrate: int = 115200,
        meter: MeterDescription | None = None,
        hold_timeline: bool = False,
    ) -> None:
        if not isinstance(setup.interlock_output, ModbusCoilOutput):
            raise ValueError(
                "the simulator models the interlock as a Modbus relay module; a serial control "
                "line cannot be simulated on a pseudo-terminal (it has no DTR/RTS)"
            )
        if meter is None and setup.energy_meter is not None:
            meter = load_meter(setup.energy_meter.device).description
        self.setup = setup
        self.scenario = scenario
        self.meter_description = meter
        self.run_dir = Path(run_dir)
        self.clock = SimClock(speed)
        self._ports = dict(ports or {})
        self._noise_sd_c = sensor_noise_sd_c
        self.sensor_framing: SensorLine = sensor_framing
        self.sensor_baudrate = sensor_baudrate  # the pty line's speed, with "rtu_pty"
        self._sensor_line: PtyRtuLine | None = None
        self._hold_timeline = hold_timeline
        self._events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._events_added = threading.Condition(self._events_lock)
        self._log: IO[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._endpoints: dict[str, Any] | None = None
        self.world: World | None = None
        self.laser: LaserModel | None = None
        self.sensor: SimSensor | None = None
        self.sensor2: SimSensor | None = None
        self.cooler: SimCooler | None = None
        self.relay: SimRelay | None = None
        self.meter: MeterModel | None = None
        self._meter_port: SimMeter | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> SimRunner:
        if self._thread is not None:
            raise RuntimeError("a SimRunner starts once")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.run_dir / "sim_events.jsonl").open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._thread_main, name="sim-devices", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("simulated devices did not start in time")
        if self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError(f"simulated devices failed to start: {error}") from error
        (self.run_dir / "endpoints.json").write_text(
            json.dumps(self.endpoints, indent=2) + "\n", encoding="utf-8"
        )
        return self

    def stop(self) -> None:
        """Stop every device and close the files; safe to call twice."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is not None and thread.is_alive() and loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                loop.call_soon_threadsafe(stopping.set)
            thread.join(_STOP_TIMEOUT_S)
        with self._events_lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> SimRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what callers see -------------------------------------------------------------------

    @property
    def endpoints(self) -> dict[str, Any]:
        if self._endpoints is None:
            raise RuntimeError("the simulator is not running")
        return self._endpoints

    def events(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return list(self._events)

    def event_count(self) -> int:
        """How many events so far: a cursor for ``events_since`` and ``wait_event``."""
        with self._events_lock:
            return len(self._events)

    def events_since(self, index: int) -> list[dict[str, Any]]:
        """The events recorded after the first ``index`` ones."""
        with self._events_lock:
            return list(self._events[index:])

    def wait_event(self, kind: str, since: int, timeout_s: float) -> dict[str, Any] | None:
        """The first ``kind`` event at or after position ``since``; None after ``timeout_s``.

        Blocks on a condition (no polling), so a waiter costs the devices' thread nothing.
        """
        deadline = time.monotonic() + timeout_s
        with self._events_added:
            while True:
                for entry in self._events[since:]:
                    if entry["kind"] == kind:
                        return dict(entry)
                since = len(self._events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._events_added.wait(remaining)

    def force_skin(self, temp_c: float) -> float:
        """The sensor serves ``temp_c`` from its next read on; returns when (wall clock)."""
        return self.call(lambda: self._sensor().force_skin(temp_c))

    def force_skin_raw(self, raw: int) -> float:
        """The sensor serves the raw word ``raw`` (a sentinel) from its next read on."""
        return self.call(lambda: self._sensor().force_skin_raw(raw))

    def release_skin(self) -> float:
        """The sensor serves the skin model again; returns when (wall clock)."""
        return self.call(lambda: self._sensor().release_skin())

    def hold_skin(self, temp_c: float | None) -> None:
        """The sensor looks at a reference held at ``temp_c`` (None: at the skin again)."""
        self.call(lambda: self._world().hold_skin(temp_c))

    def start_timeline(self) -> bool:
        """A held scenario's events play from now on (``hold_timeline``); False if not held."""
        return self.call(lambda: self._world().start_timeline())

    def unplug_meter(self) -> None:
        """The energy meter's cable is pulled: its port goes away (the driver's next read
        fails as on a USB adapter that was unplugged)."""

        def unplug() -> None:
            if self._meter_port is not None:
                self._meter_port.close()
                self._record("meter_unplugged")

        self.call(unplug)

    def _world(self) -> World:
        if self.world is None:
            raise RuntimeError("the simulator is not running")
        return self.world

    def _sensor(self) -> SimSensor:
        if self.sensor is None:
            raise RuntimeError("the simulator is not running")
        return self.sensor

    def snapshot(self) -> dict[str, Any]:
        """The simulated state now: time, laser, skin, plate, relay."""
        return self.call(self._snapshot)

    def call(self, fn: Callable[[], T], timeout_s: float = 2.0) -> T:
        """Run ``fn()`` on the devices' loop (where the models live) and return its result."""
        loop = self._loop
        if loop is None or self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the simulator is not running")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout_s)

    def _snapshot(self) -> dict[str, Any]:
        assert self.world is not None and self.laser is not None
        world = self.world
        world.advance()
        return {
            "sim_time_s": world.t_s,
            "state": self.laser.state.value,
            "pulses": self.laser.pulses,
            "settings": dict(self.laser.settings),
            "skin_temp_c": world.skin.temp_c,
            "plate_temp_c": world.plate_temp_c(),
            "flow_l_min": world.flow_l_min(),
            "relay_closed": world.relay_closed,
            # Ground truth of the simulated skin (not what a sensor says): sim.world.
            "peak_skin_temp_c": world.peak_skin_c,
            "skin_omega": world.omega,
            "skin_log_omega": world.log_omega,
            "skin_cem43_min": world.cem43_min,
        }

    # --- the devices' thread ----------------------------------------------------------------

    def _record(self, kind: str, **fields: Any) -> None:
        """Log one event; ``fields`` may carry its own ``t_wall`` (when it was measured)."""
        t_sim = self.world.t_s if self.world is not None else 0.0
        entry = {"t_wall": time.time(), "t_sim_s": round(t_sim, 6), "kind": kind, **fields}
        with self._events_lock:
            self._events.append(entry)
            if self._log is not None:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()
            self._events_added.notify_all()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception as e:  # reported to start(), which raises it in the caller's thread
            self._error = e
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        setup, scenario = self.setup, self.scenario
        assert isinstance(setup.interlock_output, ModbusCoilOutput)
        self._stopping = asyncio.Event()
        world = self.world = World(setup, scenario, self.clock, self._record)
        if self._hold_timeline:
            world.hold_timeline()
        laser_model = self.laser = LaserModel(world, setup.laser)
        laser = LaserWire(laser_model, setup.laser, world)
        self.sensor = SimSensor(
            setup.sensor,
            world,
            setup.limits.skin_temp_c,
            noise_sd_c=self._noise_sd_c,
            seed=scenario.seed,
            framing="tcp" if self.sensor_framing == "tcp" else "rtu",
        )
        self.cooler = SimCooler(setup.cooler, world)
        self.relay = SimRelay(setup.interlock_output, world)
        servers: dict[str, SimSensor | SimCooler | SimRelay] = {
            "cooler": self.cooler,
            "sensor": self.sensor,
            "interlock": self.relay,
        }
        if setup.sensor2 is not None:  # a redundant skin sensor on the same skin
            self.sensor2 = servers["sensor2"] = SimSensor(
                setup.sensor2,
                world,
                setup.limits.skin_temp_c,
                noise_sd_c=self._noise_sd_c,
                seed=scenario.seed,
                framing="tcp" if self.sensor_framing == "tcp" else "rtu",
                role="sensor2",
            )
        meter: SimMeter | None = None
        if self.meter_description is not None:
            self.meter = MeterModel(
                world, self.meter_description, scenario.meter, seed=scenario.seed
            )
            meter = self._meter_port = SimMeter(self.meter)
        ticker: asyncio.Task[None] | None = None
        try:
            path = await laser.open(self._ports.get("laser", 0))
            for key, server in servers.items():
                await server.serve("127.0.0.1", self._ports.get(key, 0))
            self._endpoints = {"laser": path, **{k: s.endpoint for k, s in servers.items()}}
            if self.sensor_framing == "rtu_pty":
                line = self._sensor_line = PtyRtuLine(self.sensor_baudrate)
                pty_path = await line.open(self.sensor.host, self.sensor.port)
                self._endpoints["sensor"] = {"kind": "modbus_rtu", "port": pty_path}
            if meter is not None:
                self._endpoints["meter"] = meter.open(asyncio.get_running_loop())
            self.clock.start()
            self._record("started", scenario=scenario.name, speed=self.clock.speed)
            ticker = asyncio.create_task(self._tick())
            self._ready.set()
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({ticker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if ticker.done() and (error := ticker.exception()) is not None:
                # A model bug: the devices stop (the bridge sees lost links, a fail-safe trip).
                self._record("sim_error", error=repr(error))
                raise error
        finally:
            if ticker is not None:
                ticker.cancel()
            await laser.close()
            if self._sensor_line is not None:
                await self._sensor_line.close()
            if meter is not None:
                meter.close()
            for server in servers.values():
                await server.shutdown()
            await _cancel_leftovers()
            if self._ready.is_set():
                self._record("stopped")

    async def _tick(self) -> None:
        assert self.world is not None and self.laser is not None and self.relay is not None
        while True:
            now = time.monotonic()
            self.relay.check_watchdog(now)
            self.laser.check_heartbeat(now)
            self.world.advance()
            await asyncio.sleep(TICK_S)


async def _cancel_leftovers() -> None:
    """Cancel requests still held by a silent device, and let closed transports finish."""
    me = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not me]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    for _ in range(3):
        await asyncio.sleep(0)
