"""Exceptions of the safety core, and where they sit among LaserGuard's others.

::

    Exception
    ├── Refused                     monitor.core: an operator request, or a session, that
    │                               LaserGuard will not carry out; the message says why
    ├── BridgeError                 firmware_bridge.errors: between LaserGuard and a device
    │   ├── LinkLost                no answer in time, or the connection is gone (a trip)
    │   ├── ProtocolError           an answer that does not fit the protocol (a trip)
    │   ├── DeviceRejected          the device answered "no" ("ERR ...")
    │   └── HaltRefused             would enable emission while a halt is latched
    └── SessionLogError             monitor.record: the session log cannot be read or written
        └── SessionLogDamaged       the chain does not verify

The session is the boundary: a ``BridgeError`` (or a timeout) from an operator command is
turned into ``Refused`` with the device's words, the original kept as ``__cause__``. A
failure to write the record never reaches the operator as an exception: it halts the laser
(``Recorder``'s ``on_failure``) and refuses arming from then on.
"""

from __future__ import annotations

__all__ = ["Refused"]


class Refused(Exception):
    """An operator request that LaserGuard will not carry out; the message says why."""
