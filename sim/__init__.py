"""The device simulator: the laser, the cooling unit, the skin sensor, the relay and the skin.

Same wires as the real devices (serial command set on a pseudo-terminal, Modbus TCP), same
profiles, a skin thermal model and scripted faults (scenarios). Depends only on
``device_profiles``.
"""

from sim.clock import SimClock
from sim.runner import SimRunner
from sim.scenario import Scenario, ScenarioError, load_scenario, scenario_names
from sim.skin import SkinModel

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimClock",
    "SimRunner",
    "SkinModel",
    "load_scenario",
    "scenario_names",
]
