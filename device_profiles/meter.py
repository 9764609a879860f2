"""Energy meters as data: how a meter is reached, what it is asked and how it answers.

A *meter description* is a YAML file like a setup: a meter's serial transport, its line
terminator, its command set (each command a line to send and a regular expression for the
whole reply, with named groups), its error and over-range replies, the unit and scale of
the energies it reports, and the head it was written for. Supporting another meter means
writing a file, not code; ``firmware_bridge.meter`` speaks any description, and the
simulator (``sim.meter``) answers any description, so every description runs in CI.

Every command carries an ``answer``: what the meter sends, as a ``str.format`` template with
the reply's fields (``"*{energy:.3E}"``). The loader formats it with `SAMPLE_FIELDS` and
checks that ``reply`` parses it back; the simulator answers with it. A description whose
reply pattern cannot read its own meter's answer is refused at load, naming the command.

Commands (``commands:``), the fields their ``answer`` may use, and the groups their
``reply`` must have:

======================  ==========================================  ===================
command                 answer fields                               required groups
======================  ==========================================  ===================
``identify``            model, serial, firmware                     model
``head_info``           head_type, head_serial, head_calibrated     head_type
``set_wavelength``      wavelength_nm (``send`` uses ``{nm}``)      wavelength_nm, or
                                                                    a ``get_wavelength``
``get_wavelength``      wavelength_nm                               wavelength_nm
``range_auto``          (none)                                      (none)
``read_energy``         energy (in ``energy_unit`` / scale)         energy
``energy_ready``        ready                                       ready
======================  ==========================================  ===================

``over_range`` (no fields) is what ``read_energy`` answers when the pulse was above the
head's range (Ophir: ``*OVER``); ``error_reply`` (field ``reason``) is a refusal (Ophir:
``?...``). A SCPI meter answers nothing to a command it refuses and queues the error:
``error_query`` (fields ``code``, ``reason``; SCPI ``SYST:ERR?``) reads it back.

Types are strict like the rest of ``device_profiles`` (``schema.Strict``).
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime
from typing import Literal

from pydantic import Field, model_validator

from device_profiles.schema import SerialTransport, Strict

METER_SPEC = "1"

#: The values the loader formats every ``answer`` with, and the simulated meter answers
#: with (so what the loader checked is what the simulator sends). Measured values (energy,
#: wavelength, readiness, dates, errors) vary at run time; these are their load-time samples.
SAMPLE_FIELDS: dict[str, object] = {
    "model": "SIM-METER",
    "serial": "SIM00001",
    "firmware": "1.00",
    "head_type": "SIM-HEAD",
    "head_serial": "SIMH0001",
    "head_calibrated": date(2026, 1, 31),
    "wavelength_nm": 1064.0,
    "energy": 0.01234,
    "reason": "UNKNOWN COMMAND",
    "code": -113,
}
SAMPLE_WAVELENGTH_NM = 1064.0

# A number as a meter writes it: 1064, 1.064E+03, -0.5, 9.9E37.
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"

ENERGY_UNITS_J: dict[str, float] = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6}


def template_fields(template: str) -> list[str]:
    """The field names a ``str.format`` template uses (``"$WL{nm:.0f}"`` -> ``["nm"]``)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise ValueError(f"not a format template ({e}): {template!r}") from e


def send_pattern(template: str) -> re.Pattern[str]:
    """A regular expression for the lines a ``send`` template produces; ``{nm}`` is a number.

    The simulator recognises commands with it; the loader refuses two commands whose lines
    could be taken for each other.
    """
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P<{name}>{_NUMBER})")
    return re.compile("".join(parts))


class MeterReply(Strict):
    """A reply a meter may send: the pattern that reads it and the meter's own answer."""

    reply: str = Field(description="Regular expression that must match the whole reply line")
    answer: str = Field(
        description="What the meter sends, as a str.format template with the reply's fields; "
        "the loader checks that `reply` reads it, the simulator answers with it"
    )
    source: str = Field(
        min_length=1, description="Where the reply's form comes from (manual, section)"
    )

    @model_validator(mode="after")
    def _reply_compiles(self) -> MeterReply:
        try:
            re.compile(self.reply)
        except re.error as e:
            raise ValueError(f"reply pattern does not compile: {e}") from e
        template_fields(self.answer)
        return self

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.reply)

    def format_answer(self, **values: object) -> str:
        """The answer formatted with `SAMPLE_FIELDS`, ``values`` taking precedence."""
        return self.answer.format(**{**SAMPLE_FIELDS, **values})


class MeterCommand(MeterReply):
    send: str = Field(min_length=1, description="The line sent, a str.format template")


class HeadInfoCommand(MeterCommand):
    calibrated_format: str | None = Field(
        None,
        description="strptime format of the head_calibrated group (e.g. %d-%b-%Y); needed "
        "when the reply reports the head's calibration date",
    )


