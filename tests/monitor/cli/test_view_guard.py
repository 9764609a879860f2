"""A view beside a session never raises into it (issue 7, item 1)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from monitor.cli.live_view import LiveView
from monitor.cli.view_guard import MAX_ERROR_CHARS, ViewGuard, describe


class Recorder:
    """Stands in for the session: what the guard reports to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def view_failed(self, *args: Any) -> None:
        self.calls.append(("view_failed", args))

    def view_failures(self, *args: Any) -> None:
        self.calls.append(("view_failures", args))


def test_item1_a_failing_view_is_logged_once_then_counted_and_never_raises() -> None:
    session = Recorder()
    failing = [True, True, True, False, True]

    def view(s: Any, t_s: float) -> None:
        if failing.pop(0):
            raise IndexError("string index out of range")

    guard = ViewGuard("live view", view)
    for t in range(5):
        guard(session, float(t))  # type: ignore[arg-type]
    guard.close(session)  # type: ignore[arg-type]
    error = "IndexError: string index out of range"
    assert session.calls == [
        ("view_failed", ("live view", error)),
        ("view_failures", ("live view", 3, error, "the view works again")),
        ("view_failed", ("live view", error)),
    ]
    assert guard.total_failures == 4


def test_item1_a_failure_message_is_bounded_and_on_one_line() -> None:
    text = describe(ValueError("line one\nline two " + "x" * 10_000))
    assert len(text) == MAX_ERROR_CHARS and "\n" not in text
    assert text.startswith("ValueError: line one line two xxx") and text.endswith("…")


def test_item1_a_view_that_cannot_render_still_shows_the_state() -> None:
    def broken() -> dict[str, Any]:
        raise KeyError("limits")

    session = SimpleNamespace(
        snapshot=broken,
        state="HALTED",
        trips=[SimpleNamespace(check="skin_temp_high")],
    )
    view = LiveView("demo", None)
    with pytest.raises(KeyError):
        view.update(session, 1.0)  # type: ignore[arg-type]
    shown = str(view._live.renderable)
    assert "HALTED" in shown and "skin_temp_high" in shown and "live view failed" in shown
