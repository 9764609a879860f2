"""The simulated laser with a Modbus remote interface (issue 14 item 4a), served from its
profile's register map.

The laser is the same `LaserModel` as the line-based one; only the wire differs. The map is
the profile's (``laser.protocol.registers``), served by `sim.modbus_devices.RegisterDevice`,
so it is as strict as the other simulated devices: an address outside the map is exception
02, a value outside a register's range exception 03, a table the map lacks exception 01.

- the state register holds the code the profile's ``states`` gives the model's state; the
  emission bit is set while it fires; ``pulses`` counts; the settings read back as set;
- a setting written is the model's setter: refused (exception 04, SERVER DEVICE FAILURE)
  outside STANDBY, as a real laser refuses a change while armed;
- a command coil written 1 is the command (``arm`` refused with 04 when the interlock loop is
  open or no heartbeat came); the coil reads back what was written;
- a write to ``heartbeat`` is a heartbeat.

A laser with a broken STOP (``LaserModel.break_stop``) acknowledges the STOP coil and keeps
its state ("lie": the bridge reads READY and retries), or never answers the write ("none").
"""

from __future__ import annotations

from typing import Any

from pymodbus.constants import ExcCodes

from device_profiles.schema import LASER_SETTINGS, Laser, ModbusLaserProtocol, RegisterTable
from sim.laser import LaserModel
from sim.modbus_devices import RegisterDevice
from sim.world import DeviceFaults, World


class _Refused(Exception):
    """The laser refuses a written command or setting (exception 04)."""


class SimModbusLaser(RegisterDevice):
    role = "laser"

    def __init__(self, model: LaserModel, profile: Laser, world: World) -> None:
        proto = profile.protocol
        if not isinstance(proto, ModbusLaserProtocol):
            raise ValueError(f"laser {profile.model} is not a Modbus laser")
        self._faults = DeviceFaults()
        super().__init__(profile.modbus_device(), world)
        self.model = model
        self.proto = proto
        self.state_codes = {state: code for code, state in proto.states.items()}
        self.written: dict[str, float] = {}
        self.identity = 0 if proto.identify is None else proto.identify.value

    @property
    def faults(self) -> DeviceFaults:
        return self._faults

    def answering(self) -> bool:
        return not self.world.laser_link_lost and super().answering()

    def values(self) -> dict[str, float]:
        model = self.model
        out: dict[str, float] = {
            "state": float(self.state_codes[model.state.value]),
            "pulses": float(model.pulses),
            "status_word": 0.0,
            "emission": 1.0 if model.state.value == "FIRING" else 0.0,
            "delivered_j": model.last_delivered_j,
            **{name: model.settings[name] for name in LASER_SETTINGS},
            **self.written,
        }
        if self.proto.identify is not None:
            out[self.proto.identify.name] = float(self.identity)
        return out

    def write(self, name: str, value: float) -> None:
        model = self.model
        if name in LASER_SETTINGS:
            refused = model.set_setting(name, value)
        elif name == "heartbeat":
            model.heartbeat()
            refused = None
        elif name == "arm" and value:
            refused = model.arm()
        elif name == "standby" and value:
            model.standby()
            refused = None
        elif name == "stop" and value:
            model.stop()  # "none" never gets here: see _action
            refused = None
        else:
            refused = None
        if refused is not None:
            self.world.record("command_refused", command=name, reason=refused)
            raise _Refused(refused)
        if name not in LASER_SETTINGS:
            self.written[name] = value

    def _written(self, table: RegisterTable, address: int, words: list[int]) -> ExcCodes | None:
        try:
            return super()._written(table, address, words)
        except _Refused:
            return ExcCodes.DEVICE_FAILURE

    async def _action(
        self, function_code: int, start_address: int, address: int, *args: Any
    ) -> Any:
        stop = self.proto.registers["stop"]
        if function_code == 5 and address == stop.address and self.model.stop_fault == "none":
            self.model.stop()  # received, and never answered
            await self._silence.wait()
        return await super()._action(function_code, start_address, address, *args)
