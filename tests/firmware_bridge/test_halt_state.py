"""The halt state's concurrency rule (issue 8, item 3): one owner for the latch, the pending
stop, the permit and its generation; every change atomic under its own lock.

Threads hammer it the way the loop, the operator and the workers do; the invariants of the
module docstring must hold at every read."""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_bridge.halt_state import HaltState
from firmware_bridge.live import LiveState

THREADS = 4
ROUNDS = 2000


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000

    def __call__(self) -> int:
        self.ns += 1000
        return self.ns


@pytest.fixture
def preemptive() -> Iterator[None]:
    """Switch threads as often as CPython allows, so that races get their chance."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_all(*targets: threading.Thread) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(30)
        assert not t.is_alive(), f"{t.name} hung"


@pytest.mark.usefixtures("preemptive")
def test_item3_permit_is_never_true_after_a_halt_until_release() -> None:
    """Operators and a paused laser ask for the permit over and over while the loop halts:
    from the moment halt() returns no reader sees a permit, nor a relay write that energises."""
    state = HaltState(LiveState())
    halted = threading.Event()
    stop = threading.Event()
    seen_after_halt: list[str] = []
    racing = threading.Barrier(THREADS + 1)

    def ask_for_permit() -> None:
        state.set_permit(True)
        racing.wait(10)
        while not stop.is_set():
            state.set_permit(True)
            state.set_permit(False)
            state.set_permit(True)

    def watch() -> None:
        while not stop.is_set():
            if not halted.is_set():
                continue
            if state.permit:
                seen_after_halt.append("permit")
            want, _ = state.relay_wanted()
            if want:
                seen_after_halt.append("relay_wanted")

    def halt_then_keep_reading() -> None:
        racing.wait(10)  # every asker is asking
        for _ in range(ROUNDS // 10):
            state.relay_wanted()
        assert state.halt()
        halted.set()
        for _ in range(ROUNDS):
            if state.permit or state.relay_wanted()[0]:
                seen_after_halt.append("halting thread")
        stop.set()

    askers = [threading.Thread(target=ask_for_permit, name=f"asker-{i}") for i in range(THREADS)]
    run_all(
        *askers,
        threading.Thread(target=watch, name="watcher"),
        threading.Thread(target=halt_then_keep_reading, name="loop"),
    )
    assert seen_after_halt == []
    assert state.latched and not state.permit
    state.release()
    assert not state.permit  # a release grants nothing by itself
    state.set_permit(True)
    assert state.permit


@pytest.mark.usefixtures("preemptive")
def test_item3_generation_is_monotonic_and_each_permit_gets_its_own() -> None:
    state = HaltState(LiveState())
    given: list[list[int]] = [[] for _ in range(THREADS)]
    observed: list[int] = []
    done = threading.Event()

    def ask(mine: list[int]) -> None:
        for _ in range(ROUNDS):
            mine.append(state.set_permit(True))

    def observe() -> None:
        while not done.is_set():
            observed.append(state.permit_generation)

    observer = threading.Thread(target=observe, name="observer")
    observer.start()
    run_all(
        *[threading.Thread(target=ask, args=(g,), name=f"asker-{i}") for i, g in enumerate(given)]
    )
    done.set()
    observer.join(10)
    every = [n for mine in given for n in mine]
    assert sorted(every) == list(range(1, THREADS * ROUNDS + 1))  # unique, none skipped
    for mine in given:
        assert mine == sorted(mine)
    assert observed == sorted(observed)
    assert state.permit_generation == THREADS * ROUNDS


@pytest.mark.usefixtures("preemptive")
def test_item3_halts_from_many_threads_latch_once() -> None:
    live = LiveState()
    state = HaltState(live, clock_ns=Clock())
    firsts: list[bool] = []

    def halt_many() -> None:
        for _ in range(ROUNDS):
            firsts.append(state.halt())

    run_all(*[threading.Thread(target=halt_many, name=f"halter-{i}") for i in range(THREADS)])
    assert firsts.count(True) == 1
    assert state.latched and live.halt_ns == state.halt_ns
    # Every halt asked for a STOP; one confirmation of the latest serves them all.
    request = state.stop_to_send()
    assert request == THREADS * ROUNDS
    state.stop_confirmed(request)
    assert not state.stop_pending and state.stop_to_send() is None


def test_item3_a_stop_requested_while_one_is_on_the_wire_is_not_lost() -> None:
    """The laser worker sends STOP for request n; meanwhile the halt is released and a new
    one comes. Confirming n must leave the new halt's STOP pending (a plain flag lost it)."""
    live = LiveState()
    state = HaltState(live, clock_ns=Clock())
    state.halt()
    on_the_wire = state.stop_to_send()
    assert on_the_wire is not None
    state.release()
    state.halt()  # a new halt while STOP n is still unanswered
    state.stop_confirmed(on_the_wire)
    assert state.stop_pending
    assert state.stop_confirmed_ns is None and live.stop_confirmed_ns == 0  # not this halt's
    again = state.stop_to_send()
    assert again is not None and again > on_the_wire
    state.stop_confirmed(again)
    assert not state.stop_pending
    assert state.stop_confirmed_ns is not None and live.stop_confirmed_ns == state.stop_confirmed_ns
    assert state.stop_confirmed_ns > state.halt_ns  # type: ignore[operator]


