"""The fleet view: what the fleet store says of every laser, and the clinic summary over it.

Read by the console's fleet page (``monitor.service.api_fleet``) for auditors, clinicians and
administrators. Everything here is read from the shipped chains themselves through the
record's own readers (``ChainLog`` over ``FleetBridgeStore``): sessions, halts (``trip``
events by their check), calibration certificates (records chains of kind ``calibration``),
incidents and follow-ups (record streams). All of them are events of each bridge's one
chain, so the shipper ships them with everything else, and the fleet store checked every
link on arrival. Nothing here writes.

Calibration state of a laser, from its latest completed full calibration that was not run on
the simulator (as ``monitor.calibration.status`` counts them): ``none`` on record, ``failed``,
``overdue`` (the day is after its due date), ``due`` (within the certificate policy's
``warning_days``, else ``DEFAULT_WARNING_DAYS``), ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from monitor.calibration.certificate import CHECK_DAILY, CHECK_FULL, Certificate, certificates
from monitor.fleet.bridge_store import FleetBridgeStore, open_reading_connection
from monitor.fleet.errors import FleetError, FleetUnreachable, one_line
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.followups import FollowUpStatus
from monitor.incidents.incidents import IncidentStatus
from monitor.incidents.photos import PhotoStore
from monitor.incidents.streams import iso
from monitor.record.chain_log import ChainLog
from monitor.reports.clinic_summary import ClinicSummary, build_clinic_summary

__all__ = ["DEFAULT_WARNING_DAYS", "FleetView", "LaserView"]

#: Days before a calibration's due date that the fleet view calls it due, when its
#: certificate's policy does not say: clinic default, review.
DEFAULT_WARNING_DAYS = 14


@dataclass(frozen=True)
class LaserView:
    bridge_id: str
    clinic: str | None
    head_seq: int
    shipped_at: float
    refusals: int
    last_refusal: str | None
    sessions: int
    last_session: dict[str, Any] | None
    halts_by_cause: dict[str, int]
    calibration: dict[str, Any]
    followups: dict[str, Any]
    incidents_open: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "bridge_id": self.bridge_id,
            "clinic": self.clinic,
            "head_seq": self.head_seq,
            "shipped_at": iso(self.shipped_at),
            "refusals": self.refusals,
            "last_refusal": self.last_refusal,
            "sessions": self.sessions,
            "last_session": self.last_session,
            "halts_by_cause": self.halts_by_cause,
            "calibration": self.calibration,
            "followups": self.followups,
            "incidents_open": self.incidents_open,
        }


def _latest(certs: list[Certificate], check: str) -> Certificate | None:
    return next((c for c in certs if c.check == check and c.outcome() is not None), None)


def _cert_words(c: Certificate | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "record_id": c.record_id,
        "laser_id": c.laser_id,
        "performed_at": c.performed_at.isoformat(),
        "verdict": str(c.verdict),
        "reason": c.reason,
        "next_due": None if c.next_due is None else c.next_due.isoformat(),
    }


def calibration_state(certs: list[Certificate], today: date) -> dict[str, Any]:
    """The laser's calibration as the fleet's records stand (module docstring)."""
    clinical = [c for c in certs if not c.simulated]
    full = _latest(clinical, CHECK_FULL)
    if full is None:
        state = "none"
    elif full.outcome() is not None and not full.outcome().passed:  # type: ignore[union-attr]
        state = "failed"
    elif full.next_due is None or today > full.next_due:
        state = "overdue"
    else:
        warn = full.policy.get("warning_days", DEFAULT_WARNING_DAYS)
        days = int(warn) if isinstance(warn, int) else DEFAULT_WARNING_DAYS
        state = "due" if today + timedelta(days=days) >= full.next_due else "ok"
    return {
        "state": state,
        "last_calibration": _cert_words(full),
        "last_daily_check": _cert_words(_latest(clinical, CHECK_DAILY)),
        "simulated_runs": len(certs) - len(clinical),
    }


class FleetView:
    """Reads of the fleet store for the console. One connection; not shared between threads."""

    def __init__(self, dsn: str, *, connect_timeout_s: int = 5) -> None:
        self._conn = open_reading_connection(dsn, connect_timeout_s=connect_timeout_s)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FleetView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bridges(self, clinic: str | None) -> list[tuple[Any, ...]]:
        try:
            rows = self._conn.execute(
                "SELECT h.bridge_id, b.clinic, h.seq, extract(epoch FROM h.shipped_at),"
                " (SELECT count(*) FROM refusals r WHERE r.bridge_id = h.bridge_id),"
                " (SELECT reason FROM refusals r WHERE r.bridge_id = h.bridge_id"
                "  ORDER BY id DESC LIMIT 1)"
                " FROM chain_heads h JOIN bridges b USING (bridge_id)"
                " WHERE %s::text IS NULL OR b.clinic = %s ORDER BY b.clinic, h.bridge_id",
                (clinic, clinic),
            ).fetchall()
            self._conn.rollback()
        except psycopg.OperationalError as e:
            raise FleetUnreachable(f"the fleet store went away: {one_line(e)}") from e
        except psycopg.Error as e:
            raise FleetError(f"reading the fleet's lasers: {one_line(e)}") from e
        return rows

    @contextmanager
    def _records(self, bridge_id: str, as_of: float) -> Iterator[ClinicRecords]:
        log = ChainLog(FleetBridgeStore(self._conn, bridge_id))
        try:
            # Photos stay in the clinic beside its log; the fleet holds their hashes only.
            yield ClinicRecords.over(
                log, photos=PhotoStore(f"{bridge_id}.photos"), clock=lambda: as_of
            )
        finally:
            log.close()

    def clinics(self) -> list[str | None]:
        return sorted({r[1] for r in self._bridges(None)}, key=lambda c: (c is None, c or ""))

    def lasers(self, as_of: float, clinic: str | None = None) -> list[LaserView]:
        """Every laser (bridge) of the fleet, or of one clinic, as its records say at ``as_of``."""
        today = datetime.fromtimestamp(as_of, tz=UTC).astimezone().date()
        out = []
        for bid, where, seq, shipped, n_ref, last_ref in self._bridges(clinic):
            with self._records(str(bid), as_of) as rec:
                sessions = rec.log.sessions()
                halts: dict[str, int] = {}
                for e in rec.log.events_of_kind("trip"):
                    cause = str(e.payload.get("check"))
                    halts[cause] = halts.get(cause, 0) + 1
                last = sessions[0] if sessions else None
                followups = rec.followups.select()
                statuses = [f.status(as_of) for f in followups]
                overdue = [
                    f.as_dict(as_of) for f in followups if f.status(as_of) is FollowUpStatus.OVERDUE
                ]
                open_incidents = sum(
                    1 for i in rec.incidents.select() if i.status is not IncidentStatus.CLOSED
                )
                certs = certificates(rec.log)
            out.append(
                LaserView(
                    bridge_id=str(bid),
                    clinic=where,
                    head_seq=int(seq),
                    shipped_at=float(shipped),
                    refusals=int(n_ref),
                    last_refusal=last_ref,
                    sessions=len(sessions),
                    last_session=None
                    if last is None
                    else {
                        "session_id": last.session_id,
                        "started_at": iso(last.started_at),
                        "ended_at": iso(last.ended_at),
                        "end_reason": last.end_reason,
                        "mode": last.mode,
                        "profile": last.profile_name,
                    },
                    halts_by_cause=dict(sorted(halts.items(), key=lambda kv: (-kv[1], kv[0]))),
                    calibration=calibration_state(certs, today),
                    followups={
                        "open": sum(1 for s in statuses if s is not FollowUpStatus.DONE),
                        "due": sum(1 for s in statuses if s is FollowUpStatus.DUE),
                        "overdue": len(overdue),
                        "overdue_list": overdue,
                    },
                    incidents_open=open_incidents,
                )
            )
        return out

    def clinic_summary(
        self,
        t_from: float,
        t_to: float,
        *,
        as_of: float,
        clinic: str | None = None,
        mode: str | None = None,
    ) -> ClinicSummary | None:
        """The clinic summary (``monitor.reports.clinic_summary``) over every chain of the
        fleet, or of one clinic; None if the fleet holds no laser of it. Every chain is
        verified from its stored rows first, as the local summary verifies its log."""
        bridges = [str(r[0]) for r in self._bridges(clinic)]
        if not bridges:
            return None
        logs = [ChainLog(FleetBridgeStore(self._conn, b)) for b in bridges]
        try:
            sources = [
                (b, ClinicRecords.over(log, photos=PhotoStore(f"{b}.photos"), clock=lambda: as_of))
                for b, log in zip(bridges, logs, strict=True)
            ]
            return build_clinic_summary(sources, t_from, t_to, as_of=as_of, mode=mode)
        finally:
            for log in logs:
                log.close()
