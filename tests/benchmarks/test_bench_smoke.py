"""The benchmark entry point runs end to end and reports every figure next to its floor.

No assertion on any number: benchmarks measure, tests assert behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = (
    "halt_latency_ms",
    "halt_latency_rtu_ms",
    "loop_lateness_ms",
    "gate_settings_per_s",
    "log_rows_per_s",
    "log_mb_per_hour",
    "log_mb_per_hour_flooding",
    "halt_latency_stressed_ms",
    "halt_latency_console_flooded_ms",
    "rtu_read_pty_19200_ms",
    "rtu_read_pty_115200_ms",
    "halt_latency_rtu_pty_ms",
)
FLOORS = ("floor_modbus_roundtrip_ms", "floor_sleep_lateness_ms", "before_log_mb_per_hour")


@pytest.mark.timeout(270)  # the console flood starts the service twice; the RTU line runs too
def test_quick_run_reports_every_figure_with_its_floor() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=260, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert {"cores", "python", "numpy", "pymodbus"} <= set(report["machine"])
    assert "SCHED" in report["scheduling"]["interlock_loop"]
    for name in FIGURES:
        result = report["results"][name]
        assert result["value"] and result["floor"], name
        assert result["floor_name"], name
    for name in FIGURES + FLOORS:
        assert name in report["figures"], name
    for key in ("p50", "p99", "max", "n"):
        assert key in report["results"]["halt_latency_ms"]["value"]
    for key in ("p50", "p99", "p999", "max", "missed"):
        assert key in report["results"]["loop_lateness_ms"]["value"]
    for name in ("log_mb_per_hour", "log_mb_per_hour_flooding"):
        assert report["results"][name]["checks"][0]["target"] == "≤ ¼ × before"
    verdicts = [c["pass"] for r in report["results"].values() for c in r["checks"]]
    assert verdicts and all(isinstance(v, bool) for v in verdicts)
    # One progress line per benchmark on stderr, none on stdout (which is the JSON alone).
    assert done.stderr.count("[bench]") >= 5


def test_unknown_benchmark_name_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "nope" in done.stderr


def test_only_runs_the_named_benchmarks_and_prints_a_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "gate,log"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gate_settings_per_s" in done.stdout and "log_rows_per_s" in done.stdout
    assert "halt_latency_ms" not in done.stdout
    assert "pymodbus" in done.stdout.splitlines()[0]


def quick_report(only: str, timeout_s: float) -> dict[str, Any]:
    """``python -m benchmarks --quick --json --only NAME``: its report, after a clean exit."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", "--only", only],
        cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.timeout(90)
def test_issue13_the_physics_and_dose_costs_are_in_laserguard_bench() -> None:
    report = quick_report("physics", 80)
    for name in (
        "layered_session_10min_s",
        "dose_cem43_ns_per_sample",
        "dose_arrhenius_ns_per_sample",
        "dose_meter_ns_per_sample",
    ):
        result = report["results"][name]
        assert result["value"] and result["floor"] and result["floor_name"], name


@pytest.mark.timeout(120)
def test_issue15_item3_the_poll_period_cost_and_gain_are_in_laserguard_bench() -> None:
    report = quick_report("poll_cost", 110)
    for poll in ("2", "5"):
        result = report["results"][f"halt_from_crossing_poll_{poll}ms"]
        assert result["value"]["n"] > 0 and result["floor"]["n"] == result["value"]["n"]
        notes = result["notes"]
        assert notes["poll_ms"] == float(poll)
        # The cost: the sensor worker's and the processes' CPU, the reads on the line.
        assert notes["sensor_thread_cpu_pct"] > 0 and notes["simulator_cpu_pct"] > 0
        assert notes["reads_per_s"] > 0 and 0 < notes["read_in_flight_pct"] <= 100
    # A 2 ms poll reads the sensor more often than a 5 ms one: the figures are of the period.
    fast, slow = (
        report["results"][f"halt_from_crossing_poll_{p}ms"]["notes"]["reads_per_s"]
        for p in ("2", "5")
    )
    assert fast > 1.5 * slow
