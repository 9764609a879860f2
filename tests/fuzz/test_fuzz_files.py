"""Issue 16 item 5: every file LaserGuard parses (setup, limit table, scenario, protocols,
patient information, contraindications, risk file, the CSV of ``laserguard check``), fed
arbitrary bytes and mangled YAML: a typed error in words, never another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.loader import (
    ProfileError,
    load_contraindications,
    parse,
    parse_contraindications,
    parse_table,
)
from device_profiles.protocols import ProtocolError as ProtocolsFileError
from device_profiles.protocols import parse_patient_information, parse_protocols
from monitor.cli.main import main
from monitor.cli.risk_file import RiskFileError, parse_risk
from sim.scenario import ScenarioError, parse_scenario
from tests.fuzz.settings import fuzz, tried

FORM = load_contraindications()
YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=20,
)
RAW = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    YAMLISH.map(lambda v: yaml.safe_dump(v).encode()),
)
PROFILE_ERRORS: tuple[type[Exception], ...] = (ProfileError,)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


PARSERS: dict[str, tuple[Any, tuple[type[Exception], ...]]] = {
    "setup": (lambda raw: parse(raw, "fuzz.yaml"), PROFILE_ERRORS),
    "limit table": (lambda raw: parse_table(raw, "fuzz.yaml"), PROFILE_ERRORS),
    "contraindications": (lambda raw: parse_contraindications(raw, "fuzz.yaml"), PROFILE_ERRORS),
    "protocols": (lambda raw: parse_protocols(raw, "fuzz.yaml"), (ProtocolsFileError,)),
    "patient information": (
        lambda raw: parse_patient_information(raw, "fuzz.yaml"),
        (ProtocolsFileError,),
    ),
    "risk file": (lambda raw: parse_risk(raw, Path("fuzz.yaml"), FORM), (RiskFileError,)),
    "scenario": (lambda raw: parse_scenario(_text(raw), "fuzz.yaml"), (ScenarioError,)),
}


@pytest.mark.parametrize("kind", list(PARSERS))
@fuzz()
@given(raw=RAW)
def test_item5_any_file_is_parsed_or_refused_with_a_typed_error(kind: str, raw: bytes) -> None:
    tried()
    parser, typed = PARSERS[kind]
    try:
        parser(raw)
    except typed as e:
        assert str(e).strip(), "a refusal says why"


CSV_HEADER = "fluence_j_cm2,pulse_ms,spot_mm,rep_rate_hz,skin_type\n"


@fuzz(25)
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
       with_header=st.booleans())  # fmt: skip
def test_item5_any_csv_for_check_is_an_exit_code_and_one_sentence(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, with_header: bool
) -> None:
    tried()
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_bytes((CSV_HEADER.encode() if with_header else b"") + body)
    code = main(["check", "--csv", str(path), "--table", "nd-yag-1064"])
    assert code in (0, 1, 2)
