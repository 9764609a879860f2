"""The shared physical state the simulated devices see, advanced on the simulated clock.

One `World` holds the skin, the cooling plate and its coolant flow, the footswitch, the
interlock relay, every device's fault flags, and plays the scenario's timeline. Everything
runs on the simulator's single event loop, so there is no locking here. `advance` is called
on every device access and by a ticker; it replays, in simulated-time order, every scenario
event and every laser pulse that fell due since the last call, so the outcome does not depend
on how often it is called.

Events happen at a time, or on an event (``sim.events.On``): the world counts what it sees
(``relay_closed``, ``pulse``...) and schedules a waiting event when its count comes up.

**Ground truth.** The world keeps the Henriques–Moritz Ω and the CEM43 of the skin
temperature it simulates (not of what any sensor reports), integrated over every physics step
with the log of the damage rate linear in time (``thermal_dose.ArrheniusField``): the fault
matrix holds Ω below first degree. It is the lumped model's surface, so it stands for the
epidermis under the window; a demonstration figure, like the model.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from device_profiles.schema import Setup
from sim.clock import SimClock
from sim.events import (
    HARNESS_ACTIONS,
    CoolerFailure,
    CoolerFlowLoss,
    DeviceDropout,
    DeviceSlow,
    LaserOutputError,
    LaserPanelArm,
    LaserStopFault,
    LinkLost,
    ModbusExceptionReply,
    PanelSet,
    PlateOffset,
    PlateRunaway,
    RelayStuckClosed,
    ScenarioEvent,
    SensorDrift,
    SensorFreeze,
    SensorLinkLost,
    SensorNoise,
    SensorOffset,
    SensorSlow,
    SensorStuck,
    SkinHeatLoad,
    Trigger,
    WireGarbage,
)
from sim.plate import ContactPlate, FirstOrder
from sim.scenario import Scenario
from sim.skin import SkinModel, equilibrium_c
from thermal_dose import ArrheniusField, Cem43Dose

if TYPE_CHECKING:
    from sim.laser import LaserModel
    from sim.meter import MeterModel

#: Longest physics step while the plate moves (its temperature is held over a step).
MAX_STEP_S = 0.01

#: Flow through a working chiller's window circuit.
WORKING_FLOW_L_MIN = 2.0

Record = Callable[..., None]
"""``record(kind, **fields)``: the runner's event log."""


def _no_record(kind: str, **fields: Any) -> None:
    del kind, fields


@dataclass
class DeviceFaults:
    """What is wrong with one Modbus device's wire (all off: a healthy device)."""

    link_lost: bool = False
    silent_until_wall: float = 0.0  # time.monotonic(): a dropout answers nothing until then
    answer_delay_s: float = 0.0  # wall time between a request and its answer
    garbage: str | None = None  # "garbage" or "truncated" replies
    exception_code: int | None = None  # every request answered with this exception


@dataclass
class SensorFaults:
    """What is wrong with one skin sensor's measurement (all off: a healthy sensor)."""

    frozen: bool = False  # value and sample counter stop
    stuck: bool = False  # counter moves, the value is ``stuck_c`` (None: the sensor's last)
    stuck_c: float | None = None
    offset_c: float = 0.0
    drift_c_per_s: float = 0.0
    drift_since_s: float = 0.0
    extra_noise_sd_c: float = 0.0
    spike_c: float = 0.0
    spike_probability: float = 0.0

    def error_at(self, t_s: float) -> float:
        """How far the reading is from the skin at simulated time ``t_s`` (before noise)."""
        return self.offset_c + self.drift_c_per_s * max(0.0, t_s - self.drift_since_s)


