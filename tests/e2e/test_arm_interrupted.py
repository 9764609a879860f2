"""A Ctrl-C in the middle of a session's command (``laserguard bridge`` and the demo arm,
go to STANDBY and end from the main thread).

- Arming: the relay's permit is given before the wait for the relay to close and the laser's
  ARM, so an interrupt in between must take the permit back, and say so in the log. Before,
  only a bridge error or a timeout did: a KeyboardInterrupt in the wait left the permit given
  and the loop told emission was permitted, with the session still in STANDBY.
- Going to STANDBY: the relay's proof and the wait for the laser come before the permit is
  withdrawn. Before, an interrupt in either left the session READY with the permit given
  while the laser went to STANDBY (or stayed READY behind an open relay).
- Ending: an interrupt halfway left the bridge running or the log's end unwritten. Now the
  end is finished first, and the interrupt raised after it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from firmware_bridge.bridge import Bridge
from monitor.core.session import Session, State
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


def _armed(rig: Rig) -> Session:
    assert threading.current_thread() is threading.main_thread()
    session = rig.start("normal")
    assert session.request_settings(SETTINGS).ok
    session.arm()
    assert session.state is State.READY
    return session


def _once(original: Callable[..., Any], queue_first: bool = False) -> Callable[..., Any]:
    """``original`` with a real SIGINT raised in it the first time (after queueing the laser's
    call, with ``queue_first``: a Ctrl-C in the wait for the laser, which goes on with it)."""
    raised: list[bool] = []

    def ctrl_c(self: Bridge, *args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append(True)
            if queue_first:
                self.laser_submit(args[0])
            signal.raise_signal(signal.SIGINT)  # Python raises it at once, here
        return original(self, *args, **kwargs)

    return ctrl_c


@pytest.mark.parametrize("where", ["wait_relay_opened", "laser_call"])
def test_a_ctrl_c_while_going_to_standby_still_ends_in_standby_with_the_permit_withdrawn(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    session = _armed(rig)
    bridge = session.bridge
    monkeypatch.setattr(
        Bridge, where, _once(getattr(Bridge, where), queue_first=where == "laser_call")
    )
    with pytest.raises(KeyboardInterrupt):
        session.standby()
    monkeypatch.undo()
    assert session.state is State.STANDBY
    assert not bridge.permit, "the relay's permit withdrawn"
    assert not session.loop.emission_permitted
    wait_for(
        lambda: rig.sim is not None and rig.sim.snapshot()["relay_closed"] is False,
        2,
        "the relay open",
    )
    assert rig.sim is not None and rig.sim.snapshot()["state"] == "STANDBY"
    standby = rig.logged("standby")[-1]
    assert standby.payload["interrupted"] == "interrupted (KeyboardInterrupt)"
    time.sleep(0.3)  # the loop looks at a laser in STANDBY without the permit: nothing to halt
    assert not bridge.halted, rig.logged("trip")
    session.arm()  # nothing is left half done
    assert session.state is State.READY


def test_a_ctrl_c_while_ending_is_raised_once_the_end_is_written(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _armed(rig)
    monkeypatch.setattr(
        Bridge, "laser_call", _once(Bridge.laser_call, queue_first=True)
    )  # in the STANDBY that ends begin with
    with pytest.raises(KeyboardInterrupt):
        session.end("operator ended the session")
    monkeypatch.undo()
    assert session.state is State.ENDED
    assert not session.loop.is_alive()
    (info,) = [i for i in rig.log.sessions() if i.session_id == session.session_id]
    assert info.end_reason == "operator ended the session", "the log's end was written"
    assert rig.sim is not None and rig.sim.snapshot()["state"] == "STANDBY"
    assert "interrupted" not in rig.logged("standby")[-1].payload, "the end's STANDBY finished"
