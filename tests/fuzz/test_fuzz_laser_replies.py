"""Issue 16 item 5: whatever a laser answers, the driver raises a typed ``BridgeError`` (the
bridge halts on it: a link that lies is a lost link) and never any other exception; a line of
a megabyte with no terminator, over a real pty, is ``LinkLost`` within the reply timeout."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.loader import bundled_names, load
from device_profiles.schema import LaserProtocol, SerialTransport
from firmware_bridge.drivers import LineLaserDriver
from firmware_bridge.errors import BridgeError, LinkLost, ProtocolError
from firmware_bridge.transport import LineTransport, SerialLineTransport
from tests.firmware_bridge.pty_peer import TERM, PtyPeer
from tests.fuzz.settings import fuzz, tried

LASERS = [load(n).setup.laser for n in bundled_names()]
# The line-based lasers (reply lines); the Modbus and binary-framed ones are fuzzed by their
# frames in tests/firmware_bridge/test_laser_kinds.py.
LASERS = list(
    {laser.model: laser for laser in LASERS if isinstance(laser.protocol, LaserProtocol)}.values()
)


class Lies(LineTransport):
    """Answers every line with ``reply``."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def request(self, line: str) -> str:
        return self.reply

    def set_control_line(self, name: str, asserted: bool) -> None:
        return None

    def close(self) -> None:
        return None


def near_miss(laser: object) -> st.SearchStrategy[str]:
    """Replies that look like the laser's own: its status and confirmations, mangled."""
    return st.text(
        alphabet=st.sampled_from("STATUSOKERR0123456789.-+eEnaif ,;=:_FIRINGREADYSTANDBY"),
        max_size=120,
    )


@pytest.mark.parametrize("laser", LASERS, ids=lambda x: str(x.model))
@fuzz()
@given(data=st.data())
def test_item5_any_laser_reply_is_a_typed_error_or_a_reading(
    laser: object, data: st.DataObject
) -> None:
    tried()
    reply = data.draw(st.one_of(st.text(max_size=300), near_miss(laser)))
    driver = LineLaserDriver(laser, Lies(reply))  # type: ignore[arg-type]
    driver._identified_at = 0  # identified already: every line below is the fuzzed reply
    for action in (
        driver.status,
        lambda: driver.set("fluence_j_cm2", 10.0),
        driver.arm,
        driver.stop,
        driver.heartbeat,
    ):
        # A typed error is the fail-safe answer: the bridge's worker halts on it. Anything
        # else escapes suppress() and fails the property.
        with contextlib.suppress(BridgeError):
            action()


def test_item5_a_megabyte_with_no_terminator_over_a_pty_is_a_lost_link_in_time() -> None:
    """A laser that floods a megabyte and never ends its line: the real serial transport
    gives up at its reply timeout (``LinkLost``: the bridge halts), holding no more."""
    far = PtyPeer(lambda raw: [b"S" * 65536 for _ in range(16)])
    cfg = SerialTransport(kind="serial", port=far.path, timeout_ms=2000.0)  # drains it all
    transport = SerialLineTransport(cfg, TERM.decode())
    try:
        t0 = time.monotonic()
        with pytest.raises(LinkLost, match="no reply"):
            transport.request("STATUS?")
        assert time.monotonic() - t0 < 2.0 + 2.0  # the timeout, plus a loaded machine's slack
    finally:
        transport.close()
        far.close()


def test_item5_found_a_megabyte_laser_reply_is_refused_in_bounded_words() -> None:
    far = PtyPeer(lambda raw: b"S" * 1_000_000 + TERM)
    cfg = SerialTransport(kind="serial", port=far.path, timeout_ms=3000.0)
    driver = LineLaserDriver(LASERS[0], SerialLineTransport(cfg, TERM.decode()))
    try:
        with pytest.raises(ProtocolError) as e:
            driver.status()
        assert len(str(e.value)) < 2000, "a device's flood must not become a megabyte message"
    finally:
        driver.transport.close()
        far.close()
