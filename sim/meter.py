"""The simulated energy meter: any meter description, answered on a pseudo-terminal.

`MeterModel` answers the commands its ``MeterDescription`` lists, with the description's own
``answer`` templates (the loader has checked that its ``reply`` patterns read them), so every
description runs against the driver with no new code. `SimMeter` puts it on a pty like the
simulated laser.

What it measures: the energy of each service-mode test shot the simulated laser fires into
it (``World.shot_into_meter``), as a meter with a pyroelectric head would:

    reading = delivered x k x (1 + N(0, noise_rms_fraction)) + N(0, head.noise_floor_j)

with k = 1 while the meter is set to the laser's wavelength (within 0.5 nm) and
``wrong_wavelength_factor`` otherwise (the head's spectral correction applied for the wrong
line; one stated factor, not a measured curve). Noise is seeded from the scenario. A shot
above the head's ``max_energy_j`` reads as the description's over-range answer. The meter
powers up at ``start_wavelength_nm`` (532 nm by default: a 1064 nm laser must set it).

Refusals follow the description: a meter with an ``error_reply`` answers it ("?UNKNOWN
COMMAND"); a SCPI meter (``error_query``) answers nothing to a command it does not know,
queues the error (-113) and, for a wavelength outside its head's range, keeps its wavelength
and queues -222. The head reports ``head_calibrated`` (from the scenario's ``meter``
settings) when its description can; an expired date is the way to test a meter whose own
calibration ran out.
"""

from __future__ import annotations

import random
import re
from collections import deque
from datetime import date, timedelta

from device_profiles.meter import MeterCommand, MeterDescription, send_pattern
from sim.pty_line import PtyLineDevice
from sim.scenario import MeterSettings
from sim.world import World

#: SCPI error codes (SCPI-1999 Vol. 2, error/event queue) the simulated SCPI meter queues.
UNDEFINED_HEADER = (-113, "UNDEFINED HEADER")
DATA_OUT_OF_RANGE = (-222, "DATA OUT OF RANGE")
_UNKNOWN_REASON = "UNKNOWN COMMAND"
_OUT_OF_RANGE_REASON = "WAVELENGTH OUT OF RANGE"
_SAME_WAVELENGTH_NM = 0.5


