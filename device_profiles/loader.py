"""Load and validate clinic setups and limit tables; the digest that a session records.

A setup is refused at load with a message that names the offending field. A setup either
lists its settings limits inline or names a limit table (``limits.table``): a bundled table
name or a path relative to the setup file. The table is resolved, checked against the
laser's wavelength and its invariants, and its rows fill ``Setup.limits.settings``.

The digest covers every byte the limits came from. Without a table it is the SHA-256 of the
setup file. With one it is the SHA-256 of the ASCII text
``"<sha256 hex of the setup file>\n<sha256 hex of the table file>\n"``, so a change to
either file (even a comment) makes a new profile.

A setup may name an energy meter (``energy_meter.device``: a bundled meter description or
a path relative to the setup file). It is resolved and validated with the setup, and its
digest is kept beside the setup's (``LoadedSetup.meter``); the setup's digest covers the
setup file's bytes, which name the meter, not the meter description's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from device_profiles.datafile import find, format_errors, load_yaml, yaml_problem
from device_profiles.meter import MeterDescription
from device_profiles.schema import (
    Contraindications,
    LimitTableFile,
    ModbusDevice,
    Setup,
)
from device_profiles.skin_meter import SkinMeterDescription
from device_profiles.timing import reaction_budget

# Data files in the bundled folder that are not setups.
NOT_SETUPS = frozenset({"contraindications", "protocols", "patient-information"})


class ProfileError(Exception):
    """A setup file that cannot be read or is not valid. The bridge refuses to arm on it."""


@dataclass(frozen=True)
class LoadedTable:
    table: LimitTableFile
    digest: str  # SHA-256 of the file's bytes
    source: str


@dataclass(frozen=True)
class LoadedMeter:
    description: MeterDescription
    digest: str  # SHA-256 of the file's bytes
    source: str


@dataclass(frozen=True)
class LoadedSetup:
    setup: Setup
    digest: str  # covers the setup and its limit table (module docstring)
    source: str
    setup_digest: str = ""  # SHA-256 of the setup file alone
    table_name: str | None = None
    table_digest: str | None = None
    table_source: str | None = None
    table_version: int | None = None
    meter: LoadedMeter | None = None  # the setup's energy meter, when it names one


def bundled_dir() -> Path:
    return Path(str(resources.files("device_profiles") / "bundled"))


#: The bundled setup every command and the simulator use when none is named.
DEFAULT_SETUP = "demo-ndyag-1064"


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml") if p.stem not in NOT_SETUPS)


def bundled_tables_dir() -> Path:
    return bundled_dir() / "limits"


def bundled_table_names() -> list[str]:
    return sorted(p.stem for p in bundled_tables_dir().glob("*.yaml"))


def bundled_meters_dir() -> Path:
    return bundled_dir() / "meters"


def bundled_meter_names() -> list[str]:
    return sorted(p.stem for p in bundled_meters_dir().glob("*.yaml"))


def combined_digest(setup_digest: str, table_digest: str) -> str:
    """The digest of a setup that names a limit table (see the module docstring)."""
    return hashlib.sha256(f"{setup_digest}\n{table_digest}\n".encode("ascii")).hexdigest()


def resolve(name_or_path: str | Path) -> Path:
    """A path to a file, or the name of a bundled setup."""
    path = find(name_or_path, bundled_dir())
    if path is not None:
        return path
    raise ProfileError(
        f"no setup file or bundled setup named {str(name_or_path)!r}; "
        f"bundled: {', '.join(bundled_names())}"
    )


def _yaml_mapping(raw: bytes, source: str, what: str) -> dict[str, Any]:
    try:
        data: Any = load_yaml(raw)
    except yaml.YAMLError as e:
        raise ProfileError(f"{source}: not valid YAML: {yaml_problem(e)}") from e
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a {what} is a mapping at the top level")
    return data


def _resolve_in(
    name_or_path: str | Path, base_dir: Path | None, folder: Path, what: str, bundled: list[str]
) -> Path:
    """A bundled file of one kind by name (``folder/NAME.yaml``), or a file (relative paths
    from ``base_dir``)."""
    text = str(name_or_path)
    candidate = folder / f"{text}.yaml"
    if "/" not in text and "\\" not in text and candidate.exists():
        return candidate
    path = Path(text)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    raise ProfileError(
        f"no {what} file or bundled {what} named {text!r}; bundled: {', '.join(bundled)}"
    )


def _read(path: Path, what: str, bundled: list[str]) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ProfileError(
            f"cannot read {what} {path}: {e.strerror}; bundled: {', '.join(bundled)}"
        ) from e


def resolve_table(name_or_path: str | Path, base_dir: Path | None = None) -> Path:
    """A bundled limit table by name, or a file (relative paths from ``base_dir``)."""
    return _resolve_in(
        name_or_path, base_dir, bundled_tables_dir(), "limit table", bundled_table_names()
    )


def parse_table(text: str | bytes, source: str = "<string>") -> LoadedTable:
    raw = text.encode() if isinstance(text, str) else text
    data = _yaml_mapping(raw, source, "limit table")
    try:
        table = LimitTableFile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid limit table:\n{format_errors(e)}") from e
    return LoadedTable(table=table, digest=hashlib.sha256(raw).hexdigest(), source=source)


def load_table(name_or_path: str | Path, base_dir: Path | None = None) -> LoadedTable:
    path = resolve_table(name_or_path, base_dir)
    return parse_table(_read(path, "limit table", bundled_table_names()), str(path))


def resolve_meter(name_or_path: str | Path, base_dir: Path | None = None) -> Path:
    """A bundled meter description by name, or a file (relative paths from ``base_dir``)."""
    return _resolve_in(
        name_or_path, base_dir, bundled_meters_dir(), "meter description", bundled_meter_names()
    )


def parse_meter(text: str | bytes, source: str = "<string>") -> LoadedMeter:
    """A meter description from its bytes, validated."""
    raw = text.encode() if isinstance(text, str) else text
    data = _yaml_mapping(raw, source, "meter description")
    try:
        meter = MeterDescription.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid meter description:\n{format_errors(e)}") from e
    return LoadedMeter(description=meter, digest=hashlib.sha256(raw).hexdigest(), source=source)


def load_meter(name_or_path: str | Path, base_dir: Path | None = None) -> LoadedMeter:
    """A bundled meter description (``ophir-style``) or a file, validated."""
    path = resolve_meter(name_or_path, base_dir)
    return parse_meter(_read(path, "meter description", bundled_meter_names()), str(path))


@dataclass(frozen=True)
class LoadedSkinMeter:
    description: SkinMeterDescription
    digest: str  # SHA-256 of the file's bytes
    source: str


def bundled_skin_meters_dir() -> Path:
    return bundled_dir() / "skin_meters"


def bundled_skin_meter_names() -> list[str]:
    return sorted(p.stem for p in bundled_skin_meters_dir().glob("*.yaml"))


def parse_skin_meter(text: str | bytes, source: str = "<string>") -> LoadedSkinMeter:
    """A skin (melanin) meter description from its bytes, validated."""
    raw = text.encode() if isinstance(text, str) else text
    data = _yaml_mapping(raw, source, "skin meter description")
    try:
        meter = SkinMeterDescription.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid skin meter description:\n{format_errors(e)}") from e
    return LoadedSkinMeter(meter, hashlib.sha256(raw).hexdigest(), source)


def load_skin_meter(name_or_path: str | Path) -> LoadedSkinMeter:
    """A bundled skin meter description by name, or a file. An unknown meter is refused: its
    melanin index cannot be mapped to a skin type."""
    text = str(name_or_path)
    candidate = bundled_skin_meters_dir() / f"{text}.yaml"
    if "/" not in text and "\\" not in text and candidate.exists():
        path = candidate
    else:
        path = Path(text)
        if path.suffix not in (".yaml", ".yml") and not path.exists():
            raise ProfileError(
                f"unknown skin meter {text!r}: a melanin index is mapped only with the meter's "
                f"own description; bundled: {', '.join(bundled_skin_meter_names())}"
            )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(
            f"cannot read skin meter description {path}: {e.strerror}; "
            f"bundled: {', '.join(bundled_skin_meter_names())}"
        ) from e
    return parse_skin_meter(raw, str(path))


def _setup_meter(setup: Setup, base_dir: Path, source: str) -> LoadedMeter | None:
    """The setup's energy meter, resolved and checked against the setup; None without one."""
    block = setup.energy_meter
    if block is None:
        return None
    try:
        meter = load_meter(block.device, base_dir)
    except ProfileError as e:
        raise ProfileError(f"{source}: energy_meter.device: {e}") from e
    desc = meter.description
    head = desc.head.wavelength_nm
    wl = setup.laser.wavelength_nm
    if not head.min <= wl <= head.max:
        raise ProfileError(
            f"{source}: energy_meter: the meter's head ({desc.head.model}) measures "
            f"{head.min:g}–{head.max:g} nm, but laser.wavelength_nm is {wl:g} nm"
        )
    if block.head_calibrated is None and not desc.reports_head_calibration:
        raise ProfileError(
            f"{source}: energy_meter.head_calibrated: the meter {desc.name!r} cannot report "
            "its head's calibration date; give it from the head's calibration certificate"
        )
    return meter


