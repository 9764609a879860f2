"""Reading a pre-treatment risk assessment from a file (``laserguard bridge --risk FILE``).

The file is YAML::

    answers:                  # every question on the form, each yes or no
      pregnancy: no
      anticoagulants: yes
      ...
    attestation:              # optional: a clinician accepts the relative ones it covers
      clinician: Dr. Vega
      statement: Warfarin, INR in range; test spots agreed
      covers: [anticoagulants]
    test_spots:               # optional: the patient's test spots, and their reading
      - {done_on: 2026-03-02, read_on: 2026-03-16, read_by: Dr. Vega, site: legs,
         wavelength_nm: 1064, fluence_j_cm2: 100, pulse_ms: 30, spot_mm: 3,
         result: no_reaction}

A file that is not of this form is bad input and nothing starts: a question the form does not
have (a typo, or another version of the form), an answer other than yes or no ("maybe"), an
unanswered question, an attestation that is not a clinician, a statement and a list of the
relative questions it covers, a test spot that is not a ``TestSpotReading``. Whether the
answers allow arming is then for ``assess``, told the laser's wavelength and the site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.datafile import format_errors, load_yaml, yaml_problem
from device_profiles.loader import load_contraindications
from device_profiles.schema import Contraindications
from monitor.cli.exit_status import BadInput
from monitor.core.risk import Attestation, RiskOutcome, assess

_ANSWER_WORDS = {"yes": True, "no": False}
_ATTESTATION_KEYS = ("clinician", "statement", "covers")


class RiskFileError(BadInput):
    """A risk assessment file that cannot be used; the message names the file and the fault."""


def _kind_of(value: object) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    return "nothing" if value is None else f"a {type(value).__name__}"


def _answer(path: Path, qid: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _ANSWER_WORDS:
        return _ANSWER_WORDS[value.strip().lower()]
    raise RiskFileError(f"{path}: the answer to {qid!r} must be yes or no, not {_kind_of(value)}")


def _answers(path: Path, raw: object, form: Contraindications) -> dict[str, bool]:
    if not isinstance(raw, dict):
        raise RiskFileError(
            f"{path}: 'answers' must map each question id to yes or no, not {_kind_of(raw)}"
        )
    ids = [q.id for q in form.questions]
    unknown = sorted(str(k) for k in raw if k not in ids)
    if unknown:
        raise RiskFileError(
            f"{path}: {', '.join(map(repr, unknown))} "
            f"{'is not a question' if len(unknown) == 1 else 'are not questions'} on the "
            f"contraindication form (version {form.version}), whose questions are: "
            f"{', '.join(ids)}"
        )
    answers = {qid: _answer(path, qid, raw[qid]) for qid in ids if qid in raw}
    missing = [qid for qid in ids if qid not in answers]
    if missing:
        raise RiskFileError(
            f"{path}: not answered: {', '.join(missing)} (every question needs yes or no)"
        )
    return answers


def _attestation(path: Path, raw: object, form: Contraindications) -> Attestation:
    if not isinstance(raw, dict):
        raise RiskFileError(
            f"{path}: 'attestation' must be a mapping with clinician, statement and covers, "
            f"not {_kind_of(raw)}"
        )
    extra = sorted(str(k) for k in raw if k not in _ATTESTATION_KEYS)
    if extra:
        raise RiskFileError(
            f"{path}: 'attestation' has unknown keys {extra}: it takes clinician, statement "
            "and covers"
        )
    clinician, statement, covers = (raw.get(k) for k in _ATTESTATION_KEYS)
    for key, value in (("clinician", clinician), ("statement", statement)):
        if not isinstance(value, str) or not value.strip():
            raise RiskFileError(
                f"{path}: the attestation's {key} must be text, not {_kind_of(value)}"
            )
    relative = [q.id for q in form.questions if q.kind == "relative"]
    if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
        raise RiskFileError(
            f"{path}: the attestation's 'covers' must be a list of question ids "
            f"(e.g. [{relative[0]}]), not {_kind_of(covers)}"
        )
    not_relative = [c for c in covers if c not in relative]
    if not_relative:
        raise RiskFileError(
            f"{path}: an attestation covers only relative contraindications "
            f"({', '.join(relative)}), not {', '.join(map(repr, not_relative))}"
        )
    assert isinstance(clinician, str) and isinstance(statement, str)
    return Attestation(clinician=clinician, statement=statement, covers=frozenset(covers))


def _test_spots(path: Path, raw: object) -> tuple[TestSpotReading, ...]:
    if not isinstance(raw, list):
        raise RiskFileError(
            f"{path}: 'test_spots' must be a list of test spots, not {_kind_of(raw)}"
        )
    spots = []
    for i, item in enumerate(raw):
        try:
            spots.append(TestSpotReading.model_validate(item))
        except ValidationError as e:
            faults = "; ".join(line.strip() for line in format_errors(e).splitlines())
            raise RiskFileError(f"{path}: test_spots item {i}: {faults}") from e
    return tuple(spots)


_RISK_KEYS = ("answers", "attestation", "test_spots")


def parse_risk(
    raw: bytes,
    path: Path,
    form: Contraindications,
    *,
    wavelength_nm: float | None = None,
    site: TreatmentSite | None = None,
) -> RiskOutcome:
    """The assessment from a risk file's bytes; ``RiskFileError`` if the file is not usable."""
    try:
        data: Any = load_yaml(raw)
    except yaml.YAMLError as e:
        raise RiskFileError(f"{path}: not valid YAML: {yaml_problem(e)}") from e
    if not isinstance(data, dict) or "answers" not in data:
        raise RiskFileError(f"{path}: expected a mapping with 'answers' (question id: yes/no)")
    extra = sorted(str(k) for k in data if k not in _RISK_KEYS)
    if extra:
        raise RiskFileError(
            f"{path}: unknown keys {extra}: a risk file has 'answers' and an optional "
            "'attestation' and 'test_spots'"
        )
    answers = _answers(path, data["answers"], form)
    att = data.get("attestation")
    attestation = None if att is None else _attestation(path, att, form)
    spots = _test_spots(path, data.get("test_spots", []))
    return assess(
        answers, attestation, form, wavelength_nm=wavelength_nm, site=site, test_spots=spots
    )


def load_risk(
    path: Path,
    form: Contraindications | None = None,
    *,
    wavelength_nm: float | None = None,
    site: TreatmentSite | None = None,
) -> RiskOutcome:
    """Read and judge a risk assessment file against the contraindication form, for a laser at
    ``wavelength_nm`` treating ``site`` (None: the strictest reading)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RiskFileError(f"cannot read the risk assessment {path}: {e.strerror}") from e
    form = form if form is not None else load_contraindications()
    return parse_risk(raw, path, form, wavelength_nm=wavelength_nm, site=site)
