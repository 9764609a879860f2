"""How many inputs each property tries: small in the normal suite (CI stays fast), as many as
asked by the longer fuzz run (``python -m tests.fuzz --examples N``, which sets
``LASERGUARD_FUZZ_EXAMPLES``)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Inputs per property in the normal suite.
SUITE_EXAMPLES = 60


def examples() -> int:
    return int(os.environ.get("LASERGUARD_FUZZ_EXAMPLES", SUITE_EXAMPLES))


def fuzz(n: int | None = None) -> settings:
    """Hypothesis settings for a property: ``n`` (default ``examples()``) inputs, no deadline
    (the machine is shared; a slow example is not a failure of the parser)."""
    return settings(
        max_examples=examples() if n is None else n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )


#: Inputs tried in this process, by every property (``python -m tests.fuzz`` prints it).
TRIED = [0]


def tried() -> None:
    TRIED[0] += 1
