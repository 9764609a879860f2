"""Issue 8 item 7: the laser's states are defined once, with codes that never move."""

from __future__ import annotations

import math

import pytest

from device_profiles.laser_state import CAN_EMIT, LaserState
from firmware_bridge.live import LASER_STATE_CODES, Ch, LiveState


def test_item7_state_codes_are_pinned() -> None:
    """Every recorded session's laser_state telemetry holds these codes: renumbering one
    would relabel every old log."""
    assert {s.value: s.code for s in LaserState} == {
        "STANDBY": 0.0,
        "READY": 1.0,
        "FIRING": 2.0,
        "FAULT": 3.0,
    }
    assert {s.value: s.code for s in LaserState} == LASER_STATE_CODES


@pytest.mark.parametrize("state", list(LaserState))
def test_item7_a_code_names_its_state(state: LaserState) -> None:
    assert LaserState.from_code(state.code) is state
    live = LiveState()
    live.store(Ch.LASER_STATE, state.code)
    assert live.laser_state() == state.value


@pytest.mark.parametrize("code", [math.nan, 4.0, -1.0, 0.5])
def test_item7_an_unknown_code_is_no_state(code: float) -> None:
    assert LaserState.from_code(code) is None
    live = LiveState()
    live.store(Ch.LASER_STATE, code)
    assert live.laser_state() == "UNKNOWN"


def test_item7_only_ready_and_firing_can_emit() -> None:
    assert {LaserState.READY, LaserState.FIRING} == CAN_EMIT
    assert [s for s in LaserState if s.can_emit] == [LaserState.READY, LaserState.FIRING]
