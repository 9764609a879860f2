"""Settings for the whole suite.

Hypothesis: no per-example deadline. Its default (200 ms an example) fails a property test
when a loaded CI machine is slow, which says nothing about the property; the tests that are
about time measure it themselves (and speed is for ``benchmarks/``).
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("laserguard", deadline=None)
settings.load_profile("laserguard")