#: A head's noise floor may be at most this share of the lowest energy a calibration fires.
NOISE_FLOOR_SHARE_MAX = 0.01


def _check_calibration(setup: Setup, meter: LoadedMeter | None, source: str) -> None:
    """The calibration sweep fits the meter's head: every energy, even a laser at the edge of
    tolerance, is measurable (not over-range), and the head's noise is small beside it."""
    policy = setup.calibration
    if policy is None or meter is None:
        return  # the schema requires a meter with a calibration block
    head = meter.description.head
    top_j = policy.top_energy_j * (1.0 + policy.tolerance_fraction)
    if top_j > head.max_energy_j:
        raise ProfileError(
            f"{source}: calibration: the highest energy fired, {policy.top_energy_j:g} J, at "
            f"+{policy.tolerance_fraction:.0%} is {top_j:g} J, above the meter head's range "
            f"({head.max_energy_j:g} J, {head.model}): a laser at the edge of tolerance would "
            "read over-range instead of being measured"
        )
    if head.noise_floor_j > NOISE_FLOOR_SHARE_MAX * policy.low_energy_j:
        raise ProfileError(
            f"{source}: calibration: the meter head's noise floor {head.noise_floor_j:g} J is "
            f"more than {NOISE_FLOOR_SHARE_MAX:.0%} of the lowest energy fired "
            f"({policy.low_energy_j:g} J): fire higher energies or fit a more sensitive head"
        )


