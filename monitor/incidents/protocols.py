"""The emergency protocols as the incident layer uses them: checked against the interlock's
halt causes, and the protocol for a halt.

``device_profiles.protocols`` validates the file on its own; what it cannot know is which
halt causes exist (``monitor.core.checks``). Here every halt cause the interlock can raise
must be mapped (to a protocol, or to ``null``: no patient exposure implied), and the mapping
names nothing that is not a halt cause: a typo would otherwise leave a burn halt without its
protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from device_profiles.protocols import (
    HaltCause,
    LoadedProtocols,
    Protocol,
    ProtocolBook,
    ProtocolError,
    load_protocols,
    parse_protocols,
)
from monitor.core.checks import CHECKS, Severity

__all__ = ["Book", "ProtocolBookError", "halt_causes", "load_book", "parse_book"]


class ProtocolBookError(ProtocolError):
    """A protocols file whose halt causes do not match the interlock's."""


def halt_causes() -> list[str]:
    """Every halt cause the interlock loop can raise, by name."""
    return [c.name for c in CHECKS if c.severity is Severity.HALT]


@dataclass(frozen=True)
class Book:
    """A loaded, checked protocol book, with its version and digest for the record."""

    loaded: LoadedProtocols

    @property
    def book(self) -> ProtocolBook:
        return self.loaded.book

    @property
    def version(self) -> int:
        return self.loaded.book.version

    @property
    def digest(self) -> str:
        return self.loaded.digest

    def for_halt(self, check: str) -> HaltCause | None:
        """What a halt of this cause means; None for a cause the book does not map (a halt
        of the session's own: an emergency halt, a failed log...)."""
        return self.book.halt_causes.get(check)

    def protocol_for_halt(self, check: str) -> Protocol | None:
        cause = self.for_halt(check)
        return None if cause is None or cause.protocol is None else self.protocol(cause.protocol)

    def protocol(self, protocol_id: str) -> Protocol:
        try:
            return self.book.protocol(protocol_id)
        except KeyError:
            known = ", ".join(p.id for p in self.book.protocols)
            raise ProtocolBookError(f"no protocol {protocol_id!r}; known: {known}") from None

    def reference(self, protocol_id: str) -> dict[str, object]:
        """How an incident names its protocol: id, title, and the book's version and digest."""
        return {
            "id": protocol_id,
            "title": self.protocol(protocol_id).title,
            "book_version": self.version,
            "book_sha256": self.digest,
        }


def _checked(loaded: LoadedProtocols) -> Book:
    causes = halt_causes()
    mapped = set(loaded.book.halt_causes)
    unmapped = [c for c in causes if c not in mapped]
    if unmapped:
        raise ProtocolBookError(
            f"{loaded.source}: halt_causes does not map {unmapped}: give each a protocol, or "
            "null when the halt implies no exposure of the patient"
        )
    unknown = sorted(mapped - set(causes))
    if unknown:
        raise ProtocolBookError(
            f"{loaded.source}: halt_causes names {unknown}, which are not halt causes of the "
            f"interlock ({', '.join(causes)})"
        )
    return Book(loaded)


def parse_book(raw: bytes, source: str = "<string>") -> Book:
    return _checked(parse_protocols(raw, source))


def load_book(path: str | Path | None = None) -> Book:
    """The emergency protocols (bundled by default), checked against the halt causes."""
    return _checked(load_protocols(path))
