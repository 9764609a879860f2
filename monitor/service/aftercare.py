"""The aftercare sheet a patient takes home: printable HTML from the session's own record.

Everything on it comes from the session log (the clinic's details were recorded at the
session's start, ``patient_information``): the sheet printed a year later says what the
patient was told that day. Every value is HTML-escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["aftercare_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 42em; margin: 2em auto; line-height: 1.5; }
h1 { font-size: 1.6em; } .contact { font-size: 1.3em; font-weight: bold; border: 3px solid #000;
padding: .6em; } .meta { color: #444; } .warn { font-weight: bold; }
@media print { button { display: none; } }
"""

WARNING_SIGNS = (
    "blisters, or skin that turns white, grey or dusky",
    "spreading redness, pus, or a fever",
    "pain that gets worse instead of better",
)


def aftercare_html(record: Any) -> str:
    """The sheet for one session (a ``SessionRecord`` read along its verified chain)."""
    info = record.info
    patient: dict[str, Any] = next(
        (e.payload for e in record.events if e.kind == "patient_information"), {}
    )
    clinic = patient.get("clinic")
    contact = patient.get("emergency_contact")
    instructions = patient.get("aftercare_instructions")
    when = datetime.fromtimestamp(info.started_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    missing = (
        "<p class='warn'>This setup names no clinic, emergency contact or aftercare text "
        "(the setup's <code>clinic</code> block): give the patient the clinic's own "
        "aftercare sheet.</p>"
        if not (clinic and contact and instructions)
        else ""
    )
    signs = "".join(f"<li>{escape(s)}</li>" for s in WARNING_SIGNS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Aftercare — {escape(str(clinic or "LaserGuard"))}</title>
<style>{_STYLE}</style></head>
<body>
<h1>After your laser treatment</h1>
<p class="meta">{escape(str(clinic or ""))} · treatment on {escape(when)} ·
patient {escape(info.patient_id)} · record {escape(info.session_id[:8])}</p>
{missing}
<h2>If something is wrong, call</h2>
<p class="contact">{escape(str(contact or "the clinic that treated you"))}</p>
<p>Call at once for:</p><ul>{signs}</ul>
<h2>What to do</h2>
<p>{escape(str(instructions or ""))}</p>
<button onclick="window.print()">Print</button>
</body></html>
"""
