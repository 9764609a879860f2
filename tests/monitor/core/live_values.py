"""A LiveState with every channel in range, as the device workers would leave it."""

from __future__ import annotations

from firmware_bridge.live import LASER_STATE_CODES, Ch, Dev, LiveState

IN_RANGE = {
    Ch.SKIN_TEMP_C: 22.0,  # a contact-cooled surface between pulses
    Ch.PLATE_TEMP_C: 5.0,
    Ch.FLOW_L_MIN: 1.2,
    Ch.COOLER_SETPOINT_C: 5.0,
    Ch.SENSOR_FAULT_CODE: 0.0,
    Ch.COOLER_FAULT_CODE: 0.0,
    Ch.FLUENCE_J_CM2: 150.0,
    Ch.PULSE_MS: 20.0,
    Ch.SPOT_MM: 2.0,
    Ch.REP_RATE_HZ: 1.0,
    Ch.LASER_STATE: LASER_STATE_CODES["STANDBY"],
    Ch.LASER_PULSES: 0.0,
    Ch.SKIN_TEMP_2_C: 22.0,  # read only with a second skin sensor: agrees with the first
    Ch.SENSOR2_FAULT_CODE: 0.0,
}


def healthy(now_ns: int) -> LiveState:
    """Every value in range, every link up, every device fresh at ``now_ns``."""
    live = LiveState()
    for ch, value in IN_RANGE.items():
        live.store(ch, value)
    for dev in Dev:
        live.link_up(dev)
    live.fresh_ns[:] = now_ns
    return live
