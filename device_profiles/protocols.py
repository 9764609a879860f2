"""Emergency protocols and patient information sheets: the clinic's handling of complications
as data, versioned and digested like the limit tables.

Two kinds of bundled file, each read with the strict YAML 1.2 reader and validated at load:

- ``protocols.yaml`` (``ProtocolBook``): for each complication the immediate steps, who must
  be told and when to refer, with its source; the severity scale incidents are graded on;
  which halt causes show which protocol (and open a draft incident); the follow-up policy.
- ``patient-information.yaml`` (``PatientInformation``): the sheet given before treatment
  (what to expect, risks by skin type) and after it (aftercare, the warning signs that mean
  "call now").

A loaded file carries the SHA-256 of its bytes (``LoadedProtocols.digest``,
``LoadedSheets.digest``): an incident records the protocol book's version and digest, and a
session records which sheet version was given. A changed file is a new version: bump
``version``.

Which halt causes exist is the safety core's business (``monitor.core.checks``), which this
package cannot import: ``monitor.incidents`` checks the mapping against the declared checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from device_profiles.datafile import format_errors, load_yaml, yaml_problem
from device_profiles.schema import SkinType, SkinTypeName, Strict

__all__ = [
    "FollowUpPolicy",
    "HaltCause",
    "IncidentFollowUp",
    "LoadedProtocols",
    "LoadedSheets",
    "PatientInformation",
    "Protocol",
    "ProtocolBook",
    "ProtocolError",
    "SessionFollowUp",
    "SeverityGrade",
    "load_patient_information",
    "load_protocols",
    "parse_patient_information",
    "parse_protocols",
]

_ID = r"^[a-z0-9][a-z0-9_]*$"
Text = Field(min_length=1)


class ProtocolError(Exception):
    """A protocols or patient information file that cannot be read or is not valid."""


class Protocol(Strict):
    """What to do about one complication: at once, whom to tell, when to refer."""

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    signs: str = Field(min_length=1, description="How it shows, so the right protocol is chosen")
    immediate_steps: list[str] = Field(
        min_length=1, description="In order; each one is ticked off and logged"
    )
    notify: list[str] = Field(min_length=1, description="Who must be told")
    refer_when: list[str] = Field(min_length=1, description="When to refer, and to whom")
    source: str = Field(min_length=1, description="Citation, or 'clinic default, review'")

    @model_validator(mode="after")
    def _steps_written(self) -> Protocol:
        for name in ("immediate_steps", "notify", "refer_when"):
            if any(not s.strip() for s in getattr(self, name)):
                raise ValueError(f"{self.id}: {name} has an empty entry")
        return self


class SeverityGrade(Strict):
    grade: int = Field(ge=1, le=5)
    name: str = Field(min_length=1)
    meaning: str = Field(min_length=1)


class HaltCause(Strict):
    """What a halt of one cause means for the patient: which protocol, and a draft incident?"""

    protocol: str | None = Field(
        description="The protocol shown at once; null: no patient exposure is implied"
    )
    draft_incident: bool = Field(
        False, description="Open a draft incident that a clinician must close or complete"
    )

    @model_validator(mode="after")
    def _draft_needs_protocol(self) -> HaltCause:
        if self.draft_incident and self.protocol is None:
            raise ValueError("draft_incident needs a protocol")
        return self


class IncidentFollowUp(Strict):
    """A follow-up after an incident of at least ``min_grade``: due within the window."""

    min_grade: int = Field(ge=1, le=5)
    due_after_h: float = Field(ge=0, le=24 * 90)
    due_within_h: float = Field(gt=0, le=24 * 90)
    method: str = Field(min_length=1)


class SessionFollowUp(Strict):
    """A follow-up after a session of a higher-risk patient (darker skin, a relative
    contraindication, or a halt on skin temperature)."""

    skin_types: list[SkinTypeName] = Field(min_length=1)
    relative_contraindication: bool = Field(
        description="Any relative contraindication answered yes makes the patient higher-risk"
    )
    halted_on: list[str] = Field(
        default_factory=list, description="Halt causes that make a session higher-risk"
    )
    due_after_h: float = Field(ge=0, le=24 * 90)
    due_within_h: float = Field(gt=0, le=24 * 90)
    method: str = Field(min_length=1)


class FollowUpPolicy(Strict):
    incident: list[IncidentFollowUp] = Field(min_length=1)
    session: SessionFollowUp
    source: str = Field(min_length=1)

    def for_grade(self, grade: int) -> IncidentFollowUp | None:
        """The rule with the highest ``min_grade`` the grade reaches; None below them all."""
        fitting = [r for r in self.incident if r.min_grade <= grade]
        return max(fitting, key=lambda r: r.min_grade) if fitting else None


class ProtocolBook(Strict):
    """The bundled ``protocols.yaml``: protocols, severity scale, halt causes, follow-up."""

    spec: Literal["1"]
    version: int = Field(ge=1)
    severity_scale: list[SeverityGrade] = Field(min_length=1)
    severity_source: str = Field(min_length=1)
    protocols: list[Protocol] = Field(min_length=1)
    halt_causes: dict[str, HaltCause] = Field(min_length=1)
    follow_up: FollowUpPolicy

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolBook:
        ids = [p.id for p in self.protocols]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"protocol ids used twice: {twice}")
        grades = [g.grade for g in self.severity_scale]
        if grades != list(range(1, len(grades) + 1)):
            raise ValueError(f"severity_scale grades must be 1, 2, ... in order, not {grades}")
        for cause, what in self.halt_causes.items():
            if what.protocol is not None and what.protocol not in ids:
                raise ValueError(f"halt_causes.{cause}: no protocol {what.protocol!r}")
        for cause in self.follow_up.session.halted_on:
            if cause not in self.halt_causes:
                raise ValueError(f"follow_up.session.halted_on: {cause!r} is not in halt_causes")
        top = len(grades)
        for rule in self.follow_up.incident:
            if rule.min_grade > top:
                raise ValueError(f"follow_up.incident: min_grade {rule.min_grade} above {top}")
        return self

    def protocol(self, protocol_id: str) -> Protocol:
        for p in self.protocols:
            if p.id == protocol_id:
                return p
        raise KeyError(protocol_id)

    def grade(self, grade: int) -> SeverityGrade:
        for g in self.severity_scale:
            if g.grade == grade:
                return g
        raise KeyError(grade)


class BeforeSheet(Strict):
    title: str = Field(min_length=1)
    what_to_expect: list[str] = Field(min_length=1)
    general_risks: list[str] = Field(min_length=1)
    risks_by_skin_type: dict[SkinTypeName, list[str]]
    contraindications_intro: str = Field(min_length=1)

    @model_validator(mode="after")
    def _every_type(self) -> BeforeSheet:
        missing = [t.value for t in SkinType if t not in self.risks_by_skin_type]
        if missing:
            raise ValueError(f"risks_by_skin_type lacks types {missing}")
        return self


class AfterSheet(Strict):
    title: str = Field(min_length=1)
    aftercare: list[str] = Field(min_length=1)
    call_now_if: list[str] = Field(min_length=1, description="Warning signs: call at once")


class PatientInformation(Strict):
    spec: Literal["1"]
    version: int = Field(ge=1)
    source: str = Field(min_length=1)
    before: BeforeSheet
    after: AfterSheet


@dataclass(frozen=True)
class LoadedProtocols:
    book: ProtocolBook
    digest: str  # SHA-256 of the file's bytes
    source: str


@dataclass(frozen=True)
class LoadedSheets:
    sheets: PatientInformation
    digest: str  # SHA-256 of the file's bytes
    source: str


def _bundled(name: str) -> Path:
    from device_profiles.loader import bundled_dir

    return bundled_dir() / name


def _mapping(raw: bytes, source: str, what: str) -> dict[str, Any]:
    try:
        data: Any = load_yaml(raw)
    except yaml.YAMLError as e:
        raise ProtocolError(f"{source}: not valid YAML: {yaml_problem(e)}") from e
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: {what} is a mapping at the top level")
    return data


def _read(path: str | Path | None, default: str, what: str) -> tuple[bytes, str]:
    where = Path(path) if path is not None else _bundled(default)
    try:
        return where.read_bytes(), str(where)
    except OSError as e:
        raise ProtocolError(f"cannot read {what} {where}: {e.strerror}") from e


def parse_protocols(raw: bytes, source: str = "<string>") -> LoadedProtocols:
    data = _mapping(raw, source, "a protocols file")
    try:
        book = ProtocolBook.model_validate(data)
    except ValidationError as e:
        raise ProtocolError(f"{source}: invalid protocols:\n{format_errors(e)}") from e
    return LoadedProtocols(book, hashlib.sha256(raw).hexdigest(), source)


def load_protocols(path: str | Path | None = None) -> LoadedProtocols:
    """The emergency protocols (bundled by default), validated."""
    return parse_protocols(*_read(path, "protocols.yaml", "protocols"))


def parse_patient_information(raw: bytes, source: str = "<string>") -> LoadedSheets:
    data = _mapping(raw, source, "a patient information file")
    try:
        sheets = PatientInformation.model_validate(data)
    except ValidationError as e:
        raise ProtocolError(f"{source}: invalid patient information:\n{format_errors(e)}") from e
    return LoadedSheets(sheets, hashlib.sha256(raw).hexdigest(), source)


def load_patient_information(path: str | Path | None = None) -> LoadedSheets:
    """The patient information sheets (bundled by default), validated."""
    return parse_patient_information(
        *_read(path, "patient-information.yaml", "patient information")
    )
