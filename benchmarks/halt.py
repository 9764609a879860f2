"""Halt latency: a sensor reading beyond the limit, to the laser receiving the stop.

The simulator runs in a child process (`sim.control`), as the devices would: same machine,
its own GIL. A trial, with the session READY:

1. wait a random fraction of the sensor's poll period (the crossing lands at any phase);
2. force the simulated sensor to serve the limit + 1 °C;
3. wait for the simulated laser's ``stop_received``;
4. latency = ``stop_received.t_wall`` − ``over_limit_served.t_wall`` (both read on the
   simulator's clock); also from ``skin_forced`` (the crossing itself, so it includes the
   wait for the next poll);
5. release the sensor, wait for the loop's conditions to clear, acknowledge, arm again.

The floor: a bare pymodbus read of the sensor block on a second connection to the same
simulated sensor, once per trial, in the same process as the bridge.
"""

from __future__ import annotations

import random
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from device_profiles.frames import crc16_modbus
from device_profiles.loader import LoadedSetup, load, parse, resolve, with_endpoints
from device_profiles.schema import ModbusRtuTransport, SkinType
from device_profiles.timing import modbus_ms
from firmware_bridge.live import Dev
from monitor.core.session import (
    Refused,
    Session,
    SessionMode,
    SessionParams,
    State,
    no_contraindications_declared,
)
from monitor.record.recorder import LogRecorder
from monitor.record.sqlite_store import SessionLog, writing_opener
from sim.control import SimControl, SimSpec
from sim.modbus_devices import SensorLine

if TYPE_CHECKING:
    from benchmarks.tail_probe import TailProbe, TrialRecord

SETUP = "demo-ndyag-1064"
SETTINGS = {"fluence_j_cm2": 120.0, "pulse_ms": 30.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}
#: The RTU variant's sensor line. A ``socket://`` URL has no baud timing; the pty line
#: (``rtu_pty``) has the wire's timing at this rate (`sim.rtu_line`).
#: 8N2: 11-bit characters, as 8E1 (a pty refuses parity in its termios settings).
RTU_BAUDRATE = 115200
RTU_SENSOR = {
    "kind": "modbus_rtu", "baudrate": RTU_BAUDRATE, "parity": "N", "stopbits": 2, "timeout_ms": 30,
}  # fmt: skip
#: What the device's answer costs on top of the wire, stated so that the budget is honest.
#: The bridge reads a reply by its frame length (`firmware_bridge.rtu_client`), so this is
#: the simulator's own scheduling on a shared 2-core machine, not pymodbus' polling (which
#: made every RTU read about 15 ms whatever the baud rate over ``socket://``).
RTU_SENSOR_ANSWER_MS = 4.0
#: The RTU variant's worst case with that answer time (~72 ms): a benchmark of the RTU code
#: path, not a configuration for treating anyone.
RTU_REQUIRED_REACTION_MS = 100.0
_TRIAL_TIMEOUT_S = 2.0
#: The laser stays READY, the footswitch up: no pulses heat the skin between trials.
IDLE_SCENARIO = """\
name: bench-idle
description: The laser armed, the footswitch never pressed; the benchmark forces crossings.
skin_type: III
settings: {fluence_j_cm2: 120, pulse_ms: 30, spot_mm: 3, rep_rate_hz: 1}
plate_start_c: 5
seed: 1
events: []
"""


class BenchError(RuntimeError):
    """A benchmark could not run as designed (not a slow result: a broken one)."""


def rtu_variant(source: str = SETUP) -> LoadedSetup:
    """The bundled setup with its sensor on Modbus RTU, validated like any setup file."""
    data = yaml.safe_load(resolve(source).read_bytes())
    data["sensor"]["transport"] = {**RTU_SENSOR, "port": "socket://127.0.0.1:1"}
    data["sensor"]["response_ms"] = RTU_SENSOR_ANSWER_MS
    data["limits"]["required_reaction_ms"] = RTU_REQUIRED_REACTION_MS
    return parse(yaml.safe_dump(data, sort_keys=False), f"{source} (sensor on Modbus RTU)")


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.001)


