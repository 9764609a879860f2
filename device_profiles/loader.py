"""Load and validate clinic setups; the digest that a session records.

A setup is refused at load with a message that names the offending field. The digest is
the SHA-256 of the file's bytes, so any change (even a comment) makes a new profile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from device_profiles.schema import ModbusDevice, Setup
from device_profiles.timing import reaction_budget


class ProfileError(Exception):
    """A setup file that cannot be read or is not valid. The bridge refuses to arm on it."""


@dataclass(frozen=True)
class LoadedSetup:
    setup: Setup
    digest: str
    source: str


def bundled_dir() -> Path:
    return Path(str(resources.files("device_profiles") / "bundled"))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """A path to a file, or the name of a bundled setup."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = bundled_dir() / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    raise ProfileError(
        f"no setup file or bundled setup named {str(name_or_path)!r}; "
        f"bundled: {', '.join(bundled_names())}"
    )


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def parse(text: str | bytes, source: str = "<string>") -> LoadedSetup:
    raw = text.encode() if isinstance(text, str) else text
    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ProfileError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a setup is a mapping at the top level")
    try:
        setup = Setup.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid setup:\n{_format_errors(e)}") from e
    budget = reaction_budget(setup)
    if not budget.ok:
        raise ProfileError(
            f"{source}: limits.required_reaction_ms cannot be met by this configuration:\n"
            + budget.format()
        )
    return LoadedSetup(setup=setup, digest=hashlib.sha256(raw).hexdigest(), source=source)


def load(name_or_path: str | Path) -> LoadedSetup:
    path = resolve(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(
            f"cannot read setup {path}: {e.strerror}; bundled: {', '.join(bundled_names())}"
        ) from e
    return parse(raw, str(path))


def with_endpoints(setup: Setup, endpoints: dict[str, Any]) -> Setup:
    """The same setup reached at other addresses (a simulator's pty and ports).

    ``endpoints`` maps ``laser`` to a serial port and ``cooler``, ``sensor``, ``interlock``
    to ``{"host":..., "port":...}`` or ``{"port": "socket://..."}``. Limits never change here.
    """

    def moved(transport: BaseModel, ep: dict[str, Any], where: str) -> Any:
        try:
            return type(transport).model_validate({**transport.model_dump(), **ep})
        except ValidationError as e:
            raise ProfileError(f"endpoint for {where} is invalid:\n{_format_errors(e)}") from e

    update: dict[str, Any] = {}
    if "laser" in endpoints:
        laser = setup.laser
        transport = moved(laser.transport, {"port": endpoints["laser"]}, "laser")
        update["laser"] = laser.model_copy(update={"transport": transport})
    for key in ("cooler", "sensor"):
        if key in endpoints:
            dev: ModbusDevice = getattr(setup, key)
            transport = moved(dev.transport, endpoints[key], key)
            update[key] = dev.model_copy(update={"transport": transport})
    out = setup.interlock_output
    if "interlock" in endpoints and out.kind == "modbus_coil":
        transport = moved(out.transport, endpoints["interlock"], "interlock")
        update["interlock_output"] = out.model_copy(update={"transport": transport})
    return setup.model_copy(update=update)
