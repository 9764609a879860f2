"""The settings and the skin-temperature trace around an incident's halt, read from the
session's verified record, never typed in.

An incident names its trigger by seq and hash; the trace is taken when it is shown, from the
session as read along its checked chain (``ChainLog.read_verified``), by the channel names
of the session's own channel map. ``BEFORE_S`` and ``AFTER_S`` are how much of the session
around the halt is shown (clinic default, review): a minute before shows the plate warming
and the peaks climbing; half a minute after shows the cooling that followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from device_profiles.schema import LASER_SETTINGS
from monitor.record.session_info import SessionRecord

__all__ = ["AFTER_S", "BEFORE_S", "Trace", "settings_at", "trace_around"]

BEFORE_S = 60.0
AFTER_S = 30.0
MAX_POINTS = 600


@dataclass(frozen=True)
class Trace:
    """Skin and plate temperature from ``t_from_s`` to ``t_to_s`` (session time)."""

    t_from_s: float
    t_to_s: float
    at_s: float
    t_s: list[float]
    skin_temp_c: list[float | None]
    plate: list[tuple[float, float]]
    max_skin_temp_c: float | None
    approved: dict[str, float] | None  # the settings approved and confirmed before the halt
    read_back: dict[str, float]  # the settings last read back from the laser before the halt

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_s": [self.t_from_s, self.t_to_s],
            "at_s": self.at_s,
            "n_samples": len(self.t_s),
            "max_skin_temp_c": self.max_skin_temp_c,
            "approved_settings": self.approved,
            "read_back_settings": self.read_back,
            "skin_temp_c": [[t, v] for t, v in zip(self.t_s, self.skin_temp_c, strict=True)],
            "plate_temp_c": [[t, v] for t, v in self.plate],
        }


def _series(record: SessionRecord, name: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    code = record.channels.code(name)
    if code is None:
        return np.empty(0), np.empty(0)
    rows = record.channel == code
    order = np.argsort(record.t_s[rows], kind="stable")
    return record.t_s[rows][order], record.value[rows][order]


def settings_at(record: SessionRecord, at_s: float) -> dict[str, float] | None:
    """The settings approved (confirmed by the laser) last before ``at_s``, from the log."""
    approved = None
    for e in record.events:
        t = e.payload.get("t_s")
        if e.kind == "settings_applied" and isinstance(t, int | float) and t <= at_s:
            confirmed = e.payload.get("confirmed")
            if isinstance(confirmed, dict):
                approved = {str(k): float(v) for k, v in confirmed.items()}
    return approved


def trace_around(
    record: SessionRecord, at_s: float, *, before_s: float = BEFORE_S, after_s: float = AFTER_S
) -> Trace:
    lo, hi = at_s - before_s, at_s + after_s
    t, v = _series(record, "skin_temp_c")
    keep = (t >= lo) & (t <= hi)
    t, v = t[keep], v[keep]
    step = max(1, len(t) // MAX_POINTS)
    finite = v[np.isfinite(v)]
    pt, pv = _series(record, "plate_temp_c")
    pkeep = (pt >= lo) & (pt <= hi) & np.isfinite(pv)
    pstep = max(1, int(pkeep.sum()) // MAX_POINTS)
    read_back: dict[str, float] = {}
    for name in LASER_SETTINGS:
        st, sv = _series(record, name)
        before = (st <= at_s) & np.isfinite(sv)
        if before.any():
            read_back[name] = float(sv[before][-1])
    return Trace(
        t_from_s=round(lo, 3),
        t_to_s=round(hi, 3),
        at_s=at_s,
        t_s=[round(float(x), 3) for x in t[::step]],
        skin_temp_c=[None if not np.isfinite(x) else round(float(x), 2) for x in v[::step]],
        plate=[
            (round(float(a), 3), round(float(b), 2))
            for a, b in zip(pt[pkeep][::pstep], pv[pkeep][::pstep], strict=True)
        ],
        max_skin_temp_c=round(float(finite.max()), 2) if finite.size else None,
        approved=settings_at(record, at_s),
        read_back=read_back,
    )
