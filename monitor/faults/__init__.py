"""The fault matrix (issue 13, item 5): every fault scenario through the real wires, judged.

``run_one(name)`` plays one bundled scenario with a ``matrix`` block; ``matrix_scenarios()``
lists them; ``render_markdown(rows)`` writes ``docs/fault-matrix.md``. A harness, not safety
code: it imports the simulator (through ``sim.control``) and the session, and nothing imports
it but the CLI and the tests.
"""

from monitor.faults.deadlines import DeadlineRule, deadline_for
from monitor.faults.matrix import (
    FIRST_DEGREE_OMEGA,
    MatrixRow,
    matrix_scenarios,
    render_markdown,
    run_one,
)

__all__ = [
    "FIRST_DEGREE_OMEGA",
    "DeadlineRule",
    "MatrixRow",
    "deadline_for",
    "matrix_scenarios",
    "render_markdown",
    "run_one",
]
