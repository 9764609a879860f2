"""Exceptions of the bridge, grouped by failure phase.

::

    BridgeError
    ├── LinkLost          the device does not answer, or the connection broke (a trip)
    ├── ProtocolError     the device answered something we cannot parse (a malformed frame,
    │                     a Modbus reply that does not answer its request): a trip
    ├── DeviceRejected    the device answered, and refused the request ("ERR ...")
    ├── MeterOverRange    an energy meter measured a pulse above its head's range ("OVER")
    ├── NoPulseMeasured   an energy meter measured no new pulse in the time given
    └── HaltRefused       an operator command that would enable emission while a halt is
                          latched (arming, closing the relay): refused, the halt stands

The session above the bridge turns any of these into its own ``Refused``
(``monitor.core.errors``) with the reason, keeping this one as ``__cause__``.

Low-level errors (``serial.SerialException``, ``OSError``, pymodbus exceptions) are
converted here at the transport boundary and kept as ``__cause__``. A device-reported
condition that is part of normal telemetry (a fault code register) is a value, not one of
these.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base class: something between LaserGuard and a device went wrong."""


class LinkLost(BridgeError):
    """No answer in time, or the connection is gone. The interlock treats it as a trip."""


class ProtocolError(BridgeError):
    """An answer that does not fit the device's protocol in its profile, or its request.

    Never data: a device worker treats it as a lost link (a trip).
    """


class DeviceRejected(BridgeError):
    """The device answered with an error reply; ``reason`` is what it said."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"{command!r} refused by the device: {reason}")
        self.command = command
        self.reason = reason


class HaltRefused(BridgeError):
    """An operator command that would enable emission while a halt is latched."""


class MeterOverRange(BridgeError):
    """The meter measured a pulse above its range: there is no reading for that pulse."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r}: the meter reports over-range ({reply!r})")
        self.command = command
        self.reply = reply


class NoPulseMeasured(BridgeError):
    """The meter reported no new pulse within the time given (none fired, or it missed it)."""
