"""The simulated laser that speaks binary frames (issue 14 item 4b), from its profile.

The same `LaserModel` as the line-based laser; requests and replies are frames built and
read with the bridge's own codec (``device_profiles.frames``), laid out as the profile says
(start byte, length, command byte, payload fields, checksum). `FrameLaserFront.handle`
answers one request frame; `SimFrameLaser` serves it on a pty, reading a byte stream as a
real laser's UART does: bytes before a start byte are dropped, and a frame with a bad
checksum gets no answer (the bridge's request then times out: a lost link).
"""

from __future__ import annotations

import os

from device_profiles.frames import FrameError, build, frame_length, pack, parse, unpack
from device_profiles.schema import BinaryFrameProtocol, FrameCommand, FrameField, Laser
from sim.laser import LaserModel
from sim.pty_line import PtyPort


class FrameLaserFront:
    """`LaserModel` behind the profile's binary frames: one request frame in, one reply out."""

    def __init__(self, model: LaserModel, profile: Laser) -> None:
        proto = profile.protocol
        if not isinstance(proto, BinaryFrameProtocol):
            raise ValueError(f"laser {profile.model} does not speak binary frames")
        self.model = model
        self.proto = proto
        self.state_codes = {state: code for code, state in proto.states.items()}
        by_code: dict[int, tuple[str, FrameCommand]] = {
            cmd.code: (name, cmd)
            for name, cmd in (
                ("status", proto.status),
                ("arm", proto.arm),
                ("standby", proto.standby),
                ("stop", proto.stop),
                ("heartbeat", proto.heartbeat),
            )
        }
        by_code.update({cmd.code: (f"set:{name}", cmd) for name, cmd in proto.set.items()})
        if proto.identify is not None:
            by_code[proto.identify.code] = ("identify", proto.identify)
        self.by_code = by_code

    def _error(self, reason: str) -> bytes:
        return build(self.proto, self.proto.error_reply, reason.encode("ascii"))

    def handle(self, frame: bytes) -> bytes | None:
        """The reply to one whole request frame; None: no reply (bad frame, silent STOP)."""
        model = self.model
        try:
            code, payload = parse(self.proto, frame)
        except FrameError as e:
            model.world.record("frame_dropped", error=str(e)[:120])
            return None
        model.world.advance()
        if code not in self.by_code:
            return self._error("UNKNOWN COMMAND")
        name, cmd = self.by_code[code]
        if name not in ("status", "heartbeat"):
            model.world.record("command", line=name)
        reply = self._dispatch(name, cmd, payload)
        model.world.advance()
        return reply

    def _dispatch(self, name: str, cmd: FrameCommand, payload: bytes) -> bytes | None:
        model, proto = self.model, self.proto
        if name == "status":
            values = {
                "state": float(self.state_codes[model.state.value]),
                "pulses": float(model.pulses),
                "delivered_j": model.last_delivered_j,
                **model.settings,
            }
            return build(proto, cmd.reply, pack(proto, proto.status_fields, values))
        if name == "identify":
            return build(proto, cmd.reply, (proto.identity or "").encode("ascii"))
        if name == "heartbeat":
            model.heartbeat()
        elif name == "standby":
            model.standby()
        elif name == "stop":
            if not model.stop():
                return None
        elif name == "arm":
            if (refused := model.arm()) is not None:
                return self._error(refused)
        else:
            setting = name.removeprefix("set:")
            setter = proto.set[setting]
            field = [FrameField(name="value", type=setter.type, scale=setter.scale)]
            try:
                value = unpack(proto, field, payload)["value"]
            except FrameError:
                return self._error("BAD VALUE")
            if (refused := model.set_setting(setting, value)) is not None:
                return self._error(refused)
            return build(proto, cmd.reply, pack(proto, field, {"value": value}))
        return build(proto, cmd.reply)


class SimFrameLaser(PtyPort):
    """`FrameLaserFront` on a pty; ``path`` is the slave device for the bridge to open."""

    MAX_BUFFER = 1024

    def __init__(self, front: FrameLaserFront) -> None:
        super().__init__()
        self.front = front

    def _next_frame(self) -> bytes | None:
        start = bytes([self.front.proto.start_byte])
        idx = self._buffer.find(start)
        if idx < 0:
            self._buffer = b""
            return None
        self._buffer = self._buffer[idx:]
        if len(self._buffer) < 2:
            return None
        try:
            n = frame_length(self.front.proto, self._buffer[:2])
        except FrameError:
            self._buffer = self._buffer[1:]  # not a frame's start after all
            return self._next_frame()
        if len(self._buffer) < n:
            return None
        frame, self._buffer = self._buffer[:n], self._buffer[n:]
        return frame

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        if self.front.model.world.laser_link_lost:
            self._buffer = b""
            return
        self._buffer = (self._buffer + data)[-self.MAX_BUFFER :]
        while (frame := self._next_frame()) is not None:
            reply = self.front.handle(frame)
            if reply is not None:
                try:
                    os.write(self._master, reply)
                except BlockingIOError:
                    self.front.model.world.record("reply_dropped", reply=reply.hex())
