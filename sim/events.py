"""What a scenario makes happen: the footswitch, and every fault, as validated data.

Each event happens **at a time** (``t_s``, simulated seconds since the simulator started) or
**on an event** (``on``: the *count*-th time the simulator sees ``relay_closed``, ``pulse``,
``laser_ready``, ``relay_opened`` or ``stop_received``, then ``delay_s`` simulated seconds
later): "the sensor freezes after the third pulse" holds whatever the speed of the clock and
however long the bridge took to arm. Exactly one of the two.

Every device fault reaches the bridge through the real wires: a Modbus server that answers
late, not at all, with an exception or with garbage; a pty that goes quiet; values that lie.
Three kinds are not the devices' doing and are only *announced* by the simulator, on the
same timeline, for whoever runs the session (the fault matrix, ``monitor.faults``) to carry
out: an operator's action (``operator``), and a fault of the host the bridge runs on
(``host_fault``: the bridge killed or starved of CPU, its session log's disk full or
read-only). The simulator records them as ``harness`` events and changes nothing itself.

Wall-clock durations (``answer_ms``, ``silent_ms``, ``stall_ms``) are wall time, because the
bridge on the other end is real; everything else is on the simulated clock.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SensorName = Literal["sensor", "sensor2"]
#: The Modbus devices of a setup, by the name their endpoint has.
ModbusName = Literal["sensor", "sensor2", "cooler", "interlock"]
#: Every device a link can be lost to (the laser's is a pty).
LinkName = Literal["laser", "sensor", "sensor2", "cooler", "interlock"]
#: What the simulator counts, for ``on`` triggers.
TriggerName = Literal["relay_closed", "relay_opened", "pulse", "laser_ready", "stop_received"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class On(_Strict):
    """The ``count``-th ``event`` since the start, then ``delay_s`` simulated seconds."""

    event: TriggerName
    count: int = Field(1, ge=1, le=100_000)
    delay_s: float = Field(0.0, ge=0, le=3600)


class _Event(_Strict):
    t_s: float | None = Field(None, ge=0)
    on: On | None = None

    @model_validator(mode="after")
    def _when(self) -> _Event:
        if (self.t_s is None) == (self.on is None):
            raise ValueError("give exactly one of t_s (a time) and on (an event)")
        return self


# --- the operator at the laser ---------------------------------------------------------------


class Trigger(_Event):
    """The operator's footswitch on the laser."""

    action: Literal["trigger"]
    pressed: bool


class PanelSet(_Event):
    """Someone turns a knob on the laser's own panel; the laser stays in its state."""

    action: Literal["panel_set"]
    setting: Literal["fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz"]
    value: float = Field(gt=0)


# --- the cooling ----------------------------------------------------------------------------


class CoolerFailure(_Event):
    """The chiller stops cooling; the plate drifts exponentially to ``to_c``."""

    action: Literal["cooler_failure"]
    to_c: float = Field(ge=-50, le=60)
    tau_s: float = Field(gt=0)


class PlateRunaway(_Event):
    """The chiller's control fails cold: it drives the plate towards ``to_c`` (below
    freezing) and ignores its setpoint. Its own fault code stays 0."""

    action: Literal["plate_runaway"]
    to_c: float = Field(ge=-50, le=60)
    tau_s: float = Field(gt=0)


class CoolerFlowLoss(_Event):
    """The window's coolant flow falls exponentially towards ``to_l_min`` (a pump failing, a
    kinked hose); the chiller reports no fault code."""

    action: Literal["cooler_flow_loss"]
    to_l_min: float = Field(ge=0, le=100)
    tau_s: float = Field(gt=0)


class SkinHeatLoad(_Event):
    """A heat load the cooling does not remove: the skin settles ``rise_c`` warmer than the
    plate would keep it (a window that lost its thermal contact with the chiller, whose plate
    sensor still reads cold). The slow burn the surface limit alone cannot see."""

    action: Literal["skin_heat_load"]
    rise_c: float = Field(gt=0, le=60)


# --- the skin sensors ------------------------------------------------------------------------


class SensorFreeze(_Event):
    """The sensor keeps answering, but its value and sample counter stop changing."""

    action: Literal["sensor_freeze"]
    sensor: SensorName = "sensor"


class SensorStuck(_Event):
    """The sensor's converter sticks: its sample counter keeps moving, its reading is
    ``value_c`` (or the one it had) from now on, with no noise."""

    action: Literal["sensor_stuck"]
    sensor: SensorName = "sensor"
    value_c: float | None = Field(None, ge=-50, le=150)


class SensorDrift(_Event):
    """The reading drifts away from the skin at ``rate_c_per_s`` (simulated seconds;
    negative: it reads low, the dangerous way, while the skin heats)."""

    action: Literal["sensor_drift"]
    sensor: SensorName = "sensor"
    rate_c_per_s: float = Field(ge=-10, le=10)


class SensorOffset(_Event):
    """The reading is ``offset_c`` away from the skin from now on (a fogged or misaimed
    window, a shifted calibration)."""

    action: Literal["sensor_offset"]
    sensor: SensorName = "sensor"
    offset_c: float = Field(ge=-50, le=50)


class PlateOffset(_Event):
    """The cooling plate's thermometer reads ``offset_c`` away from the plate from now on (out
    of calibration): a calibration against a reference thermometer must find it."""

    action: Literal["plate_offset"]
    offset_c: float = Field(ge=-20, le=20)


class SensorNoise(_Event):
    """Electrical noise on the reading: ``noise_sd_c`` more Gaussian noise, and spikes of
    ``spike_c`` on a share ``spike_probability`` of the measurements (seeded)."""

    action: Literal["sensor_noise"]
    sensor: SensorName = "sensor"
    noise_sd_c: float = Field(0.0, ge=0, le=20)
    spike_c: float = Field(0.0, ge=-100, le=100)
    spike_probability: float = Field(0.0, ge=0, le=1)


