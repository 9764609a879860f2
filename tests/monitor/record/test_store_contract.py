"""The chain's rules, run against every store: the same tests, SQLite and memory.

Nothing here knows which store is underneath (``stores.Backend``): what passes here is what
the chain guarantees, whichever database keeps its rows.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.record.chain import GENESIS_HASH, event_hash
from monitor.record.chain_log import INTERRUPTED_REASON, ChainLog
from monitor.record.errors import SessionLogDamaged, SessionLogError
from tests.monitor.record.stores import Backend, MemoryBackend, SqliteBackend


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "sessions.sqlite3")
    return MemoryBackend()


def start(log: ChainLog, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "operator": "nurse.a",
        "patient_id": "P-0042",
        "skin_type": "III",
        "profile_name": "nd-yag-1064",
        "profile_digest": "ab" * 32,
        "mode": "treatment",
    }
    fields.update(overrides)
    return log.start_session(**fields)


def telemetry_arrays(n: int, offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t_s = offset_s + np.arange(n, dtype=np.float64) * 0.001
    return t_s, (np.arange(n) % 3).astype(np.int32), 30.0 + np.sin(t_s)


@pytest.fixture
def filled(backend: Backend) -> Iterator[tuple[Backend, str, str]]:
    """Two sessions, interleaved, with events and telemetry; b is left open."""
    with backend.open() as log:
        a = start(log, t_wall=1_700_000_000.0)
        b = start(log, operator="dr.b", patient_id="P-0007", t_wall=1_700_000_001.0)
        log.append(a, "settings", {"fluence_j_cm2": 120.0, "pulse_ms": 30.0})  # seq 3
        log.append_telemetry(a, *telemetry_arrays(300))  # seq 4
        log.append(b, "pulse", {"n": 1, "fluence_j_cm2": 100.0})  # seq 5
        log.append_many(
            [
                (a, "pulse", {"n": 1}, 1_700_000_002.0),
                (a, "alarm", {"check": "skin_temp_c", "value": 41.5}, 1_700_000_002.5),
            ]
        )
        log.append_telemetry(b, *telemetry_arrays(50, 1.0))  # seq 8
        log.end_session(a, "completed")  # seq 9
    yield backend, a, b


def test_normal_use_verifies_and_reads_back(filled: tuple[Backend, str, str]) -> None:
    backend, a, b = filled
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert (result.ok, result.n_events, result.n_telemetry_rows) == (True, 9, 350)
        assert [s.session_id for s in log.sessions()] == [b, a]  # newest first
        info = log.session(a[:6])
        assert (info.session_id, info.end_reason, info.n_events) == (a, "completed", 6)
        assert log.session(b).end_reason is None
        assert [e.kind for e in log.events(a, kinds=["pulse", "alarm"])] == ["pulse", "alarm"]
        record = log.read_verified(a)
        assert [e.kind for e in record.events] == [
            "session_start",
            "settings",
            "telemetry_batch",
            "pulse",
            "alarm",
            "session_end",
        ]
        exp_t, exp_ch, exp_v = telemetry_arrays(300)
        for got, expected in zip(
            (record.t_s, record.channel, record.value), (exp_t, exp_ch, exp_v), strict=True
        ):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(log.telemetry(a)[2], exp_v)
        assert log.verify(a).n_telemetry_rows == 300 and log.verify(b).n_telemetry_rows == 50
        with pytest.raises(SessionLogError, match="read-only"):
            log.append(b, "note", {})


def test_one_chain_spans_all_sessions_and_reopening_continues_it(
    filled: tuple[Backend, str, str],
) -> None:
    backend, a, b = filled
    with backend.open(read_only=True) as log:
        everything = sorted(log.events(a) + log.events(b), key=lambda e: e.seq)
    assert [e.seq for e in everything] == list(range(1, 10))
    assert everything[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(everything):
        assert after.prev_hash == before.hash
    with backend.open() as log:
        # b's writer closed without ending it: the reopening writer ends it, in the chain.
        assert log.interrupted == [b]
        assert log.session(b).end_reason == INTERRUPTED_REASON
        c = start(log)
        assert log.append(c, "note", {"text": "after restart"}).seq == 13
        assert log.verify().ok


def test_edited_payload_is_detected(filled: tuple[Backend, str, str]) -> None:
    backend, a, b = filled
    backend.replace_event(3, payload_text='{"fluence_j_cm2":60.0,"pulse_ms":30.0}')
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, 3)
        assert "does not match its hash" in result.reason
        assert log.verify(b).first_bad_seq == 3  # b's span includes seq 3 too
        with pytest.raises(SessionLogDamaged, match="seq 3"):
            log.read_verified(a)


def test_edit_with_recomputed_hash_breaks_the_next_link(filled: tuple[Backend, str, str]) -> None:
    backend, _, _ = filled
    e = backend.event(5)
    forged = {"n": 1, "fluence_j_cm2": 50.0}
    backend.replace_event(
        5,
        payload_text='{"fluence_j_cm2":50.0,"n":1}',
        hash=event_hash(e.prev_hash, e.seq, e.session_id, e.t_wall, e.kind, forged),
    )
    with backend.open(read_only=True) as log:
        result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert "link" in result.reason


def test_deleted_event_is_detected(filled: tuple[Backend, str, str]) -> None:
    backend, a, _ = filled
    backend.delete_events(seq=6)
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, 6)
        assert "missing" in result.reason
        with pytest.raises(SessionLogDamaged):
            log.read_verified(a)


def test_deleting_a_whole_session_is_detected(filled: tuple[Backend, str, str]) -> None:
    backend, _, b = filled
    backend.delete_events(session_id=b)
    backend.delete_all_telemetry()
    with backend.open(read_only=True) as log:
        result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)


@pytest.mark.parametrize("damage", ["value", "row_deleted", "row_added", "rows_without_batch"])
def test_telemetry_tamper_is_detected(filled: tuple[Backend, str, str], damage: str) -> None:
    backend, a, _ = filled
    if damage == "value":
        backend.set_telemetry_value(4, 17, 25.0)
    elif damage == "row_deleted":
        backend.delete_telemetry_row(4, 299)
    elif damage == "row_added":
        backend.add_telemetry_row(4, 300, 0.3, 0, 99.0)
    else:
        backend.add_telemetry_row(3, 0, 0.3, 0, 99.0)  # seq 3 is a settings event
    with backend.open(read_only=True) as log:
        result = log.verify()
        assert not result.ok and result.first_bad_seq in (3, 4)
        assert "telemetry" in result.reason
        with pytest.raises(SessionLogDamaged):
            log.read_verified(a)


def test_refused_input_leaves_nothing(backend: Backend) -> None:
    with backend.open() as log:
        sid = start(log)
        with pytest.raises(SessionLogError, match="NaN or infinity"):
            log.append(sid, "settings", {"fluence_j_cm2": float("nan")})
        with pytest.raises(SessionLogError, match="no session"):
            log.append_many([(sid, "pulse", {"n": 1}, 1.0), ("no-such-session", "pulse", {}, 2.0)])
        with pytest.raises(SessionLogError, match="written by the log itself"):
            log.append(sid, "telemetry_batch", {"n": 0})
        assert [e.kind for e in log.events(sid)] == ["session_start"]
        log.end_session(sid, "completed")
        with pytest.raises(SessionLogError, match="already ended"):
            log.append_telemetry(sid, *telemetry_arrays(3))
        assert log.verify().ok


def test_a_batch_is_one_transaction_all_or_nothing(backend: Backend) -> None:
    with backend.open() as log:
        sid = start(log)
        with pytest.raises(SessionLogError, match="already ended"), log.batch():
            log.append(sid, "pulse", {"n": 1})
            log.append_telemetry(sid, *telemetry_arrays(10))
            log.end_session(sid, "completed")
            log.append(sid, "pulse", {"n": 2})
        assert [e.kind for e in log.events(sid)] == ["session_start"]
        assert log.telemetry(sid)[0].shape == (0,)
        log.append(sid, "pulse", {"n": 1})  # still open: the end was rolled back
        log.end_session(sid, "completed")
        assert log.verify().ok


def test_nan_telemetry_values_are_kept(backend: Backend) -> None:
    # A sensor that reported NaN is evidence; the interlock trips on it, the log records it.
    with backend.open() as log:
        sid = start(log)
        value = np.array([31.0, np.nan, np.inf, 32.0])
        log.append_telemetry(sid, np.arange(4.0), np.zeros(4, np.int32), value)
        np.testing.assert_array_equal(log.read_verified(sid).value, value)
        assert log.verify().ok


def test_closed_log_refuses(backend: Backend) -> None:
    log = backend.open()
    sid = start(log)
    log.close()
    log.close()
    with pytest.raises(SessionLogError, match="closed"):
        log.append(sid, "pulse", {})


# -- the chain knows no database -----------------------------------------------------------

RECORD = Path(__file__).resolve().parents[3] / "monitor" / "record"
# What a second store may be added beside without touching: every module but the SQLite
# store's own two.
STORE_NEUTRAL = sorted(
    p for p in RECORD.glob("*.py") if p.name not in ("sqlite_store.py", "open_sessions.py")
)
DATABASE_MODULES = ("sqlite3", "monitor.record.sqlite_store", "monitor.record.open_sessions")


def database_imports(source: str) -> set[str]:
    """The database modules a module's source imports (at any depth in it)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [node.module]
        found |= {n for n in names if n.split(".")[0] == "sqlite3" or n in DATABASE_MODULES}
    return found


def test_the_check_sees_a_database_import() -> None:
    assert database_imports("def f():\n    import sqlite3\n") == {"sqlite3"}
    assert database_imports("from monitor.record.sqlite_store import SqliteStore") == {
        "monitor.record.sqlite_store"
    }


@pytest.mark.parametrize("module", STORE_NEUTRAL, ids=lambda p: p.name)
def test_the_chain_imports_no_database(module: Path) -> None:
    assert database_imports(module.read_text(encoding="utf-8")) == set()
