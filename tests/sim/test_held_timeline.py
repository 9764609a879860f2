"""A held scenario (``serve --demo``): its events wait for ``start_timeline`` and then play
at their times counted from that moment, so a cooler scripted to fail 5 s in fails 5 s after
the first arm, not before anyone could sign in."""

from __future__ import annotations

from typing import Any

from device_profiles.schema import Setup
from sim.clock import SimClock
from sim.scenario import load_scenario
from sim.world import World


def world(setup: Setup, kinds: list[str]) -> World:
    def record(kind: str, **fields: Any) -> None:
        kinds.append(kind)

    return World(setup, load_scenario("cooling-failure"), SimClock(), record)


def test_item2_a_held_scenario_plays_from_the_first_arm(setup: Setup) -> None:
    kinds: list[str] = []
    held = world(setup, kinds)
    held.hold_timeline()
    held.advance_to(60.0)
    assert "scenario" not in kinds, "nothing plays while the timeline is held"
    plate_before = held.plate_temp_c()
    assert plate_before < 15.0, "the cooler still cools"

    assert held.start_timeline() is True
    assert held.start_timeline() is False  # once
    held.advance_to(64.9)
    assert kinds.count("scenario") == 1, "the trigger (2 s in) played, the cooler (5 s) not yet"
    held.advance_to(75.0)
    assert kinds.count("scenario") == 2
    assert held.plate_temp_c() > plate_before + 5.0, "the cooler failed 5 s after the start"


def test_item2_an_unheld_scenario_plays_from_the_simulator_start(setup: Setup) -> None:
    kinds: list[str] = []
    plain = world(setup, kinds)
    plain.advance_to(6.0)
    assert kinds.count("scenario") == 2
    assert plain.start_timeline() is False
