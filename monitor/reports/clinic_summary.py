"""The clinic summary over a period: what a medical director reads each month.

Sessions started in the period (``from`` inclusive, ``to`` exclusive), halts by cause,
incidents by type and by severity per 100 sessions, the same broken down by skin type, laser
family (the session's limit table) and fluence band (the highest fluence the laser confirmed
in the session), drafts still waiting for a clinician, and follow-ups overdue at ``as_of``.

Counted incidents are complications: documented or closed after documenting; a draft closed
as ``no_injury`` is not one, and open drafts are listed apart. An incident counts in the
period of its session.

The whole log is verified first (``ChainLog.verify``: the file's own integrity, its indexes
against its tables, every hash and telemetry digest), and the result is part of the
summary; the counts then come from the lookups that the verification has just vouched for.

The source is one or more ``ClinicRecords``: one local log (``laserguard report clinic``),
or every laser's chain in the fleet store (``monitor.fleet.view``: a ``ClinicRecords`` over
each bridge's ``FleetBridgeStore``). Several sources are counted as one clinic chain; the
verification is each chain's, and fails if any fails, naming it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.followups import FollowUpStatus
from monitor.incidents.incidents import IncidentStatus
from monitor.incidents.streams import iso
from monitor.record.verify import VerifyResult

__all__ = ["FLUENCE_BANDS_J_CM2", "ClinicSummary", "build_clinic_summary", "fluence_band"]

#: Fluence bands (J/cm²) the summary groups sessions by: clinic default, review. Vascular
#: settings run from ~6 J/cm² (PDL, face) to ~350 J/cm² (940 nm, 1 mm spot).
FLUENCE_BANDS_J_CM2 = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0)


def fluence_band(fluence_j_cm2: float | None) -> str:
    if fluence_j_cm2 is None:
        return "no settings"
    edges = FLUENCE_BANDS_J_CM2
    for lo, hi in itertools.pairwise(edges):
        if lo <= fluence_j_cm2 < hi:
            return f"{lo:g}-{hi:g}"
    return f"{edges[-1]:g}+"


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    started: float
    patient_id: str
    skin_type: str
    family: str
    band: str
    mode: str
    halts: tuple[str, ...]


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    session_id: str
    type: str
    severity: int
    status: str
    skin_type: str
    family: str
    band: str


@dataclass
class ClinicSummary:
    t_from: float
    t_to: float
    as_of: float
    sessions: list[SessionRow]
    incidents: list[IncidentRow]
    drafts_open: list[str]
    overdue: list[dict[str, Any]]
    verification: VerifyResult

    @property
    def n_sessions(self) -> int:
        return len(self.sessions)

    def per_100(self, n: int, sessions: int | None = None) -> float:
        base = self.n_sessions if sessions is None else sessions
        return round(100.0 * n / base, 2) if base else 0.0

    def halts_by_cause(self) -> dict[str, int]:
        return dict(Counter(h for s in self.sessions for h in s.halts).most_common())

    def breakdown(self) -> list[dict[str, Any]]:
        """One row per (dimension, value): sessions, incidents and incidents per 100."""
        rows: list[dict[str, Any]] = []
        for dim in ("skin_type", "family", "band"):
            sessions = Counter(getattr(s, dim) for s in self.sessions)
            incidents = Counter(getattr(i, dim) for i in self.incidents)
            for key in sorted(sessions):
                rows.append(
                    {
                        "dimension": {"family": "laser_family", "band": "fluence_band_j_cm2"}.get(
                            dim, dim
                        ),
                        "value": key,
                        "sessions": sessions[key],
                        "incidents": incidents[key],
                        "per_100_sessions": self.per_100(incidents[key], sessions[key]),
                    }
                )
        return rows

    def by_type(self) -> list[dict[str, Any]]:
        counts = Counter(i.type for i in self.incidents)
        return [
            {"type": t, "incidents": n, "per_100_sessions": self.per_100(n)}
            for t, n in sorted(counts.items())
        ]

    def by_severity(self) -> list[dict[str, Any]]:
        counts = Counter(i.severity for i in self.incidents)
        return [
            {"severity": g, "incidents": n, "per_100_sessions": self.per_100(n)}
            for g, n in sorted(counts.items())
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"from": iso(self.t_from), "to": iso(self.t_to)},
            "as_of": iso(self.as_of),
            "sessions": self.n_sessions,
            "halts_by_cause": self.halts_by_cause(),
            "incidents": len(self.incidents),
            "incidents_per_100_sessions": self.per_100(len(self.incidents)),
            "incidents_by_type": self.by_type(),
            "incidents_by_severity": self.by_severity(),
            "breakdown": self.breakdown(),
            "drafts_open": self.drafts_open,
            "followups_overdue": self.overdue,
            "verification": {"ok": self.verification.ok, "reason": self.verification.reason},
            "fluence_bands_source": "clinic default, review",
        }

    def json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def csv(self) -> str:
        """Every table of the summary as rows of one CSV: table, key, value, counts."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["table", "key", "value", "sessions", "incidents", "per_100_sessions"])
        w.writerow(["total", "sessions", "", self.n_sessions, len(self.incidents),
                    self.per_100(len(self.incidents))])  # fmt: skip
        for cause, n in self.halts_by_cause().items():
            w.writerow(["halts_by_cause", "check", cause, "", n, self.per_100(n)])
        for r in self.by_type():
            w.writerow(["incidents_by_type", "type", r["type"], "", r["incidents"],
                        r["per_100_sessions"]])  # fmt: skip
        for r in self.by_severity():
            w.writerow(["incidents_by_severity", "severity", r["severity"], "", r["incidents"],
                        r["per_100_sessions"]])  # fmt: skip
        for r in self.breakdown():
            w.writerow(["breakdown", r["dimension"], r["value"], r["sessions"], r["incidents"],
                        r["per_100_sessions"]])  # fmt: skip
        for f in self.overdue:
            w.writerow(["followups_overdue", "followup", f["followup_id"], "", "", ""])
        return out.getvalue()

    def text(self) -> str:
        v = self.verification
        lines = [
            f"Clinic summary {iso(self.t_from)} to {iso(self.t_to)} (as of {iso(self.as_of)})",
            f"  log verification: {'OK, chain intact' if v.ok else 'FAILED: ' + v.reason}",
            f"  sessions: {self.n_sessions}",
            f"  incidents: {len(self.incidents)} "
            f"({self.per_100(len(self.incidents))} per 100 sessions)",
            "  halts by cause:",
            *[f"    {c:<24} {n}" for c, n in self.halts_by_cause().items()],
            "  incidents by type (per 100 sessions):",
            *[
                f"    {r['type']:<24} {r['incidents']:>4}  {r['per_100_sessions']}"
                for r in self.by_type()
            ],
            "  incidents by severity (per 100 sessions):",
            *[
                f"    grade {r['severity']:<18} {r['incidents']:>4}  {r['per_100_sessions']}"
                for r in self.by_severity()
            ],
            "  by skin type, laser family and fluence band (sessions, incidents, per 100):",
            *[
                f"    {r['dimension']:<20} {r['value']:<14} {r['sessions']:>4} "
                f"{r['incidents']:>4}  {r['per_100_sessions']}"
                for r in self.breakdown()
            ],
            f"  drafts waiting for a clinician: {len(self.drafts_open)}",
            f"  follow-ups overdue: {len(self.overdue)}",
            *[
                f"    {f['followup_id'][:8]} patient {f['patient_id']} due by {f['due_by']}: "
                f"{f['reason']}"
                for f in self.overdue
            ],
        ]
        return "\n".join(lines) + "\n"


