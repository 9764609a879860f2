"""Issue 14: the laser is identified whenever its port was opened, before any command.

The serial transport reopens a lost port by its path; a USB adapter that re-enumerated may
now lead to another device. With ``protocol.identify`` in the profile the driver asks who
answers first, every time the port opened: a device that is not the profile's laser gets
nothing else (no ARM, no settings) and the driver raises ``ProtocolError`` (the worker's
lost link: a halt). Over the virtual line and a real pty.
"""

from __future__ import annotations

import pytest

from device_profiles.schema import Command, Laser, Setup
from firmware_bridge.drivers import LineLaserDriver
from firmware_bridge.errors import ProtocolError
from tests.firmware_bridge.backends import LineBackend, LineDevice

pytestmark = pytest.mark.timeout(20)

IDENTIFY = Command(send="ID?", reply=r"ID LG-YAG-1064 SN(?P<serial>0042)")


def laser_with_identity(demo: Setup) -> Laser:
    proto = demo.laser.protocol.model_copy(update={"identify": IDENTIFY})
    return demo.laser.model_copy(update={"protocol": proto})


def our_laser(line: str) -> str:
    return "ID LG-YAG-1064 SN0042" if line == "ID?" else "OK HB"


def another_device(line: str) -> str:
    return "ID LG-YAG-1064 SN0077" if line == "ID?" else "OK HB"  # same model, another unit


def test_item_laser_identity_is_asked_once_per_opening_before_anything_else(
    demo: Setup, line_to: LineBackend
) -> None:
    device = LineDevice(our_laser)
    link = line_to(device)
    driver = LineLaserDriver(laser_with_identity(demo), link)
    driver.heartbeat()
    driver.heartbeat()
    assert device.received == ["ID?", "HB", "HB"]
    link.close()  # a lost link: the next transaction opens the port again
    driver.heartbeat()
    assert device.received == ["ID?", "HB", "HB", "ID?", "HB"]


def test_item_laser_identity_another_device_behind_the_reopened_port_gets_no_command(
    demo: Setup, line_to: LineBackend
) -> None:
    device = LineDevice(our_laser)
    link = line_to(device)
    driver = LineLaserDriver(laser_with_identity(demo), link)
    driver.heartbeat()
    link.close()
    device.answer = another_device  # the adapter came back leading to another laser
    for _ in range(2):  # refused every time, never taken for the laser
        with pytest.raises(ProtocolError, match="not the profile's laser"):
            driver.arm()
    assert device.received == ["ID?", "HB", "ID?", "ID?"]


def test_item_laser_identity_without_identify_in_the_profile_nothing_is_asked(
    demo: Setup, line_to: LineBackend
) -> None:
    device = LineDevice(our_laser)
    driver = LineLaserDriver(demo.laser, line_to(device))
    driver.heartbeat()
    assert device.received == ["HB"]
