"""The exit status of every ``laserguard`` command, defined once.

A script or a clinic's checklist reads these, so they are part of the interface:

- ``OK`` (0): done as asked.
- ``REFUSED`` (1): LaserGuard said no: a session refused to arm or to take the settings, the
  devices did not answer, the session halted; ``check`` refused a setting, ``profiles
  validate`` found a file invalid.
- ``BAD_INPUT`` (2): the request itself cannot be carried out: a wrong argument, a file that
  is missing, unreadable, not UTF-8, not YAML/JSON/CSV, or not of the expected form.

A refusal or bad input is said in one sentence on stderr, never as a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    REFUSED = 1
    BAD_INPUT = 2


class BadInput(Exception):
    """An argument or input file that cannot be used; the message says which and why."""


EPILOG = """\
exit status:
  0  done as asked
  1  refused or halted: settings or arming refused, devices not answering, a halt
     during the session; `check` refused a setting; `profiles validate` found a file invalid
  2  bad input: a wrong argument, or a file that is missing, unreadable or malformed
"""
