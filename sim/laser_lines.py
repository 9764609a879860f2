"""The line-based laser's command set, read from its profile (issue 14 item 5).

The simulated laser understands exactly the lines the profile's ``send`` templates produce
and answers with lines its ``reply`` patterns accept, so a clinic's own ``serial_commands``
laser runs against the simulator with no code:

- a request line is matched against each command's ``send`` template, a ``{value...}``
  field standing for one word (a setter's value, parsed as a number by the laser);
- a reply is *rendered* from the command's ``reply`` regular expression: each named group
  gets its value (the state, the pulse count, a setting in its setter's format), anything
  else the shortest text the expression accepts (the first branch of an alternation, the
  first character of a class, a repeat's minimum). The rendered line is checked against
  the pattern with ``fullmatch`` and each group must read back its value, or the profile
  is refused here (``ReplyNotRenderable``) with the command's name: a simulator that
  answered something its own profile does not accept would test nothing.

Rendering walks the pattern's parse tree from CPython's ``re._parser`` (the project runs on
Python 3.11; the module has no type stubs, so it is reached through ``importlib``).
"""

from __future__ import annotations

import functools
import importlib
import re
import string
from typing import Any

from device_profiles.schema import LASER_SETTINGS, Command, LaserProtocol

_parser: Any = importlib.import_module("re._parser")

#: A request line's ``{value}`` field: one word, parsed by the laser (``BAD VALUE`` if it is
#: not a number).
_VALUE_WORD = r"(?P<value>\S+)"
_PROBE_CHARS = "x0 .-_aA"


class ReplyNotRenderable(ValueError):
    """A reply pattern the simulator cannot produce a matching line for."""


def request_pattern(send: str) -> re.Pattern[str]:
    """The lines a ``send`` template produces, as a pattern (``{value:.1f}``: one word)."""
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(send):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(_VALUE_WORD)
    return re.compile("".join(parts))


def _render(items: Any, groups: dict[str, str], names: dict[int, str]) -> str:
    out = []
    for op, av in items:
        kind = str(op)
        if kind == "LITERAL":
            out.append(chr(av))
        elif kind in ("NOT_LITERAL", "ANY"):
            out.append(next(c for c in _PROBE_CHARS if kind == "ANY" or ord(c) != av))
        elif kind == "IN":
            out.append(_one_of(av))
        elif kind == "BRANCH":
            out.append(_render(av[1][0], groups, names))
        elif kind == "SUBPATTERN":
            group, _add, _del, sub = av
            name = names.get(group) if group is not None else None
            out.append(groups[name] if name in groups else _render(sub, groups, names))
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = av
            out.append(_render(sub, groups, names) * low)
        elif kind in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            raise ReplyNotRenderable(f"the simulator cannot render {kind} in a reply pattern")
    return "".join(out)


def _one_of(items: Any) -> str:
    pattern = re.compile("[" + "".join(_class_item(op, av) for op, av in items) + "]")
    for c in _PROBE_CHARS:
        if pattern.fullmatch(c):
            return c
    for op, av in items:
        if str(op) == "LITERAL":
            return chr(av)
        if str(op) == "RANGE":
            return chr(av[0])
    raise ReplyNotRenderable("a character class the simulator cannot satisfy")


def _class_item(op: Any, av: Any) -> str:
    kind = str(op)
    if kind == "LITERAL":
        return re.escape(chr(av))
    if kind == "RANGE":
        return f"{re.escape(chr(av[0]))}-{re.escape(chr(av[1]))}"
    if kind == "NEGATE":
        return "^"
    if kind == "CATEGORY":
        return {"CATEGORY_DIGIT": r"\d", "CATEGORY_SPACE": r"\s", "CATEGORY_WORD": r"\w"}.get(
            str(av), r"\W"
        )
    raise ReplyNotRenderable(f"the simulator cannot render {kind} in a character class")


@functools.lru_cache(maxsize=256)
def _parsed(pattern: str) -> tuple[list[Any], dict[int, str]]:
    """The pattern's parse tree and its group names by number (parsed once: a status reply is
    rendered some 50 times a second)."""
    parsed = _parser.parse(pattern)
    return list(parsed), {number: name for name, number in parsed.state.groupdict.items()}


def render(what: str, pattern: str, groups: dict[str, str]) -> str:
    """A line that ``pattern`` fully matches, each named group holding ``groups[name]``."""
    items, names = _parsed(pattern)
    line = _render(items, groups, names)
    m = re.fullmatch(pattern, line)
    named = set(names.values())
    if m is None or any(m[name] != value for name, value in groups.items() if name in named):
        raise ReplyNotRenderable(
            f"the simulator cannot answer {what}: its reply pattern {pattern!r} does not "
            f"accept the line it renders, {line!r}"
        )
    return line


class LineCommandSet:
    """The profile's ``serial_commands``: which command a line is, and the line to answer."""

    def __init__(self, proto: LaserProtocol) -> None:
        self.proto = proto
        commands: dict[str, Command | None] = {
            "status": proto.status,
            "arm": proto.arm,
            "standby": proto.standby,
            "stop": proto.stop,
            "heartbeat": proto.heartbeat,
            "identify": proto.identify,
            "service_on": proto.service_on,
            "service_off": proto.service_off,
            "service_shot": proto.service_shot,
            **{f"set:{name}": cmd for name, cmd in proto.set.items()},
        }
        self.commands = {name: cmd for name, cmd in commands.items() if cmd is not None}
        self._requests = [(name, request_pattern(cmd.send)) for name, cmd in self.commands.items()]
        self._value_format = {
            name: _format_of(cmd.send) for name, cmd in proto.set.items() if name in LASER_SETTINGS
        }
        # Refuse a profile the simulator cannot answer now, not at the first status poll.
        self.status_line("STANDBY", 0, dict.fromkeys(LASER_SETTINGS, 1.0), 0.0)
        self.error("UNKNOWN COMMAND")

    def match(self, line: str) -> tuple[str, str | None] | None:
        """(command name, its value word or None) for a request line, or None: unknown."""
        for name, pattern in self._requests:
            m = pattern.fullmatch(line)
            if m is not None:
                return name, m.groupdict().get("value")
        return None

    def reply(self, name: str, groups: dict[str, str] | None = None) -> str:
        return render(name, self.commands[name].reply, groups or {})

    def setting_text(self, name: str, value: float) -> str:
        return format(value, self._value_format.get(name, "g"))

    def confirm(self, name: str, value: float) -> str:
        return self.reply(f"set:{name}", {"value": self.setting_text(name, value)})

    def status_line(
        self, state: str, pulses: int, settings: dict[str, float], delivered_j: float
    ) -> str:
        groups = {name: self.setting_text(name, settings[name]) for name in LASER_SETTINGS}
        groups |= {"state": state, "pulses": str(pulses), "delivered_j": f"{delivered_j:.4f}"}
        return self.reply("status", groups)

    def error(self, reason: str) -> str:
        return render("an error", self.proto.error_reply, {"reason": reason})


def _format_of(send: str) -> str:
    for _literal, field, spec, _conv in string.Formatter().parse(send):
        if field is not None:
            return spec or "g"
    return "g"
