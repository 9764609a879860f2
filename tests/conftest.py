"""Settings for the whole suite.

SIGINT: the suite sends SIGINT to the processes it starts, as a terminal's Ctrl-C would, and
checks what they do. A suite started in the background by a shell without job control
inherits SIGINT ignored, and so would every process it starts (an ignored signal stays
ignored across exec): the default disposition is restored first.

Hypothesis: no per-example deadline. Its default (200 ms an example) fails a property test
when a loaded CI machine is slow, which says nothing about the property; the tests that are
about time measure it themselves (and speed is for ``benchmarks/``).
"""

from __future__ import annotations

import signal

from hypothesis import settings

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("laserguard", deadline=None)
settings.load_profile("laserguard")
