"""The laser's calibration status for a session, from the certificates in the log.

The session (``monitor.core``) is handed the result, a ``CalibrationStatus``; it does not
read the log. The latest completed full calibration and the latest completed daily check of
the setup's laser count (an incomplete run is no result). A calibration's due date is the
earlier of the one on its certificate and its day plus the setup's interval now (a shorter
interval applies at once). A calibration run on the simulator never counts for a clinical
session: simulated data is never mistaken for real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from device_profiles.schema import Setup
from monitor.calibration.certificate import CHECK_DAILY, CHECK_FULL, Certificate, certificates
from monitor.core.calibration_status import CalibrationOutcome, CalibrationStatus, utc_now
from monitor.record.chain_log import ChainLog

__all__ = ["calibration_status"]


def _latest(certs: list[Certificate], check: str) -> CalibrationOutcome | None:
    for cert in certs:  # newest first
        if cert.check == check and (outcome := cert.outcome()) is not None:
            return outcome
    return None


def calibration_status(
    log: ChainLog,
    setup: Setup,
    *,
    accept_simulated: bool,
    clock: Callable[[], datetime] = utc_now,
) -> CalibrationStatus | None:
    """The status of ``setup``'s laser as the log records it; None without a policy."""
    policy = setup.calibration
    if policy is None:
        return None
    certs = [c for c in certificates(log, setup.name) if accept_simulated or not c.simulated]
    full = _latest(certs, CHECK_FULL)
    if full is not None and full.next_due is not None:
        by_policy = full.performed_at.astimezone().date() + timedelta(days=policy.interval_days)
        full = replace(full, next_due=min(full.next_due, by_policy))
    return CalibrationStatus(
        laser_id=setup.name,
        interval_days=policy.interval_days,
        warning_days=policy.warning_days,
        daily_check_required=policy.daily_check.required,
        last_calibration=full,
        last_daily_check=_latest(certs, CHECK_DAILY),
        clock=clock,
    )