def parse_contraindications(raw: bytes, source: str = "<string>") -> Contraindications:
    """The pre-treatment questions from a file's bytes, validated."""
    data = _yaml_mapping(raw, source, "contraindication list")
    try:
        return Contraindications.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid contraindications:\n{format_errors(e)}") from e


def load_contraindications(path: str | Path | None = None) -> Contraindications:
    """The pre-treatment questions (bundled by default), validated."""
    where = Path(path) if path is not None else bundled_dir() / "contraindications.yaml"
    try:
        raw = where.read_bytes()
    except OSError as e:
        raise ProfileError(f"cannot read contraindications {where}: {e.strerror}") from e
    return parse_contraindications(raw, str(where))


def parse(text: str | bytes, source: str = "<string>", base_dir: Path | None = None) -> LoadedSetup:
    """A setup from its bytes. A relative ``limits.table`` path is taken from ``base_dir``
    (default: the folder of ``source`` when it names a file, else the working folder)."""
    raw = text.encode() if isinstance(text, str) else text
    data = _yaml_mapping(raw, source, "setup")
    setup_digest = hashlib.sha256(raw).hexdigest()
    table: LoadedTable | None = None
    limits = data.get("limits")
    if isinstance(limits, dict) and limits.get("table") is not None:
        if limits.get("settings") is not None:
            raise ProfileError(
                f"{source}: invalid setup:\n  limits: give either `table` or `settings`, not both"
            )
        if base_dir is None:
            src = Path(source)
            base_dir = src.parent if src.exists() else Path.cwd()
        try:
            table = load_table(str(limits["table"]), base_dir)
        except ProfileError as e:
            raise ProfileError(f"{source}: limits.table: {e}") from e
        rows = [row.model_dump(mode="json") for row in table.table.rows]
        data = {**data, "limits": {**limits, "settings": rows}}
    try:
        setup = Setup.model_validate(data)
    except ValidationError as e:
        raise ProfileError(f"{source}: invalid setup:\n{format_errors(e)}") from e
    if base_dir is None:
        src = Path(source)
        base_dir = src.parent if src.exists() else Path.cwd()
    meter = _setup_meter(setup, base_dir, source)
    _check_calibration(setup, meter, source)
    if table is not None:
        lo, hi = table.table.wavelength_range
        wl = setup.laser.wavelength_nm
        if not lo <= wl <= hi:
            span = f"{lo:g} nm" if lo == hi else f"{lo:g}–{hi:g} nm"
            raise ProfileError(
                f"{source}: limits.table {table.table.name!r} is for {span}, "
                f"but laser.wavelength_nm is {wl:g} nm"
            )
    budget = reaction_budget(setup)
    if not budget.ok:
        raise ProfileError(
            f"{source}: limits.required_reaction_ms cannot be met by this configuration:\n"
            + budget.format()
        )
    if table is None:
        return LoadedSetup(setup, setup_digest, source, setup_digest=setup_digest, meter=meter)
    return LoadedSetup(
        setup,
        combined_digest(setup_digest, table.digest),
        source,
        setup_digest=setup_digest,
        table_name=table.table.name,
        table_digest=table.digest,
        table_source=table.source,
        table_version=table.table.version,
        meter=meter,
    )