@dataclass
class Trials:
    served_ms: list[float] = field(default_factory=list)  # over_limit_served -> stop_received
    crossing_ms: list[float] = field(default_factory=list)  # skin_forced -> stop_received
    floor_ms: list[float] = field(default_factory=list)  # a bare read, once per trial
    other_trips: dict[str, int] = field(default_factory=dict)  # halts for another cause
    # With a probe attached (`benchmarks.tail_probe`): each timed trial's steps and context.
    records: list[TrialRecord] = field(default_factory=list)


class HaltRig:
    """A simulator child process and a READY session against it."""

    #: Attached by the tail benchmark: each trial is then split into its steps.
    probe: TailProbe | None = None
    #: How many halts for other causes ``recover`` rides out before it gives up.
    recover_attempts = 5
    #: Treatment areas the benchmark moved to after the first (the dose warning).
    areas = 0

    def __init__(
        self, sim: SimControl, loaded: LoadedSetup, log: SessionLog, *, log_process: bool = False
    ) -> None:
        """``log_process``: the session log written by a process of its own, at the session's
        background priority (as ``serve`` writes it); else by a thread of this process."""
        self.sim = sim
        self.loaded = loaded
        setup = with_endpoints(loaded.setup, sim.endpoints)
        self.setup = setup
        params = SessionParams(
            "bench",
            "BENCH-0001",
            SkinType.III,
            no_contraindications_declared(),
            mode=SessionMode.TEST,
        )
        recorder = LogRecorder(
            log,
            log_process=writing_opener(log) if log_process else None,
            log_process_realtime=True,
        )
        self.session = Session(loaded, recorder, params, setup=setup, realtime=True)
        self.limit_c = setup.limits.skin_temp_c.high
        self.poll_s = setup.sensor.poll_period_ms / 1000.0
        self.rng = random.Random(20240611)
        self._floor_client: Any = None

    def start(self) -> None:
        self.session.start()
        if not self.session.request_settings(SETTINGS).ok:
            raise BenchError("the benchmark's settings were refused by the gate")
        self.startup_trips = Trials()
        try:
            self.session.arm()
        except Refused:  # a trip before the first arm (a stale sample on a loaded machine)
            self.recover(self.startup_trips)
        self._floor_client = self._bare_client()

    def _bare_client(self) -> Any:
        t = self.setup.sensor.transport
        if isinstance(t, ModbusRtuTransport) and not t.port.startswith("socket://"):
            return None  # a serial port has one owner, the bridge: the floor is computed
        if isinstance(t, ModbusRtuTransport):
            client: Any = ModbusSerialClient(
                t.port, baudrate=t.baudrate, parity=t.parity, timeout=1.0, retries=0
            )
        else:
            client = ModbusTcpClient(t.host, port=t.port, timeout=1.0, retries=0)
        if not client.connect():
            raise BenchError(f"floor client cannot connect to the sensor at {t}")
        return client

    def floor_read_ms(self) -> float:
        first, count = self.setup.sensor.read_span
        t = self.setup.sensor.transport
        if self._floor_client is None and isinstance(t, ModbusRtuTransport):
            return modbus_ms(t, 8, 5 + 2 * count, 0.0)  # the wire alone, as the budget has it
        t0 = time.perf_counter_ns()
        reply = self._floor_client.read_holding_registers(first, count=count, device_id=1)
        dt = (time.perf_counter_ns() - t0) / 1e6
        if reply.isError():
            raise BenchError(f"bare read failed: {reply}")
        return dt

    def trial(self, out: Trials) -> None:
        """One crossing and its stop; a halt for another cause is counted, not timed."""
        s = self.session
        if s.state is not State.READY:  # halted between trials (a stale sample under load)
            out.other_trips["between trials"] = out.other_trips.get("between trials", 0) + 1
            self.recover(out)
        since, n_trips = self.sim.event_count(), len(s.trips)
        probe = self.probe
        before = probe.mark() if probe is not None else None  # before the wait: not timed
        time.sleep(self.rng.uniform(0.0, self.poll_s))
        self.sim.force_skin(self.limit_c + 1.0)
        stop = self.sim.wait_event("stop_received", since, _TRIAL_TIMEOUT_S)
        after = probe.mark() if probe is not None else None
        events = self.sim.events_since(since)
        self.sim.release_skin()
        if stop is None:
            first = s.trips[n_trips].check if len(s.trips) > n_trips else None
            if first is None or first == "skin_temp_high":  # the crossing's own halt: a failure
                raise BenchError(
                    f"no stop within {_TRIAL_TIMEOUT_S:g} s; trips: {s.trips[n_trips:]}"
                )
            # Halted for another cause first (a lost laser link under load: the relay route
            # stops it, the STOP command cannot reach it): counted, not timed.
            key = f"{first} first, no STOP on the laser's link within {_TRIAL_TIMEOUT_S:g} s"
            out.other_trips[key] = out.other_trips.get(key, 0) + 1
            self.recover(out)
            return
        wait_until(lambda: len(s.trips) > n_trips, 1.0, "the trip to be recorded")
        cause = s.trips[n_trips].check
        if cause == "skin_temp_high":
            forced = next(e for e in events if e["kind"] == "skin_forced")
            served = next((e for e in events if e["kind"] == "over_limit_served"), None)
            if stop["t_wall"] < forced["t_wall"]:  # a halt raced the crossing (the supervisor)
                out.other_trips["halted before the crossing"] = (
                    out.other_trips.get("halted before the crossing", 0) + 1
                )
                self.recover(out)
                return
            if served is None or not forced["t_wall"] <= served["t_wall"] <= stop["t_wall"]:
                raise BenchError(f"the stop did not follow a served crossing: {events}")
            out.served_ms.append((stop["t_wall"] - served["t_wall"]) * 1000.0)
            out.crossing_ms.append((stop["t_wall"] - forced["t_wall"]) * 1000.0)
            if probe is not None and before is not None and after is not None:
                record = probe.attribute(before, after, served["t_wall"], stop["t_wall"])
                if record is not None:
                    out.records.append(record)
        else:
            out.other_trips[cause] = out.other_trips.get(cause, 0) + 1
        self.recover(out)
        out.floor_ms.append(self.floor_read_ms())

    def recover(self, out: Trials, attempts: int | None = None) -> None:
        """What a person does after a halt, as fast as the session lets them.

        A halt for another cause while re-arming (a stale sample on a loaded machine) is
        counted and recovered from too; only a session that will not re-arm at all fails.
        """
        s = self.session
        attempts = attempts or self.recover_attempts
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.1 * attempt)  # a loaded machine: give the devices time to settle
            n_trips = len(s.trips)
            wait_until(lambda: s.state in (State.HALTED, State.STANDBY), 2.0, "HALTED or STANDBY")
            try:
                if s.state is State.HALTED:
                    wait_until(
                        lambda: not s.loop.halt_conditions_active(), 2.0, "conditions to clear"
                    )
                    # The laser's state as last read may still say READY (read before the
                    # stop): an acknowledgement now would trip unexpected_emission. Wait for a
                    # status read after the stop, as a person would see STANDBY first.
                    wait_until(self._laser_read_back_after_stop, 2.0, "a status after the stop")
                    # A stop confirmed later than its grace time (a loaded machine) latches
                    # laser_did_not_stop: counted, and reset by name as a person would.
                    reset = ["laser_did_not_stop"] if s.engine.did_not_stop.latched else []
                    if reset:
                        out.other_trips["laser_did_not_stop"] = (
                            out.other_trips.get("laser_did_not_stop", 0) + 1
                        )
                    s.acknowledge("bench", "benchmark trial", reset=reset)
                if s.engine.dose.warn:
                    # Thousands of forced crossings add up to a thermal dose at the treatment
                    # area (the warning refuses arming): the handpiece moves on, as it would.
                    self.areas += 1
                    s.set_treatment_area(f"bench-area-{self.areas}", "bench")
                    key = "moved to a fresh treatment area (thermal dose warning)"
                    out.other_trips[key] = out.other_trips.get(key, 0) + 1
                s.arm()  # an arm refused in STANDBY (relay slow to close) is simply retried
                return
            except Refused as e:
                cause = s.trips[n_trips].check if len(s.trips) > n_trips else str(e)[:60]
                key = f"while re-arming: {cause}"
                out.other_trips[key] = out.other_trips.get(key, 0) + 1
        raise BenchError(f"the session did not re-arm in {attempts} attempts: {s.trips[-3:]}")

    def _laser_read_back_after_stop(self) -> bool:
        bridge = self.session.bridge
        confirmed = bridge.stop_confirmed_t_ns
        return (
            confirmed is not None
            and int(bridge.live.fresh_ns[Dev.LASER]) > confirmed
            and bridge.live.laser_state() == "STANDBY"
        )

    def run(self, n: int, out: Trials | None = None) -> Trials:
        out = out or Trials()
        for _ in range(n):
            self.trial(out)
        return out

    def close(self) -> None:
        if self._floor_client is not None:
            self._floor_client.close()
        if self.session.state is not State.ENDED:
            self.session.end("benchmark finished")


