"""The bundled setup, loaded once for the bridge's tests; the contract suite's backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_profiles.loader import load
from device_profiles.schema import Setup
from tests.firmware_bridge.backends import (
    LINE_BACKENDS,
    REGISTER_BACKENDS,
    LineBackend,
    RegisterBackend,
)


@pytest.fixture(scope="session")
def demo() -> Setup:
    return load("demo-ndyag-1064").setup


@pytest.fixture(params=LINE_BACKENDS)
def line_to(request: pytest.FixtureRequest) -> Iterator[LineBackend]:
    """A line device reached over each backend in turn: virtual, then a real pty."""
    backend = LineBackend(str(request.param))
    yield backend
    backend.close()


@pytest.fixture(params=REGISTER_BACKENDS)
def registers_to(request: pytest.FixtureRequest) -> Iterator[RegisterBackend]:
    """A register device reached over each backend in turn: virtual, then real Modbus TCP."""
    backend = RegisterBackend(str(request.param))
    yield backend
    backend.close()