def load(name_or_path: str | Path) -> LoadedSetup:
    path = resolve(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(
            f"cannot read setup {path}: {e.strerror}; bundled: {', '.join(bundled_names())}"
        ) from e
    return parse(raw, str(path))


ENDPOINT_DEVICES = ("laser", "cooler", "sensor", "sensor2", "interlock", "meter")
# An endpoint moves a device, nothing more: timeouts, baud rates and device ids come from the
# setup, whose digest the session records (they are part of the reaction-time budget).
ADDRESS_KEYS = frozenset({"host", "port", "kind"})
SERIAL_ENDPOINTS = ("laser", "meter")  # a port path or URL
MODBUS_ENDPOINTS = ("cooler", "sensor", "sensor2", "interlock")  # {"host":..., "port":...}


def load_endpoints(path: str | Path) -> dict[str, Any]:
    """An endpoints file (JSON, as ``laserguard sim`` writes it), checked for its form."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ProfileError(f"cannot read the endpoints file {path}: {e.strerror}") from e
    try:
        data: Any = json.loads(raw)
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: not an endpoints file: not UTF-8 text ({e.reason})") from e
    except json.JSONDecodeError as e:
        raise ProfileError(
            f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from e
    check_endpoints(data, str(path))
    return dict(data)


def check_endpoints(endpoints: object, source: str = "endpoints") -> None:
    """Refuse endpoints that name no known device, or that would change more than an address."""
    if not isinstance(endpoints, dict):
        raise ProfileError(
            f"{source}: endpoints are a JSON object mapping {', '.join(ENDPOINT_DEVICES)} to "
            "addresses"
        )
    unknown = sorted(str(k) for k in endpoints if k not in ENDPOINT_DEVICES)
    if unknown:
        raise ProfileError(
            f"{source}: unknown devices {unknown}: endpoints name {', '.join(ENDPOINT_DEVICES)}"
        )
    for key in SERIAL_ENDPOINTS:
        port = endpoints.get(key)
        if key == "laser" and isinstance(port, dict):  # a Modbus laser: checked as below
            continue
        if key in endpoints and not (isinstance(port, str) and port):
            raise ProfileError(
                f"{source}: the {key}'s endpoint is a serial port path or URL (text)"
            )
    for key in (*MODBUS_ENDPOINTS, "laser"):
        if key not in endpoints or (key == "laser" and not isinstance(endpoints[key], dict)):
            continue
        ep = endpoints[key]
        if not isinstance(ep, dict):
            raise ProfileError(f"{source}: the {key}'s endpoint is an object with host and port")
        extra = sorted(str(k) for k in ep if k not in ADDRESS_KEYS)
        if extra:
            raise ProfileError(
                f"{source}: the {key}'s endpoint may give only host and port, not {extra}: "
                "timing and device ids come from the setup"
            )


def with_endpoints(setup: Setup, endpoints: dict[str, Any]) -> Setup:
    """The same setup reached at other addresses (a simulator's pty and ports).

    ``endpoints`` maps ``laser`` and ``meter`` to a serial port and ``cooler``, ``sensor``,
    ``sensor2``, ``interlock`` to ``{"host":..., "port":...}`` or ``{"port": "socket://..."}``.
    Limits never change here, nor timing: anything but an address is refused
    (``check_endpoints``). A ``meter`` or ``sensor2`` endpoint moves the setup's energy meter
    or second skin sensor; a setup without one ignores it.
    """
    check_endpoints(endpoints)

    def moved(transport: BaseModel, ep: dict[str, Any], where: str) -> Any:
        try:
            return type(transport).model_validate({**transport.model_dump(), **ep})
        except ValidationError as e:
            faults = "; ".join(line.strip() for line in format_errors(e).splitlines())
            raise ProfileError(f"endpoint for {where} is invalid: {faults}") from e

    update: dict[str, Any] = {}
    if "laser" in endpoints:
        laser = setup.laser
        ep = endpoints["laser"]  # a serial port, or a Modbus laser's host and port
        transport = moved(laser.transport, ep if isinstance(ep, dict) else {"port": ep}, "laser")
        update["laser"] = laser.model_copy(update={"transport": transport})
    for key in ("cooler", "sensor", "sensor2"):
        if key in endpoints and getattr(setup, key) is not None:  # sensor2 is optional
            dev: ModbusDevice = getattr(setup, key)
            transport = moved(dev.transport, endpoints[key], key)
            update[key] = dev.model_copy(update={"transport": transport})
    if "meter" in endpoints and setup.energy_meter is not None:
        port = str(endpoints["meter"])
        update["energy_meter"] = setup.energy_meter.model_copy(update={"port": port})
    out = setup.interlock_output
    if "interlock" in endpoints and out.kind == "modbus_coil":
        transport = moved(out.transport, endpoints["interlock"], "interlock")
        update["interlock_output"] = out.model_copy(update={"transport": transport})
    return setup.model_copy(update=update)
