"""The devices of a calibration bench: the laser (through the bridge) and the energy meter.

The laser is reached through the same ``Bridge`` as in treatment: its worker keeps the
heartbeat (the laser leaves service mode by itself when LaserGuard dies) and the relay
worker keeps the remote-interlock relay energised only while the run asks for it (test shots
need the loop closed) and refreshed for its watchdog. The sensor and the cooler are polled
as in treatment; the reference checks read them from the live values. There is no interlock
loop: no patient is in front of the laser, and the laser is in service mode, which refuses
to arm.

``stop(why)`` is the way out of every run, whatever ended it: the halt path first (the
laser's stop command and the relay opened, never blocking), then service mode off and
STANDBY, confirmed by the laser where it still answers. A second call does nothing.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from device_profiles.energy import set_energy_j
from device_profiles.laser_state import LaserState
from device_profiles.meter import MeterDescription
from device_profiles.schema import Setup
from firmware_bridge.bridge import Bridge
from firmware_bridge.drivers import LaserDriver, LaserStatus
from firmware_bridge.errors import BridgeError
from firmware_bridge.live import Ch, Dev
from firmware_bridge.meter import EnergyMeterDriver, meter_transport
from firmware_bridge.transport import TransportFactory

__all__ = ["BenchFault", "CalibrationRig", "Settings"]

Settings = dict[str, float]
#: The temperature channels a reference check reads.
REFERENCE_CHANNELS = {
    "skin_sensor": (Ch.SKIN_TEMP_C, Dev.SENSOR),
    "plate": (Ch.PLATE_TEMP_C, Dev.COOLER),
}
_READ_PERIOD_S = 0.02


class BenchFault(Exception):
    """The bench cannot go on: a device lost, a laser in the wrong state. Ends the run."""


class CalibrationRig:
    """The bridge to the laser, cooler, sensor and relay, and the meter's driver."""

    def __init__(
        self,
        setup: Setup,
        meter_description: MeterDescription,
        *,
        transports: TransportFactory | None = None,
        meter: EnergyMeterDriver | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if setup.energy_meter is None:
            raise ValueError(f"setup {setup.name} names no energy meter")
        self.setup = setup
        self.meter_description = meter_description
        self.connect_timeout_s = connect_timeout_s
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._events_lock = threading.Lock()
        self.bridge = Bridge(setup, on_event=self._on_event, transports=transports)
        self._meter = meter
        self._stopped = False

    # --- the bridge's words: kept for the run to record on its own thread -------------------

    def _on_event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "pulses":
            return  # the run records every shot with its own count
        with self._events_lock:
            self._events.append((kind, payload))

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        """What the bridge reported since the last call (links lost and back, halts)."""
        with self._events_lock:
            out, self._events = self._events, []
        return out

    # --- connecting -------------------------------------------------------------------------

    def connect(self) -> EnergyMeterDriver:
        """Start the bridge and wait for the laser and relay; open the meter's port (the
        setup's ``energy_meter.port``, else its description's)."""
        self.bridge.start()
        live = self.bridge.live
        deadline = time.monotonic() + self.connect_timeout_s
        while time.monotonic() < deadline:
            if live.link_ok[Dev.LASER] and live.link_ok[Dev.INTERLOCK] and live.fresh_ns[Dev.LASER]:
                break
            time.sleep(0.01)
        else:
            missing = [d.name.lower() for d in (Dev.LASER, Dev.INTERLOCK) if not live.link_ok[d]]
            raise BenchFault(
                f"the {' and '.join(missing) or 'laser'} did not answer within "
                f"{self.connect_timeout_s:g} s"
            )
        if self._meter is None:
            assert self.setup.energy_meter is not None
            desc = self.meter_description
            port = self.setup.energy_meter.port
            self._meter = EnergyMeterDriver(desc, meter_transport(desc, port))
        return self._meter

    @property
    def meter(self) -> EnergyMeterDriver:
        if self._meter is None:
            raise BenchFault("the meter is not connected")
        return self._meter

    # --- the laser ----------------------------------------------------------------------------

    def _laser(self, fn: Any, timeout_s: float = 2.0) -> Any:
        try:
            return self.bridge.laser_call(fn, timeout_s)
        except TimeoutError as e:
            raise BenchFault(f"the laser did not answer within {timeout_s:g} s") from e

    def laser_status(self) -> LaserStatus:
        status: LaserStatus = self._laser(lambda laser: laser.status())
        return status

    def trouble(self) -> str | None:
        """Why no shot may be fired now: a lost link, a laser that left STANDBY."""
        live = self.bridge.live
        for dev in (Dev.LASER, Dev.INTERLOCK):
            if not live.link_ok[dev]:
                return f"lost the {dev.name.lower()}: {live.link_error[dev] or 'no answer'}"
        state = live.laser_state()
        if state != LaserState.STANDBY.value:
            return f"the laser reports {state}, not STANDBY: test shots are fired only in STANDBY"
        return None

    def permit(self) -> None:
        """Energise the relay (test shots need the remote-interlock loop closed)."""
        self.bridge.set_permit(True)
        try:
            self.bridge.wait_relay_closed()
        except BridgeError as e:
            raise BenchFault(f"the interlock relay did not close: {e}") from e

    def service_on(self) -> None:
        self._laser(lambda laser: laser.service_on())

    def set_point(self, spot_mm: float, fluence_j_cm2: float) -> Settings:
        """Set the spot and fluence (STANDBY, service mode); returns the laser's read-back."""

        def apply(laser: LaserDriver) -> Settings:
            laser.set("spot_mm", spot_mm)
            laser.set("fluence_j_cm2", fluence_j_cm2)
            status = laser.status()
            self.bridge.publish_status(status)
            return status.settings

        settings: Settings = self._laser(apply)
        return settings

    def fire(self) -> LaserStatus:
        """One service shot; the laser's status right after it (its pulse counter)."""

        def shot(laser: LaserDriver) -> LaserStatus:
            laser.service_shot()
            status = laser.status()
            self.bridge.publish_status(status)
            return status

        status: LaserStatus = self._laser(shot)
        return status

    @staticmethod
    def set_energy_of(settings: Settings) -> float:
        return set_energy_j(settings["fluence_j_cm2"], settings["spot_mm"])

    # --- the thermometers ---------------------------------------------------------------------

    def read_temperature(self, sensor: str, seconds: float) -> tuple[float, ...]:
        """Readings of ``sensor`` ("skin_sensor", "plate") over ``seconds``, from the live
        values its worker polls; a lost link or a reading that is not a number is a fault."""
        ch, dev = REFERENCE_CHANNELS[sensor]
        live = self.bridge.live
        out: list[float] = []
        last_fresh = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or not out:
            if not live.link_ok[dev]:
                raise BenchFault(
                    f"lost the {dev.name.lower()}: {live.link_error[dev] or 'no answer yet'}"
                )
            fresh = int(live.fresh_ns[dev])
            value = float(live.value[ch])
            if fresh != last_fresh and fresh:
                if not math.isfinite(value):
                    why = live.fault[ch] or "not a number"
                    raise BenchFault(f"the {dev.name.lower()} gave no reading: {why}")
                out.append(value)
                last_fresh = fresh
            if time.monotonic() > deadline + self.connect_timeout_s:
                raise BenchFault(f"the {dev.name.lower()} sent no fresh reading")
            time.sleep(_READ_PERIOD_S)
        return tuple(out)

    # --- the way out --------------------------------------------------------------------------

    def stop(self, why: str) -> str:
        """Laser out of service mode and in STANDBY, relay open; what happened, in words.

        The halt path goes first and never blocks; the confirmation is asked after.
        """
        if self._stopped:
            return "already stopped"
        self._stopped = True
        self.bridge.halt(f"calibration ended: {why}", quiet=True)

        def safe(laser: LaserDriver) -> LaserStatus:
            laser.service_off()
            laser.standby()
            return laser.status()

        try:
            status: LaserStatus = self.bridge.laser_call(safe, 2.0)
            words = f"laser confirmed service mode off, {status.state}"
        except (BridgeError, TimeoutError) as e:
            words = f"the laser did not confirm STANDBY ({e or type(e).__name__}); relay opened"
        return words

    def close(self) -> None:
        """Stop every worker (the relay is opened) and release the meter. Safe twice."""
        if not self._stopped:
            self.stop("closed")
        self.bridge.close()
        if self._meter is not None:
            self._meter.close()
