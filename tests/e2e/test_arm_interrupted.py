"""A Ctrl-C while arming (``laserguard bridge`` and the demo arm from the main thread): the
relay's permit is given before the wait for the relay to close and the laser's ARM, so an
interrupt in between must take the permit back, and say so in the log. Before, only a bridge
error or a timeout did: a KeyboardInterrupt in the wait left the permit given and the loop
told emission was permitted, with the session still in STANDBY."""

from __future__ import annotations

import signal
import threading

import pytest

from firmware_bridge.bridge import Bridge
from monitor.core.session import State
from tests.e2e.conftest import SETTINGS, Rig, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.mark.parametrize("where", ["wait_relay_closed", "arm"])
def test_a_ctrl_c_while_arming_takes_the_relays_permit_back(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    assert threading.current_thread() is threading.main_thread()
    session = rig.start("normal")
    assert session.request_settings(SETTINGS).ok
    bridge = session.bridge
    original = getattr(Bridge, where)

    def ctrl_c(self: Bridge, *args: object, **kwargs: object) -> object:
        signal.raise_signal(signal.SIGINT)  # a real SIGINT: Python raises it at once, here
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Bridge, where, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        session.arm()
    monkeypatch.undo()
    assert session.state is State.STANDBY, "nothing halted: the laser went back to STANDBY"
    assert not bridge.permit, "the relay's permit taken back"
    assert not bridge.halted
    assert not session.loop.emission_permitted
    wait_for(
        lambda: rig.sim is not None and rig.sim.snapshot()["relay_closed"] is False,
        2,
        "the relay open",
    )
    assert rig.sim is not None and rig.sim.snapshot()["state"] == "STANDBY"  # ARM taken back
    (failed,) = rig.logged("arm_failed")
    assert (
        failed.payload["error"] == "interrupted (KeyboardInterrupt): the relay's permit withdrawn"
    )
    # Nothing is left half done: the next arm works.
    session.arm()
    assert session.state is State.READY