class SensorLinkLost(_Event):
    """The sensor's Modbus server stops answering: requests time out."""

    action: Literal["sensor_link_lost"]


class SensorSlow(_Event):
    """The sensor still answers, but ``answer_ms`` late (wall time: the bridge is real);
    ``answer_ms: 0`` makes it prompt again. The value is taken when the request arrives, so
    it is that much older when it is served."""

    action: Literal["sensor_slow"]
    answer_ms: float = Field(ge=0, le=5000)


# --- any device's wire -----------------------------------------------------------------------


class LinkLost(_Event):
    """A device goes silent for good: a Modbus device stops answering, the laser's serial
    line carries nothing either way (so the laser's heartbeat stops too)."""

    action: Literal["link_lost"]
    device: LinkName


class DeviceDropout(_Event):
    """A Modbus device answers nothing for ``silent_ms`` (wall time), then answers again."""

    action: Literal["device_dropout"]
    device: ModbusName
    silent_ms: float = Field(gt=0, le=60_000)


class DeviceSlow(_Event):
    """A Modbus device answers ``answer_ms`` late (wall time); 0: prompt again."""

    action: Literal["device_slow"]
    device: ModbusName
    answer_ms: float = Field(ge=0, le=5000)


class WireGarbage(_Event):
    """A Modbus device's replies are damaged on the wire from now on: ``garbage`` (the
    reply's bytes replaced by seeded random bytes) or ``truncated`` (cut to half)."""

    action: Literal["wire_garbage"]
    device: ModbusName
    mode: Literal["garbage", "truncated"]


class ModbusExceptionReply(_Event):
    """A Modbus device answers every request with exception ``exception_code`` (4: server
    device failure, 6: busy) from now on."""

    action: Literal["modbus_exception"]
    device: ModbusName
    # The codes the Modbus specification (V1.1b3, §7) defines; 9 is not one of them.
    exception_code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 10, 11] = 4


# --- the laser and its interlock -------------------------------------------------------------


class LaserStopFault(_Event):
    """The laser's own stop route fails from now on (a hostile device for the halt path).

    ``stop_reply: lie`` answers STOP with its normal confirmation and keeps its state;
    ``stop_reply: none`` never answers STOP (every other command still works). With
    ``ignores_interlock`` its remote-interlock input is stuck too: it keeps reporting READY or
    FIRING when the relay opens (the relay still cuts the beam: no pulse fires).
    """

    action: Literal["laser_stop_fault"]
    stop_reply: Literal["lie", "none"]
    ignores_interlock: bool = False


class LaserOutputError(_Event):
    """The laser delivers other than it is set to, from now on (a laser out of calibration).

    Delivered energy per pulse = set energy x gain x (1 + drift_per_shot x n) + offset_j,
    where n counts the pulses since this event (0 for the first) and the set energy is the
    set fluence x the spot's area (pi x (spot_mm / 20)^2 cm^2). Never below 0 J. The skin
    gets the delivered energy too. ``gain: 1.3`` is a laser 30 % hot.
    """

    action: Literal["laser_output_error"]
    gain: float = Field(1.0, gt=0, le=10)
    offset_j: float = Field(0.0, ge=-100, le=100)
    drift_per_shot: float = Field(0.0, ge=-0.1, le=0.1)


class LaserPanelArm(_Event):
    """Someone arms the laser from its own panel while LaserGuard holds it in STANDBY, and
    the laser goes READY although its remote interlock is open (an interlock input jumpered
    or ignored by its firmware). The relay still cuts the beam: it reports READY or FIRING."""

    action: Literal["laser_panel_arm"]


class RelayStuckClosed(_Event):
    """The relay's contact welds shut: the module still acknowledges every write, but the
    laser's remote-interlock loop stays closed whatever is written."""

    action: Literal["relay_stuck_closed"]


# --- announced for the harness ---------------------------------------------------------------


class OperatorAction(_Event):
    """The operator does something at LaserGuard (not at the laser): put it in STANDBY."""

    action: Literal["operator"]
    do: Literal["standby"]


class HostFault(_Event):
    """A fault of the machine the bridge runs on, carried out by the harness:
    ``bridge_kill`` (SIGKILL), ``bridge_stall`` (no CPU at all for ``stall_ms``: the worst a
    starved host can do), ``log_disk_full``, ``log_read_only`` (the session log's file system)."""

    action: Literal["host_fault"]
    fault: Literal["bridge_kill", "bridge_stall", "log_disk_full", "log_read_only"]
    stall_ms: float | None = Field(None, gt=0, le=60_000)

    @model_validator(mode="after")
    def _stall_has_a_length(self) -> HostFault:
        if (self.fault == "bridge_stall") != (self.stall_ms is not None):
            raise ValueError("stall_ms goes with bridge_stall, and only with it")
        return self


ScenarioEvent = Annotated[
    Trigger
    | PanelSet
    | CoolerFailure
    | PlateRunaway
    | CoolerFlowLoss
    | SkinHeatLoad
    | SensorFreeze
    | SensorStuck
    | SensorDrift
    | SensorOffset
    | PlateOffset
    | SensorNoise
    | SensorLinkLost
    | SensorSlow
    | LinkLost
    | DeviceDropout
    | DeviceSlow
    | WireGarbage
    | ModbusExceptionReply
    | LaserStopFault
    | LaserOutputError
    | LaserPanelArm
    | RelayStuckClosed
    | OperatorAction
    | HostFault,
    Field(discriminator="action"),
]

#: Events the simulator only announces (``harness`` records) for the session's runner.
HARNESS_ACTIONS = frozenset({"operator", "host_fault"})