class ReadyCommand(MeterCommand):
    """Asks whether a new pulse was measured since the last ``read_energy``."""

    ready_value: str = Field("1", min_length=1, description="`ready` when a pulse is waiting")
    not_ready_value: str = Field("0", min_length=1, description="`ready` when none is")
    poll_ms: float = Field(100.0, gt=0, le=5000, description="How often to ask while waiting")

    @model_validator(mode="after")
    def _values_differ(self) -> ReadyCommand:
        if self.ready_value == self.not_ready_value:
            raise ValueError("ready_value and not_ready_value must differ")
        return self


class ErrorQuery(MeterCommand):
    """Reads the meter's error queue (SCPI ``SYST:ERR?``): groups ``code`` and ``reason``."""

    no_error_code: int = Field(0, description="The code that means the queue is empty")


# Per command: the fields its `answer` may use, and the groups its `reply` needs.
_ANSWER_FIELDS: dict[str, frozenset[str]] = {
    "identify": frozenset({"model", "serial", "firmware"}),
    "head_info": frozenset({"head_type", "head_serial", "head_calibrated"}),
    "set_wavelength": frozenset({"wavelength_nm"}),
    "get_wavelength": frozenset({"wavelength_nm"}),
    "range_auto": frozenset(),
    "read_energy": frozenset({"energy"}),
    "energy_ready": frozenset({"ready"}),
}
_REQUIRED_GROUPS: dict[str, frozenset[str]] = {
    "identify": frozenset({"model"}),
    "head_info": frozenset({"head_type"}),
    "get_wavelength": frozenset({"wavelength_nm"}),
    "read_energy": frozenset({"energy"}),
    "energy_ready": frozenset({"ready"}),
}
_NUMERIC_GROUPS = frozenset({"wavelength_nm", "energy", "code"})


def _check_answer(
    where: str, cmd: MeterReply, allowed: frozenset[str], required: frozenset[str], **values: object
) -> re.Match[str]:
    """``cmd.answer`` uses only ``allowed`` fields and ``cmd.reply`` reads it back."""
    unknown = sorted(set(template_fields(cmd.answer)) - allowed)
    if unknown:
        fields = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"{where}.answer uses {unknown}: its fields are {fields}")
    groups = set(cmd.pattern.groupindex)
    if not required <= groups:
        raise ValueError(f"{where}.reply lacks the groups {sorted(required - groups)}")
    try:
        sample = cmd.format_answer(**values)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise ValueError(f"{where}.answer cannot be formatted: {e}") from e
    m = cmd.pattern.fullmatch(sample)
    if m is None:
        raise ValueError(f"{where}.reply does not match the meter's answer {sample!r}")
    for name in _NUMERIC_GROUPS & groups:
        text = m[name]
        if text is not None and re.fullmatch(_NUMBER, text) is None:
            raise ValueError(f"{where}.reply reads {name} as {text!r}, not a number")
    return m


class MeterCommands(Strict):
    identify: MeterCommand
    head_info: HeadInfoCommand
    set_wavelength: MeterCommand = Field(description="`send` uses {nm}")
    get_wavelength: MeterCommand | None = None
    range_auto: MeterCommand | None = None
    read_energy: MeterCommand = Field(description="The energy of the latest pulse")
    energy_ready: ReadyCommand

    def named(self) -> dict[str, MeterCommand]:
        """Every command the description gives, by name."""
        out: dict[str, MeterCommand | None] = {
            name: getattr(self, name) for name in MeterCommands.model_fields
        }
        return {name: cmd for name, cmd in out.items() if cmd is not None}

    @model_validator(mode="after")
    def _consistent(self) -> MeterCommands:
        for name, cmd in self.named().items():
            sends = template_fields(cmd.send)
            wanted = ["nm"] if name == "set_wavelength" else []
            if sorted(set(sends)) != wanted:
                raise ValueError(
                    f"{name}.send must use "
                    + ("{nm} (the wavelength)" if wanted else "no fields")
                    + f", not {sends or 'none'}"
                )
            values: dict[str, object] = {}
            if name == "head_info" and "head_calibrated" in cmd.pattern.groupindex:
                fmt = self.head_info.calibrated_format
                if fmt is None:
                    raise ValueError(
                        "head_info.reply reports head_calibrated: give head_info.calibrated_format"
                    )
                sample_day = SAMPLE_FIELDS["head_calibrated"]
                assert isinstance(sample_day, date)
                values["head_calibrated"] = sample_day.strftime(fmt)
            required = _REQUIRED_GROUPS.get(name, frozenset())
            if isinstance(cmd, ReadyCommand):
                for value in (cmd.ready_value, cmd.not_ready_value):
                    m = _check_answer(name, cmd, _ANSWER_FIELDS[name], required, ready=value)
                    if m["ready"] != value:
                        raise ValueError(
                            f"energy_ready.reply reads ready {value!r} as {m['ready']!r}"
                        )
            else:
                m = _check_answer(name, cmd, _ANSWER_FIELDS[name], required, **values)
            if name == "head_info" and "head_calibrated" in values:
                fmt = self.head_info.calibrated_format
                assert fmt is not None
                try:
                    datetime.strptime(m["head_calibrated"], fmt)
                except ValueError as e:
                    raise ValueError(f"head_info.calibrated_format does not read back: {e}") from e
        set_groups = self.set_wavelength.pattern.groupindex
        if "wavelength_nm" not in set_groups and self.get_wavelength is None:
            raise ValueError(
                "set_wavelength.reply has no wavelength_nm group: give get_wavelength, so "
                "that the wavelength the meter took can be read back"
            )
        lines = {
            name: cmd.send.format(nm=SAMPLE_WAVELENGTH_NM) for name, cmd in self.named().items()
        }
        for name, cmd in self.named().items():
            pattern = send_pattern(cmd.send)
            for other, line in lines.items():
                if other != name and pattern.fullmatch(line):
                    raise ValueError(f"{name}.send and {other}.send cannot be told apart: {line!r}")
        return self


