"""Racing writers in separate processes, on every backend: one record per key, a gapless log.

Each test starts several processes (``spawn``: nothing is shared but the database) that
wait on one barrier and then write at once.  Retries of one command under one idempotency
key must leave exactly one record and one suggestion, and every retry gets the winner's
result through ``Flow``; the event log's ``seq`` must run 1..n without a gap however the
commits interleave.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dbs import BACKENDS, backend_store, mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_template
from jianyi_flow.errors import DuplicateSuggestion, IdempotencyKeyReused
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.sql.schema import events, idempotency, suggestions

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

PROCESSES = 4
_SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    for store in backend_store(request, sqlite_template, tmp_path):
        yield store.engine.url.render_as_string(hide_password=False)


def _run(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(barrier, queue, *a)`` in one process per ``a``; what each put on the queue."""
    barrier = _SPAWN.Barrier(len(args))
    queue = _SPAWN.Queue()
    procs = [_SPAWN.Process(target=target, args=(barrier, queue, *a)) for a in args]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return results


def _same_key_commit(barrier: multiprocessing.synchronize.Barrier, queue: Any, url: str, n: int) -> None:
    from jianyi_flow.testing import create, make_suggestion

    store = SqlStore(url)
    change = create(make_suggestion(f"race-{n}"), key="one-key", scope="office:o1")
    barrier.wait(60)
    try:
        store.commit(change)
        queue.put(("ok", n))
    except (IdempotencyKeyReused, DuplicateSuggestion) as exc:
        queue.put((type(exc).__name__, n))
    except BaseException as exc:  # reported to the test
        queue.put((repr(exc), n))
    finally:
        store.close()


def test_same_key_commits_racing_in_processes_leave_one_record(url: str) -> None:
    results = _run(_same_key_commit, [(url, n) for n in range(PROCESSES)])
    outcomes = sorted(r[0] for r in results)
    assert outcomes == ["IdempotencyKeyReused"] * (PROCESSES - 1) + ["ok"], results
    [winner] = [n for outcome, n in results if outcome == "ok"]
    with SqlStore(url) as store, store.engine.connect() as conn:
        assert conn.execute(sa.select(idempotency.c.suggestion_id)).scalars().all() == [f"race-{winner}"]
        assert conn.execute(sa.select(suggestions.c.id)).scalars().all() == [f"race-{winner}"]
        assert store.last_seq() == 1


def _flow_retry(barrier: multiprocessing.synchronize.Barrier, queue: Any, url: str, n: int) -> None:
    from jianyi_flow import FakeClock, Flow
    from jianyi_flow.testing import OFFICE_ACTOR, T0, make_draft

    store = SqlStore(url)
    flow = Flow(store, FakeClock(T0), campaign="jy2024")
    draft = make_draft()
    barrier.wait(60)
    try:
        queue.put(["ok", *(flow.receive(draft, OFFICE_ACTOR, idempotency_key=f"portal-form-{round_}").id
                           for round_ in range(3))])
    except BaseException as exc:  # reported to the test
        queue.put([repr(exc)])
    finally:
        store.close()


def test_flow_retries_racing_in_processes_all_get_the_one_result(url: str) -> None:
    """Every retry of one receive under one key, in any process, returns the same suggestion."""
    results = _run(_flow_retry, [(url, n) for n in range(PROCESSES)])
    assert all(r[0] == "ok" for r in results), results
    assert all(r[1:] == results[0][1:] for r in results) and len(set(results[0][1:])) == 3, results
    with SqlStore(url) as store, store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(suggestions)).scalar_one() == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency)).scalar_one() == 3
        assert store.last_seq() == 3


def _writer(barrier: multiprocessing.synchronize.Barrier, queue: Any, url: str, n: int, rounds: int) -> None:
    from jianyi_flow.errors import ConcurrencyConflict
    from jianyi_flow.testing import advance, create, make_suggestion

    store = SqlStore(url)
    barrier.wait(60)
    written = conflicts = 0
    try:
        mine = create(make_suggestion(f"w-{n}", lead_unit=f"u{n % 2}"), notify=["office"])
        store.commit(mine)
        written += 1
        current = mine.suggestion
        for i in range(rounds):
            change = advance(current, research_notes=f"{n}/{i}", notify=["office"])
            store.commit(change)
            written += 1
            current = change.suggestion
            shared = store.load("shared")  # every process also fights over one row: losers write nothing
            try:
                store.commit(advance(shared, research_notes=f"{n}/{i}"))
                written += 1
            except ConcurrencyConflict:
                conflicts += 1
        queue.put(("ok", written, conflicts))
    except BaseException as exc:  # reported to the test
        queue.put((repr(exc), written, conflicts))
    finally:
        store.close()


def test_seq_is_gapless_under_concurrent_writers_in_processes(url: str) -> None:
    from jianyi_flow.testing import create, make_suggestion

    with SqlStore(url) as store:
        store.commit(create(make_suggestion("shared")))
    rounds = 12
    results = _run(_writer, [(url, n, rounds) for n in range(PROCESSES)])
    assert all(r[0] == "ok" for r in results), results
    written = 1 + sum(r[1] for r in results)
    with SqlStore(url) as store, store.engine.connect() as conn:
        found = conn.execute(sa.select(events.c.seq).order_by(events.c.seq)).scalars().all()
        assert found == list(range(1, written + 1))
        assert store.last_seq() == written
        history = store.history("shared")
        assert [e.version for e in history] == list(range(1, len(history) + 1))
