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

Some questions depend on the treatment: a recent tan refuses at 532–755 nm and restricts at
1064 nm (``by_wavelength``), venous reflux concerns only the legs (``sites``). ``assess`` is
told the laser's wavelength and the site; without them it takes the strictest reading, and
the session refuses an assessment made for another wavelength or site. The patient's test
spots (``test_spots``) come with the assessment and are recorded with it
(``monitor.core.treatment``).

A clinical session needs an assessment that is one (``clinical_problem``): answers to the
current form, every question answered yes or no. The all-"no" declaration that demos and
tests start with (``no_contraindications_declared``) says so in its ``source`` and is refused
for a patient by the session itself, whatever the front end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.schema import Contraindications, Restrictions


class RiskSource(StrEnum):
    """Where an assessment's answers came from."""

    FORM = "form"  # a person answered the contraindication form for this patient
    NONE_DECLARED = "none_declared"  # every answer "no", declared in code: demos and tests


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
    invalid: tuple[str, ...]  # answers to questions not on the form, or not yes or no
    source: RiskSource = RiskSource.FORM
    wavelength_nm: float | None = None  # the laser it was judged for (None: the strictest)
    site: TreatmentSite | None = None  # the treatment site it was judged for (None: any)
    test_spots: tuple[TestSpotReading, ...] = ()  # the patient's test spots, with their reading
    not_applicable: tuple[str, ...] = ()  # answered yes, but not about this site

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
            "source": str(self.source),
            "wavelength_nm": self.wavelength_nm,
            "site": None if self.site is None else str(self.site),
            "not_applicable": list(self.not_applicable),
            "test_spots": [t.model_dump(mode="json") for t in self.test_spots],
        }

    def treatment_problem(self, wavelength_nm: float, site: TreatmentSite) -> str | None:
        """Why this assessment was not made for this treatment, or None. One judged without a
        wavelength or a site took the strictest reading of the questions, and fits any."""
        if self.wavelength_nm is not None and abs(self.wavelength_nm - wavelength_nm) > 1.0:
            return (
                f"the risk assessment was made for a {self.wavelength_nm:g} nm laser, this "
                f"session's laser is {wavelength_nm:g} nm: assess again for this laser"
            )
        if self.site is not None and self.site is not site:
            return (
                f"the risk assessment was made for the {self.site}, this session treats the "
                f"{site}: assess again for this site"
            )
        return None

    def clinical_problem(self, form_version: int) -> str | None:
        """Why this cannot be a patient's recorded risk assessment, or None if it can.

        It must be answers to the contraindication form (not the declaration for demos and
        tests), to its current version, every question answered yes or no. Whether those
        answers allow arming is another matter (``arming_allowed``): a complete assessment
        that refuses arming is recorded, and arming refused.
        """
        if self.source is not RiskSource.FORM:
            return (
                "a clinical session needs the patient's risk assessment (answers to the "
                "contraindication form), not the declaration used for demos and tests"
            )
        if self.unanswered or self.invalid:
            missing = [*self.unanswered, *self.invalid]
            return (
                "the risk assessment is incomplete (not answered yes or no: "
                f"{', '.join(missing)}): a clinical session needs every question answered"
            )
        if self.questions_version != form_version:
            return (
                f"the risk assessment answers version {self.questions_version} of the "
                f"contraindication form, the current form is version {form_version}"
            )
        return None


def assess(
    answers: Mapping[str, bool],
    attestation: Attestation | None = None,
    questions: Contraindications | None = None,
    *,
    wavelength_nm: float | None = None,
    site: TreatmentSite | None = None,
    test_spots: tuple[TestSpotReading, ...] = (),
) -> RiskOutcome:
    """Judge the answers (question id → condition present) against the questions, for a
    laser at ``wavelength_nm`` treating ``site`` (None: the strictest reading)."""
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
    said_yes = [q for q in questions.questions if answers.get(q.id) is True]
    present = [q for q in said_yes if q.concerns(site)]
    not_applicable = tuple(q.id for q in said_yes if not q.concerns(site))
    weight = {q.id: q.at(wavelength_nm) for q in present}
    absolute = tuple(q.id for q in present if weight[q.id][0] == "absolute")
    relative = tuple(q.id for q in present if weight[q.id][0] == "relative")
    for q in present:
        if weight[q.id][0] == "absolute":
            at = ""
            if q.by_wavelength:
                at = " (laser not stated)" if wavelength_nm is None else f" at {wavelength_nm:g} nm"
            reasons.append(f"contraindicated ({q.id}{at}): {q.advice}")
    restrictions = Restrictions()
    covered = attestation.covers if attestation is not None else frozenset()
    for q in present:
        if weight[q.id][0] != "relative":
            continue
        restrictions = restrictions.combine(weight[q.id][1])
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
        invalid=(*unknown, *not_bool),
        wavelength_nm=wavelength_nm,
        site=site,
        test_spots=tuple(test_spots),
        not_applicable=not_applicable,
    )


def no_contraindications_declared() -> RiskOutcome:
    """Every question answered "no" without asking: for demos and tests, recorded as such
    (``source: none_declared``). A clinical session refuses it."""
    from device_profiles.loader import load_contraindications

    form = load_contraindications()
    answered = assess({q.id: False for q in form.questions}, questions=form)
    return replace(answered, source=RiskSource.NONE_DECLARED)