def _max_fluence(clinic: ClinicRecords, session_id: str) -> float | None:
    best = None
    for e in clinic.log.events(session_id, ["settings_applied"]):
        confirmed = e.payload.get("confirmed") or {}
        f = confirmed.get("fluence_j_cm2")
        if isinstance(f, int | float) and (best is None or f > best):
            best = float(f)
    return best


def _combined(results: Sequence[tuple[str, VerifyResult]]) -> VerifyResult:
    """One verdict over several chains: the first that fails, named; else their sums."""
    if len(results) == 1:
        return results[0][1]
    for name, r in results:
        if not r.ok:
            return replace(r, reason=f"{name}: {r.reason}")
    return VerifyResult(
        ok=True,
        n_events=sum(r.n_events for _, r in results),
        n_telemetry_rows=sum(r.n_telemetry_rows for _, r in results),
        first_bad_seq=None,
        reason="",
        legacy_channel_maps=sum(r.legacy_channel_maps for _, r in results),
    )


def build_clinic_summary(
    clinic: ClinicRecords | Sequence[tuple[str, ClinicRecords]],
    t_from: float,
    t_to: float,
    *,
    as_of: float | None = None,
    mode: str | None = None,
) -> ClinicSummary:
    """The summary of one clinic's log, or of named sources (``(name, records)``) as one."""
    sources = [("", clinic)] if isinstance(clinic, ClinicRecords) else list(clinic)
    if not sources:
        raise ValueError("a clinic summary needs at least one source")
    verification = _combined([(name, c.log.verify()) for name, c in sources])
    now = sources[0][1].followups.clock() if as_of is None else as_of
    sessions: list[SessionRow] = []
    incidents: list[IncidentRow] = []
    drafts: list[str] = []
    overdue: list[dict[str, Any]] = []
    for _, c in sources:
        part = _collect(c, t_from, t_to, now, mode)
        sessions += part.sessions
        incidents += part.incidents
        drafts += part.drafts_open
        overdue += part.overdue
    sessions.sort(key=lambda s: s.started)
    overdue.sort(key=lambda f: (str(f["due_by"]), str(f["followup_id"])))
    return ClinicSummary(t_from, t_to, now, sessions, incidents, drafts, overdue, verification)


