"""The request bodies the console's REST API takes, and its answers' shapes (in the OpenAPI
document). Bodies are strict: an unknown field, a number given as text, NaN or a missing
reason is refused with 422 and changes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.schema import SkinType
from monitor.control.protocol import (
    CheckName,
    NeededReason,
    PatientId,
    QuestionId,
    Reason,
    Settings,
)
from monitor.incidents.followups import Outcome
from monitor.incidents.incidents import CloseOutcome
from monitor.service.roles import Role

__all__ = [
    "AmendBody",
    "AttestationBody",
    "CloseBody",
    "CompleteBody",
    "FollowUpBody",
    "FollowUpOutcomeBody",
    "HaltBody",
    "OpenIncidentBody",
    "ProtocolStepBody",
    "ReasonBody",
    "RequiredReasonBody",
    "ResetBody",
    "Settings",
    "SignInBody",
    "StartSessionBody",
    "TickBody",
    "UserBody",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SignInBody(_Body):
    username: Name
    password: Password


class UserBody(_Body):
    username: Name
    role: Role
    password: Password


class AttestationBody(_Body):
    """The signed-in clinician accepts these relative contraindications for this patient."""

    statement: NeededReason
    covers: list[QuestionId] = Field(min_length=1, max_length=32)


class StartSessionBody(_Body):
    patient_id: PatientId = Field(description="pseudonymous patient id, never a name")
    skin_type: SkinType | None = Field(
        None, description="Fitzpatrick type I..VI, chosen by the clinician"
    )
    melanin_index: StrictFloat | None = Field(
        None, ge=0, le=99, description="reflectance meter reading; the darker type wins"
    )
    answers: dict[QuestionId, StrictBool] = Field(
        max_length=64, description="every question of GET /api/contraindications: true or false"
    )
    attestation: AttestationBody | None = None
    site: TreatmentSite | None = Field(
        None,
        description="face, periorbital, legs or body; a clinical session without it is "
        "refused (demo and test sessions treat the legs). The questionnaire is judged for it",
    )
    test_spots: list[TestSpotReading] = Field(
        default_factory=list,
        max_length=16,
        description="the patient's test spots and their readings (types IV-VI need one)",
    )


class ProtocolStepBody(_Body):
    """One immediate step of the protocol shown for a halt of ``check``, done."""

    check: CheckName
    step: StrictInt = Field(ge=1, le=64, description="1-based, as the checklist shows it")
    note: Reason = ""


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Words = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
RecordId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=4, max_length=64, pattern=r"^[0-9a-f]+$"),
]
When = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=10, max_length=40),
]
ProtocolId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class DetailsBody(_Body):
    """An incident's details, every one given (the back end checks type and grade against
    the protocol book, and that ``noticed_at`` is not in the future)."""

    type: ProtocolId = Field(description="the complication: a protocol id of GET /api/protocols")
    severity: StrictInt = Field(ge=1, le=5, description="a grade of the book's severity scale")
    body_site: Text
    noticed_at: When = Field(description="ISO 8601 date-time (no zone: the clinic's)")
    noticed_by: Text
    actions_taken: Text
    referral: Text = Field(description="where referred, or 'none'")

    def given(self) -> dict[str, object]:
        return self.model_dump()


class ChangesBody(_Body):
    """A correction's new values: only those given change."""

    type: ProtocolId | None = None
    severity: StrictInt | None = Field(None, ge=1, le=5)
    body_site: Text | None = None
    noticed_at: When | None = None
    noticed_by: Text | None = None
    actions_taken: Text | None = None
    referral: Text | None = None

    def given(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class OpenIncidentBody(_Body):
    session_id: RecordId
    details: DetailsBody
    trigger_seq: StrictInt | None = Field(
        None, ge=1, description="the halt or alarm it follows (its seq in the session's log)"
    )


class CompleteBody(DetailsBody):
    pass


class AmendBody(_Body):
    why: NeededReason
    changes: ChangesBody


class CloseBody(_Body):
    outcome: CloseOutcome = Field(description="a draft: no_injury; documented: resolved/referred")
    reason: NeededReason


class TickBody(_Body):
    step: StrictInt = Field(ge=1, le=64, description="1-based, as the checklist shows it")
    note: Reason = ""


class FollowUpBody(_Body):
    session_id: RecordId
    incident_id: RecordId | None = None
    due_from: When | None = Field(None, description="default: now")
    due_by: When = Field(description="ISO 8601; a window that has closed is refused")
    method: Text = Field(description="phone call, visit, ...")
    reason: NeededReason


class FollowUpOutcomeBody(_Body):
    outcome: Outcome
    note: Words = ""


class ReasonBody(_Body):
    reason: Reason = ""


class RequiredReasonBody(_Body):
    reason: NeededReason


class HaltBody(_Body):
    reason: Reason = ""


class ResetBody(_Body):
    condition: CheckName = Field(description="one latched condition, as named in the alarms")
    reason: NeededReason


class Problem(BaseModel):
    """Every refused request's body: one sentence, and for 422 the fields at fault."""

    detail: str
    errors: list[dict[str, Any]] | None = None
