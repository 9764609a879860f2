"""What a benchmark reports: a figure, its floor measured in the same run, targets met or not.

A figure is a dict of statistics (``p50``, ``p99``, ... in the figure's unit, and ``n``). Its
floor is the same statistic for the bare mechanism underneath (a bare Modbus read, a bare
sleep, raw SQLite): the ratio says how much LaserGuard adds on top of what the machine can do.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def progress(text: str) -> None:
    """One progress line on stderr (stdout is the table, or the JSON)."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def latency_stats(samples_ms: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, float]:
    """p50, p99, max and n of a set of durations in ms."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    p50, p99 = np.percentile(data, [50, 99])
    return {
        "p50": round(float(p50), 4),
        "p99": round(float(p99), 4),
        "max": round(float(data.max()), 4),
        "n": int(data.size),
    }


def tail_stats(samples_ms: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, float]:
    """p50, p99, p99.9, max and n of a set of durations in ms (the long run's figures)."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        nan = float("nan")
        return {"p50": nan, "p99": nan, "p999": nan, "max": nan, "n": 0}
    p50, p99, p999 = np.percentile(data, [50, 99, 99.9])
    return {
        "p50": round(float(p50), 4),
        "p99": round(float(p99), 4),
        "p999": round(float(p999), 4),
        "max": round(float(data.max()), 4),
        "n": int(data.size),
    }


def lateness_stats(late_ms: np.ndarray[Any, Any], period_ms: float) -> dict[str, float]:
    """p50, p99, p99.9, max and missed deadlines (late by more than a period) of a loop."""
    data = np.asarray(late_ms, dtype=np.float64)
    p50, p99, p999 = np.percentile(data, [50, 99, 99.9])
    return {
        "p50": round(float(p50), 4),
        "p99": round(float(p99), 4),
        "p999": round(float(p999), 4),
        "max": round(float(data.max()), 4),
        "missed": int((data > period_ms).sum()),
        "n": int(data.size),
    }


@dataclass(frozen=True)
class Check:
    """One target: ``value`` compared with ``limit`` (``value <= limit`` or ``>=``)."""

    what: str  # e.g. "p99"
    target: str  # e.g. "≤ 3 ms"
    value: float
    limit: float
    at_most: bool = True

    @property
    def passed(self) -> bool:
        if self.value != self.value or self.limit != self.limit:  # NaN: nothing measured
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "target": self.target,
            "value": self.value,
            "limit": self.limit,
            "pass": self.passed,
        }


@dataclass
class Result:
    """One figure of one benchmark, next to its floor."""

    name: str
    unit: str
    value: dict[str, float]
    floor_name: str
    floor: dict[str, float]
    checks: list[Check] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> dict[str, float]:
        """figure / floor for each statistic both have."""
        out: dict[str, float] = {}
        for key, v in self.value.items():
            f = self.floor.get(key)
            if key == "n" or f is None or not f or v != v or f != f:
                continue
            out[key] = round(v / f, 3)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "value": self.value,
            "floor_name": self.floor_name,
            "floor": self.floor,
            "ratio": self.ratio,
            "checks": [c.as_dict() for c in self.checks],
            "pass": all(c.passed for c in self.checks),
            "notes": self.notes,
        }
