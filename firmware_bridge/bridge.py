"""The bridge: one worker thread per device, each the single owner of its connection.

Workers poll on absolute deadlines and publish into ``LiveState``. The halt path is two
independent routes started by one call, ``halt()``, which never blocks:

- the laser worker wakes and sends the stop command (retried until the laser confirms);
- the interlock worker wakes and de-energises the relay in the laser's remote-interlock loop.

The latch, the pending stop and the permit live in one ``HaltState`` (its docstring states
who may change what from which thread); the workers change it through its methods only.

Halt first, words after: nothing on the halt path waits for another object's lock. The relay
worker's ``supervisor`` only reads (the interlock loop's heartbeat) and answers why emission
must stop; the worker halts, writes the relay open, and only then says so (``on_event``,
``on_supervisor_halt``, which must not block either).

The laser also gets a heartbeat, and the relay is refreshed, so both fall to their safe
state by themselves when this process dies.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from device_profiles.schema import ModbusCoilOutput, Setup, StuckValueFreshness
from firmware_bridge.drivers import InterlockOutputDriver, LaserDriver, LaserStatus, RegisterDevice
from firmware_bridge.errors import BridgeError, HaltRefused, LinkLost
from firmware_bridge.halt_state import HaltState
from firmware_bridge.interrupts import ctrl_c_after_call
from firmware_bridge.laser_drivers import make_laser_driver
from firmware_bridge.live import (
    COOLER_CHANNELS,
    LASER_STATE_CODES,
    SENSOR2_CHANNELS,
    SENSOR_CHANNELS,
    SETTING_CHANNELS,
    Ch,
    Dev,
    LiveState,
)
from firmware_bridge.realtime import IO_PRIORITY, try_realtime
from firmware_bridge.transport import TransportFactory, WireTransports

T = TypeVar("T")
EventSink = Callable[[str, dict[str, Any]], None]
TelemetrySink = Callable[[int, float], None]


class _Worker(threading.Thread):
    """A thread that runs ``step`` at absolute deadlines and can be woken early."""

    def __init__(self, name: str, period_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self.period_s = period_s
        self.realtime: bool = False
        self.scheduling = "not started"
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def step(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Runs once on the worker's own thread after the last step: release the connection."""

    def run(self) -> None:
        self.scheduling = try_realtime(IO_PRIORITY) if self.realtime else "SCHED_OTHER"
        due = time.perf_counter()
        try:
            while not self.stopping.is_set():
                self.step()
                now = time.perf_counter()
                # Only a step that was due moves the schedule: an early wake (a halt, an
                # operator command) must not push the next poll or heartbeat later.
                if now >= due:
                    due += self.period_s
                    if due <= now:  # fell behind (a timeout): next slot from now, no burst
                        due = now + self.period_s
                self.wake.wait(due - now)
                self.wake.clear()
        finally:
            self.finish()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=2)


