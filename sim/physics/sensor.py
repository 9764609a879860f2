"""What an infrared skin sensor reports: the surface temperature, lagged and noisy.

A pyrometer's detector answers a step with a first-order lag (its response time τ: the
bundled demo profile states 2 ms) and adds noise to every reading (white, Gaussian,
``noise_c`` RMS; 0.05 °C is a typical pyrometer's resolution: clinic default, review). The
noise comes from a seeded generator, so a run repeats exactly.

Simplification: the reading is the skin surface itself; a real sensor looking through a
sapphire window, or at skin covered in cryogen frost, sees something else.
"""

from __future__ import annotations

import math

import numpy as np


class IrSensor:
    def __init__(self, response_ms: float, noise_c: float, seed: int, start_c: float) -> None:
        if not (response_ms >= 0.0 and noise_c >= 0.0 and math.isfinite(response_ms + noise_c)):
            raise ValueError(f"response {response_ms} ms and noise {noise_c} °C must be >= 0")
        self.response_s = response_ms / 1000.0
        self.noise_c = noise_c
        self._rng = np.random.default_rng(seed)
        self.detector_c = start_c

    def follow(self, surface_c: float, dt_s: float) -> None:
        """The detector after ``dt_s`` s of looking at ``surface_c`` (exact first-order lag
        for a surface held over the interval)."""
        if self.response_s == 0.0:
            self.detector_c = surface_c
            return
        self.detector_c += (surface_c - self.detector_c) * -math.expm1(-dt_s / self.response_s)

    def read(self) -> float:
        """One reading: the detector plus fresh noise."""
        if self.noise_c == 0.0:
            return self.detector_c
        return self.detector_c + self.noise_c * float(self._rng.standard_normal())
