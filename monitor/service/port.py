"""What the service needs from the bridge: the ``ControlPort``.

``monitor.control.client.ControlClient`` is the real one (the Unix socket to the bridge
process); an API test gives the app a fake with the same four members. Commands are the
channel's own typed models (``monitor.control.protocol``); a refusal is a ``ControlError``
with the bridge's error kind.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from monitor.control.protocol import EventMessage, SnapshotMessage

__all__ = ["ControlPort"]


class ControlPort(Protocol):
    @property
    def connected(self) -> bool:
        """Whether the channel to the bridge is up now."""
        ...

    @property
    def latest(self) -> SnapshotMessage | None:
        """The newest snapshot the bridge sent (its ``t_wall`` tells its age)."""
        ...

    def call(self, command: BaseModel, timeout_s: float = ...) -> dict[str, Any]:
        """One command; its result, or ``ControlError`` (``ControlUnavailable``)."""
        ...

    def events_since(self, seq: int) -> list[EventMessage]:
        """The session's events after ``seq`` that the service still holds."""
        ...
