"""Pre-treatment risk assessment: may this session arm, and under which restrictions?

The questions are data (``device_profiles/bundled/contraindications.yaml``): each is an
*absolute* contraindication (answered yes → arming refused; nobody can override it) or a
*relative* one (answered yes → arming only with a clinician's attestation that names it, and
the limits tightened by its restrictions). An unanswered question is unsafe: refused.

Use::

    outcome = assess(answers, attestation)          # answers: question id -> present?
    if outcome.arming_allowed:
        table = table.restricted(outcome.restrictions)   # only ever tightens
    log.append(session_id, "risk_assessment", outcome.as_record())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from device_profiles.schema import Contraindications, Restrictions


@dataclass(frozen=True)
class Attestation:
    """A clinician's signed-off judgement that the relative contraindications it ``covers``
    are acceptable for this patient under the restrictions."""

    clinician: str
    statement: str
    covers: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.clinician.strip() or not self.statement.strip():
            raise ValueError("an attestation needs the clinician and a statement")

    def as_record(self) -> dict[str, object]:
        return {
            "clinician": self.clinician,
            "statement": self.statement,
            "covers": sorted(self.covers),
        }


@dataclass(frozen=True)
class RiskOutcome:
    arming_allowed: bool
    restrictions: Restrictions
    reasons: tuple[str, ...]  # why refused, or what restricts it, in plain words
    answers: Mapping[str, bool]
    attestation: Attestation | None
    absolute: tuple[str, ...]  # ids answered yes
    relative: tuple[str, ...]
    unanswered: tuple[str, ...]
    questions_version: int

    def as_record(self) -> dict[str, object]:
        """A JSON-safe dict for the session log."""
        return {
            "arming_allowed": self.arming_allowed,
            "restrictions": self.restrictions.model_dump(),
            "reasons": list(self.reasons),
            "answers": dict(sorted(self.answers.items())),
            "attestation": None if self.attestation is None else self.attestation.as_record(),
            "absolute": list(self.absolute),
            "relative": list(self.relative),
            "unanswered": list(self.unanswered),
            "questions_version": self.questions_version,
        }


def assess(
    answers: Mapping[str, bool],
    attestation: Attestation | None = None,
    questions: Contraindications | None = None,
) -> RiskOutcome:
    """Judge the answers (question id → condition present) against the questions."""
    if questions is None:
        from device_profiles.loader import load_contraindications

        questions = load_contraindications()
    by_id = {q.id: q for q in questions.questions}
    reasons: list[str] = []
    unknown = sorted(set(answers) - set(by_id))
    if unknown:
        reasons.append(f"answers to unknown questions {unknown}: check the form version")
    not_bool = sorted(k for k, v in answers.items() if k in by_id and not isinstance(v, bool))
    unanswered = tuple(q.id for q in questions.questions if q.id not in answers)
    for qid in unanswered:
        reasons.append(f"not answered: {by_id[qid].question}")
    for qid in not_bool:
        reasons.append(f"answer to {qid!r} is not yes or no: {answers[qid]!r}")
    present = [q for q in questions.questions if answers.get(q.id) is True]
    absolute = tuple(q.id for q in present if q.kind == "absolute")
    relative = tuple(q.id for q in present if q.kind == "relative")
    for q in present:
        if q.kind == "absolute":
            reasons.append(f"contraindicated ({q.id}): {q.advice}")
    restrictions = Restrictions()
    covered = attestation.covers if attestation is not None else frozenset()
    for q in present:
        if q.kind != "relative":
            continue
        restrictions = restrictions.combine(q.restrictions)
        if q.id not in covered:
            reasons.append(f"needs a clinician's attestation ({q.id}): {q.advice}")
        else:
            reasons.append(f"restricted ({q.id}): {q.advice}")
    refused = bool(unknown or unanswered or not_bool or absolute) or not set(relative) <= covered
    return RiskOutcome(
        arming_allowed=not refused,
        restrictions=restrictions,
        reasons=tuple(reasons),
        answers=dict(answers),
        attestation=attestation,
        absolute=absolute,
        relative=relative,
        unanswered=unanswered,
        questions_version=questions.version,
    )
