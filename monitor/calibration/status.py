"""The laser's calibration status for a session, from the certificates in the log.

The session (``monitor.core``) is handed the result, a ``CalibrationStatus``; it does not
read the log. The latest completed full calibration and the latest completed daily check of
the setup's laser count (an incomplete run is no result). A calibration's due date is the
earlier of the one on its certificate and its day plus the setup's interval now (a shorter
interval applies at once). A calibration run on the simulator never counts for a clinical
session: simulated data is never mistaken for real.

The latest full calibration counts only when it was made under this setup's calibration
policy and laser description (``monitor.calibration.basis``): otherwise arming is refused,
naming which changed, even if an older one made under them would still hold (the newest
measurement of the laser is the one that speaks for it). A daily check counts only when it
was made under them too, on the laser the calibration was made on (its identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from device_profiles.schema import Setup
from monitor.calibration.basis import basis_digests
from monitor.calibration.certificate import CHECK_DAILY, CHECK_FULL, Certificate, certificates
from monitor.core.calibration_status import CalibrationStatus, utc_now
from monitor.record.chain_log import ChainLog

__all__ = ["calibration_status", "mismatch"]


def mismatch(cert: Certificate, setup: Setup) -> str | None:
    """Why ``cert`` does not count for ``setup`` (one sentence), or None: it does."""
    want = basis_digests(setup)
    when = cert.performed_at.astimezone().strftime("%Y-%m-%d %H:%M")
    head = f"the last calibration of laser {setup.name} ({when}) was made"
    tail = "arming needs a calibration made under this setup (laserguard calibrate)"
    if cert.policy_digest is None or cert.laser_digest is None:
        return (
            f"{head} before certificates recorded the policy and laser they were made under; {tail}"
        )
    if cert.policy_digest != want["policy_digest"]:
        return f"{head} under another calibration policy (the setup's calibration block differs); {tail}"
    if cert.laser_digest != want["laser_digest"]:
        return f"{head} under another laser description (the setup's laser block differs); {tail}"
    return None


def _completed(certs: list[Certificate], check: str) -> list[Certificate]:
    return [c for c in certs if c.check == check and c.outcome() is not None]  # newest first


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
    fulls = _completed(certs, CHECK_FULL)
    latest = fulls[0] if fulls else None
    not_counted = None if latest is None else mismatch(latest, setup)
    full = None if latest is None or not_counted is not None else latest.outcome()
    if full is not None and full.next_due is not None:
        by_policy = full.performed_at.astimezone().date() + timedelta(days=policy.interval_days)
        full = replace(full, next_due=min(full.next_due, by_policy))
    identity = None if latest is None or not_counted is not None else latest.laser_identity
    dailies = [
        c
        for c in _completed(certs, CHECK_DAILY)
        if mismatch(c, setup) is None and c.laser_identity == identity
    ]
    return CalibrationStatus(
        laser_id=setup.name,
        interval_days=policy.interval_days,
        warning_days=policy.warning_days,
        daily_check_required=policy.daily_check.required,
        last_calibration=full,
        last_daily_check=dailies[0].outcome() if dailies else None,
        clock=clock,
        laser_identity=identity,
        not_counted=not_counted,
    )
