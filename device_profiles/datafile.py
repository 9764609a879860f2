"""What every data file of LaserGuard shares: finding it by name, reading its YAML without
guessing, telling the kinds apart, and saying what is wrong.

YAML is read with the YAML 1.2 core schema, not PyYAML's YAML 1.1 one. In YAML 1.1 ``yes``,
``on`` and ``off`` are booleans, ``1:30`` is 90 and ``010`` is 8; a person who typed them into
a clinic setup meant something else or made a typo, and a strict schema must see the text to
refuse it. Here only ``true``/``false`` are booleans, integers are decimal (or ``0x``/``0o``),
floats include ``1e3`` and ``.5``, and everything else stays a string. A key given twice is
refused (a loader would keep the last one silently), and so is an alias (``*name``: a file of
a few lines could otherwise expand to billions of values when validated).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode


def find(name_or_path: str | Path, folder: Path) -> Path | None:
    """A YAML path as given, or ``folder/NAME.yaml`` for a bundled name; None if neither."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = folder / f"{name_or_path}.yaml"
    return candidate if candidate.exists() else None


LASER_UNION_KINDS = (
    "serial_commands", "modbus_registers", "binary_frames", "serial", "modbus_tcp", "modbus_rtu",
)  # fmt: skip


def format_errors(err: ValidationError) -> str:
    """One line per invalid field, named by its path (``sensor.poll_period_ms: ...``)."""
    lines = []
    for e in err.errors():
        # A laser's protocol and transport are each one of several kinds: pydantic puts the
        # kind in the path (``laser.protocol.serial_commands.arm``); the file has no such key.
        loc = [
            str(p)
            for i, p in enumerate(e["loc"])
            if not (e["loc"][0] == "laser" and i and p in LASER_UNION_KINDS)
        ]
        where = ".".join(loc) or "(top level)"
        msg = e["msg"]
        if e["type"].endswith("_type") and not isinstance(e["input"], dict | list):
            # "valid integer" alone hides that the file said `yes` or "1000"
            msg += f", not {_short(e['input'])}"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- reading YAML without guessing ------------------------------------------------------------

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")


class StrictYamlLoader(yaml.SafeLoader):
    """A safe loader with the YAML 1.2 core schema, no duplicate keys and no aliases."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ConstructorError(
                None, None, "aliases (*name) are not allowed: write each value out",
                event.start_mark,
            )  # fmt: skip
        node: Node | None = super().compose_node(parent, index)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[object, object] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"the key {key!r} is given twice", key_node.start_mark,
                )  # fmt: skip
            if isinstance(key, Hashable):
                seen[key] = key
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_yaml12_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if text.startswith("0x"):
            return int(text[2:], 16)
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 10)  # "010" is ten: YAML 1.2 has no implicit octal


# Replaced, not inherited: SafeLoader's table carries the YAML 1.1 rules.
StrictYamlLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),  # before float: "10" matches both
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
):
    StrictYamlLoader.add_implicit_resolver(_tag, _pattern, list(_first))
StrictYamlLoader.add_constructor(
    "tag:yaml.org,2002:int",
    StrictYamlLoader.construct_yaml12_int,
)


def load_yaml(raw: bytes | str) -> Any:
    """The data in a YAML document, read by ``StrictYamlLoader``.

    Raises ``yaml.YAMLError`` for text that is not YAML (binary bytes, bad UTF-8, a broken
    structure), a key given twice, or an alias.
    """
    return yaml.load(raw, Loader=StrictYamlLoader)  # a SafeLoader subclass: no Python tags


def yaml_problem(err: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, in one line with its place (line and column from 1)."""
    if isinstance(err, yaml.MarkedYAMLError):
        what = err.problem or err.context or "not YAML"
        mark = err.problem_mark or err.context_mark
        return what if mark is None else f"{what} at line {mark.line + 1}, column {mark.column + 1}"
    return str(err).splitlines()[0]  # a ReaderError: bytes that are not text


# --- the kinds of data file -------------------------------------------------------------------


class DataKind(StrEnum):
    """The kinds of LaserGuard data file, told apart by the keys only that kind has."""

    SETUP = "setup"
    LIMIT_TABLE = "limit table"
    CONTRAINDICATIONS = "contraindications"
    SCENARIO = "scenario"
    METER = "meter description"
    PROTOCOLS = "emergency protocols"
    PATIENT_INFORMATION = "patient information"
    SKIN_METER = "skin meter description"


_MARKERS: dict[DataKind, frozenset[str]] = {
    DataKind.SETUP: frozenset({"laser", "cooler", "sensor", "interlock_output", "limits", "loop"}),
    DataKind.LIMIT_TABLE: frozenset({"rows"}),
    DataKind.CONTRAINDICATIONS: frozenset({"questions"}),
    DataKind.SCENARIO: frozenset({"events", "plate_start_c", "seed"}),
    DataKind.METER: frozenset({"commands", "head", "over_range"}),
    DataKind.PROTOCOLS: frozenset({"protocols", "halt_causes", "severity_scale"}),
    DataKind.PATIENT_INFORMATION: frozenset({"before", "after"}),
    DataKind.SKIN_METER: frozenset({"melanin_cuts"}),
}


class UnknownKind(ValueError):
    """Data that is no kind of LaserGuard file, or looks like more than one."""


def detect_kind(data: object) -> DataKind:
    """Which kind of file ``data`` (a parsed YAML document) is meant to be."""
    if not isinstance(data, dict):
        raise UnknownKind("not a LaserGuard data file: expected a mapping at the top level")
    keys = {k for k in data if isinstance(k, str)}
    kinds = [kind for kind, markers in _MARKERS.items() if keys & markers]
    if len(kinds) == 1:
        return kinds[0]
    if kinds:
        names = " and ".join(k.value for k in kinds)
        raise UnknownKind(f"has the keys of a {names}: a file holds one kind")
    raise UnknownKind(
        "not a LaserGuard data file: expected a setup (laser, limits, ...), a limit table "
        "(rows), contraindications (questions), a scenario (events), an energy meter "
        "(commands, head), a skin meter (melanin_cuts), emergency protocols (protocols, "
        "halt_causes) or patient information (before, after)"
    )