class SpectralRange(Strict):
    """Wavelengths a head is calibrated for (wider than any laser's: 0.19-25 um heads exist)."""

    min: float = Field(gt=0, lt=100_000)
    max: float = Field(gt=0, lt=100_000)

    @model_validator(mode="after")
    def _ordered(self) -> SpectralRange:
        if not self.min <= self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class MeterHead(Strict):
    """The measuring head this description was written for (a pyroelectric energy head)."""

    model: str = Field(min_length=1)
    max_energy_j: float = Field(gt=0, description="Above this the meter answers over-range")
    noise_floor_j: float = Field(ge=0, description="RMS noise of a reading with no pulse")
    wavelength_nm: SpectralRange = Field(description="Wavelengths the head is calibrated for")
    source: str = Field(min_length=1, description="Datasheet, or 'example head, verify'")

    @model_validator(mode="after")
    def _floor_below_max(self) -> MeterHead:
        if self.noise_floor_j >= self.max_energy_j:
            raise ValueError(
                f"noise_floor_j {self.noise_floor_j:g} must be below max_energy_j "
                f"{self.max_energy_j:g}"
            )
        return self


class MeterDescription(Strict):
    """One energy meter's wire protocol and head (a bundled device description)."""

    spec: Literal["1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str
    model: str = Field(min_length=1)
    transport: SerialTransport
    terminator: Literal["\r\n", "\n", "\r"] = "\r\n"
    max_reply_bytes: int = Field(
        128, gt=0, le=4096, description="A longer reply is a protocol error, never data"
    )
    energy_unit: Literal["J", "mJ", "uJ"]
    energy_scale: float = Field(
        1.0, gt=0, description="The reported number x energy_scale is the energy in energy_unit"
    )
    head: MeterHead
    commands: MeterCommands
    over_range: MeterReply = Field(description="What read_energy answers above the head's range")
    error_reply: MeterReply | None = Field(None, description="A refusal; group `reason`")
    error_query: ErrorQuery | None = Field(
        None, description="Reads a refusal the meter did not answer (SCPI SYST:ERR?)"
    )

    def energy_j(self, reported: float) -> float:
        """Joules for a number the meter reported."""
        return reported * self.energy_scale * ENERGY_UNITS_J[self.energy_unit]

    def reported(self, energy_j: float) -> float:
        """The number the meter reports for ``energy_j`` (the inverse of `energy_j`)."""
        return energy_j / (self.energy_scale * ENERGY_UNITS_J[self.energy_unit])

    @property
    def reports_head_calibration(self) -> bool:
        """The head reports its own calibration date (else the setup must state it)."""
        return "head_calibrated" in self.commands.head_info.pattern.groupindex

    @model_validator(mode="after")
    def _replies_fit(self) -> MeterDescription:
        _check_answer("over_range", self.over_range, frozenset(), frozenset())
        normal = self.commands.read_energy.format_answer()
        if self.over_range.pattern.fullmatch(normal):
            raise ValueError(
                f"over_range.reply matches an ordinary reading {normal!r}: every reading "
                "would be over-range"
            )
        if self.error_reply is not None:
            _check_answer(
                "error_reply", self.error_reply, frozenset({"reason"}), frozenset({"reason"})
            )
        if self.error_query is not None:
            fields = frozenset({"code", "reason"})
            _check_answer("error_query", self.error_query, fields, fields)
            if template_fields(self.error_query.send):
                raise ValueError("error_query.send must use no fields")
        for name, cmd in self.commands.named().items():
            if self.terminator in cmd.send or "\n" in cmd.send or "\r" in cmd.send:
                raise ValueError(f"commands.{name}.send must not contain a line terminator")
        return self