class World:
    def __init__(
        self, setup: Setup, scenario: Scenario, clock: SimClock, record: Record = _no_record
    ) -> None:
        self.setup = setup
        self.scenario = scenario
        self.clock = clock
        self.record = record
        self.plate = ContactPlate(scenario.plate_start_c)
        self.flow = FirstOrder(WORKING_FLOW_L_MIN)
        # The window has been on the skin long enough to settle before the session starts.
        self.skin = SkinModel(
            scenario.skin_type,
            setup.laser.wavelength_nm,
            temp_c=equilibrium_c(scenario.plate_start_c),
        )
        self.trigger_pressed = False
        self.relay_closed = False
        # The plate thermometer's calibration error (scenario ``plate_offset``): served = true +
        # offset. A reference held at the skin (``hold_skin``) pins its true temperature.
        self.plate_offset_c = 0.0
        self.skin_held_c: float | None = None
        self._held: list[tuple[float, int, ScenarioEvent]] | None = None  # start_timeline()
        self.relay_stuck_closed = False  # the contact welded: it stays closed
        self._stuck_open_noted = False
        self.laser_link_lost = False
        self.devices: dict[str, DeviceFaults] = {
            name: DeviceFaults() for name in ("sensor", "sensor2", "cooler", "interlock")
        }
        self.sensors: dict[str, SensorFaults] = {
            "sensor": SensorFaults(),
            "sensor2": SensorFaults(),
        }
        self.laser: LaserModel | None = None
        self.meter: MeterModel | None = None  # in the beam in the laser's service mode
        self.t_s = 0.0
        # Ground truth: Ω and CEM43 of the simulated skin, and its peak.
        self._omega = ArrheniusField(np.array([self.skin.temp_c]))
        self._cem43 = Cem43Dose()
        self._temp_buf = np.zeros(1)
        self.peak_skin_c = self.skin.temp_c
        # The timeline: (t_s, order, event), and the events still waiting for their trigger.
        self._order = itertools.count()
        self._pending: list[tuple[float, int, ScenarioEvent]] = [
            (e.t_s if e.t_s is not None else 0.0, next(self._order), e) for e in scenario.timeline()
        ]
        self._waiting: list[ScenarioEvent] = scenario.triggered()
        self._counts: dict[str, int] = {}

    # --- compatibility: the first sensor's flags, by their old names --------------------------

    @property
    def sensor_frozen(self) -> bool:
        return self.sensors["sensor"].frozen

    @property
    def sensor_link_lost(self) -> bool:
        return self.devices["sensor"].link_lost

    @sensor_link_lost.setter
    def sensor_link_lost(self, lost: bool) -> None:
        self.devices["sensor"].link_lost = lost

    @property
    def sensor_answer_delay_s(self) -> float:
        return self.devices["sensor"].answer_delay_s

    @sensor_answer_delay_s.setter
    def sensor_answer_delay_s(self, seconds: float) -> None:
        self.devices["sensor"].answer_delay_s = seconds

    # --- time ----------------------------------------------------------------------------------

    def advance(self) -> float:
        """Bring the world up to the clock's now; return it."""
        self.advance_to(self.clock.now_s())
        return self.t_s

    def advance_to(self, t_s: float) -> None:
        while True:
            due: list[float] = []
            if self._pending:
                due.append(self._pending[0][0])
            next_pulse = self.laser.next_pulse_s() if self.laser else None
            if next_pulse is not None:
                due.append(next_pulse)
            if not due or min(due) > t_s:
                break
            t_next = max(min(due), self.t_s)
            self._step_physics(t_next)
            if self._pending and self._pending[0][0] <= t_next:
                self._apply(self._pending.pop(0)[2])
            elif self.laser is not None:
                self.laser.fire(t_next)
        self._step_physics(t_s)

    def _step_physics(self, t_s: float) -> None:
        while self.t_s < t_s:
            t_next = min(self.t_s + MAX_STEP_S, t_s)
            dt = t_next - self.t_s
            if self.skin_held_c is None:
                self.skin.relax(dt, self.plate.temp_at((self.t_s + t_next) / 2))
            self.t_s = t_next
            self._truth(dt)

    def _truth(self, dt_s: float) -> None:
        temp_c = self.skin.temp_c
        self._temp_buf[0] = temp_c
        self._omega.add(self._temp_buf, dt_s)
        self._cem43.add(temp_c, dt_s)
        if temp_c > self.peak_skin_c:
            self.peak_skin_c = temp_c

    def pulse_heated_skin(self) -> None:
        """A pulse just raised the skin: the integrals start the next step from here."""
        self._truth(0.0)

    @property
    def omega(self) -> float:
        """The ground-truth Henriques–Moritz Ω of the simulated skin so far."""
        return float(self._omega.omega()[0])

    @property
    def log_omega(self) -> float:
        return float(self._omega.log_omega[0])

    @property
    def cem43_min(self) -> float:
        return self._cem43.minutes

    # --- what the devices read -------------------------------------------------------------------

    def plate_temp_c(self) -> float:
        return self.plate.temp_at(self.t_s)

    def hold_skin(self, temp_c: float | None) -> None:
        """The sensor looks at a reference held at ``temp_c`` (a calibration bath or
        blackbody) instead of skin; None hands it back to the skin model."""
        self.skin_held_c = temp_c
        if temp_c is not None:
            self.skin.temp_c = temp_c
        self.record("skin_held", temp_c=temp_c)

    def hold_timeline(self) -> None:
        """The scenario waits: its events play from ``start_timeline()`` on, their times
        counted from then (the console's demo starts them when the laser is first armed: a
        person needs time to sign in, and a cooler that failed before anyone could arm would
        only ever show a refusal)."""
        self._held, self._pending = self._pending, []

    def start_timeline(self) -> bool:
        """Play the held events from now on; False if the timeline was not held (or started)."""
        held = self._held
        if held is None:
            return False
        self._held = None
        self._pending = [(t + self.t_s, order, e) for t, order, e in held]
        self.record("timeline_started", at_s=round(self.t_s, 6))
        return True

    def flow_l_min(self) -> float:
        return self.flow.at(self.t_s)

    def set_relay(self, closed: bool, why: str) -> None:
        """The interlock loop closes (emission permitted) or opens."""
        if not closed and self.relay_stuck_closed and self.relay_closed:
            if not self._stuck_open_noted:  # once per command to open, not per refresh
                self._stuck_open_noted = True
                self.record("relay_stuck", why=why)  # commanded open, the contact stays closed
            return
        if closed:
            self._stuck_open_noted = False
        if closed == self.relay_closed:
            return
        self.relay_closed = closed
        self.record("relay", closed=closed, why=why)
        if self.laser is not None:
            self.laser.on_interlock(closed)
        self.notify("relay_closed" if closed else "relay_opened")

    def shot_into_meter(self, delivered_j: float) -> None:
        """A service-mode test shot: the handpiece is on the meter's head, not on skin."""
        if self.meter is not None:
            self.meter.on_pulse(delivered_j)

    # --- triggers ------------------------------------------------------------------------------

    def notify(self, what: str) -> None:
        """The world saw ``what`` (a trigger name): schedule the events waiting for it."""
        count = self._counts.get(what, 0) + 1
        self._counts[what] = count
        if not self._waiting:
            return
        keep = []
        for event in self._waiting:
            on = event.on
            if on is not None and on.event == what and on.count == count:
                entry = (self.t_s + on.delay_s, next(self._order), event)
                bisect.insort(self._pending, entry, key=lambda e: (e[0], e[1]))
            else:
                keep.append(event)
        self._waiting = keep

    # --- the timeline --------------------------------------------------------------------------

    def _apply(self, event: ScenarioEvent) -> None:
        fields = event.model_dump(exclude_none=True)
        if event.action in HARNESS_ACTIONS:  # announced, carried out by the session's runner
            self.record("harness", **fields)
            return
        self.record("scenario", **fields)
        laser = self.laser
        match event:
            case Trigger(pressed=pressed):
                self.trigger_pressed = pressed
                if laser is not None:
                    laser.on_trigger(pressed)
            case PanelSet(setting=setting, value=value):
                if laser is not None:
                    laser.panel_set(setting, value)
            case CoolerFailure(to_c=to_c, tau_s=tau_s) | PlateRunaway(to_c=to_c, tau_s=tau_s):
                self.plate.fail(self.t_s, to_c, tau_s)
            case CoolerFlowLoss(to_l_min=to_l_min, tau_s=tau_s):
                self.flow.retarget(self.t_s, to_l_min, tau_s)
            case SkinHeatLoad(rise_c=rise_c):
                self.skin.heat_load_c = rise_c
            case SensorFreeze(sensor=sensor):
                self.sensors[sensor].frozen = True
            case SensorStuck(sensor=sensor, value_c=value_c):
                self.sensors[sensor].stuck = True
                self.sensors[sensor].stuck_c = value_c  # None: the sensor keeps its last value
            case SensorDrift(sensor=sensor, rate_c_per_s=rate):
                faults = self.sensors[sensor]
                faults.offset_c = faults.error_at(self.t_s)
                faults.drift_c_per_s, faults.drift_since_s = rate, self.t_s
            case SensorOffset(sensor=sensor, offset_c=offset_c):
                self.sensors[sensor].offset_c = offset_c
            case SensorNoise(sensor=sensor) as noise:
                faults = self.sensors[sensor]
                faults.extra_noise_sd_c = noise.noise_sd_c
                faults.spike_c, faults.spike_probability = noise.spike_c, noise.spike_probability
            case SensorLinkLost():
                self.devices["sensor"].link_lost = True
            case SensorSlow(answer_ms=answer_ms):
                self.devices["sensor"].answer_delay_s = answer_ms / 1000.0
            case LinkLost(device="laser"):
                self.laser_link_lost = True
            case LinkLost(device=device):
                self.devices[device].link_lost = True
            case DeviceDropout(device=device, silent_ms=silent_ms):
                self.devices[device].silent_until_wall = self.clock.wall_now() + silent_ms / 1e3
            case DeviceSlow(device=device, answer_ms=answer_ms):
                self.devices[device].answer_delay_s = answer_ms / 1000.0
            case WireGarbage(device=device, mode=mode):
                self.devices[device].garbage = mode
            case ModbusExceptionReply(device=device, exception_code=code):
                self.devices[device].exception_code = code
            case LaserStopFault(stop_reply=reply, ignores_interlock=ignores):
                if laser is not None:
                    laser.break_stop(reply, ignores_interlock=ignores)
            case PlateOffset(offset_c=offset_c):
                self.plate_offset_c = offset_c
            case LaserOutputError(gain=gain, offset_j=offset_j, drift_per_shot=drift):
                if laser is not None:
                    laser.set_output_error(gain, offset_j, drift)
            case LaserPanelArm():
                if laser is not None:
                    laser.panel_arm()
            case RelayStuckClosed():
                self.relay_stuck_closed = True
