"""Issue 20 defect 2 on the SQL stores: processes racing retries of ``receive`` under one key.

A portal that times out sends the same form again under the same idempotency key — from
another worker process, at the same moment.  Before the fix, with 4–8 processes on
PostgreSQL or MariaDB, 59–194 of 240–480 such retries got ``DuplicateSuggestion`` or
``IdempotencyKeyReused`` instead of the winner's result (SQLite: 5 of 240).  Here 8
processes (``multiprocessing`` spawn, each with its own ``SqlStore``) send each of 30 forms
under its key at once, started together by a barrier: every send of a key must return the
same suggestion, exactly one suggestion per key must be stored, and no send may fail.

Runs on SQLite always, on PostgreSQL and MariaDB when ``JIANYI_FLOW_TEST_POSTGRES_URL`` /
``JIANYI_FLOW_TEST_MYSQL_URL`` are set (tests/dbs.py).  The figures are printed (``pytest -s``)
and added to ``idempotency_race_figures.json`` in pytest's base temporary directory, for
docs/security.md.  The thread version on MemoryStore is in tests/test_idempotency.py.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jianyi_flow.sql", reason="jianyi_flow.sql (SqlStore) does not import on this branch yet",
                    exc_type=ImportError)

from dbs import (  # only once the SQL store imports
    mysql_migrated,
    mysql_url,
    postgres_migrated,
    postgres_url,
    sqlite_copy,
    sqlite_template,
    wipe,
)
from helpers import PROPOSER, START, make_draft
from jianyi_flow import FakeClock, Flow, Query
from jianyi_flow.sql import SqlStore

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

PROCESSES = 8
ROUNDS = 30
BARRIER_TIMEOUT = 60.0
RESULT_TIMEOUT = 300.0
FIGURES = "idempotency_race_figures.json"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mysql", marks=pytest.mark.mysql)]


def _sender(url: str, worker: int, barrier: Any, results: Any) -> None:
    """One worker process: its own store; each round, one receive under the round's key."""
    answers: list[tuple[int, str]] = []
    errors: list[str] = []
    try:
        with SqlStore(url) as store:
            flow = Flow(store, FakeClock(START + dt.timedelta(minutes=worker)))  # uuid ids: each sender its own
            for k in range(ROUNDS):
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    s = flow.receive(make_draft(title=f"建议{k}"), PROPOSER, idempotency_key=f"form-{k}")
                    answers.append((k, s.id))
                except Exception as exc:  # every error is a finding
                    errors.append(f"round {k}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        errors.append(f"worker {worker} failed: {type(exc).__name__}: {exc}")
    results.put({"worker": worker, "answers": answers, "errors": errors})


def _url(backend: str, request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> str:
    if backend == "sqlite":
        return sqlite_copy(sqlite_template, tmp_path)
    url = str(request.getfixturevalue(f"{backend}_migrated"))
    with SqlStore(url) as store:
        wipe(store.engine)
    return url


def _record(base: Path, name: str, figures: dict[str, Any]) -> None:
    path = base / FIGURES
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{name}: {json.dumps(figures, ensure_ascii=False)}\n(written to {path})")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_retrying_receive_under_one_key_all_get_the_one_suggestion(
    backend: str, request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Defect 2: every retry under one key gets the one result, across processes."""
    url = _url(backend, request, sqlite_template, tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = [ctx.Process(target=_sender, args=(url, w, barrier, results), name=f"sender-{w}")
                 for w in range(PROCESSES)]
    started = time.monotonic()
    for p in processes:
        p.start()
    try:
        reports = [results.get(timeout=RESULT_TIMEOUT) for _ in processes]
    finally:
        for p in processes:
            p.join(10)
            if p.is_alive():
                p.kill()
    errors = [e for r in reports for e in r["errors"]]
    by_key: dict[int, set[str]] = {k: set() for k in range(ROUNDS)}
    for r in reports:
        for k, sid in r["answers"]:
            by_key[k].add(sid)
    with SqlStore(url) as store:
        stored = store.query(Query())
        histories = {s.id: store.history(s.id) for s in stored}
    figures = {
        "processes": PROCESSES, "keys": ROUNDS, "sends": PROCESSES * ROUNDS,
        "failures": len(errors), "keys_with_differing_answers": sum(len(ids) > 1 for ids in by_key.values()),
        "suggestions_stored": len(stored), "seconds": round(time.monotonic() - started, 2),
    }
    _record(tmp_path_factory.getbasetemp(), f"{backend}_same_key_receive", figures)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert errors == [], errors[:10]
    assert all(len(ids) == 1 for ids in by_key.values()), {k: v for k, v in by_key.items() if len(v) > 1}
    assert len(stored) == ROUNDS
    assert {s.id for s in stored} == {next(iter(ids)) for ids in by_key.values()}
    assert all([e.kind for e in events] == ["receive"] for events in histories.values())
