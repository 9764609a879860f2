"""What a calibration was made under, as digests: its policy and the laser's description.

A certificate counts for arming only when it was made under the same calibration policy
(``calibration``: energies, spots, tolerance, the skin and plate checks, the interval) and
the same laser description (``laser``: model, wavelength, command set, service mode,
identify command) as the setup being armed, and, where the laser answers an identify
command, on the same laser (its answer recorded in the certificate and compared at arming).

Not the whole setup's digest: an edited alarm delay, a limit table row, the clinic's
address or the cooler's poll period do not change what the meter measured, and voiding a
calibration for them would teach engineers to ignore the refusal. The laser's link is left
out too (``LINK_FIELDS``: its transport, with port, baud rate and timeouts, its poll and
heartbeat periods, its heartbeat timeout and answer time): it says where and how often the
laser is talked to, not which laser it is nor what it delivers; the identity answer covers
another laser on that port.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from device_profiles.schema import Setup

__all__ = ["LINK_FIELDS", "basis_digests", "canonical_digest"]

#: The laser block's fields about the link, not the laser (module docstring).
LINK_FIELDS = frozenset(
    {"transport", "poll_period_ms", "heartbeat_period_ms", "heartbeat_timeout_ms", "response_ms"}
)


def canonical_digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def basis_digests(setup: Setup) -> dict[str, str]:
    """``policy_digest`` and ``laser_digest`` of ``setup`` (module docstring); the policy's
    is of an empty policy when the setup has none."""
    policy = None if setup.calibration is None else setup.calibration.model_dump(mode="json")
    laser = setup.laser.model_dump(mode="json", exclude=set(LINK_FIELDS))
    return {"policy_digest": canonical_digest(policy), "laser_digest": canonical_digest(laser)}
