from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitor.calibration.bench import OpenCalBench, cal_benches


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[OpenCalBench]:
    yield from cal_benches(tmp_path)
