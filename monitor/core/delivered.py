"""The laser's own report of the energy each pulse delivered, held against its settings.

Where a laser's status reports the last pulse's delivered energy (its internal energy
monitor; the profile's status reply has a ``delivered_j`` group), every pulse report is
judged here: delivered / set energy must stay within the tolerance (the setup's calibration
``tolerance_fraction``, else the +-20 % of 21 CFR 1040.11(a)). Beyond it the session halts
and refuses to arm again: the laser's output has drifted since it was calibrated. A
delivered energy that is not a number is unknown, and unknown is unsafe: it halts too.
"""

from __future__ import annotations

import math
import threading

from device_profiles.energy import set_energy_j
from device_profiles.schema import OUTPUT_TOLERANCE_FRACTION, OUTPUT_TOLERANCE_SOURCE, Setup
from monitor.core.records import Payload

__all__ = ["DeliveredEnergyWatch", "DriftFinding"]


class DriftFinding:
    """A pulse whose delivered energy left the tolerance: the words and the numbers."""

    def __init__(self, reason: str, record: Payload) -> None:
        self.reason = reason
        self.record = record


class DeliveredEnergyWatch:
    """Judges each pulse report; the first finding latches (``drifted``)."""

    def __init__(self, setup: Setup) -> None:
        policy = setup.calibration
        self.tolerance_fraction = (
            OUTPUT_TOLERANCE_FRACTION if policy is None else policy.tolerance_fraction
        )
        self.source = OUTPUT_TOLERANCE_SOURCE if policy is None else policy.tolerance_source
        self.active = setup.laser.protocol.reports_delivered_energy
        self.judged = 0
        self._lock = threading.Lock()  # judged on the laser's thread, read on the operator's
        self._drifted: str | None = None

    @property
    def drifted(self) -> str | None:
        """Why the laser's output is out of tolerance, once a pulse showed it; else None."""
        with self._lock:
            return self._drifted

    def judge(self, settings: dict[str, float], delivered_j: object) -> DriftFinding | None:
        """One pulse report: None when within tolerance, else the finding (latched)."""
        fluence = settings.get("fluence_j_cm2", math.nan)
        spot = settings.get("spot_mm", math.nan)
        set_j = set_energy_j(fluence, spot)
        record: Payload = {"set_j": None, "delivered_j": None, "ratio": None}
        if not isinstance(delivered_j, int | float) or isinstance(delivered_j, bool):
            reason = f"the laser reported a delivered energy that is not a number: {delivered_j!r}"
        elif not (math.isfinite(delivered_j) and math.isfinite(set_j) and set_j > 0):
            reason = (
                f"delivered energy {delivered_j!r} J against set energy {set_j!r} J cannot be "
                "judged (not a finite number)"
            )
        else:
            ratio = delivered_j / set_j
            record = {
                "set_j": round(set_j, 6),
                "delivered_j": delivered_j,
                "ratio": round(ratio, 6),
                "tolerance_fraction": self.tolerance_fraction,
            }
            if abs(ratio - 1.0) <= self.tolerance_fraction:
                with self._lock:
                    self.judged += 1
                return None
            reason = (
                f"the laser delivered {delivered_j:.3g} J per pulse against {set_j:.3g} J set "
                f"({ratio - 1.0:+.0%}), beyond ±{self.tolerance_fraction:.0%} "
                f"({self.source}): its output has drifted; recalibrate before treating"
            )
        with self._lock:
            self.judged += 1
            if self._drifted is None:
                self._drifted = reason
        return DriftFinding(reason, record)
