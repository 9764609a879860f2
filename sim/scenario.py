"""Scenarios: what happens to the devices and the patient, as data on the simulated timeline.

A scenario file is YAML, validated strictly when it is loaded (unknown keys, wrong types,
out-of-range values are refused with the offending field named), never when it is played.
Event times ``t_s`` are simulated seconds since the simulator started. Files are read as
YAML 1.2 (``device_profiles.datafile``), like setups.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device_profiles.datafile import find, format_errors, load_yaml
from device_profiles.schema import SkinType


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


class _Event(_Strict):
    t_s: float = Field(ge=0)


class Trigger(_Event):
    """The operator's footswitch on the laser."""

    action: Literal["trigger"]
    pressed: bool


class CoolerFailure(_Event):
    """The chiller stops cooling; the plate drifts exponentially to ``to_c``."""

    action: Literal["cooler_failure"]
    to_c: float = Field(ge=-50, le=60)
    tau_s: float = Field(gt=0)


class SensorFreeze(_Event):
    """The sensor keeps answering, but its value and sample counter stop changing."""

    action: Literal["sensor_freeze"]


class SensorLinkLost(_Event):
    """The sensor's Modbus server stops answering: requests time out."""

    action: Literal["sensor_link_lost"]


class SensorSlow(_Event):
    """The sensor still answers, but ``answer_ms`` late (wall time: the bridge is real);
    ``answer_ms: 0`` makes it prompt again. The value is taken when the request arrives, so
    it is that much older when it is served."""

    action: Literal["sensor_slow"]
    answer_ms: float = Field(ge=0, le=5000)


class PanelSet(_Event):
    """Someone turns a knob on the laser's own panel; the laser stays in its state."""

    action: Literal["panel_set"]
    setting: Literal["fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz"]
    value: float = Field(gt=0)


class LaserStopFault(_Event):
    """The laser's own stop route fails from now on (a hostile device for the halt path).

    ``stop_reply: lie`` answers STOP with its normal confirmation and keeps its state;
    ``stop_reply: none`` never answers STOP (every other command still works). With
    ``ignores_interlock`` its remote-interlock input is stuck too: it keeps reporting READY or
    FIRING when the relay opens (the relay still cuts the beam: no pulse fires).
    """

    action: Literal["laser_stop_fault"]
    stop_reply: Literal["lie", "none"]
    ignores_interlock: bool = False


class LaserOutputError(_Event):
    """The laser delivers other than it is set to, from now on (a laser out of calibration).

    Delivered energy per pulse = set energy x gain x (1 + drift_per_shot x n) + offset_j,
    where n counts the pulses since this event (0 for the first) and the set energy is the
    set fluence x the spot's area (pi x (spot_mm / 20)^2 cm^2). Never below 0 J. The skin
    gets the delivered energy too. ``gain: 1.3`` is a laser 30 % hot.
    """

    action: Literal["laser_output_error"]
    gain: float = Field(1.0, gt=0, le=10)
    offset_j: float = Field(0.0, ge=-100, le=100)
    drift_per_shot: float = Field(0.0, ge=-0.1, le=0.1)


class SensorOffset(_Event):
    """The skin sensor and the plate's thermometer read off from now on (out of calibration).

    Each serves the true temperature plus its offset; a negative offset reads low, the
    dangerous direction (the skin is hotter than shown). A calibration against a reference
    thermometer must find it.
    """

    action: Literal["sensor_offset"]
    skin_offset_c: float = Field(0.0, ge=-20, le=20)
    plate_offset_c: float = Field(0.0, ge=-20, le=20)


ScenarioEvent = Annotated[
    Trigger
    | CoolerFailure
    | SensorFreeze
    | SensorLinkLost
    | SensorSlow
    | PanelSet
    | LaserStopFault
    | LaserOutputError
    | SensorOffset,
    Field(discriminator="action"),
]


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

    def timeline(self) -> list[ScenarioEvent]:
        """Events in the order they happen (stable for equal times)."""
        return sorted(self.events, key=lambda e: e.t_s)


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
