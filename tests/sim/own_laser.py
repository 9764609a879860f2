"""A clinic's own line-based laser, with a command set unlike the bundled one: for the tests
that show the simulator serves whatever command set the profile describes (issue 14 item 5)."""

from __future__ import annotations

from pathlib import Path

from device_profiles.loader import bundled_dir

OWN_PROTOCOL = r"""  protocol:
    kind: serial_commands
    terminator: "\n"
    status:
      send: "?S"
      reply: 'S:(?P<state>STANDBY|READY|FIRING|FAULT);N:(?P<pulses>\d+);F:(?P<fluence_j_cm2>\d+\.\d);P:(?P<pulse_ms>\d+\.\d);D:(?P<spot_mm>\d+\.\d\d);R:(?P<rep_rate_hz>\d+\.\d)'
    set:
      fluence_j_cm2: {send: "F={value:.1f}", reply: 'F:(?P<value>\d+\.\d)'}
      pulse_ms: {send: "P={value:.1f}", reply: 'P:(?P<value>\d+\.\d)'}
      spot_mm: {send: "D={value:.2f}", reply: 'D:(?P<value>\d+\.\d\d)'}
      rep_rate_hz: {send: "R={value:.1f}", reply: 'R:(?P<value>\d+\.\d)'}
    arm: {send: "A!", reply: 'ACK A'}
    standby: {send: "W!", reply: 'ACK W'}
    stop: {send: "X!", reply: 'ACK X'}
    heartbeat: {send: "K", reply: 'K'}
    identify: {send: "?I", reply: 'ID (?:OWN-YAG|OTHER)-1064 [0-9]{4}'}
    error_reply: 'NAK (?P<reason>.+)'
"""


def own_laser_setup(folder: Path) -> Path:
    """The bundled demo setup with the clinic's own command set, written to ``folder``."""
    text = (bundled_dir() / "demo-ndyag-1064.yaml").read_text(encoding="utf-8")
    start = text.index("  protocol:\n    kind: serial_commands")
    end = text.index("\ncooler:\n")
    text = text[:start] + OWN_PROTOCOL + text[end:]
    text = text.replace("name: demo-ndyag-1064\n", "name: clinic-own-laser\n")
    path = folder / "clinic-own-laser.yaml"
    path.write_text(text, encoding="utf-8")
    return path
