"""The skin model's tuning targets, run on the model directly (no wires, no waiting)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from device_profiles.schema import Setup, SkinType
from sim.clock import SimClock
from sim.laser import LaserModel
from sim.scenario import Scenario, load_scenario
from sim.skin import SkinModel, melanin_absorption_cm
from sim.world import World


def play(setup: Setup, scenario: Scenario, until_s: float) -> list[tuple[float, float]]:
    """(t, skin temperature) every 10 ms and right after every pulse, laser armed at t=0."""
    pulses: list[tuple[float, float]] = []

    def record(kind: str, **fields: Any) -> None:
        if kind == "pulse":
            pulses.append((world.t_s, fields["skin_temp_c"]))

    world = World(setup, scenario, SimClock(), record)
    laser = LaserModel(world, setup.laser)
    laser.settings.update(fluence_j_cm2=120.0, rep_rate_hz=1.0)
    world.relay_closed = True
    laser.last_heartbeat = time.monotonic()
    assert laser.handle_line("ARM") == "OK READY"
    trace: list[tuple[float, float]] = []
    for i in range(int(until_s * 100) + 1):
        world.advance_to(i / 100)
        trace.append((world.t_s, world.skin.temp_c))
    return sorted(trace + pulses)


def test_contact_cooling_keeps_type_iii_skin_in_range(setup: Setup) -> None:
    trace = play(setup, load_scenario("normal"), until_s=32.0)
    temps = [temp for _, temp in trace]
    assert max(temps) > 25.0, "the pulses heat the skin"
    assert min(temps) > 8.0 and max(temps) < 35.0


def test_failed_cooling_pushes_skin_past_44_within_20_s(setup: Setup) -> None:
    scenario = load_scenario("cooling-failure")
    (failure,) = [e for e in scenario.events if e.action == "cooler_failure"]
    trace = play(setup, scenario, until_s=failure.t_s + 20.0)
    crossing = next(t for t, temp in trace if temp > 44.0)
    assert crossing - failure.t_s < 20.0


def test_relaxation_is_exact_for_any_step() -> None:
    one = SkinModel(SkinType.III, 1064, temp_c=40.0)
    many = SkinModel(SkinType.III, 1064, temp_c=40.0)
    one.relax(3.0, plate_c=5.0)
    for _ in range(300):
        many.relax(0.01, plate_c=5.0)
    assert one.temp_c == pytest.approx(many.temp_c, abs=1e-9)


def test_darker_skin_and_shorter_wavelength_heat_more() -> None:
    assert melanin_absorption_cm(1064) == pytest.approx(55, rel=0.02)  # Jacques 2013
    rises = [SkinModel(t, 1064, temp_c=30).pulse_rise_c(120) for t in SkinType]
    assert rises == sorted(rises)
    assert SkinModel(SkinType.III, 755, temp_c=30).pulse_rise_c(120) > rises[2]
