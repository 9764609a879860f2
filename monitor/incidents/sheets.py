"""Patient information sheets: before treatment and after it, as text and as printable HTML.

Before: what to expect, the risks for the patient's skin type, and the contraindication
questions with the answers the patient confirmed. After: the aftercare (the clinic's own
instructions first), the warning signs that mean "call now", and the clinic's emergency
contact. The words come from ``patient-information.yaml`` (versioned, digested); the patient's
pseudonym, skin type, answers and the clinic's contact come from the session's record.

A sheet is rebuilt the same from the same record and the same file version, byte for byte:
the session's record keeps which version was given to whom and the SHA-256 of the text given
(``patient_sheet_given``), so a copy printed later can be shown to be the one given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from html import escape
from typing import Any

from device_profiles.protocols import LoadedSheets
from device_profiles.schema import Contraindications, SkinType

__all__ = [
    "KIND_SHEET_GIVEN",
    "Sheet",
    "Which",
    "after_sheet",
    "before_sheet",
    "given_note",
    "sheet_for",
]

#: The event in the session's chain that says which sheet was given to whom.
KIND_SHEET_GIVEN = "patient_sheet_given"


class Which(StrEnum):
    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True)
class Sheet:
    which: Which
    title: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]  # (heading, lines)
    patient_id: str
    version: int
    data_sha256: str

    @property
    def text(self) -> str:
        out = [self.title, "=" * len(self.title), f"Patient: {self.patient_id}", ""]
        for heading, lines in self.sections:
            out += [heading, *[f"  - {line}" for line in lines], ""]
        out.append(f"(patient information v{self.version}, {self.data_sha256[:12]})")
        return "\n".join(out) + "\n"

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def html(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:42em;margin:2em auto;line-height:1.4}"
            "h2{font-size:1.1em;margin-top:1.5em}.call{border:2px solid #c0392b;padding:0.5em 1em}"
            ".meta{color:#555;font-size:0.85em}@media print{body{margin:0}}</style>",
            "</head><body>",
            f"<h1>{escape(self.title)}</h1>",
            f"<p>Patient: <strong>{escape(self.patient_id)}</strong></p>",
        ]
        for heading, lines in self.sections:
            cls = ' class="call"' if heading.startswith("Call now") else ""
            parts.append(f"<section{cls}><h2>{escape(heading)}</h2><ul>")
            parts += [f"<li>{escape(line)}</li>" for line in lines]
            parts.append("</ul></section>")
        parts.append(
            f'<p class="meta">Patient information v{self.version} '
            f"({escape(self.data_sha256[:12])}); text sha256 {self.text_sha256[:12]}</p>"
        )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def given(self, *, given_to: str, given_by: str) -> dict[str, object]:
        """The session record's words for handing this sheet over."""
        return {
            "sheet": str(self.which),
            "version": self.version,
            "data_sha256": self.data_sha256,
            "text_sha256": self.text_sha256,
            "given_to": given_to,
            "given_by": given_by,
        }


def before_sheet(
    sheets: LoadedSheets,
    *,
    patient_id: str,
    skin_type: str,
    risk: Mapping[str, Any],
    questions: Contraindications,
) -> Sheet:
    words = sheets.sheets.before
    try:
        by_type = words.risks_by_skin_type[SkinType(skin_type)]
    except ValueError:
        by_type = [f"Skin type {skin_type!r} is not a Fitzpatrick type: ask the clinician."]
    answers = risk.get("answers")
    answered = answers if isinstance(answers, dict) else {}
    confirmed = [
        f"{q.question} {'Yes' if answered[q.id] else 'No'}"
        for q in questions.questions
        if isinstance(answered.get(q.id), bool)
    ]
    version = risk.get("questions_version")
    if version is not None and version != questions.version:
        confirmed.append(
            f"(answered on version {version} of the questions; the questions shown are "
            f"version {questions.version})"
        )
    if risk.get("source") == "none_declared":
        confirmed = ["No questions were asked: a demonstration or test session, not a patient."]
    sections = (
        ("What to expect", tuple(words.what_to_expect)),
        ("Risks", tuple(words.general_risks)),
        (f"Risks for your skin type ({skin_type})", tuple(by_type)),
        (words.contraindications_intro, tuple(confirmed) or ("(no answers recorded)",)),
    )
    return Sheet(
        Which.BEFORE,
        words.title,
        sections,
        patient_id,
        sheets.sheets.version,
        sheets.digest,
    )


def after_sheet(sheets: LoadedSheets, *, patient_id: str, clinic: Mapping[str, Any]) -> Sheet:
    words = sheets.sheets.after
    contact = clinic.get("emergency_contact")
    own = clinic.get("aftercare_instructions")
    name = clinic.get("clinic")
    aftercare = ([str(own)] if own else []) + list(words.aftercare)
    call = [
        *words.call_now_if,
        f"Call: {contact}"
        if contact
        else "Call: NO EMERGENCY CONTACT RECORDED for this clinic; ask before you leave.",
    ]
    sections = (
        ("Aftercare" + (f" ({name})" if name else ""), tuple(aftercare)),
        ("Call now if you notice", tuple(call)),
    )
    return Sheet(
        Which.AFTER, words.title, sections, patient_id, sheets.sheets.version, sheets.digest
    )


def sheet_for(
    which: Which,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    sheets: LoadedSheets,
    questions: Contraindications,
) -> Sheet:
    """A session's sheet rebuilt from its events (kind, payload), oldest first."""
    start = next((p for k, p in events if k == "session_start"), {})
    patient_id = str(start.get("patient_id", ""))
    if which is Which.BEFORE:
        risk = next((p for k, p in events if k == "risk_assessment"), {})
        return before_sheet(
            sheets,
            patient_id=patient_id,
            skin_type=str(start.get("skin_type", "")),
            risk=risk,
            questions=questions,
        )
    clinic = next((p for k, p in events if k == "patient_information"), {})
    return after_sheet(sheets, patient_id=patient_id, clinic=clinic)


def given_note(sheet: Sheet, given: Mapping[str, Any] | None) -> str:
    """Whether ``sheet`` (rebuilt now) is the text the session's log records as ``given``."""
    if given is None:
        return "no sheet of this kind is recorded as given in this session"
    if given.get("text_sha256") == sheet.text_sha256:
        return f"the same text as given to {given.get('given_to')} by {given.get('given_by')}"
    return (
        f"DIFFERS from the text given (version {given.get('version')} given; the file is now "
        f"version {sheet.version})"
    )