@contextmanager
def halt_rig(
    framing: SensorLine, work_dir: Path | None = None, *, log_process: bool = False
) -> Iterator[HaltRig]:
    """A simulator child (sensor on TCP, RTU framing on a socket, or RTU on a pty at the
    wire's speed) and a READY session against it (``log_process``: see ``HaltRig``)."""
    with tempfile.TemporaryDirectory(prefix="laserguard-bench-") as tmp:
        base = work_dir or Path(tmp)
        loaded = load(SETUP) if framing == "tcp" else rtu_variant()
        scenario = base / "bench-idle.yaml"
        scenario.write_text(IDLE_SCENARIO, encoding="utf-8")
        spec = SimSpec(
            run_dir=str(base / f"sim-{framing}"),
            setup=SETUP,
            scenario=str(scenario),
            sensor_framing=framing,
            sensor_baudrate=RTU_BAUDRATE,
            realtime=True,  # the devices are not on the bridge's CPU: load only the bridge
            log_file=str(base / f"sim-{framing}" / "sim.log"),  # stderr: progress lines
        )
        with SimControl(spec) as sim, SessionLog(base / f"bench-{framing}.sqlite3") as log:
            rig = HaltRig(sim, loaded, log, log_process=log_process)
            try:
                rig.start()
                yield rig
            finally:
                rig.close()


def _crc16(frame: bytes) -> bytes:
    """The Modbus RTU CRC as it goes on the wire, low byte first."""
    return crc16_modbus(frame).to_bytes(2, "little")


def raw_rtu_roundtrip_ms(rig: HaltRig, n: int) -> list[float]:
    """The RTU read as bytes on a plain socket: what the wire and the server cost alone."""
    t = rig.setup.sensor.transport
    assert isinstance(t, ModbusRtuTransport)
    host, port = t.port.removeprefix("socket://").rsplit(":", 1)
    first, count = rig.setup.sensor.read_span
    pdu = bytes((t.device_id, 3)) + first.to_bytes(2, "big") + count.to_bytes(2, "big")
    request, reply_len = pdu + _crc16(pdu), 5 + 2 * count
    out = []
    with socket.create_connection((host, int(port)), timeout=1.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter_ns()
            sock.sendall(request)
            got = b""
            while len(got) < reply_len:
                chunk = sock.recv(64)
                if not chunk:
                    raise BenchError("the RTU sensor closed the raw connection")
                got += chunk
            out.append((time.perf_counter_ns() - t0) / 1e6)
            time.sleep(0.001)
    return out
