"""A Ctrl-C (a real SIGINT to this process) while the main thread is inside the bridge: the
call runs to its end, its effects all made, and the KeyboardInterrupt is raised after it.

The window that matters (just after a lock shared with a device worker was taken) cannot be
hit on demand, so each test raises the signal at a fixed point inside the call instead: from
the worker's wake-up event, which every one of these calls sets while the halt state or the
laser's queue has just changed. Without the deferral the interrupt lands right there, and the
call is cut in half (a worker never woken, a halt latched and never said).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from device_profiles.schema import Setup
from firmware_bridge.interrupts import ctrl_c_after, ctrl_c_after_call, sigint_deferred
from firmware_bridge.live import Dev
from tests.firmware_bridge.test_virtual import Rig, wait_for

pytestmark = pytest.mark.timeout(30)


class CtrlCOnSet(threading.Event):
    """A wake-up event that receives a real SIGINT the first time it is set, before it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.sets = 0

    def set(self) -> None:
        if self.armed:
            self.armed = False
            signal.raise_signal(signal.SIGINT)  # the handler runs at the next bytecode
        self.sets += 1
        super().set()


@pytest.fixture
def rig(demo: Setup) -> Iterator[Rig]:
    r = Rig(demo)
    r.bridge.start()
    b = r.bridge
    try:
        wait_for(lambda: all(b.live.link_ok[b.live.present]), 5, "every device's link up")
        yield r
    finally:
        b.close()


def trap(worker: Any) -> CtrlCOnSet:
    ev = CtrlCOnSet()
    ev.armed = True
    worker.wake = ev
    return ev


def test_ctrl_c_during_set_permit_closes_the_relay_then_raises(rig: Rig) -> None:
    b = rig.bridge
    wake = trap(b._output_worker)
    with pytest.raises(KeyboardInterrupt):
        b.set_permit(True)
    assert wake.sets == 1 and b.permit  # the worker was woken: the call ran to its end
    b.wait_relay_closed(2.0)
    assert rig.world.relay_closed


def test_ctrl_c_during_a_halt_latches_says_it_and_opens_both_routes(rig: Rig) -> None:
    b = rig.bridge
    b.set_permit(True)
    b.wait_relay_closed(2.0)
    laser_wake = trap(b._laser_worker)  # set second in the halt: between the two routes
    with pytest.raises(KeyboardInterrupt):
        b.halt("the operator pressed the foot switch off")
    assert laser_wake.sets == 1
    assert ("halt_requested", {"reason": "the operator pressed the foot switch off"}) in rig.events
    wait_for(lambda: b.stop_confirmed_t_ns and b.relay_opened_t_ns, 2, "both halt routes")
    assert not rig.world.relay_closed and rig.laser.state == "STANDBY"


def test_ctrl_c_during_a_laser_call_leaves_the_laser_worker_serving(rig: Rig) -> None:
    b = rig.bridge
    trap(b._laser_worker)
    with pytest.raises(KeyboardInterrupt):
        status = b.laser_call(lambda laser: laser.status())
    # The next call is answered: no lock was left held, the worker beats on.
    status = b.laser_call(lambda laser: laser.status(), 2.0)
    assert status.state.value == "STANDBY"
    assert b.live.link_ok[Dev.LASER]


def test_ctrl_c_during_release_halt_releases_it(rig: Rig) -> None:
    b = rig.bridge
    b.halt("test")
    wait_for(lambda: b.stop_confirmed_t_ns, 2, "STOP confirmed")
    original = b.halt_state.release

    def release_with_ctrl_c() -> None:
        signal.raise_signal(signal.SIGINT)
        original()

    b.halt_state.release = release_with_ctrl_c  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        b.release_halt()
    assert not b.halted


def test_ctrl_c_after_raises_once_the_block_is_over_and_only_then() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt), ctrl_c_after():
        signal.raise_signal(signal.SIGINT)
        done.append("the rest of the block")
    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_under_a_shutdown_that_notes_ctrl_c_nothing_is_raised() -> None:
    @ctrl_c_after_call
    def call() -> str:
        signal.raise_signal(signal.SIGINT)
        return "answered"

    with sigint_deferred() as received:
        assert call() == "answered"
    assert received == [signal.SIGINT]


def test_off_the_main_thread_a_call_is_only_called() -> None:
    seen: list[Callable[..., Any] | str] = []

    @ctrl_c_after_call
    def call() -> str:
        seen.append(signal.getsignal(signal.SIGINT))  # type: ignore[arg-type]
        return "answered"

    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(call()))
    t.start()
    t.join(5)
    assert out == ["answered"] and seen == [signal.default_int_handler]
