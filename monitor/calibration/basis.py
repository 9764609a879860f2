"""What a calibration was made under, as digests: its policy and the laser's description.

A certificate counts for arming only when it was made under the same calibration policy
(``calibration``: energies, spots, tolerance, the skin and plate checks, the interval) and
the same laser description (``laser``: model, wavelength, command set, service mode,
identify command) as the setup being armed, and, where the laser answers an identify
command, on the same laser (its answer recorded in the certificate and compared at arming).

Not the whole setup's digest: an edited alarm delay, a limit table row, the clinic's
address or the cooler's poll period do not change what the meter measured, and voiding a
calibration for them would teach engineers to ignore the refusal. The laser's
``transport`` (port, baud rate, timeouts) is left out too: it says where the laser is
plugged in, not which laser it is; the identity answer covers another laser on that port.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from device_profiles.schema import Setup

__all__ = ["basis_digests", "canonical_digest"]


def canonical_digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def basis_digests(setup: Setup) -> dict[str, str]:
    """``policy_digest`` and ``laser_digest`` of ``setup`` (module docstring); the policy's
    is of an empty policy when the setup has none."""
    policy = None if setup.calibration is None else setup.calibration.model_dump(mode="json")
    laser = setup.laser.model_dump(mode="json", exclude={"transport"})
    return {"policy_digest": canonical_digest(policy), "laser_digest": canonical_digest(laser)}
