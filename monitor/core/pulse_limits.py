"""Every pulse the laser reports, judged against the session's limit table when it is recorded
(narrowed to what the patient's test spot covered when one admitted the settings).

The settings gate keeps out-of-limit settings from reaching READY, and the read-back halts a
laser whose settings leave the limits while it may fire. Between a change on the laser's own
panel and the read-back that halts it, a pulse can still fire (docs/safety-windows.md). Such
a pulse must not pass unreported: it becomes a ``pulse_out_of_limits`` record with its
settings and the limits it broke, and is counted for the report and the summary.

This runs where the bridge reports pulses (at most once per laser status poll), never in the
interlock loop; the gate itself runs only when the settings changed since the last pulse.
The settings judged are those of the status reply in which the pulse counter moved: a knob
turned within one poll period of a pulse may be attributed to the pulse next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.schema import LASER_SETTINGS, SkinType
from monitor.core.gate import GateResult, LimitTable


@dataclass(frozen=True)
class OutOfLimits:
    """Pulses fired at settings outside the approved limits: what the log records."""

    n: int
    total: int
    settings: dict[str, float]
    result: GateResult

    def as_record(self) -> dict[str, object]:
        return {
            "n": self.n,
            "total": self.total,
            "settings": self.settings,
            "violations": [v.as_dict() for v in self.result.violations],
        }


class PulseJudge:
    """Judges reported pulses against one limit table and skin type; counts the bad ones."""

    def __init__(self, table: LimitTable, skin_type: SkinType) -> None:
        self.table = table
        self.skin_type = skin_type
        self.out_of_limits = 0  # pulses fired at settings outside the limits
        # The last verdict with the table and settings it was given for: a table swapped in
        # (a test spot narrowing the limits, set by another thread) is never judged by the old.
        self._judged: tuple[LimitTable, tuple[float, ...], GateResult] | None = None

    def judge(self, n: int, total: int, settings: dict[str, float]) -> OutOfLimits | None:
        """``n`` pulses fired at ``settings``: None if within the limits, else the record."""
        table = self.table
        key = tuple(float(settings[k]) for k in LASER_SETTINGS)
        judged = self._judged
        if judged is None or judged[0] is not table or judged[1] != key:  # NaN never equals
            judged = (table, key, table.check(self.skin_type, settings))
            self._judged = judged
        verdict = judged[2]
        if verdict.ok:
            return None
        self.out_of_limits += n
        return OutOfLimits(n, total, dict(settings), verdict)
