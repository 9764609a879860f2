"""The simulated laser on the wire its profile names: lines or binary frames on a pty, or a
Modbus register map on a TCP socket (issue 14 item 4). The runner opens whichever the
setup's laser speaks, through one small interface."""

from __future__ import annotations

import asyncio
from typing import Any

from device_profiles.schema import BinaryFrameProtocol, Laser, LaserProtocol, ModbusLaserProtocol
from sim.laser import LaserModel, SimLaser
from sim.laser_frames import FrameLaserFront, SimFrameLaser
from sim.laser_modbus import SimModbusLaser
from sim.world import World


class LaserWire:
    """The laser's wire: ``open`` returns its endpoint (a pty path, or host and port)."""

    def __init__(self, model: LaserModel, profile: Laser, world: World) -> None:
        proto = profile.protocol
        self._pty: SimLaser | SimFrameLaser | None = None
        self._modbus: SimModbusLaser | None = None
        if isinstance(proto, LaserProtocol):
            self._pty = SimLaser(model, proto.terminator)
        elif isinstance(proto, BinaryFrameProtocol):
            self._pty = SimFrameLaser(FrameLaserFront(model, profile))
        elif isinstance(proto, ModbusLaserProtocol):
            self._modbus = SimModbusLaser(model, profile, world)

    async def open(self, port: int = 0) -> str | dict[str, Any]:
        if self._pty is not None:
            return self._pty.open(asyncio.get_running_loop())
        assert self._modbus is not None
        await self._modbus.serve("127.0.0.1", port)
        return self._modbus.endpoint

    async def close(self) -> None:
        if self._pty is not None:
            self._pty.close()
        if self._modbus is not None:
            await self._modbus.shutdown()