class _RegisterWorker(_Worker):
    def __init__(
        self,
        dev: Dev,
        device: RegisterDevice,
        channels: dict[str, Ch],
        live: LiveState,
        on_event: EventSink,
        on_telemetry: TelemetrySink,
    ) -> None:
        super().__init__(f"laserguard-{dev.name.lower()}", device.profile.poll_period_ms / 1000)
        self.dev = dev
        self.who = dev.name.lower()
        self.device = device
        self.channels = [
            (name, ch) for name, ch in channels.items() if name in device.profile.registers
        ]
        fresh = device.profile.freshness_method
        # Counter and heartbeat: new data moves the watched register. Stuck value: the
        # device answers, but a noisy value bit-identical for ``frozen_after`` is frozen.
        self.counter = None if fresh is None or fresh.method == "stuck_value" else fresh.watch
        self.stuck = fresh if isinstance(fresh, StuckValueFreshness) else None
        self.frozen_after_ns = 0 if self.stuck is None else int(self.stuck.frozen_after_ms * 1e6)
        self.live = live
        self.on_event = on_event
        self.on_telemetry = on_telemetry
        self.last_count: float | None = None
        self.last_value: float | None = None
        self.changed_ns = 0
        self.frozen = False

    def _frozen(self, values: dict[str, float], now_ns: int) -> str | None:
        """Why this device's data is frozen (its watched value has not moved), or None."""
        if self.stuck is None:
            return None
        value = values[self.stuck.watch]
        if self.last_value is None or value != self.last_value:
            # NaN != NaN: a NaN counts as a change here; it is a fault of its own already.
            self.last_value, self.changed_ns = value, now_ns
            self.frozen = False
            return None
        held_ms = (now_ns - self.changed_ns) / 1e6
        if held_ms <= self.stuck.frozen_after_ms:
            return None
        why = (
            f"{self.who} frozen: {self.stuck.watch} bit-identical at {value:g} for "
            f"{held_ms:.0f} ms (frozen after {self.stuck.frozen_after_ms:g} ms)"
        )
        if not self.frozen:
            self.frozen = True
            self.on_event("device_frozen", {"device": self.who, "reason": why})
        return why

    def step(self) -> None:
        connected = bool(self.live.link_ok[self.dev])  # else this read opens the connection
        try:
            t0 = time.perf_counter_ns()
            reading = self.device.read()
            if connected:
                self.live.record_answer(self.dev, (time.perf_counter_ns() - t0) / 1e6)
        except BridgeError as e:
            if self.live.link_ok[self.dev] or self.live.link_error[self.dev] is None:
                self.on_event("link_lost", {"device": self.dev.name.lower(), "error": str(e)})
            self.live.link_down(self.dev, str(e))
            return
        values, faults = reading.values, reading.faults
        frozen = self._frozen(values, time.perf_counter_ns())
        for name, ch in self.channels:
            if frozen is not None:  # nothing this device says can be trusted: unknown
                self.live.store(ch, math.nan, frozen)
                continue
            fault = faults.get(name)
            self.live.store(
                ch, values[name], None if fault is None else f"{self.who} reports {fault}"
            )
            self.on_telemetry(ch, values[name])
        if self.counter is None or values[self.counter] != self.last_count:
            self.live.mark_fresh(self.dev)
            self.live.new_data.set()
        if self.counter is not None:
            self.last_count = values[self.counter]
        if not self.live.link_ok[self.dev]:
            self.live.link_up(self.dev)
            self.on_event("link_up", {"device": self.dev.name.lower()})

    def finish(self) -> None:
        self.device.transport.close()


