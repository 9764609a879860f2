"""The physics benchmark runs and prints every figure next to its floor (numbers unasserted:
benchmarks measure, tests assert behaviour)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(120)
def test_quick_physics_bench_reports_each_figure_with_its_floor() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.physics_bench", "--quick", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    for name in (
        "layered_session_10min_s",
        "dose_cem43_ns_per_sample",
        "dose_arrhenius_ns_per_sample",
    ):
        result = report["results"][name]
        assert result["value"] and result["floor"] and result["floor_name"], name
        assert all(isinstance(c["pass"], bool) for c in result["checks"]), name
    assert done.stderr.count("[bench]") >= 3
