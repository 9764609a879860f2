"""Settings gate throughput: the vectorized batch next to a plain Python loop over rows.

Both answer the same question for the same rows (a mismatch fails the benchmark): may these
settings reach this skin type, under every limit row whose spot-size range contains them?
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from device_profiles.loader import load
from monitor.core.gate import LimitTable

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Batch:
    fluence: F64
    pulse: F64
    spot: F64
    rate: F64
    skin_rank: npt.NDArray[np.int_]

    def __len__(self) -> int:
        return int(self.fluence.shape[0])

    def head(self, n: int) -> Batch:
        return Batch(
            self.fluence[:n], self.pulse[:n], self.spot[:n], self.rate[:n], self.skin_rank[:n]
        )


def random_batch(n: int, seed: int = 1) -> Batch:
    """Settings around the limits, so rows pass and fail for every reason."""
    rng = np.random.default_rng(seed)
    return Batch(
        fluence=rng.uniform(20.0, 260.0, n),
        pulse=rng.uniform(0.0, 40.0, n),
        spot=rng.uniform(0.5, 7.0, n),
        rate=rng.uniform(-0.2, 2.0, n),
        skin_rank=rng.integers(0, 6, n),
    )


def evaluate_batch(table: LimitTable, batch: Batch) -> npt.NDArray[np.bool_]:
    """The one call into the gate: switch here when its signature grows (wavelengths)."""
    return table.evaluate(batch.fluence, batch.pulse, batch.spot, batch.rate, batch.skin_rank)


def evaluate_rows(table: LimitTable, batch: Batch) -> list[bool]:
    """The same rule, one row at a time, in plain Python (a contraindicated row refuses)."""
    contra = getattr(table, "contra", np.zeros(len(table.rows), dtype=np.bool_))
    rows: list[tuple[Any, ...]] = [
        (
            [bool(table.type_mask[t, j]) for t in range(table.type_mask.shape[0])],
            float(table.spot_min[j]),
            float(table.spot_max[j]),
            float(table.f_min[j]),
            float(table.f_max[j]),
            float(table.pw_min[j]),
            float(table.pw_max[j]),
            float(table.rate_max[j]),
            bool(contra[j]),
        )
        for j in range(len(table.rows))
    ]
    out: list[bool] = []
    columns = (
        batch.fluence.tolist(),
        batch.pulse.tolist(),
        batch.spot.tolist(),
        batch.rate.tolist(),
        batch.skin_rank.tolist(),
    )
    for f, pw, s, r, rank in zip(*columns, strict=True):
        any_applies, all_ok = False, True
        for types, s_lo, s_hi, f_lo, f_hi, pw_lo, pw_hi, r_hi, refused in rows:
            if not (types[rank] and s_lo <= s <= s_hi):
                continue
            any_applies = True
            if refused or not (f_lo <= f <= f_hi and pw_lo <= pw <= pw_hi and 0 < r <= r_hi):
                all_ok = False
                break
        out.append(any_applies and all_ok)
    return out


def gate_throughput(n_vector: int, n_python: int, repeat: int = 3) -> tuple[float, float]:
    """(vectorized settings/s, best of ``repeat``; pure-Python settings/s)."""
    table = LimitTable(load("demo-ndyag-1064").setup.limits.settings)
    batch = random_batch(n_vector)
    best = float("inf")
    result = evaluate_batch(table, batch)
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = evaluate_batch(table, batch)
        best = min(best, time.perf_counter() - t0)
    head = batch.head(n_python)
    t0 = time.perf_counter()
    plain = evaluate_rows(table, head)
    python_s = time.perf_counter() - t0
    if plain != result[:n_python].tolist():
        raise RuntimeError("the vectorized gate and the per-row loop disagree")
    return n_vector / best, n_python / python_s
