"""Pulses the log missed: the laser's own counter against the last total the log holds.

The laser counts every pulse it fires. The log records that counter with every ``pulses``
event (``total``) and once per session when the laser is first read
(``laser_pulse_counter``). When a new session first reads the counter and it is higher than
the last total logged for that laser, the difference is pulses that no session logged:
fired after a bridge died and before the laser's heartbeat watchdog dropped it to STANDBY,
or queued for the log when the process was killed, or fired while the laser was used
without LaserGuard. They are recorded in the new session as ``pulses_unlogged``, naming the
session they follow and whether that session was interrupted. A counter *lower* than the
last logged total (a counter reset at service, or another laser under the same setup name)
cannot be reconciled and is recorded as ``pulse_counter_mismatch``.

The laser is identified by its setup's name (``laser_id`` in the session's meta): a setup
file describes one laser station, so give each laser its own setup name. Sessions logged
before laser ids were recorded are not reconciled against.

Records chains that fire the laser without a patient (a calibration run's service shots)
carry the same ``laser_id`` in their meta and record the counter the same way
(``laser_pulse_counter``, ``pulses`` with ``total``): their shots are accounted for, and a
run whose process died mid-way is named as the one the unlogged pulses follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.core.records import EventKind
from monitor.record.chain import KIND_RECORDS_START
from monitor.record.chain_log import INTERRUPTED_REASON, ChainLog
from monitor.record.verify import Event

__all__ = ["KIND_COUNTER", "KIND_UNLOGGED", "LoggedTotal", "last_logged_total", "reconcile"]

KIND_PULSES = EventKind.PULSES.value  # the kinds the session writes, named once in the core
KIND_COUNTER = EventKind.LASER_PULSE_COUNTER.value
KIND_UNLOGGED = EventKind.PULSES_UNLOGGED.value
KIND_MISMATCH = EventKind.PULSE_COUNTER_MISMATCH.value


@dataclass(frozen=True)
class LoggedTotal:
    """The newest pulse total the log holds for a laser, and where it came from."""

    session_id: str
    total: int
    session_interrupted: bool


def last_logged_total(log: ChainLog, laser_id: str, *, exclude: str) -> LoggedTotal | None:
    """The laser's newest logged counter outside session ``exclude``, or None if never."""
    for start in _starts_newest_first(log):
        sid = start.session_id
        meta = start.payload.get("meta")
        if sid == exclude or not isinstance(meta, dict) or meta.get("laser_id") != laser_id:
            continue
        latest = log.latest_event(sid, [KIND_PULSES, KIND_COUNTER])
        total = None if latest is None else latest.payload.get("total")
        if not isinstance(total, int):
            continue  # that session never read the laser (it did not connect)
        end = log.latest_event(sid, ["session_end"])
        interrupted = end is not None and end.payload.get("reason") == INTERRUPTED_REASON
        return LoggedTotal(sid, total, interrupted)
    return None


def _starts_newest_first(log: ChainLog) -> list[Event]:
    """Every session's start and every records chain's start, newest first."""
    with log.store.reading() as r:
        records = [
            Event(e.seq, e.session_id, e.t_wall, e.kind, json.loads(e.payload_text), "", "")
            for e in r.events_of_kind(KIND_RECORDS_START)
        ]
    return sorted([*log.start_events(), *records], key=lambda e: e.seq, reverse=True)


def reconcile(
    log: ChainLog, laser_id: str, session_id: str, counter_now: int | None
) -> tuple[str, dict[str, Any]] | None:
    """The event that accounts for a gap between the log and the laser, or None if none."""
    if counter_now is None:
        return None
    last = last_logged_total(log, laser_id, exclude=session_id)
    if last is None or counter_now == last.total:
        return None
    facts: dict[str, Any] = {
        "laser_id": laser_id,
        "laser_counter": counter_now,
        "last_logged_total": last.total,
        "last_logged_session": last.session_id,
        "last_session_interrupted": last.session_interrupted,
    }
    if counter_now > last.total:
        return KIND_UNLOGGED, {"n": counter_now - last.total, **facts}
    return KIND_MISMATCH, {
        "reason": "the laser's pulse counter is below the last total logged for it (a counter"
        " reset, or another laser under this setup name): pulses since cannot be accounted for",
        **facts,
    }
