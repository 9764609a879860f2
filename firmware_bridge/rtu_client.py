"""A Modbus RTU client that reads each reply by its frame length: RTU at the wire's speed.

pymodbus 3.16's ``ModbusSerialClient`` waits for a reply by polling: ``recv(None)`` sleeps
``max(4 character times, 1 ms)`` between looks at ``in_waiting`` and returns only once two
looks in a row saw the same non-zero count. Over pyserial's ``socket://`` handler
``in_waiting`` answers 0 or 1, so a reply came in one byte per two sleeps, about 15 ms a read
whatever the baud rate; on a real port (or a pty) every read still pays two to three polling
intervals after the last byte arrived.

An RTU reply's length is known from its first three bytes (Modbus over serial line V1.02,
2.5.1 and the PDU definitions of the application protocol V1.1b3):

- an exception reply (function code with 0x80): unit, function, exception code, CRC: 5 bytes;
- a read (FC 1, 2, 3, 4): unit, function, byte count ``n``, ``n`` data bytes, CRC;
- a write echo (FC 5, 6, 15, 16): 8 bytes.

``FramedSerialClient.recv(None)`` reads those three bytes, then exactly the rest, each read
blocking in ``select`` until the bytes are there (or the transaction's deadline passes), so
a reply is handed on the moment its last byte arrives. A reply cut short, or silence, comes
back short or empty at the deadline: pymodbus then raises its timeout and the transport
turns it into ``LinkLost``. The framer still checks the CRC; ``modbus_reply`` checks the rest.
"""

from __future__ import annotations

import time
from typing import Any

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException

EXCEPTION_BIT = 0x80
READ_CODES = (1, 2, 3, 4)
ECHO_CODES = (5, 6, 15, 16)
HEAD_BYTES = 3  # unit, function code, byte count (or exception code, or address high byte)
CRC_BYTES = 2
ECHO_FRAME_BYTES = 8


def rest_of_frame(head: bytes) -> int | None:
    """Bytes still to come after an RTU reply's first three; None for an unknown function."""
    function_code = head[1]
    if function_code & EXCEPTION_BIT:
        return 5 - HEAD_BYTES
    if function_code in READ_CODES:
        return head[2] + CRC_BYTES
    if function_code in ECHO_CODES:
        return ECHO_FRAME_BYTES - HEAD_BYTES
    return None


class FramedSerialClient(ModbusSerialClient):
    """``ModbusSerialClient`` whose replies are read by length, not by polling."""

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self._timeout_s = float(kwargs.get("timeout", 3.0))

    def _read(self, size: int, deadline: float) -> bytes:
        port = self.socket
        if port is None:
            raise ConnectionException(str(self))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b""
        if port.timeout != remaining:
            port.timeout = remaining
        try:
            return bytes(port.read(size))
        except OSError:  # SerialException too: the adapter went away
            self.close()  # type: ignore[no-untyped-call]
            raise ConnectionException(str(self)) from None

    def recv(self, size: int | None) -> bytes:
        if size is not None:
            return bytes(super().recv(size))
        deadline = time.monotonic() + self._timeout_s
        head = self._read(HEAD_BYTES, deadline)
        if len(head) < HEAD_BYTES:
            return b""  # silence or a frame cut short: no reply within the deadline
        rest = rest_of_frame(head)
        if rest is None:
            return head  # not an answer the bridge asks for: the framer drops it, then timeout
        return head + self._read(rest, deadline)
