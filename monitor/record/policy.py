"""What the session log keeps of a busy or misbehaving bridge, and what it leaves out.

Two rules, applied by the ``LogWriter`` before anything reaches the store:

- **Status channels on change.** A fault code that is always 0, polled at 200 Hz, was 45 %
  of a session's telemetry. Channels listed in ``TelemetryPolicy.on_change`` are stored when
  their value changes, and again every ``keyframe_s`` while it does not (a *keyframe*: the
  record says "still this value" at a known rate, so a gap means no data, not no change). A
  reader rebuilds them as a step series: each value holds until the next row. Measured
  channels (skin and plate temperature, flow) are stored at full rate.
- **A repeated failure once, with a count.** The first of a run of events of a kind in
  ``RepeatPolicy.kinds`` from one device is logged in full (bounded); the rest of the run is
  counted and summarised in a ``repeated`` record every ``report_s`` while it goes on, and
  when it ends (``report_s`` without one), before its session's end, or at close. A device
  that answers a megabyte of garbage on every poll costs the log one bounded record and one
  summary per ``report_s``, whatever the garbage says.

Strings in events that carry a device's words are bounded to ``DEVICE_FIELD_CHARS``
(``log_format.bound_text``: a prefix, the size and the SHA-256).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from firmware_bridge.live import SETTING_CHANNELS, Ch
from monitor.record.chain import bound_payload, canonical_json
from monitor.record.channels import current_channel_map

__all__ = [
    "DEFAULT_REPEATS",
    "DEVICE_FIELD_CHARS",
    "KIND_REPEATED",
    "RepeatCoalescer",
    "RepeatPolicy",
    "TelemetryPolicy",
    "TelemetryThinner",
]

DEVICE_FIELD_CHARS = 256
KIND_REPEATED = "repeated"
KIND_TELEMETRY_POLICY = "telemetry_policy"

# session_id, kind, payload, t_wall: the LogWriter's event item.
EventItem = tuple[str, str, dict[str, Any], float]

#: Codes and setpoints: they change rarely and mean something when they do.
STATUS_CHANNELS = frozenset(
    {
        int(Ch.SENSOR_FAULT_CODE),
        int(Ch.SENSOR2_FAULT_CODE),
        int(Ch.COOLER_FAULT_CODE),
        int(Ch.COOLER_SETPOINT_C),
        int(Ch.LASER_STATE),
        *(int(ch) for ch in SETTING_CHANNELS.values()),
    }
)
#: What a device that misbehaves on every poll can produce on every poll.
REPEATABLE_KINDS = frozenset(
    {
        "laser_protocol_error",
        "halt_stop_failed",
        "link_lost",
        "link_up",
        "laser_active_while_halted",
    }
)


@dataclass(frozen=True)
class TelemetryPolicy:
    """Which channels are stored on change (with a keyframe) and which not at all."""

    on_change: frozenset[int] = STATUS_CHANNELS
    keyframe_s: float = 1.0  # clinic default, review: how stale a "still unchanged" may be
    dropped: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not self.keyframe_s > 0:
            raise ValueError(f"keyframe_s must be > 0, got {self.keyframe_s}")

    def as_record(self) -> dict[str, Any]:
        def names(chs: frozenset[int]) -> list[str]:
            return sorted(_channel_name(ch) for ch in chs)

        return {
            "on_change": names(self.on_change),
            "keyframe_s": self.keyframe_s,
            "not_recorded": names(self.dropped),
            "rule": "an on-change channel holds its value until its next row",
        }


def _channel_name(ch: int) -> str:
    return current_channel_map().name(ch)


class TelemetryThinner:
    """Decides, per sample, whether it is stored. Called on the device workers' threads.

    Each channel has one producer thread, and each (session, channel) its own dict entry,
    so no lock is needed.
    """

    def __init__(self, policy: TelemetryPolicy) -> None:
        self.policy = policy
        self._last: dict[tuple[str, int], tuple[float, float]] = {}

    def keep(self, session_id: str, t_s: float, channel: int, value: float) -> bool:
        policy = self.policy
        if channel not in policy.on_change:
            return channel not in policy.dropped
        key = (session_id, channel)
        last = self._last.get(key)
        if last is not None:
            last_t, last_v = last
            unchanged = value == last_v or (value != value and last_v != last_v)  # NaN is NaN
            if unchanged and t_s - last_t < policy.keyframe_s:
                return False
        self._last[key] = (t_s, value)
        return True


@dataclass(frozen=True)
class RepeatPolicy:
    kinds: frozenset[str] = REPEATABLE_KINDS
    report_s: float = 5.0


DEFAULT_REPEATS = RepeatPolicy()


@dataclass
class _Run:
    """One run of repeats of (session, kind, device) since its first, fully logged, event."""

    started_mono: float
    last_seen_mono: float
    reported_mono: float
    total: int = 0
    count: int = 0  # since the last summary
    first_t_s: float | None = None
    last_t_s: float | None = None
    last_payload: dict[str, Any] = field(default_factory=dict)
    distinct: set[str] = field(default_factory=set)


class RepeatCoalescer:
    """Turns runs of repeated events into one event and periodic counts (writer thread only)."""

    def __init__(self, policy: RepeatPolicy, max_chars: int) -> None:
        self.policy = policy
        self.max_chars = max_chars
        self._runs: dict[tuple[str, str, str | None], _Run] = {}

    def admit(self, item: EventItem, now_mono: float) -> list[EventItem]:
        """What to write for this event now: itself (bounded), or nothing (it was counted)."""
        session_id, kind, payload, t_wall = item
        if kind not in self.policy.kinds:
            return [item]
        bounded = bound_payload(payload, self.max_chars)
        device = payload.get("device")
        key = (session_id, kind, device if isinstance(device, str) else None)
        run = self._runs.get(key)
        out: list[EventItem] = []
        if run is not None and now_mono - run.last_seen_mono >= self.policy.report_s:
            out += self._close(key, run, t_wall)  # that run ended; this one starts afresh
            run = None
        if run is None:
            self._runs[key] = _Run(now_mono, now_mono, now_mono)
            return [*out, (session_id, kind, bounded, t_wall)]
        run.last_seen_mono = now_mono
        run.total += 1
        run.count += 1
        t_s = payload.get("t_s")
        if isinstance(t_s, int | float):
            run.first_t_s = t_s if run.first_t_s is None else run.first_t_s
            run.last_t_s = t_s
        run.last_payload = bounded
        what = {k: v for k, v in bounded.items() if k != "t_s"}
        run.distinct.add(hashlib.sha256(canonical_json(what).encode()).hexdigest())
        return out

    def due(self, now_mono: float, t_wall: float) -> list[EventItem]:
        """Summaries whose time has come; runs that went quiet are closed."""
        out: list[EventItem] = []
        for key, run in list(self._runs.items()):
            if now_mono - run.last_seen_mono >= self.policy.report_s:
                out += self._close(key, run, t_wall)
            elif run.count and now_mono - run.reported_mono >= self.policy.report_s:
                out.append(self._summary(key, run, t_wall))
                run.reported_mono = now_mono
        return out

    def finish(self, session_id: str | None, t_wall: float) -> list[EventItem]:
        """Close the runs of one session (before its end is written), or of all (None)."""
        out: list[EventItem] = []
        for key, run in list(self._runs.items()):
            if session_id is None or key[0] == session_id:
                out += self._close(key, run, t_wall)
        return out

    def _close(self, key: tuple[str, str, str | None], run: _Run, t_wall: float) -> list[EventItem]:
        del self._runs[key]
        return [self._summary(key, run, t_wall)] if run.count else []

    def _summary(self, key: tuple[str, str, str | None], run: _Run, t_wall: float) -> EventItem:
        session_id, kind, device = key
        payload: dict[str, Any] = {
            "of": kind,
            "device": device,
            "count": run.count,
            "total_in_run": run.total,
            "distinct": len(run.distinct),
            "first_t_s": run.first_t_s,
            "last_t_s": run.last_t_s,
            "last": run.last_payload,
        }
        if run.last_t_s is not None:
            payload["t_s"] = run.last_t_s
        run.count = 0
        run.distinct = set()
        return (session_id, KIND_REPEATED, payload, t_wall)
