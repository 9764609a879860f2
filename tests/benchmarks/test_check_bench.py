"""The check-evaluation benchmark runs and reports each figure next to its floor.

No assertion on any number: benchmarks measure, tests assert behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_quick_check_bench_reports_its_figures_with_their_floor() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.check_bench", "--quick", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    for name in ("check_eval_us", "check_eval_settings_moving_us"):
        result = report["results"][name]
        assert result["value"]["per_call"] > 0
        assert result["floor_name"] == "floor_numpy_ufunc_call_us"
        assert result["floor"]["per_call"] > 0
        assert result["checks"][0]["target"] == "≤ 100 µs"
