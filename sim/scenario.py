"""Scenarios: what happens to the devices and the patient, as data on the simulated timeline.

A scenario file is YAML, validated strictly when it is loaded (unknown keys, wrong types,
out-of-range values are refused with the offending field named), never when it is played.
Its events (``sim.events``) happen at a time (``t_s``, simulated seconds since the simulator
started) or on an event (``on``). A scenario in the fault matrix also names its risk
(hazard, hazardous situation, harm, risk control) and how the matrix judges it (``matrix``).
Files are read as YAML 1.2 (``device_profiles.datafile``), like setups.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device_profiles.datafile import find, format_errors, load_yaml
from device_profiles.schema import SkinType
from sim.events import (
    HARNESS_ACTIONS,
    CoolerFailure,
    LaserOutputError,
    LaserStopFault,
    PanelSet,
    ScenarioEvent,
    SensorFreeze,
    SensorLinkLost,
    SensorSlow,
    Trigger,
)

__all__ = [
    "HARNESS_ACTIONS",
    "CoolerFailure",
    "LaserOutputError",
    "LaserStopFault",
    "MatrixEntry",
    "PanelSet",
    "RiskEntry",
    "Scenario",
    "ScenarioError",
    "ScenarioEvent",
    "SensorFreeze",
    "SensorLinkLost",
    "SensorSlow",
    "Trigger",
    "load_scenario",
    "parse_scenario",
    "scenario_names",
]


class ScenarioError(Exception):
    """A scenario file that cannot be read or is not valid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestedSettings(_Strict):
    """What the operator will request through the bridge. Documentation for the sim."""

    fluence_j_cm2: float = Field(gt=0)
    pulse_ms: float = Field(gt=0)
    spot_mm: float = Field(gt=0)
    rep_rate_hz: float = Field(gt=0)


class RiskEntry(_Strict):
    """The scenario as a row of the risk analysis (ISO 14971): what can go wrong, how it
    reaches the patient, what it would do to them, and the control this scenario exercises."""

    hazard: str = Field(min_length=1)
    hazardous_situation: str = Field(min_length=1)
    harm: str = Field(min_length=1)
    risk_control: str = Field(min_length=1)


#: How the fault matrix measures a scenario's deadline (``monitor.faults.deadlines``).
DeadlineKind = Literal[
    "crossing",
    "stale",
    "link",
    "readback",
    "unexpected_emission",
    "answer_time",
    "stuck",
    "disagreement",
    "dose",
    "proof_test",
    "device_watchdog",
    "log",
]


class MatrixEntry(_Strict):
    """How the fault matrix (``laserguard faults run``) plays this scenario and judges it.

    The simulator ignores this block. ``fault`` is the scenario action whose moment is the
    onset (``measure_from: crossing`` measures from the first out-of-band value a device
    served instead); ``detected_by`` lists the checks allowed to be the first halt (the
    ``device_watchdog`` when the bridge is gone and the devices stop themselves);
    ``deadline`` names the formula that turns the setup's reaction-time budget into this
    scenario's deadline. ``relay_only``: the laser ignores STOP, only the relay can stop it.
    ``setup_overrides`` are merged into the setup file for this run only (a test setup,
    e.g. a dose limit scaled down so that a slow burn happens within seconds).
    """

    setup: str = "demo-ndyag-1064"
    setup_overrides: dict[str, Any] = Field(default_factory=dict)
    speed: float = Field(10.0, gt=0, le=100)
    arm: bool = True
    bridge_process: bool = False  # the bridge in its own process (to kill, stall or starve it)
    fault: str = Field(min_length=1)
    measure_from: Literal["fault", "crossing"] = "fault"
    detected_by: list[str] = Field(min_length=1)
    deadline: DeadlineKind
    relay_only: bool = False
    observe_s: float = Field(1.0, gt=0, le=30)  # wall s watched after the halt for pulses
    timeout_s: float = Field(15.0, gt=0, le=300)  # wall s the fault may take to be detected


class MeterSettings(_Strict):
    """The simulated energy meter (started when the setup names one; sim/meter.py).

    Simulator values, not a meter's specification: ``noise_rms_fraction`` is the shot-to-shot
    spread of a reading; a meter set to another wavelength than the laser's reads
    ``wrong_wavelength_factor`` times the energy (its head's spectral correction applied for
    the wrong line). ``head_calibrated`` is the date the head reports, or, for a meter that
    cannot report it, the one a test writes in its setup; default 30 days before the run.
    """

    head_calibrated: date | None = None
    start_wavelength_nm: float = Field(532.0, gt=0, lt=100_000)
    noise_rms_fraction: float = Field(0.015, ge=0, le=0.5)
    wrong_wavelength_factor: float = Field(0.8, gt=0, le=5)


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    skin_type: SkinType
    settings: RequestedSettings
    plate_start_c: float = Field(5.0, ge=-20, le=40)
    seed: int
    events: list[ScenarioEvent] = Field(default_factory=list)
    meter: MeterSettings = Field(default_factory=MeterSettings)
    risk: RiskEntry | None = None
    matrix: MatrixEntry | None = None

    def timeline(self) -> list[ScenarioEvent]:
        """The events at a time, in the order they happen (stable for equal times)."""
        timed = [e for e in self.events if e.t_s is not None]
        return sorted(timed, key=lambda e: e.t_s if e.t_s is not None else 0.0)

    def triggered(self) -> list[ScenarioEvent]:
        """The events on an event (``on``), in file order."""
        return [e for e in self.events if e.on is not None]

    @model_validator(mode="after")
    def _matrix_needs_risk(self) -> Scenario:
        if self.matrix is not None:
            if self.risk is None:
                raise ValueError("a scenario in the fault matrix names its risk (risk: ...)")
            actions = {e.action for e in self.events}
            if self.matrix.fault not in actions:
                raise ValueError(
                    f"matrix.fault {self.matrix.fault!r} is not an action of this scenario's "
                    f"events ({', '.join(sorted(actions)) or 'none'})"
                )
        return self


def scenarios_dir() -> Path:
    return Path(str(resources.files("sim") / "scenarios"))


def scenario_names() -> list[str]:
    return sorted(p.stem for p in scenarios_dir().glob("*.yaml"))


def _resolve(name_or_path: str | Path) -> Path:
    path = find(name_or_path, scenarios_dir())
    if path is not None:
        return path
    raise ScenarioError(
        f"no scenario file or bundled scenario named {str(name_or_path)!r}; "
        f"bundled: {', '.join(scenario_names())}"
    )


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    try:
        # YAML 1.2, as every LaserGuard data file: PyYAML's 1.1 reader made `2020-02-30`
        # a date and raised ValueError (a traceback) for an impossible one.
        data: Any = load_yaml(text)
    except yaml.YAMLError as e:
        raise ScenarioError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping at the top level")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(f"{source}: invalid scenario:\n{format_errors(e)}") from e


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario file, or the name of a bundled one."""
    path = _resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"cannot read scenario {path}: {e.strerror}") from e
    return parse_scenario(text, str(path))
