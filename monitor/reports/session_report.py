"""The session report: one session, everything a clinic files about it, as one HTML page.

Self-contained (inline CSS and SVG, photos inline when small), printable to PDF from the
browser. Built only from what verification read: the session along its checked chain
(``ChainLog.read_verified``), each of its incidents and follow-ups along theirs, and the
verification result of the session's span is printed on the page. A session that fails
verification has no report: ``SessionLogDamaged`` is raised, and the front end says so.

Sections: the patient's pseudonym, skin typing and risk assessment; the profile, limit
table and data digests; the settings history; the plot (skin and plate temperature, pulses,
halts and resets); alarms, halts and resets; incidents (protocol, checklist, details,
history, photos with their check, the trace around the halt); follow-ups; the patient
sheets given; the verification.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any

from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.followups import FollowUp
from monitor.incidents.incidents import Incident
from monitor.incidents.streams import iso
from monitor.incidents.trace import Trace, trace_around
from monitor.record.session_info import SessionRecord
from monitor.record.verify import Event, VerifyResult
from monitor.reports.plot import render_svg

__all__ = ["SessionReport", "build_session_report"]

#: Photos up to this size are put in the page itself; larger ones are named by their hash.
INLINE_PHOTO_BYTES = 2 * 1024 * 1024
_ALARM_KINDS = ("trip", "warning", "condition_cleared", "acknowledged", "alarm_reset")
_SETTINGS_KINDS = ("settings_applied", "settings_refused", "armed", "standby", "arm_refused")


@dataclass
class IncidentPart:
    incident: Incident
    trace: Trace | None
    photo_problems: list[str]
    photo_data: dict[str, str] = field(default_factory=dict)  # sha256 -> data: URI


@dataclass
class SessionReport:
    record: SessionRecord
    verification: VerifyResult
    incidents: list[IncidentPart]
    followups: list[FollowUp]
    as_of: float

    @property
    def info(self) -> Any:
        return self.record.info

    def _events(self, kinds: tuple[str, ...]) -> list[Event]:
        return [e for e in self.record.events if e.kind in kinds]

    def _first(self, kind: str) -> dict[str, Any]:
        return next((e.payload for e in self.record.events if e.kind == kind), {})

    def as_dict(self) -> dict[str, Any]:
        start = self._first("session_start")
        return {
            "session": {
                "session_id": self.info.session_id,
                "patient_id": self.info.patient_id,
                "operator": self.info.operator,
                "mode": self.info.mode,
                "started": iso(self.info.started_at),
                "ended": iso(self.info.ended_at),
                "end_reason": self.info.end_reason,
            },
            "skin_typing": self._first("skin_typing") or {"skin_type": self.info.skin_type},
            "risk_assessment": self._first("risk_assessment"),
            "profile": {
                "name": self.info.profile_name,
                "digest": self.info.profile_digest,
                **{k: v for k, v in (start.get("meta") or {}).items() if _is_digest_key(k)},
            },
            "settings_history": [_row(e) for e in self._events(_SETTINGS_KINDS)],
            "alarms": [_row(e) for e in self._events(_ALARM_KINDS)],
            "pulses": sum(int(e.payload.get("n", 0)) for e in self._events(("pulses",))),
            "incidents": [
                {
                    **p.incident.as_dict(),
                    "trace": None if p.trace is None else p.trace.as_dict(),
                    "photo_problems": p.photo_problems,
                }
                for p in self.incidents
            ],
            "followups": [f.as_dict(self.as_of) for f in self.followups],
            "sheets_given": [e.payload for e in self._events(("patient_sheet_given",))],
            "verification": {
                "ok": self.verification.ok,
                "reason": self.verification.reason,
                "n_events": self.verification.n_events,
                "n_telemetry_rows": self.verification.n_telemetry_rows,
            },
            "as_of": iso(self.as_of),
        }

    def html(self) -> str:
        d = self.as_dict()
        s = d["session"]
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>LaserGuard session report {escape(s['session_id'][:8])}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Session report <code>{escape(s['session_id'][:8])}</code></h1>",
            _verification_box(self.verification, self.incidents),
            "<h2>Patient and session</h2>",
            _table(
                [
                    ("patient (pseudonym)", s["patient_id"]),
                    ("operator", s["operator"]),
                    ("mode", s["mode"]),
                    ("started", s["started"]),
                    ("ended", f"{s['ended']} ({s['end_reason'] or 'not ended'})"),
                    ("pulses", str(d["pulses"])),
                ]
            ),
            "<h2>Skin typing and risk assessment</h2>",
            _skin_and_risk(d["skin_typing"], d["risk_assessment"]),
            "<h2>Profile and digests</h2>",
            _table([(k, str(v)) for k, v in d["profile"].items()], code=True),
            "<h2>Settings history</h2>",
            _events_table(d["settings_history"]),
            "<h2>Skin and plate temperature</h2>",
            '<div class="plot">',
            render_svg(
                self.record.info,
                self.record.events,
                self.record.t_s,
                self.record.channel,
                self.record.value,
                channels=self.record.channels,
            ),
            "</div>",
            "<h2>Alarms, halts and resets</h2>",
            _events_table(d["alarms"]),
            f"<h2>Incidents ({len(self.incidents)})</h2>",
            *[_incident_html(p) for p in self.incidents],
            "<p>None recorded.</p>" if not self.incidents else "",
            f"<h2>Follow-ups ({len(self.followups)})</h2>",
            _followups_html(self.followups, self.as_of),
            "<h2>Patient information given</h2>",
            _sheets_html(d["sheets_given"]),
            f'<p class="meta">Built {escape(d["as_of"])} from the verified session log. '
            "Times are UTC.</p>",
            "</body></html>",
        ]
        return "\n".join(x for x in out if x) + "\n"


def build_session_report(
    clinic: ClinicRecords, session_id: str, *, as_of: float | None = None
) -> SessionReport:
    """The report of one session (id or unique prefix), read along the verified chain."""
    log = clinic.log
    record = log.read_verified(log.session(session_id).session_id)
    sid = record.info.session_id
    verification = log.verify(sid)
    parts = []
    for listed in clinic.incidents.select(session_id=sid):
        incident = clinic.incidents.get(listed.incident_id)  # along its verified chain
        trace = None
        if incident.trigger is not None and isinstance(incident.trigger.get("t_s"), int | float):
            trace = trace_around(record, float(incident.trigger["t_s"]))
        problems, data = [], {}
        for a in incident.photos:
            problem = clinic.incidents.photos.check(a.photo)
            if problem is not None:
                problems.append(problem)
            elif a.photo.n_bytes <= INLINE_PHOTO_BYTES:
                raw = clinic.incidents.photos.path_of(a.photo).read_bytes()
                data[a.photo.sha256] = (
                    f"data:{a.photo.media_type};base64,{base64.b64encode(raw).decode('ascii')}"
                )
        parts.append(IncidentPart(incident, trace, problems, data))
    followups = [
        clinic.followups.get(f.followup_id) for f in clinic.followups.select(session_id=sid)
    ]
    now = clinic.followups.clock() if as_of is None else as_of
    return SessionReport(record, verification, parts, followups, now if now else time.time())


# --- HTML pieces ----------------------------------------------------------------------------

_CSS = (
    "body{font-family:sans-serif;max-width:62em;margin:1.5em auto;color:#222;font-size:14px}"
    "h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:0.4em 0}td,th{border:1px solid #ddd;padding:3px 6px;"
    "text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-size:0.9em}"
    ".ok{border:2px solid #1e8449;padding:0.4em 0.8em}.bad{border:3px solid #c0392b;"
    "padding:0.4em 0.8em;color:#c0392b}.incident{border:1px solid #999;padding:0.5em 1em;"
    "margin:0.8em 0}.meta{color:#666;font-size:0.85em}.plot svg{max-width:100%;height:auto}"
    "img.photo{max-width:18em;border:1px solid #aaa;margin:0.3em}"
    "@media print{body{margin:0;max-width:none}.incident{break-inside:avoid}}"
)


def _is_digest_key(key: str) -> bool:
    return key in (
        "setup_digest",
        "limit_table",
        "limit_table_version",
        "limit_table_digest",
        "profile_source",
    )


def _row(e: Event) -> dict[str, Any]:
    p = e.payload
    return {"seq": e.seq, "at": iso(e.t_wall), "t_s": p.get("t_s"), "kind": e.kind, "payload": p}


def _table(rows: list[tuple[str, str]], *, code: bool = False) -> str:
    wrap = (lambda v: f"<code>{escape(v)}</code>") if code else escape
    body = "".join(f"<tr><th>{escape(k)}</th><td>{wrap(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _describe(kind: str, p: dict[str, Any]) -> str:
    if kind in ("trip", "warning"):
        return f"{p.get('check')}: {p.get('reason')}"
    if kind == "acknowledged":
        return f"by {p.get('by')}: {p.get('reason')}"
    if kind == "condition_cleared":
        return str(p.get("check"))
    if kind == "settings_applied":
        return ", ".join(f"{k} {v:g}" for k, v in (p.get("confirmed") or {}).items())
    if kind == "settings_refused":
        return "; ".join(str(v.get("message")) for v in p.get("violations") or [])
    if kind == "armed":
        return f"by {p.get('by')}"
    return ", ".join(f"{k} {v}" for k, v in p.items() if k != "t_s")


def _seconds(t_s: object) -> str:
    return f"{t_s:.2f}" if isinstance(t_s, int | float) else ""


def _events_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    body = "".join(
        f"<tr><td>{r['seq']}</td><td>{escape(r['at'])}</td>"
        f"<td>{_seconds(r['t_s'])}</td>"
        f"<td>{escape(r['kind'])}</td><td>{escape(_describe(r['kind'], r['payload']))}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>seq</th><th>time</th><th>t (s)</th><th>what</th><th>detail</th></tr>"
        f"{body}</table>"
    )


def _skin_and_risk(typing: dict[str, Any], risk: dict[str, Any]) -> str:
    rows = [
        ("skin type", str(typing.get("skin_type"))),
        ("typing", str(typing.get("explanation") or typing.get("method") or "-")),
        ("arming allowed", str(risk.get("arming_allowed", "-"))),
        ("source", str(risk.get("source", "-"))),
        ("form version", str(risk.get("questions_version", "-"))),
        (
            "answered yes",
            ", ".join(k for k, v in (risk.get("answers") or {}).items() if v) or "none",
        ),
        ("restrictions", str(risk.get("restrictions") or "none")),
    ]
    attestation = risk.get("attestation")
    if attestation:
        rows.append(
            ("attestation", f"{attestation.get('clinician')}: {attestation.get('statement')}")
        )
    rows += [("reason", str(r)) for r in risk.get("reasons") or []]
    return _table(rows)


def _verification_box(v: VerifyResult, parts: list[IncidentPart]) -> str:
    photo_problems = [p for part in parts for p in part.photo_problems]
    if v.ok and not photo_problems:
        return (
            f'<p class="ok">Chain verified: {v.n_events} events and {v.n_telemetry_rows} '
            "telemetry rows of this session's span recomputed, intact. Incidents and follow-ups "
            "read along their verified chains; every photo matches its hash.</p>"
        )
    words = [] if v.ok else [f"CHAIN FAILS VERIFICATION: {v.reason}"]
    return f'<p class="bad">{escape("; ".join(words + photo_problems))}</p>'


def _incident_html(part: IncidentPart) -> str:
    i = part.incident
    d = i.details
    proto = i.protocol or {}
    out = [
        '<div class="incident">',
        f"<h3>Incident <code>{escape(i.incident_id[:8])}</code>: {escape(str(i.status))}"
        f"{' (amended)' if i.amended else ''}</h3>",
        _table(
            [
                ("opened", f"{iso(i.opened_at)} by {i.opened_by} ({i.origin})"),
                (
                    "halt",
                    "-"
                    if i.trigger is None
                    else f"{i.trigger.get('check')} at {i.trigger.get('t_s')} s "
                    f"(seq {i.trigger.get('seq')}): {i.trigger.get('reason')}",
                ),
                (
                    "protocol",
                    f"{proto.get('title', '-')} (book v{proto.get('book_version', '-')})",
                ),
                *[(k, str(d.get(k, "-"))) for k in ("type", "severity", "body_site")],
                *[(k, str(d.get(k, "-"))) for k in ("noticed_at", "noticed_by")],
                *[(k, str(d.get(k, "-"))) for k in ("actions_taken", "referral")],
                (
                    "closed",
                    "-"
                    if i.closure is None
                    else f"{i.closure['outcome']} by {i.closure['by']} ({i.closure['reason']})",
                ),
            ]
        ),
    ]
    if part.trace is not None:
        t = part.trace
        approved = ", ".join(f"{k} {v:g}" for k, v in (t.approved or {}).items()) or "-"
        out.append(
            f"<p>Around the halt (from the log, {t.t_from_s:.0f} s to {t.t_to_s:.0f} s): "
            f"{len(t.t_s)} skin samples, highest {t.max_skin_temp_c} °C; settings approved: "
            f"{escape(approved)}.</p>"
        )
    if i.ticks:
        rows = "".join(
            f"<tr><td>{tk.step}</td><td>{escape(tk.text)}</td><td>{escape(tk.by)}</td>"
            f"<td>{escape(iso(tk.t_wall))}</td></tr>"
            for tk in i.ticks
        )
        out.append(
            "<p>Protocol checklist, in the order done:</p><table><tr><th>step</th><th>what</th>"
            f"<th>by</th><th>when</th></tr>{rows}</table>"
        )
    for a in i.photos:
        uri = part.photo_data.get(a.photo.sha256)
        label = f"{a.caption or 'photo'} ({a.photo.sha256[:12]}, by {a.by}, {iso(a.t_wall)})"
        if uri is not None:
            out.append(f'<figure><img class="photo" src="{uri}" alt="{escape(label)}">')
            out.append(f"<figcaption>{escape(label)}</figcaption></figure>")
        else:
            out.append(f"<p>{escape(label)}</p>")
    rows = "".join(
        f"<tr><td>{e.seq}</td><td>{escape(iso(e.t_wall))}</td><td>{escape(e.by)}</td>"
        f"<td>{escape(e.summary())}</td></tr>"
        for e in i.history
    )
    out.append(
        "<p>History (nothing is overwritten):</p><table><tr><th>seq</th><th>when</th>"
        f"<th>by</th><th>what</th></tr>{rows}</table></div>"
    )
    return "\n".join(out)


def _followups_html(followups: list[FollowUp], now: float) -> str:
    if not followups:
        return "<p>None scheduled.</p>"
    rows = "".join(
        f"<tr><td><code>{escape(f.followup_id[:8])}</code></td><td>{escape(iso(f.due_from))} – "
        f"{escape(iso(f.due_by))}</td><td>{escape(f.method)}</td><td>{escape(f.reason)}</td>"
        f"<td>{escape(str(f.status(now)))}</td>"
        f"<td>{escape('' if f.outcome is None else str(f.outcome['outcome']))}</td></tr>"
        for f in followups
    )
    return (
        "<table><tr><th>id</th><th>due</th><th>how</th><th>why</th><th>status</th>"
        f"<th>outcome</th></tr>{rows}</table>"
    )


def _sheets_html(given: list[dict[str, Any]]) -> str:
    if not given:
        return "<p>No patient information sheet recorded as given.</p>"
    rows = "".join(
        f"<tr><td>{escape(str(g.get('sheet')))}</td><td>v{escape(str(g.get('version')))}</td>"
        f"<td>{escape(str(g.get('given_to')))}</td><td>{escape(str(g.get('given_by')))}</td>"
        f"<td><code>{escape(str(g.get('text_sha256'))[:16])}</code></td></tr>"
        for g in given
    )
    return (
        "<table><tr><th>sheet</th><th>version</th><th>to</th><th>by</th><th>text sha256</th></tr>"
        f"{rows}</table>"
    )
