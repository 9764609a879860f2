"""The console flood's client starts whatever the service's token looks like."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from benchmarks.console_flood import _Flooder


def test_a_token_that_begins_with_a_dash_reaches_the_flooder() -> None:
    # token_urlsafe may begin with "-": passed as a separate word, argparse took it for an
    # option and the flooder never started (a CI run failed that way, about 1 run in 64).
    service: Any = SimpleNamespace(url="http://127.0.0.1:9", token="-Zk3_starts-with-a-dash")
    flooder = _Flooder(service, max_s=3.0)
    result = flooder.stop()
    assert result["rest_requests"] == 0  # nothing listens on port 9: no answers, no crash
    assert any(k.startswith("error") for k in result["statuses"]), result
