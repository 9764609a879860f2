"""The shared physical state the simulated devices see, advanced on the simulated clock.

One `World` holds the skin, the cooling plate, the footswitch, the interlock relay and the
sensor's fault flags, and plays the scenario's timeline. Everything runs on the simulator's
single event loop, so there is no locking here. `advance` is called on every device access
and by a ticker; it replays, in simulated-time order, every scenario event and every laser
pulse that fell due since the last call, so the outcome does not depend on how often it is
called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from device_profiles.schema import Setup
from sim.clock import SimClock
from sim.plate import ContactPlate
from sim.scenario import (
    CoolerFailure,
    LaserOutputError,
    LaserStopFault,
    PanelSet,
    Scenario,
    ScenarioEvent,
    SensorFreeze,
    SensorLinkLost,
    SensorOffset,
    SensorSlow,
    Trigger,
)
from sim.skin import SkinModel, equilibrium_c

if TYPE_CHECKING:
    from sim.laser import LaserModel
    from sim.meter import MeterModel

#: Longest physics step while the plate moves (its temperature is held over a step).
MAX_STEP_S = 0.01

Record = Callable[..., None]
"""``record(kind, **fields)``: the runner's event log."""


def _no_record(kind: str, **fields: Any) -> None:
    del kind, fields


class World:
    def __init__(
        self, setup: Setup, scenario: Scenario, clock: SimClock, record: Record = _no_record
    ) -> None:
        self.setup = setup
        self.scenario = scenario
        self.clock = clock
        self.record = record
        self.plate = ContactPlate(scenario.plate_start_c)
        # The window has been on the skin long enough to settle before the session starts.
        self.skin = SkinModel(
            scenario.skin_type,
            setup.laser.wavelength_nm,
            temp_c=equilibrium_c(scenario.plate_start_c),
        )
        self.trigger_pressed = False
        self.relay_closed = False
        self.sensor_frozen = False
        self.sensor_link_lost = False
        self.sensor_answer_delay_s = 0.0  # wall time between a request and the sensor's answer
        # Calibration errors of the thermometers (scenario ``sensor_offset``): served = true +
        # offset. A reference held at the skin (``hold_skin``) pins its true temperature.
        self.skin_offset_c = 0.0
        self.plate_offset_c = 0.0
        self.skin_held_c: float | None = None
        self.laser: LaserModel | None = None
        self.meter: MeterModel | None = None  # in the beam in the laser's service mode
        self.t_s = 0.0
        self._pending: list[ScenarioEvent] = scenario.timeline()
        self._held: list[ScenarioEvent] | None = None  # events waiting for start_timeline()

    def advance(self) -> float:
        """Bring the world up to the clock's now; return it."""
        self.advance_to(self.clock.now_s())
        return self.t_s

    def advance_to(self, t_s: float) -> None:
        while True:
            due: list[float] = []
            if self._pending:
                due.append(self._pending[0].t_s)
            next_pulse = self.laser.next_pulse_s() if self.laser else None
            if next_pulse is not None:
                due.append(next_pulse)
            if not due or min(due) > t_s:
                break
            t_next = max(min(due), self.t_s)
            self._step_physics(t_next)
            if self._pending and self._pending[0].t_s <= t_next:
                self._apply(self._pending.pop(0))
            elif self.laser is not None:
                self.laser.fire(t_next)
        self._step_physics(t_s)

    def _step_physics(self, t_s: float) -> None:
        while self.t_s < t_s:
            t_next = min(self.t_s + MAX_STEP_S, t_s)
            if self.skin_held_c is None:
                self.skin.relax(t_next - self.t_s, self.plate.temp_at((self.t_s + t_next) / 2))
            self.t_s = t_next

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
        self._pending = [e.model_copy(update={"t_s": e.t_s + self.t_s}) for e in held]
        self.record("timeline_started", at_s=round(self.t_s, 6))
        return True

    def set_relay(self, closed: bool, why: str) -> None:
        """The interlock loop closes (emission permitted) or opens."""
        if closed == self.relay_closed:
            return
        self.relay_closed = closed
        self.record("relay", closed=closed, why=why)
        if self.laser is not None:
            self.laser.on_interlock(closed)

    def shot_into_meter(self, delivered_j: float) -> None:
        """A service-mode test shot: the handpiece is on the meter's head, not on skin."""
        if self.meter is not None:
            self.meter.on_pulse(delivered_j)

    def _apply(self, event: ScenarioEvent) -> None:
        self.record("scenario", **event.model_dump())
        match event:
            case Trigger(pressed=pressed):
                self.trigger_pressed = pressed
                if self.laser is not None:
                    self.laser.on_trigger(pressed)
            case CoolerFailure(to_c=to_c, tau_s=tau_s):
                self.plate.fail(self.t_s, to_c, tau_s)
            case SensorFreeze():
                self.sensor_frozen = True
            case SensorLinkLost():
                self.sensor_link_lost = True
            case SensorSlow(answer_ms=answer_ms):
                self.sensor_answer_delay_s = answer_ms / 1000.0
            case PanelSet(setting=setting, value=value):
                if self.laser is not None:
                    self.laser.panel_set(setting, value)
            case LaserStopFault(stop_reply=reply, ignores_interlock=ignores):
                if self.laser is not None:
                    self.laser.break_stop(reply, ignores_interlock=ignores)
            case SensorOffset(skin_offset_c=skin, plate_offset_c=plate):
                self.skin_offset_c = skin
                self.plate_offset_c = plate
            case LaserOutputError(gain=gain, offset_j=offset_j, drift_per_shot=drift):
                if self.laser is not None:
                    self.laser.set_output_error(gain, offset_j, drift)
