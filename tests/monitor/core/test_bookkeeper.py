"""The session's bookkeeper: words for the bridge's threads, written on its own thread."""

from __future__ import annotations

import threading
import time

from monitor.core.bookkeeper import Bookkeeper


def test_item2_post_returns_at_once_while_a_task_waits_for_a_lock() -> None:
    """A device worker posts the words of its halt while the session's lock is held: it
    goes on at once, and the words are written, in order, once the lock is free."""
    lock = threading.RLock()
    written: list[str] = []
    errors: list[tuple[str, str]] = []
    keeper = Bookkeeper("test-words", lambda task, error: errors.append((task, error)))

    def record(word: str) -> None:
        with lock:
            written.append(word)

    with lock:
        t0 = time.perf_counter()
        for word in ("trip", "halted", "paused"):
            keeper.post(record, word)
        took_s = time.perf_counter() - t0
        time.sleep(0.05)
        assert written == []  # waiting for the lock, not written around it
    keeper.close()
    assert took_s < 0.01
    assert written == ["trip", "halted", "paused"]
    assert errors == []


def test_a_task_that_raises_is_reported_and_the_next_one_runs() -> None:
    errors: list[tuple[str, str]] = []
    done: list[int] = []
    keeper = Bookkeeper("test-words", lambda task, error: errors.append((task, error)))

    def broken() -> None:
        raise KeyError("trips")

    keeper.post(broken)
    keeper.post(done.append, 1)
    keeper.close()
    assert errors == [("broken", "KeyError: 'trips'")]
    assert done == [1]


def test_close_writes_what_is_queued_and_later_posts_run_on_the_caller() -> None:
    done: list[str] = []
    keeper = Bookkeeper("test-words", lambda task, error: None)
    gate = threading.Event()
    keeper.post(gate.wait, 5)
    keeper.post(done.append, "queued")
    gate.set()
    keeper.close()
    assert done == ["queued"]
    keeper.post(lambda: done.append(threading.current_thread().name))
    assert done == ["queued", threading.current_thread().name]
    keeper.close()  # twice is fine