class MeterModel:
    def __init__(
        self,
        world: World,
        desc: MeterDescription,
        settings: MeterSettings,
        *,
        seed: int,
        today: date | None = None,
    ) -> None:
        self.world = world
        self.desc = desc
        self.wavelength_nm = settings.start_wavelength_nm
        self.head_calibrated = settings.head_calibrated or (
            (today or date.today()) - timedelta(days=30)
        )
        self.noise_rms_fraction = settings.noise_rms_fraction
        self.wrong_wavelength_factor = settings.wrong_wavelength_factor
        self.auto_range = False
        self.reading_j = 0.0  # what the head measured for the latest pulse
        self.over_range = False
        self.pulse_waiting = False  # a pulse measured that read_energy has not returned
        self.pulses = 0
        self.errors: deque[tuple[int, str]] = deque(maxlen=16)  # a SCPI meter's error queue
        self._rng = random.Random(f"meter:{seed}")
        commands: list[tuple[str, MeterCommand]] = list(desc.commands.named().items())
        if desc.error_query is not None:
            commands.append(("error_query", desc.error_query))
        self._commands = [(name, send_pattern(cmd.send), cmd) for name, cmd in commands]
        world.meter = self

    # --- what the laser does to it ------------------------------------------------------------

    def on_pulse(self, delivered_j: float) -> None:
        laser_nm = self.world.setup.laser.wavelength_nm
        tuned = abs(self.wavelength_nm - laser_nm) <= _SAME_WAVELENGTH_NM
        k = 1.0 if tuned else self.wrong_wavelength_factor
        noise = self._rng.gauss(0.0, self.noise_rms_fraction)
        floor = self._rng.gauss(0.0, self.desc.head.noise_floor_j)
        self.reading_j = delivered_j * k * (1.0 + noise) + floor
        self.over_range = delivered_j > self.desc.head.max_energy_j
        self.pulse_waiting = True
        self.pulses += 1
        self.world.record(
            "meter_pulse",
            delivered_j=delivered_j,
            reading_j=self.reading_j,
            over_range=self.over_range,
            meter_wavelength_nm=self.wavelength_nm,
        )

    # --- the wire -----------------------------------------------------------------------------

    def record_dropped(self, reply: str) -> None:
        """A reply nobody read (the port's buffer was full): dropped, as by a UART."""
        self.world.record("reply_dropped", reply=reply[:80])

    def handle_line(self, line: str) -> str | None:
        """One command line (without terminator) in, one reply line out (None: no reply)."""
        self.world.advance()
        for name, pattern, cmd in self._commands:
            m = pattern.fullmatch(line)
            if m is not None:
                if name != "energy_ready":  # polled every 50-100 ms: too frequent to log
                    self.world.record("meter_command", line=line)
                return self._answer(name, cmd, m)
        self.world.record("meter_command", line=line[:80], known=False)
        return self._refuse(UNDEFINED_HEADER, _UNKNOWN_REASON, None)

    def line_noise(self) -> str | None:
        """The answer to bytes that never made a line (an overflowing input buffer)."""
        self.world.record("meter_command", line="(line noise)", known=False)
        return self._refuse(UNDEFINED_HEADER, _UNKNOWN_REASON, None)

    def _refuse(self, code: tuple[int, str], reason: str, otherwise: str | None) -> str | None:
        """A refusal as the description says the meter makes it."""
        if self.desc.error_reply is not None:
            return self.desc.error_reply.format_answer(reason=reason)
        if self.desc.error_query is not None:
            self.errors.append(code)
        return otherwise

    def _answer(self, name: str, cmd: MeterCommand, m: re.Match[str]) -> str | None:
        match name:
            case "head_info":
                fmt = self.desc.commands.head_info.calibrated_format
                day = self.head_calibrated
                return cmd.format_answer(head_calibrated=day.strftime(fmt) if fmt else str(day))
            case "set_wavelength":
                nm = float(m["nm"])
                head = self.desc.head.wavelength_nm
                if not head.min <= nm <= head.max:
                    kept = cmd.format_answer(wavelength_nm=self.wavelength_nm)
                    return self._refuse(DATA_OUT_OF_RANGE, _OUT_OF_RANGE_REASON, kept)
                self.wavelength_nm = nm
                return cmd.format_answer(wavelength_nm=nm)
            case "get_wavelength":
                return cmd.format_answer(wavelength_nm=self.wavelength_nm)
            case "range_auto":
                self.auto_range = True
                return cmd.format_answer()
            case "read_energy":
                self.pulse_waiting = False
                if self.over_range:
                    return self.desc.over_range.format_answer()
                return cmd.format_answer(energy=self.desc.reported(self.reading_j))
            case "energy_ready":
                ready = self.desc.commands.energy_ready
                value = ready.ready_value if self.pulse_waiting else ready.not_ready_value
                return cmd.format_answer(ready=value)
            case "error_query":
                assert self.desc.error_query is not None
                code, reason = (
                    self.errors.popleft()
                    if self.errors
                    else (self.desc.error_query.no_error_code, "NO ERROR")
                )
                return cmd.format_answer(code=code, reason=reason)
        return cmd.format_answer()  # identify: the sample identity the loader checked


class SimMeter(PtyLineDevice):
    """`MeterModel` served on a pty; `path` is the slave device for the driver to open."""

    def __init__(self, model: MeterModel) -> None:
        super().__init__(model, model.desc.terminator)
        self.meter = model

    def on_overflow(self) -> str | None:
        # Line noise without a terminator: a real meter's input buffer overflows too.
        return self.meter.line_noise()
