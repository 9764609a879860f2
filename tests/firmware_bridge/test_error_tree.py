"""One exception tree for the bridge (firmware_bridge.errors), HaltRefused in it."""

from __future__ import annotations

import pytest

from device_profiles.loader import load
from firmware_bridge import bridge as bridge_module
from firmware_bridge.bridge import Bridge
from firmware_bridge.errors import BridgeError, HaltRefused


def test_item8_a_command_refused_by_a_latched_halt_is_a_bridge_error() -> None:
    """Arming after a halt raises HaltRefused, which a caller catching BridgeError (as the
    session does, to turn it into a refusal with a reason) catches; the devices are never
    started, so nothing here waits on a wire."""
    events: list[str] = []
    bridge = Bridge(load("demo-ndyag-1064").setup, on_event=lambda kind, _: events.append(kind))
    bridge.set_permit(True)
    bridge.halt("a test halt")
    with pytest.raises(BridgeError) as caught:
        bridge.wait_relay_closed(timeout_s=0.5)
    assert isinstance(caught.value, HaltRefused)
    assert "halted while the relay was closing" in str(caught.value)
    assert bridge.permit is False and events == ["halt_requested"]


def test_item8_halt_refused_is_still_importable_from_the_bridge() -> None:
    assert bridge_module.HaltRefused is HaltRefused  # moved, re-exported: old imports still work
