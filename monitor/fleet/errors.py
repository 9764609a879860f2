"""What can go wrong with the fleet store::

    FleetError            any failure to reach, migrate, read or write the fleet store
    ├── FleetUnreachable  the database cannot be reached (down, network cut): try again later
    └── ShipmentRefused   what arrived does not continue the bridge's chain (a gap, a forged
                          link, a log behind what the fleet holds): reported, never merged

``psycopg`` errors are converted here, at the fleet store's boundary, and kept as
``__cause__``. None of these ever reaches a bridge: shipping is its own process.
"""

from __future__ import annotations

__all__ = ["FleetError", "FleetUnreachable", "ShipmentRefused", "one_line"]


def one_line(e: BaseException) -> str:
    """A driver's message on one line (libpq's run over several)."""
    return " ".join(str(e).split())


class FleetError(Exception):
    """The fleet store could not be reached, migrated, read or written."""


class FleetUnreachable(FleetError):
    """The database is down or cannot be reached; nothing was changed."""


class ShipmentRefused(FleetError):
    """Records that do not continue the bridge's chain: refused and reported."""

    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(reason if seq is None else f"at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason
