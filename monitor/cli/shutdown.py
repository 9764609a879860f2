"""Shutting a session down in order, whatever the terminal does meanwhile.

Ctrl-C in a terminal sends SIGINT to every process of the foreground process group. The
session's own shutdown (laser to STANDBY, relay open, log closed) must then run to its end:
a second Ctrl-C during it is noted, not raised half-way through the standby.
"""

from __future__ import annotations

from firmware_bridge.interrupts import sigint_deferred

__all__ = ["sigint_deferred"]