def _collect(
    clinic: ClinicRecords, t_from: float, t_to: float, now: float, mode: str | None
) -> ClinicSummary:
    """One source's sessions, incidents, drafts and overdue follow-ups (not verified here)."""
    log = clinic.log
    starts = {e.session_id: e.payload for e in log.start_events()}
    rows: dict[str, SessionRow] = {}
    for info in log.sessions():
        if not t_from <= info.started_at < t_to or (mode is not None and info.mode != mode):
            continue
        meta = starts.get(info.session_id, {}).get("meta") or {}
        family = str(meta.get("limit_table") or info.profile_name)
        halts = tuple(str(e.payload.get("check")) for e in log.events(info.session_id, ["trip"]))
        rows[info.session_id] = SessionRow(
            info.session_id,
            info.started_at,
            info.patient_id,
            info.skin_type,
            family,
            fluence_band(_max_fluence(clinic, info.session_id)),
            info.mode,
            halts,
        )
    incidents: list[IncidentRow] = []
    drafts: list[str] = []
    for i in clinic.incidents.select():
        s = rows.get(i.session_id)
        if s is None:
            continue
        if i.status is IncidentStatus.DRAFT:
            drafts.append(i.incident_id)
            continue
        if i.closure is not None and i.closure.get("outcome") == "no_injury":
            continue
        incidents.append(
            IncidentRow(
                i.incident_id,
                i.session_id,
                str(i.details.get("type")),
                int(i.details.get("severity", 0)),
                str(i.status),
                s.skin_type,
                s.family,
                s.band,
            )
        )
    overdue = [
        f.as_dict(now) for f in clinic.followups.select() if f.status(now) is FollowUpStatus.OVERDUE
    ]
    unverified = VerifyResult(False, 0, 0, None, "not verified")  # the caller verifies
    return ClinicSummary(
        t_from, t_to, now, list(rows.values()), incidents, drafts, overdue, unverified
    )
