"""Garbage collection in the interlock loop's slack (monitor.core.collector, the long bench's
``--gc-in-loop`` experiment, off by default), with a real loop thread at 1000 Hz: the cycles another thread leaves behind are collected, on the loop's
thread; the automatic collection is back when the loop stops, however it stops; the young
generation never grows past its hard bound."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.core import collector
from monitor.core.collector import HARD_FACTOR, SlackCollector
from tests.monitor.core.test_interlock import Rig, wait_until

LOOP = "laserguard-interlock-loop"


class _Cycle:
    """A reference cycle whose collection is counted."""

    freed = 0

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        type(self).freed += 1


@pytest.fixture
def collections() -> Iterator[list[str]]:
    """The name of the thread that ran each collection, while the test runs."""
    seen: list[str] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(threading.current_thread().name)

    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)


@pytest.fixture(autouse=True)
def _paced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "PACED", True)  # the bench's experiment, on for these tests


@pytest.fixture(autouse=True)
def _collection_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_cycles_another_thread_leaves_are_collected_by_the_loop_not_by_that_thread(
    collections: list[str],
) -> None:
    rig = Rig()
    rig.start()
    try:
        wait_until(lambda: not gc.isenabled(), "the loop to take the collection over")
        collections.clear()  # the rig's own start-up was collected as CPython does
        _Cycle.freed = 0
        n = 20 * gc.get_threshold()[0]
        for _ in range(n):  # this thread allocates: CPython would collect here, holding the GIL
            _Cycle()
        # A young generation short of its threshold is not collected yet: keep it due past the
        # hard bound while waiting, so that the loop collects with or without slack (on a
        # loaded machine a late loop can go seconds without half a period to spare, and other
        # threads freeing old objects count the young generation down).
        filler: list[list[int]] = []

        def collected() -> bool:
            filler.extend([i] for i in range((HARD_FACTOR + 1) * gc.get_threshold()[0]))
            # All but a few: the one being made when a collection ran was still referenced,
            # and waits in the middle generation for its turn.
            return _Cycle.freed >= 0.99 * n

        wait_until(collected, f"the {n} cycles collected")
        during = list(collections)
    finally:
        rig.close()
    assert during, "nothing was collected"
    assert set(during) == {LOOP}, during
    assert rig.loop.collector.collections[0] >= 1
    assert gc.isenabled(), "the automatic collection is back once the loop stopped"


def test_a_loop_that_fails_gives_the_collection_back() -> None:
    rig = Rig()
    rig.start()
    try:
        wait_until(lambda: not gc.isenabled(), "the loop to take the collection over")

        def broken(*args: object) -> object:
            raise RuntimeError("a check that raises")

        rig.loop.engine.evaluate = broken  # type: ignore[method-assign,assignment]
        wait_until(lambda: rig.loop.failure is not None, "the loop's failure")
        wait_until(lambda: not rig.loop.is_alive(), "the loop to end")
    finally:
        rig.close()
    assert any("interlock loop failed" in why for why, _ in rig.rec.halts)
    assert gc.isenabled()


def test_collection_switched_off_before_a_loop_stays_off_after_it() -> None:
    gc.disable()
    rig = Rig()
    rig.start()
    rig.run_cycles(20)
    rig.close()
    assert not gc.isenabled()


def test_two_loops_share_the_switch_and_the_last_one_out_gives_it_back() -> None:
    first, second = Rig(), Rig()
    first.start()
    second.start()
    try:
        wait_until(lambda: first.loop.collector.owning, "the first loop collecting")
        wait_until(lambda: second.loop.collector.owning, "the second loop collecting")
        first.close()
        assert not gc.isenabled(), "the second loop still runs: still its collection"
    finally:
        first.close()
        second.close()
    assert gc.isenabled()


def test_without_slack_it_waits_until_the_hard_bound_then_collects_anyway() -> None:
    period_ns = 1_000_000
    c = SlackCollector(period_ns)
    t0 = c.thresholds[0]
    keep: list[list[int]] = []
    c.start()
    try:
        gc.collect()
        keep.extend([i] for i in range(t0 + 100))  # past the threshold, short of the bound
        assert not c.maybe(0), "no slack, not yet at the bound: the loop is not delayed"
        assert c.maybe(period_ns), "with the slack, collected"
        assert c.forced == 0
        keep.extend([i] for i in range(HARD_FACTOR * t0 + 100))
        assert c.maybe(0), "past the bound: collected without the slack"
        assert c.forced == 1
        assert gc.get_count()[0] < t0
    finally:
        c.stop()
    assert gc.isenabled()


def test_by_default_collection_is_left_to_cpython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # PACED as the product ships it
    assert collector.PACED is False
    c = SlackCollector(1_000_000)
    c.start()
    try:
        assert gc.isenabled()
        assert not c.maybe(10**9)
    finally:
        c.stop()


def test_a_full_collection_waits_while_emission_is_permitted() -> None:
    """A full collection scans everything made since start-up (3.3 ms in a long bench run):
    while the laser may fire, the loop keeps to the young generations until the full one is
    far past due; in STANDBY it comes as CPython would order it."""
    period_ns = 1_000_000
    c = SlackCollector(period_ns)
    t0, _, t2 = c.thresholds
    keep: list[list[int]] = []
    c.start()
    try:
        for _ in range(t2):  # each middle collection counts one towards the full one
            gc.collect(1)
        assert gc.get_count()[2] >= t2
        keep.extend([i] for i in range(t0 + 100))
        assert c.maybe(period_ns, armed=True)
        assert c.collections == [1, 0, 0], "armed: a young collection, the full one waits"
        keep.extend([i] for i in range(t0 + 100))
        assert c.maybe(period_ns, armed=False)
        assert c.collections == [1, 0, 1], "in STANDBY: the full collection"
        for _ in range(HARD_FACTOR * t2):
            gc.collect(1)
        keep.extend([i] for i in range(t0 + 100))
        assert c.maybe(period_ns, armed=True)
        assert c.collections == [1, 0, 2], "armed, but far past due: the full collection"
    finally:
        c.stop()