class Bridge:
    """All device connections of one setup, and the halt path.

    ``transports`` builds each device's connection (default: the real wires of the profile;
    ``firmware_bridge.virtual.VirtualTransports``: in-process devices, for tests).

    The methods a front end's main thread calls and that take a lock a device worker shares
    (the halt state's, a worker's wake-up event, the laser's command queue) hold a Ctrl-C
    until they return, then raise it (``firmware_bridge.interrupts.ctrl_c_after_call``):
    a KeyboardInterrupt can never leave such a lock held, nor a halt latched but unsaid.
    """

    def __init__(
        self,
        setup: Setup,
        *,
        on_event: EventSink,
        on_telemetry: TelemetrySink | None = None,
        realtime: bool = False,
        transports: TransportFactory | None = None,
    ) -> None:
        self.setup = setup
        self.live = LiveState()
        self.on_event = on_event
        self.on_telemetry: TelemetrySink = on_telemetry or (lambda ch, v: None)
        self.halt_state = HaltState(self.live)
        # The interlock's own heartbeat; the relay is never energised while it is not beating.
        # Asked on the relay worker before each write while the relay may be energised: it
        # must only read (no lock, no log) and say why emission must stop, or None.
        self.supervisor: Callable[[], str | None] = lambda: None
        # Told on the relay worker after it halted for the supervisor's reason and wrote the
        # relay open: the words. Must not block (hand them to another thread).
        self.on_supervisor_halt: Callable[[str], None] = lambda why: None
        # Operator commands for the laser's thread. A deque, not a queue.Queue: append and
        # popleft take no lock, so a Ctrl-C (KeyboardInterrupt) landing in a caller's put can
        # never leave a lock held that the laser's worker then waits on forever (no more
        # heartbeats, no STOP). A real SIGINT in `laserguard calibrate` did exactly that.
        self._commands: deque[tuple[Callable[[LaserDriver], Any], Future[Any]]] = deque()

        wires = transports if transports is not None else WireTransports()
        self.laser, line = make_laser_driver(setup.laser, wires)
        out = setup.interlock_output
        if isinstance(out, ModbusCoilOutput):
            self.output = InterlockOutputDriver(
                out, registers=wires.registers(Dev.INTERLOCK, out.transport)
            )
            refresh_s = out.refresh_period_ms / 1000
        else:
            if line is None:  # refused at load (Setup): a serial_line needs a line laser
                raise ValueError("a serial_line interlock output needs a serial_commands laser")
            self.output = InterlockOutputDriver(out, line=line)
            refresh_s = setup.laser.heartbeat_period_ms / 1000
        self._workers: list[_Worker] = [
            _RegisterWorker(
                Dev.SENSOR,
                RegisterDevice(setup.sensor, wires.registers(Dev.SENSOR, setup.sensor.transport)),
                SENSOR_CHANNELS,
                self.live,
                on_event,
                self.on_telemetry,
            ),
            _RegisterWorker(
                Dev.COOLER,
                RegisterDevice(setup.cooler, wires.registers(Dev.COOLER, setup.cooler.transport)),
                COOLER_CHANNELS,
                self.live,
                on_event,
                self.on_telemetry,
            ),
        ]
        self.live.present[Dev.SENSOR2] = setup.sensor2 is not None
        if setup.sensor2 is not None:  # a redundant skin sensor: a worker of its own
            self._workers.append(
                _RegisterWorker(
                    Dev.SENSOR2,
                    RegisterDevice(
                        setup.sensor2, wires.registers(Dev.SENSOR2, setup.sensor2.transport)
                    ),
                    SENSOR2_CHANNELS,
                    self.live,
                    on_event,
                    self.on_telemetry,
                )
            )
        self._laser_worker = _LaserWorker(self)
        self._output_worker = _OutputWorker(self, refresh_s)
        self._workers += [self._laser_worker, self._output_worker]
        for w in self._workers:
            w.realtime = realtime

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for w in self._workers:
            w.start()

    @ctrl_c_after_call
    def close(self) -> None:
        """Open the interlock and stop every worker. Safe to call twice."""
        self.halt("bridge shutting down", quiet=True)
        for w in self._workers:
            w.stop()

    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the halt path -----------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        return self.halt_state.latched

    @property
    def halt_t_ns(self) -> int | None:
        """When the latest halt latched (``perf_counter_ns``), or None."""
        return self.halt_state.halt_ns

    @property
    def stop_confirmed_t_ns(self) -> int | None:
        """When the laser confirmed STOP for the latest halt, or None."""
        return self.halt_state.stop_confirmed_ns

    @property
    def relay_opened_t_ns(self) -> int | None:
        """When the relay was first written open after the latest halt, or None."""
        return self.halt_state.relay_opened_ns

    @property
    def first_pulse_total(self) -> int | None:
        """The laser's pulse counter at its first status read, or None before it. What the
        log last knew of it is reconciled against this (pulses fired while nothing logged)."""
        return self._laser_worker.first_pulse_total

    @ctrl_c_after_call
    def halt(self, reason: str, *, quiet: bool = False) -> None:
        """Stop emission by both routes, then say so (unless ``quiet``). Never blocks; safe
        from any thread, any number of times."""
        if self.stop_emission() and not quiet:
            self.on_event("halt_requested", {"reason": reason})

    @ctrl_c_after_call
    def stop_emission(self) -> bool:
        """The halt without words: latch, and wake both routes. Never blocks, calls nothing
        out. True if this call latched the halt (the caller then says why)."""
        first = self.halt_state.halt()
        self._output_worker.wake.set()
        self._laser_worker.wake.set()
        return first

    @ctrl_c_after_call
    def release_halt(self) -> None:
        """After a person acknowledged: the relay may close again (the laser stays in STANDBY)."""
        self._laser_worker.end_of_halt()
        self.halt_state.release()

    @ctrl_c_after_call
    def set_permit(self, permit: bool) -> None:
        """Whether the relay should be energised. Ignored while a halt is latched."""
        self.halt_state.set_permit(permit)
        self._output_worker.wake.set()

    def wait_relay_closed(self, timeout_s: float = 1.0) -> None:
        """Block until the relay was energised by a write made after the last set_permit(True)."""
        state = self.halt_state
        deadline = time.monotonic() + timeout_s
        wanted = state.permit_generation
        while state.closed_generation < wanted:
            if state.latched:
                raise HaltRefused("halted while the relay was closing")
            if time.monotonic() > deadline:
                raise LinkLost(f"the interlock relay did not close within {timeout_s:g} s")
            time.sleep(0.001)

    def open_relay(self) -> int:
        """Withdraw the permit (the relay opens) and return the count of opening writes so
        far, for ``wait_relay_opened``. The laser is not told: the relay's proof test."""
        before = self.halt_state.open_writes
        self.set_permit(False)
        return before

    def wait_relay_opened(self, after: int, timeout_s: float = 1.0) -> int | None:
        """When (perf_counter_ns) the relay was written open by a write after ``after``
        opening writes; None if none was made within ``timeout_s`` (the relay's link)."""
        state = self.halt_state
        deadline = time.monotonic() + timeout_s
        while state.open_writes <= after:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.0005)
        return state.last_open_ns

    def scheduling(self) -> dict[str, str]:
        return {w.name: w.scheduling for w in self._workers}

    @property
    def permit(self) -> bool:
        return self.halt_state.permit

    @property
    def laser_identity(self) -> str | None:
        """The laser's answer to its identify command at the last (re)connection; None
        before it answered, or without one. Read from any thread (one reference)."""
        return self.laser.identity

    # --- operator commands on the laser (run on the laser's worker thread) --------------------

    @ctrl_c_after_call
    def laser_call(self, fn: Callable[[LaserDriver], T], timeout_s: float = 2.0) -> T:
        """Run ``fn`` on the laser's thread and wait for it (at most ``timeout_s``)."""
        return self.laser_submit(fn).result(timeout=timeout_s)

    @ctrl_c_after_call
    def laser_submit(self, fn: Callable[[LaserDriver], T]) -> Future[T]:
        """Queue ``fn`` for the laser's thread without waiting (safe from that thread too)."""
        fut: Future[T] = Future()
        self._commands.append((fn, fut))
        self._laser_worker.wake.set()
        return fut

    def publish_status(self, status: LaserStatus) -> None:
        """Publish a status read by an operator command (call only on the laser's thread)."""
        self._laser_worker._publish(status)

    def arm(self) -> None:
        def do(laser: LaserDriver) -> None:
            if self.halt_state.latched:  # on the laser's own thread, just before the write
                raise HaltRefused("a halt is latched: acknowledge it first")
            laser.arm()

        self.laser_call(do)


