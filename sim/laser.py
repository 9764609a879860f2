"""The simulated laser: its profile's serial command set on a pseudo-terminal.

`LaserModel` is the laser's state machine; `SimLaser` puts it on the slave side of a pty so
that the bridge opens it with pyserial exactly like a USB serial port. The lines it takes
and the replies it gives are the profile's (``sim.laser_lines``: the bundled command set
v1, or a clinic's own); the same model also stands behind a Modbus register map
(``sim.laser_modbus``) and binary frames (``sim.laser_frames``).

States: STANDBY --ARM--> READY; READY with the footswitch pressed --> FIRING, one pulse every
1/rep_rate_hz simulated seconds; footswitch released --> READY; STOP or STANDBY --> STANDBY.
Fail-safe, like a real laser's remote interlock: the laser drops to STANDBY by itself when
no ``HB`` arrives for ``heartbeat_timeout_ms`` (wall time: the bridge is real), and cannot
emit or arm while the interlock loop (the relay) is open.

A hostile laser for the halt path (``break_stop``, a scenario's ``laser_stop_fault``): it
answers STOP with "OK STOPPED" and keeps firing, or never answers STOP; optionally its
interlock input is stuck, so it keeps *reporting* READY/FIRING with the relay open. The relay
still cuts the beam (``fire`` needs it closed): that is what the relay is for.

A pty has no control lines (setting DTR on one silently does nothing), which is why the
interlock is a Modbus relay module here, not a serial line.

A service mode for calibration: ``SERVICE ON`` (from STANDBY) aims the handpiece at the
energy meter; ``SERVICE SHOT`` then fires one test shot at the current settings into the
meter (never into skin), if the interlock loop is closed and the heartbeat alive; the state
stays STANDBY. ``SERVICE OFF``, ``STANDBY``, ``STOP`` and a lost heartbeat end it. Every
pulse counts in PULSES.

Output error (a scenario's ``laser_output_error``): the energy a pulse delivers is
``set energy x gain x (1 + drift_per_shot x n) + offset_j`` (n: pulses since the error
began), the set energy being fluence x spot area. The skin gets the delivered fluence.
When the laser's profile says its status reports delivered energy (a ``delivered_j`` group
in the status reply), the status line ends in ``E=<joules of the last pulse>``, as a laser's
own energy monitor would report it.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from device_profiles.laser_state import LaserState
from device_profiles.schema import LASER_SETTINGS, Laser, LaserProtocol
from sim.laser_lines import LineCommandSet
from sim.pty_line import PtyLineDevice
from sim.world import World

StopFault = Literal["lie", "none"]

#: Settings the laser powers up with; the bridge sets its own before arming.
POWER_ON_SETTINGS = {"fluence_j_cm2": 60.0, "pulse_ms": 20.0, "spot_mm": 3.0, "rep_rate_hz": 1.0}


def spot_area_cm2(spot_mm: float) -> float:
    """The area of a round spot of diameter ``spot_mm``: pi x (spot_mm / 20)^2 cm^2."""
    return math.pi * (spot_mm / 20.0) ** 2


class LaserModel:
    def __init__(self, world: World, profile: Laser) -> None:
        self.world = world
        self.heartbeat_timeout_s = profile.heartbeat_timeout_ms / 1000.0
        self.state = LaserState.STANDBY
        self.pulses = 0
        self.settings = dict(POWER_ON_SETTINGS)
        self.last_heartbeat: float | None = None  # time.monotonic()
        self.heartbeat_lost = False
        self._next_pulse_s: float | None = None
        self.stop_fault: StopFault | None = None
        self.ignores_interlock = False
        self.service_mode = False
        # Output error (1, 0, 0: the laser delivers what it is set to).
        self.output_gain = 1.0
        self.output_offset_j = 0.0
        self.drift_per_shot = 0.0
        self._pulses_since_error = 0
        # The laser's own energy monitor: the last pulse's delivered energy, in its status.
        self.reports_delivered = profile.protocol.reports_delivered_energy
        self.last_delivered_j = 0.0
        # What the laser says its serial number is, to an identify command whose reply
        # pattern has a ``serial`` group (another laser on the same port: change it).
        self.serial = "SN000123"
        # A line-based laser's command set, from its profile (issue 14 item 5): the lines it
        # understands and the replies it renders. Lasers on other wires: sim.laser_wires.
        proto = profile.protocol
        self.commands = LineCommandSet(proto) if isinstance(proto, LaserProtocol) else None
        world.laser = self

    # --- commands --------------------------------------------------------------------------

    def break_stop(self, reply: StopFault | None, *, ignores_interlock: bool = False) -> None:
        """From now on STOP is answered with a lie ("lie"), not at all ("none"), or works
        again (None); ``ignores_interlock``: the relay opening no longer changes the state."""
        self.stop_fault = reply
        self.ignores_interlock = ignores_interlock
        self.world.record("laser_stop_fault", stop_reply=reply, ignores_interlock=ignores_interlock)

    def set_output_error(self, gain: float, offset_j: float, drift_per_shot: float) -> None:
        """From now on each pulse delivers ``set x gain x (1 + drift x n) + offset_j``."""
        self.output_gain = gain
        self.output_offset_j = offset_j
        self.drift_per_shot = drift_per_shot
        self._pulses_since_error = 0
        self.world.record(
            "laser_output_error", gain=gain, offset_j=offset_j, drift_per_shot=drift_per_shot
        )

    def set_energy_j(self) -> float:
        """The energy per pulse the settings ask for: fluence x spot area."""
        return self.settings["fluence_j_cm2"] * spot_area_cm2(self.settings["spot_mm"])

    def _emit(self) -> tuple[float, float]:
        """Count one pulse; its (delivered energy in J, delivered fluence in J/cm2)."""
        area_cm2 = spot_area_cm2(self.settings["spot_mm"])
        gain = self.output_gain * (1.0 + self.drift_per_shot * self._pulses_since_error)
        # Written so that with no output error the fluence is the set one, bit for bit.
        fluence = self.settings["fluence_j_cm2"] * gain + self.output_offset_j / area_cm2
        fluence = max(fluence, 0.0)
        self.pulses += 1
        self._pulses_since_error += 1
        self.last_delivered_j = fluence * area_cm2
        return self.last_delivered_j, fluence

    def record_dropped(self, reply: str) -> None:
        """A reply nobody read (the port's buffer was full): dropped, as by a UART."""
        self.world.record("reply_dropped", reply=reply)

    def handle_line(self, line: str) -> str | None:
        """One command line (without terminator) in, one reply line out (None: no reply)."""
        if self.commands is None:
            raise ValueError("this laser's profile has no command lines")
        self.world.advance()
        command = line.strip()
        hit = self.commands.match(command)
        if hit is None or hit[0] not in ("status", "heartbeat"):
            self.world.record("command", line=command)
        reply = self.commands.error("UNKNOWN COMMAND") if hit is None else self._dispatch(*hit)
        self.world.advance()
        return reply

    # --- the commands, whatever the wire (lines, registers, frames) ----------------------------

    def heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()
        self.heartbeat_lost = False

    def standby(self) -> None:
        self._service(False, "standby command")
        self._go(LaserState.STANDBY, "standby command")

    def stop(self) -> bool:
        """STOP received; False: the laser does not answer it (a silent-stop fault)."""
        self.world.record("stop_received", state=self.state.value, fault=self.stop_fault)
        self.world.notify("stop_received")
        if self.stop_fault == "none":
            return False
        if self.stop_fault is None:
            self._service(False, "stop command")
            self._go(LaserState.STANDBY, "stop command")
        return True

    def arm(self) -> str | None:
        """ARM; the reason it is refused, or None."""
        if self.service_mode:
            return "SERVICE MODE"
        if not self.world.relay_closed:
            return "INTERLOCK OPEN"
        if self.last_heartbeat is None or self.heartbeat_lost:
            return "NO HEARTBEAT"
        if self.state is LaserState.STANDBY:
            self._go(LaserState.READY, "arm command")
            self._maybe_fire()
        return None

    def set_setting(self, name: str, value: float) -> str | None:
        """A setter; the reason it is refused, or None."""
        if not math.isfinite(value) or value <= 0:
            return "BAD VALUE"
        if self.state is not LaserState.STANDBY:
            return "NOT IN STANDBY"
        self.settings[name] = value
        return None

    def _dispatch(self, name: str, word: str | None) -> str | None:
        """One command of the profile's command set; the reply it renders (None: silence)."""
        commands = self.commands
        assert commands is not None
        refused: str | None = None
        match name:
            case "status":
                return commands.status_line(
                    self.state.value, self.pulses, self.settings, self.last_delivered_j
                )
            case "heartbeat":
                self.heartbeat()
            case "arm":
                refused = self.arm()
            case "standby":
                self.standby()
            case "stop":
                if not self.stop():
                    return None
            case "service_on":
                if self.state is not LaserState.STANDBY:
                    refused = "NOT IN STANDBY"
                else:
                    self._service(True, "service command")
            case "service_off":
                self._service(False, "service command")
            case "service_shot":
                refused = self._service_shot()
            case "identify":
                pass
            case _:
                setting = name.removeprefix("set:")
                try:
                    value = float(word or "")
                except ValueError:
                    return commands.error("BAD VALUE")
                refused = self.set_setting(setting, value)
                if refused is None:
                    return commands.confirm(setting, value)
        if refused is not None:
            return commands.error(refused)
        if name == "identify":
            return commands.reply(name, {"serial": self.serial})
        return commands.reply(name)

    def _service(self, on: bool, why: str) -> None:
        if on != self.service_mode:
            self.service_mode = on
            self.world.record("service_mode", on=on, why=why)

    def _service_shot(self) -> str | None:
        """One test shot into the meter; the reason it is refused, or None."""
        if not self.service_mode:
            return "NOT IN SERVICE MODE"
        if not self.world.relay_closed:
            return "INTERLOCK OPEN"
        if self.last_heartbeat is None or self.heartbeat_lost:
            return "NO HEARTBEAT"
        set_j = self.set_energy_j()
        delivered_j, _ = self._emit()
        self.world.record(
            "pulse",
            pulses=self.pulses,
            settings=dict(self.settings),
            service=True,
            set_j=set_j,
            delivered_j=delivered_j,
        )
        self.world.shot_into_meter(delivered_j)
        return None

    # --- what the world tells the laser -----------------------------------------------------

    def panel_set(self, setting: str, value: float) -> None:
        """A knob on the laser's own panel: changes a setting in any state."""
        if setting not in LASER_SETTINGS:
            raise ValueError(f"no laser setting {setting!r}")
        self.settings[setting] = value

    def panel_arm(self) -> None:
        """ARM pressed on the laser's own panel: READY, whatever its interlock input says
        (an input jumpered or ignored: from now on it no longer follows the relay)."""
        self.ignores_interlock = True
        self.world.record("laser_panel_arm", state=self.state.value)
        if self.state is LaserState.STANDBY and not self.service_mode:
            self._go(LaserState.READY, "panel arm")
            if self.world.trigger_pressed:
                self._go(LaserState.FIRING, "trigger pressed")
                self._next_pulse_s = self.world.t_s

    def on_trigger(self, pressed: bool) -> None:
        if pressed:
            self._maybe_fire()
        elif self.state is LaserState.FIRING:
            self._go(LaserState.READY, "trigger released")

    def on_interlock(self, closed: bool) -> None:
        if self.ignores_interlock:
            return  # a stuck interlock input: the state it reports no longer follows the relay
        if not closed and self.state.can_emit:
            self._go(LaserState.STANDBY, "interlock open")

    def check_heartbeat(self, now: float) -> None:
        """Called often on wall time; drops to STANDBY when the bridge has gone quiet."""
        if self.last_heartbeat is None or self.heartbeat_lost:
            return
        if now - self.last_heartbeat > self.heartbeat_timeout_s:
            self.heartbeat_lost = True
            self.world.record(
                "heartbeat_lost", silent_ms=round((now - self.last_heartbeat) * 1000.0, 1)
            )
            self._service(False, "heartbeat lost")
            if self.state is not LaserState.STANDBY:
                self._go(LaserState.STANDBY, "heartbeat lost")

    # --- emission ---------------------------------------------------------------------------

    def next_pulse_s(self) -> float | None:
        return self._next_pulse_s if self.state is LaserState.FIRING else None

    def fire(self, t_s: float) -> None:
        """Emit the pulse due at simulated time ``t_s``."""
        if self.state is not LaserState.FIRING or not self.world.relay_closed:
            self._next_pulse_s = None
            return
        delivered_j, fluence = self._emit()
        skin_c = self.world.skin.pulse(fluence)
        self.world.pulse_heated_skin()
        self._next_pulse_s = t_s + 1.0 / self.settings["rep_rate_hz"]
        self.world.record(
            "pulse",
            pulses=self.pulses,
            settings=dict(self.settings),
            skin_temp_c=skin_c,
            delivered_j=delivered_j,
        )
        self.world.notify("pulse")

    def _maybe_fire(self) -> None:
        if (
            self.state is LaserState.READY
            and self.world.trigger_pressed
            and self.world.relay_closed
        ):
            self._go(LaserState.FIRING, "trigger pressed")
            self._next_pulse_s = self.world.t_s

    def _go(self, state: LaserState, why: str) -> None:
        if state == self.state:
            return
        self.world.record("state", **{"from": self.state.value, "to": state.value, "why": why})
        self.state = state
        if state is not LaserState.FIRING:
            self._next_pulse_s = None
        if state is LaserState.READY:
            self.world.notify("laser_ready")


class SimLaser(PtyLineDevice):
    """`LaserModel` served on a pty; `path` is the slave device for the bridge to open."""

    def __init__(self, model: LaserModel, terminator: str = "\r\n") -> None:
        super().__init__(model, terminator)
        self.laser = model

    def split_line(self) -> str | None:
        # The laser takes LF or CRLF, whatever its own terminator.
        if b"\n" not in self._buffer:
            return None
        raw, self._buffer = self._buffer.split(b"\n", 1)
        return raw.rstrip(b"\r").decode("ascii", errors="replace")

    def on_overflow(self) -> str | None:
        # Line noise without a terminator: a real laser's input buffer would overflow too.
        commands = self.laser.commands
        return None if commands is None else commands.error("UNKNOWN COMMAND")

    def disconnected(self) -> bool:
        return self.laser.world.laser_link_lost  # the cable is out: nothing in, nothing out