def test_item3_a_laser_back_up_while_halted_is_stopped_again_once() -> None:
    state = HaltState(LiveState())
    assert not state.restop()  # not halted: nothing to stop
    state.halt()
    assert not state.restop()  # the halt's own STOP is still pending
    first = state.stop_to_send()
    assert first is not None
    state.stop_confirmed(first)
    assert state.restop()  # it reports READY after it confirmed STOP: stop it again
    assert not state.restop()  # and not again while that STOP is pending
    assert state.stop_to_send() == first + 1


def test_item3_a_write_a_halt_overtook_does_not_count_as_closed() -> None:
    """The relay worker read "energise" (generation g), then the loop halted, then the write
    went out: wait_relay_closed must not take that write as the relay closed for g."""
    live = LiveState()
    state = HaltState(live, clock_ns=Clock())
    generation = state.set_permit(True)
    want, read = state.relay_wanted()
    assert want and read == generation
    state.halt()
    state.relay_written(True, read)
    assert state.closed_generation < generation
    state.relay_written(False, read)
    opened = state.relay_opened_ns
    assert opened is not None and opened > state.halt_ns  # type: ignore[operator]
    state.relay_written(False, read)  # a refresh
    assert state.relay_opened_ns == opened  # the first write that opened it


def test_item3_release_clears_the_halt_the_loop_judges() -> None:
    live = LiveState()
    state = HaltState(live, clock_ns=Clock())
    state.halt()
    halt_ns = live.halt_ns
    assert halt_ns and live.stop_confirmed_ns == 0
    state.halt()  # halting again while latched keeps the halt's time
    assert live.halt_ns == halt_ns
    state.release()
    assert live.halt_ns == 0 and not state.latched
    assert state.halt_ns == halt_ns  # when the last halt began stays known


def test_item3_no_bridge_worker_writes_another_objects_fields() -> None:
    """Workers call methods; they never assign to the bridge's (or any other object's)
    attributes: any ``self.b.x = ...`` or ``b.x = ...`` in a worker class breaks the rule."""
    source = Path(__file__).resolve().parents[2] / "firmware_bridge" / "bridge.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    workers = [c for c in tree.body if isinstance(c, ast.ClassDef) and c.name.endswith("Worker")]
    assert {"_Worker", "_RegisterWorker", "_LaserWorker", "_OutputWorker"} <= {
        c.name for c in workers
    }
    offenders = []
    for node in (n for c in workers for n in ast.walk(c)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript):
                target = target.value
            if not isinstance(target, ast.Attribute):
                continue
            owner = target.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                offenders.append(f"line {node.lineno}: {ast.unparse(target)}")
    assert offenders == []


def test_issue13_item4_every_opening_write_is_counted_for_the_relay_proof() -> None:
    """The relay's proof test (at standby, no halt latched) withdraws the permit and waits for
    an opening write made after it: each de-energising write counts, with its time, latched or
    not; energising writes never count, and the halt's own relay_opened_ns keeps its rule."""
    state = HaltState(LiveState(), clock_ns=Clock())
    generation = state.set_permit(True)
    state.relay_written(True, generation)
    assert state.open_writes == 0 and state.last_open_ns == 0
    before = state.open_writes
    state.set_permit(False)
    state.relay_written(False, generation)
    assert state.open_writes == before + 1
    first = state.last_open_ns
    assert first > 0
    assert state.relay_opened_ns is None  # no halt latched: not a halt's opening
    state.relay_written(False, generation)
    assert state.open_writes == before + 2 and state.last_open_ns > first
    state.halt()
    state.relay_written(False, generation)
    assert state.relay_opened_ns == state.last_open_ns  # the halt's first opening write
