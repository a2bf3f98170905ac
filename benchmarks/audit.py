"""Audit: verifying every stored history in one streaming pass, against a Core floor reading and hashing the same.

``audit.verify_all_vs_floor`` — cost, ours / floor (lower is better), target ≤ 2.0.

The database: a SQLite file (``SqlStore.open``) holding N suggestions (``--quick``: 300;
full: 20,000) driven through the full lifecycle plus an evaluation (8 events and 4 outbox
messages each), written through ``SqlStore.commit`` in batches of 500 before timing.

Ours: ``Flow.verify_all()`` on that store: ``SqlStore.scan_histories`` reads the rows,
their events and their outbox messages 1,000 suggestions at a time, in id order; every
event's hash is recomputed from its canonical form, the ``prev_hash`` chain and the version
sequence are checked, the row is compared with the replay of its history, every notice an
event announced is looked up in the outbox, and the log positions are checked for gaps.

Floor: raw SQLAlchemy Core streaming the same tables in the same order (rows by id, events
by suggestion and version, outbox messages by suggestion; ``yield_per`` 1,000), hashing
every event's stored columns with SHA-256 (compact JSON of the column values) and checking
that each ``prev_hash`` is the previous event's ``hash``.  The floor decodes nothing into
objects and replays nothing: it is the least a full verification can read and hash.

Both are timed back to back, alternating which goes first, best of 3 rounds each; both
must find the store intact.

Run alone: ``python -m benchmarks.audit [--quick]``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from jianyi_flow.sql import SqlStore

from ._common import Figure, figure, log
from ._fixtures import Recorder, batches, lifecycle, make_flow

TARGET = 2.0
PAGE = 1000

_rows = sa.table("jianyi_suggestions", sa.column("id"), sa.column("version"), sa.column("state"),
                 sa.column("data"), sa.column("units"))
_events = sa.table("jianyi_events", *(sa.column(c) for c in (
    "suggestion_id", "version", "seq", "kind", "from_state", "to_state", "actor_id", "actor_role", "actor_unit",
    "actor_name", "at", "reason", "changes", "payload", "prev_hash", "hash", "notices", "workflow", "policy", "mac")))
_outbox = sa.table("jianyi_outbox", sa.column("id"), sa.column("suggestion_id"), sa.column("version"),
                   sa.column("recipient"))


def _fill(store: SqlStore, n: int) -> int:
    """``n`` suggestions through the full lifecycle and an evaluation, written in batches; events written."""
    from jianyi_flow import Actor, Role

    rec = Recorder()
    flow, clock = make_flow(rec, prefix="V")
    evaluator = Actor("evaluator-1", Role.EVALUATOR, name="评审组")
    for i in range(n):
        s = lifecycle(flow, i, advance=lambda: clock.advance(minutes=7))
        flow.evaluate(s.id, evaluator, quality=7, value=6, effect=8, evaluator="评审组")
    for chunk in batches(rec.changes, 500):
        with store.batch():
            for change in chunk:
                store.commit(change)
    return len(rec.changes)


def floor(engine: sa.Engine) -> tuple[float, int]:
    """Stream rows, events and outbox in order, hash every event, check the chain; seconds and events seen."""
    started = time.perf_counter()
    seen = 0
    broken = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    sha256 = hashlib.sha256
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=PAGE).execute(sa.select(_rows).order_by(_rows.c.id))
        events = conn.execution_options(yield_per=PAGE).execute(
            sa.select(_events).order_by(_events.c.suggestion_id, _events.c.version))
        messages = conn.execution_options(yield_per=PAGE).execute(
            sa.select(_outbox).order_by(_outbox.c.suggestion_id, _outbox.c.id))
        row_count = sum(1 for _ in rows)
        message_count = sum(1 for _ in messages)
        previous_sid, previous_hash = None, ""
        for e in events:
            sha256(dumps(list(e)).encode("utf-8")).hexdigest()
            if e.suggestion_id != previous_sid:
                previous_sid, previous_hash = e.suggestion_id, ""
            if e.prev_hash != previous_hash:
                broken += 1
            previous_hash = e.hash
            seen += 1
    if broken or not row_count or not message_count:
        raise RuntimeError(f"audit floor: {broken} broken links, {row_count} rows, {message_count} messages")
    return time.perf_counter() - started, seen


def run(quick: bool) -> list[Figure]:
    n = 300 if quick else 20_000
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_audit_"))
    try:
        store = SqlStore.open(f"sqlite:///{directory / 'audit.db'}")
        log(f"audit: writing {n:,} suggestions with their histories")
        written = _fill(store, n)
        flow, _ = make_flow(store)
        ours_best = floor_best = float("inf")
        seen = 0
        for r in range(3):
            def ours() -> float:
                started = time.perf_counter()
                problems = flow.verify_all(page=PAGE)
                if problems:
                    raise RuntimeError(f"audit: verify_all found {len(problems)} problems, e.g. {problems[0]}")
                return time.perf_counter() - started

            if r % 2:
                floor_s, seen = floor(store.engine)
                ours_s = ours()
            else:
                ours_s = ours()
                floor_s, seen = floor(store.engine)
            ours_best, floor_best = min(ours_best, ours_s), min(floor_best, floor_s)
        store.close()
        if seen != written:
            raise RuntimeError(f"audit: {written} events written, the floor read {seen}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [
        figure("audit.verify_all_vs_floor", value=ours_best, baseline=floor_best, ratio=ours_best / floor_best,
               unit="s", ratio_is="cost: ours / floor (lower is better)", target=TARGET, op="<=",
               note=f"Flow.verify_all() over {n:,} suggestions / {written:,} events on SqlStore(sqlite file) vs raw "
                    "Core streaming rows, events and outbox in order, SHA-256 of every event's columns and the "
                    "prev_hash chain checked; best of 3 alternating rounds",
               suggestions=n, events=written)
    ]


if __name__ == "__main__":
    for fig in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(fig, ensure_ascii=False))
