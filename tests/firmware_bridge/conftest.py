"""The bundled setup, loaded once for the bridge's tests."""

from __future__ import annotations

import pytest

from device_profiles.loader import load
from device_profiles.schema import Setup


@pytest.fixture(scope="session")
def demo() -> Setup:
    return load("demo-ndyag-1064").setup