class RepeatedRecord:
    """A record that can repeat many times a second (a laser that keeps failing its stop).

    The first of a run is logged at once; the others are counted and logged as one
    ``<kind>_repeated`` record with the count, at most every ``summary_s`` and when the run
    ends. A misbehaving device cannot flood the session log this way.
    """

    def __init__(self, kind: str, on_event: EventSink, summary_s: float = 5.0) -> None:
        self.kind = kind
        self.on_event = on_event
        self.summary_s = summary_s
        self.total = 0
        self._pending = 0
        self._last_summary = 0.0
        self._lock = threading.Lock()  # noted on the laser's thread, ended on the session's

    def note(self, payload: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            first = self.total == 1
            if first:
                self._last_summary = now
            else:
                self._pending += 1
            due = not first and now - self._last_summary >= self.summary_s
        if first:
            self.on_event(self.kind, payload)
        elif due:
            self._summary()

    def _summary(self) -> None:
        with self._lock:
            count, self._pending = self._pending, 0
            self._last_summary = time.monotonic()
            total = self.total
        if count:
            self.on_event(f"{self.kind}_repeated", {"count": count, "total": total})

    def end_run(self) -> None:
        """Log what is still counted, and start a new run (the next record is logged again)."""
        self._summary()
        with self._lock:
            self.total = 0


class _LaserWorker(_Worker):
    def __init__(self, bridge: Bridge) -> None:
        period = min(bridge.setup.laser.poll_period_ms, bridge.setup.laser.heartbeat_period_ms)
        super().__init__("laserguard-laser", period / 1000)
        self.b = bridge
        self.hb_period_s = bridge.setup.laser.heartbeat_period_ms / 1000
        self.poll_period_s = bridge.setup.laser.poll_period_ms / 1000
        self.hb_due = 0.0
        self.poll_due = 0.0
        self.last_pulses: int | None = None
        self.first_pulse_total: int | None = None
        # A laser that lies about STOP, or never answers it, is stopped again and again
        # while the halt lasts: each outcome is logged once per halt, then counted.
        self.stop_confirmed = RepeatedRecord("halt_stop_confirmed", bridge.on_event)
        self.stop_failed = RepeatedRecord("halt_stop_failed", bridge.on_event)
        self.active_while_halted = RepeatedRecord("laser_active_while_halted", bridge.on_event)

    def end_of_halt(self) -> None:
        """The halt was released (or the bridge closes): log the counts, start afresh."""
        for record in (self.stop_confirmed, self.stop_failed, self.active_while_halted):
            record.end_run()

    def _link_lost(self, e: BridgeError) -> None:
        live = self.b.live
        if live.link_ok[Dev.LASER] or live.link_error[Dev.LASER] is None:
            self.b.on_event("link_lost", {"device": "laser", "error": str(e)})
        live.link_down(Dev.LASER, str(e))

    def _timed(self, fn: Callable[[], T]) -> T:
        """One laser transaction, its time recorded for the reaction-time budget (unless it
        is the first on a new connection: opening the port is no answer time)."""
        connected = bool(self.b.live.link_ok[Dev.LASER])
        t0 = time.perf_counter_ns()
        result = fn()
        if connected:
            self.b.live.record_answer(Dev.LASER, (time.perf_counter_ns() - t0) / 1e6)
        return result

    def _send_stop(self, request: int) -> None:
        try:
            self._timed(self.b.laser.stop)
        except BridgeError as e:
            # Retried on the next wake; the relay route is already open. A STOP without an
            # answer says nothing about the link (the heartbeat and the status poll that
            # follow do): a laser that answers everything but STOP must not make the laser
            # link flap. If it never confirms, laser_did_not_stop says so.
            self.stop_failed.note({"error": str(e)[:200]})
            return
        self.b.halt_state.stop_confirmed(request)
        self.stop_confirmed.note({})
        try:  # read the state the stop left behind now, not one poll later
            self._publish(self._timed(self.b.laser.status))
        except LinkLost as e:
            self._link_lost(e)
        except BridgeError as e:
            self.b.on_event("laser_protocol_error", {"error": str(e)})

    def _publish(self, st: LaserStatus) -> None:
        live = self.b.live
        if self.first_pulse_total is None:  # set before mark_fresh: fresh implies it is set
            self.first_pulse_total = st.pulses
        for name, ch in SETTING_CHANNELS.items():
            live.store(ch, st.settings[name])
            self.b.on_telemetry(ch, st.settings[name])  # logged on change (a panel knob)
        live.store(Ch.LASER_STATE, LASER_STATE_CODES[st.state])
        self.b.on_telemetry(Ch.LASER_STATE, LASER_STATE_CODES[st.state])
        live.store(Ch.LASER_PULSES, float(st.pulses))
        live.mark_fresh(Dev.LASER)
        if not live.link_ok[Dev.LASER]:
            live.link_up(Dev.LASER)
            self.b.on_event("link_up", {"device": "laser"})
        if self.last_pulses is not None and st.pulses > self.last_pulses:
            report: dict[str, Any] = {
                "n": st.pulses - self.last_pulses,
                "total": st.pulses,
                "settings": st.settings,
            }
            if st.delivered_j is not None:  # the laser's energy monitor, of the last pulse
                report["delivered_j"] = st.delivered_j
            self.b.on_event("pulses", report)
        self.last_pulses = st.pulses
        # Halted, and it came back up (a panel?) or lied: stop it again.
        if st.state.can_emit and self.b.halt_state.restop():
            self.active_while_halted.note({"state": st.state})

    def _stop_first(self) -> bool:
        """Send the STOP a halt asked for, if any: before anything else the step would do.
        True if one was sent (answered or not)."""
        request = self.b.halt_state.stop_to_send()
        if request is None:
            return False
        self._send_stop(request)
        return True

    def step(self) -> None:
        b = self.b
        self._stop_first()
        while not b.halt_state.stop_pending:
            try:
                fn, fut = b._commands.popleft()
            except IndexError:
                break
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(b.laser))
                except BaseException as e:  # handed to the caller, who raises it
                    fut.set_exception(e)
        now = time.perf_counter()
        try:
            if now >= self.hb_due:
                self._timed(b.laser.heartbeat)
                self.hb_due = now + self.hb_period_s
                # A halt that came while the heartbeat was on the wire waits for no status
                # poll: a STOP never waits behind more than the one transaction in flight.
                if self._stop_first():
                    return
            if now >= self.poll_due:
                self._publish(self._timed(b.laser.status))
                self.poll_due = now + self.poll_period_s
        except LinkLost as e:
            self._link_lost(e)
        except BridgeError as e:
            self.b.on_event("laser_protocol_error", {"error": str(e)})
            b.live.link_down(Dev.LASER, str(e))

    def finish(self) -> None:
        self._stop_first()
        self.end_of_halt()
        self.b.laser.close()


