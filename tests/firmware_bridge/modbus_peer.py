"""A hostile Modbus device: a real listening socket whose replies a test writes byte by byte.

pymodbus' own server only ever sends well-formed replies; a device that lies (another function
code, another unit id, a byte count that does not fit the frame, a wrong write echo) has to be
written by hand. ``ModbusPeer`` speaks Modbus TCP (MBAP header) or RTU framing (CRC, no header;
reached by pyserial's ``socket://`` URL, as the simulator's RTU devices are).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from device_profiles.frames import crc16_modbus


@dataclass(frozen=True)
class Request:
    tid: int  # 0 on RTU
    unit: int
    pdu: bytes  # function code first

    @property
    def function_code(self) -> int:
        return self.pdu[0]

    @property
    def address(self) -> int:
        return int.from_bytes(self.pdu[1:3], "big")

    @property
    def word(self) -> int:
        """The second 16-bit field: a read's count, a single write's value."""
        return int.from_bytes(self.pdu[3:5], "big")


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC, low byte first on the wire."""
    return crc16_modbus(data).to_bytes(2, "little")


def tcp_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return (
        tid.to_bytes(2, "big")
        + b"\x00\x00"
        + (len(pdu) + 1).to_bytes(2, "big")
        + bytes([unit])
        + pdu
    )


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + crc16(body)


def registers_pdu(function_code: int, values: list[int], byte_count: int | None = None) -> bytes:
    data = b"".join(v.to_bytes(2, "big") for v in values)
    return bytes([function_code, len(data) if byte_count is None else byte_count]) + data


Framing = Literal["tcp", "rtu"]
Answer = Callable[[Request], bytes | None]
"""The raw reply to one request (a whole frame), or None to stay silent."""


class ModbusPeer:
    """Listens on loopback; answers each request with ``answer(request)``, on its own thread."""

    def __init__(self, answer: Answer, framing: Framing = "tcp") -> None:
        self.answer = answer
        self.framing = framing
        self.requests: list[Request] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="modbus-peer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conns: dict[socket.socket, bytes] = {}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._listener, *conns], [], [], 0.01)
                for sock in ready:
                    if sock is self._listener:
                        conn, _ = self._listener.accept()
                        conns[conn] = b""
                        continue
                    chunk = sock.recv(1024)
                    if not chunk:
                        conns.pop(sock)
                        sock.close()
                        continue
                    conns[sock] = self._handle(sock, conns[sock] + chunk)
        finally:
            for sock in conns:
                sock.close()
            self._listener.close()

    def _handle(self, sock: socket.socket, buf: bytes) -> bytes:
        while True:
            request, used = self._parse(buf)
            if request is None:
                return buf
            buf = buf[used:]
            self.requests.append(request)
            reply = self.answer(request)
            if reply is not None:
                with contextlib.suppress(OSError):  # the client may have given up already
                    sock.sendall(reply)

    def _parse(self, buf: bytes) -> tuple[Request | None, int]:
        if self.framing == "tcp":
            if len(buf) < 7:
                return None, 0
            size = 6 + int.from_bytes(buf[4:6], "big")
            if len(buf) < size:
                return None, 0
            return Request(int.from_bytes(buf[0:2], "big"), buf[6], buf[7:size]), size
        # RTU: reads (FC1-4) and single writes (FC5, FC6) are eight bytes long; a multiple
        # write (FC16) carries its byte count at offset 6.
        if len(buf) < 8:
            return None, 0
        size = 8 if buf[1] != 16 else 9 + buf[6]
        if len(buf) < size:
            return None, 0
        return Request(0, buf[0], buf[1 : size - 2]), size

    def reply(self, request: Request, pdu: bytes, unit: int | None = None) -> bytes:
        """A whole frame carrying ``pdu`` in answer to ``request`` (its unit unless given)."""
        unit = request.unit if unit is None else unit
        if self.framing == "tcp":
            return tcp_frame(request.tid, unit, pdu)
        return rtu_frame(unit, pdu)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
