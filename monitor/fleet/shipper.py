"""The shipper: a bridge's local session log, copied into the fleet store in chain order.

It runs as its own process (``laserguard fleet ship``), reading the SQLite log read-only
(WAL: the bridge keeps writing meanwhile), so it never runs on an interlock thread and a
slow, dead or unreachable database never delays a halt.

Where to start is the fleet's own ``chain_heads`` row for the bridge, never a note kept by
the shipper: a shipper killed mid-shipment, or cut off by the network, left an uncommitted
transaction behind, which PostgreSQL dropped; the next run starts after the last whole
shipment. Nothing is lost and nothing is stored twice.

Before shipping, the local log is held against what the fleet already has of it: a local
head behind the fleet's, or another hash at the fleet's head seq, means the local log was
rolled back, truncated or replaced. That is refused and reported (``refusals``), as is any
gap or forged link found on arrival (``FleetStore.receive``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.fleet.errors import ShipmentRefused
from monitor.fleet.store import FleetStore, Shipment
from monitor.record.sqlite_store import SessionLog

__all__ = ["DEFAULT_CHUNK_EVENTS", "ShipResult", "ship"]

# Events per transaction: small enough that a cut connection costs little to redo, large
# enough that a transaction's commit is not most of the cost (benchmarks/fleet_bench.py).
DEFAULT_CHUNK_EVENTS = 500


@dataclass(frozen=True)
class ShipResult:
    bridge_id: str
    events: int  # shipped by this run
    telemetry_rows: int
    head: tuple[int, str] | None  # the fleet's head for the bridge afterwards
    local_head: int


def ship(
    db: Path,
    fleet: FleetStore,
    bridge_id: str,
    *,
    clinic: str | None = None,
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ShipResult:
    """Ship every event of ``db`` the fleet lacks, ``chunk_events`` per transaction.

    Raises ``ShipmentRefused`` (reported in the fleet store) or ``FleetUnreachable``;
    ``SessionLogError`` if the local log cannot be read.
    """
    if chunk_events < 1:
        raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
    shipped = rows = 0
    head = fleet.head(bridge_id)
    with SessionLog(db, read_only=True) as log, log.store.reading() as r:
        local = r.head()
        local_seq = 0 if local is None else local[0]
        if head is not None and head[0] > 0:
            mine = next(r.scan_events(head[0], head[0]), None)
            if mine is None or local_seq < head[0]:
                reason = (
                    f"the local log {db} ends at seq {local_seq}, behind the fleet's seq"
                    f" {head[0]}: it was rolled back or truncated"
                )
                fleet.refuse(bridge_id, head[0], reason)
                raise ShipmentRefused(head[0], reason)
            if mine.hash != head[1]:
                reason = (
                    f"the local log {db} differs from the fleet at seq {head[0]}: it was"
                    " replaced by another log"
                )
                fleet.refuse(bridge_id, head[0], reason)
                raise ShipmentRefused(head[0], reason)
        lo = 1 if head is None else head[0] + 1
        while lo <= local_seq:
            hi = min(lo + chunk_events - 1, local_seq)
            events = list(r.scan_events(lo, hi))
            telemetry = list(r.scan_telemetry(lo, hi))
            head = fleet.receive(Shipment(bridge_id, events, telemetry, clinic))
            shipped += len(events)
            rows += sum(int(t.idx.shape[0]) for t in telemetry)
            if on_chunk is not None:
                on_chunk(hi, local_seq)
            lo = hi + 1
    return ShipResult(bridge_id, shipped, rows, head, local_seq)