class _OutputWorker(_Worker):
    """Writes the wanted relay state now on a change, and refreshes it for the watchdog.

    While the relay may be energised it asks the supervisor first; on trouble it halts, writes
    the relay open, and only then puts words to it (halt first, words after).
    """

    def __init__(self, bridge: Bridge, refresh_s: float) -> None:
        super().__init__("laserguard-interlock", refresh_s)
        self.b = bridge
        self.written: bool | None = None

    def step(self) -> None:
        b = self.b
        trouble = b.supervisor() if b.halt_state.permit else None
        latched = trouble is not None and b.stop_emission()
        self._write()
        if trouble is not None:
            if latched:
                b.on_event("halt_requested", {"reason": trouble})
            b.on_supervisor_halt(trouble)

    def _write(self) -> None:
        b = self.b
        want, generation = b.halt_state.relay_wanted()
        connected = bool(b.live.link_ok[Dev.INTERLOCK])  # else this write opens the connection
        try:
            t0 = time.perf_counter_ns()
            b.output.set_permit(want)
            if connected:
                b.live.record_answer(Dev.INTERLOCK, (time.perf_counter_ns() - t0) / 1e6)
        except BridgeError as e:
            if b.live.link_ok[Dev.INTERLOCK] or b.live.link_error[Dev.INTERLOCK] is None:
                b.on_event("link_lost", {"device": "interlock", "error": str(e)})
            b.live.link_down(Dev.INTERLOCK, str(e))
            return
        b.halt_state.relay_written(want, generation)
        b.live.mark_fresh(Dev.INTERLOCK)
        if not b.live.link_ok[Dev.INTERLOCK]:
            b.live.link_up(Dev.INTERLOCK)
        if want != self.written:
            b.on_event("interlock_output", {"permit": want})
            self.written = want

    def finish(self) -> None:
        self.b.halt_state.set_permit(False)
        try:
            self.b.output.set_permit(False)
        except BridgeError as e:  # the watchdog opens the relay within watchdog_ms anyway
            self.b.on_event("link_lost", {"device": "interlock", "error": str(e)})
        self.b.output.close()
