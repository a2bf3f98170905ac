"""Concurrency: many writers on the same few suggestions lose no update and break no chain.

Writers hammer three adopted suggestions at once, each attempt reading the current row and
committing the next version on top of it.  Half the attempts are a real command,
``Flow.evaluate`` by an evaluator under the default permission table (a later evaluation
replaces an earlier one), the other half a change built here and committed straight
through ``Store.commit`` (a ``research_note`` event setting ``research_notes``, sealed
the way Flow seals its own).  Every attempt carries a tag of its own (the evaluator's
name or the note), so each winner can be found in the history.

Optimistic concurrency promises that of the writers holding one version exactly one wins
and the others get :class:`ConcurrencyConflict`, nothing else.  At the end:

* every version ``1..n`` of each suggestion has exactly one event, and the row has version ``n``;
* winners == events written == ``n`` minus the versions before the run, summed;
* every winner's tag is in the history at the version it was told it wrote (no lost
  update), and every event written belongs to exactly one winner (nothing duplicated);
* every loser got ``ConcurrencyConflict`` — no other exception;
* the events' ``seq`` run 1..n without a gap (a lost race takes no place in the log);
* ``Flow.verify_all()`` is empty: the hash chains are intact and each row is its replay.

(a) 8 threads share one store: MemoryStore, and SqlStore on a SQLite file in WAL mode.
(b) 8 processes (``multiprocessing`` spawn), each with its own ``SqlStore``, on PostgreSQL
— and on MariaDB, whose InnoDB locking differs.  The figures are printed (``pytest -s``)
and written to ``hammer_figures.json`` in pytest's base temporary directory for
docs/security.md.  The SQL runs need ``jianyi_flow.sql``; while it does not import they
fail with that reason.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from jianyi_flow import ConcurrencyConflict, FakeClock, Flow, MemoryStore, State, Store, Suggestion
from jianyi_flow.domain.codec import encode_changes, replace
from jianyi_flow.domain.history import seal
from jianyi_flow.domain.model import Event
from jianyi_flow.storage.base import Change, HistoryScanner
from jianyi_flow.testing import EVALUATOR_ACTOR, T0, drive_to, make_flow, unit_actor

try:
    from dbs import mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_copy, sqlite_template, wipe
    from jianyi_flow.sql import SqlStore
except ImportError as exc:  # the SQL store is being rewritten on its own branch
    SQL_MISSING: str | None = f"jianyi_flow.sql does not import: {exc}"
else:
    SQL_MISSING = None
    __all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

WRITERS = 8
SCALE = int(os.environ.get("JIANYI_FLOW_HAMMER_SCALE", "1"))
"""Multiplies the attempts per writer, for a longer run."""
THREAD_ATTEMPTS = 150 * SCALE
"""Attempts per writer thread (one write lock on SQLite: these are quick)."""
PROCESS_ATTEMPTS = 60 * SCALE
"""Attempts per writer process (most of a process run is spent starting the 8 interpreters)."""
SUGGESTIONS = 3
BARRIER_TIMEOUT = 60.0
RESULT_TIMEOUT = 120.0
START = T0
NOTE_WRITER = unit_actor("u_traffic")
FIGURES = "hammer_figures.json"


# --- stores -------------------------------------------------------------------------------------
def open_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A new, empty store of ``backend``: ``memory``, ``sqlite`` (a file), ``postgres`` or ``mysql``."""
    if backend == "memory":
        return MemoryStore()
    if SQL_MISSING is not None:
        pytest.fail(SQL_MISSING)
    if backend == "sqlite":
        url = sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url = str(request.getfixturevalue(f"{backend}_migrated"))
    store = SqlStore(url)
    wipe(store.engine)
    return store


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, request, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


IN_PROCESS = ["memory", "sqlite"]
EVERY_BACKEND = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                 pytest.param("mysql", marks=pytest.mark.mysql)]


# --- one writer -------------------------------------------------------------------------------
@attrs.define
class Tally:
    """What one writer did: the versions it won (with the tag it wrote), its conflicts, anything else."""

    writer: int
    wins: list[tuple[str, int, str, str]] = attrs.field(factory=list)
    """(suggestion id, version written, event kind, tag)."""
    conflicts: int = 0
    errors: list[str] = attrs.field(factory=list)
    attempts: int = 0


def next_change(current: Suggestion, note: str, at: dt.datetime) -> Change:
    """The change that puts ``note`` in ``research_notes`` on top of ``current`` (a valid next event)."""
    version = current.version + 1
    event = seal(
        Event(
            suggestion_id=current.id,
            version=version,
            kind="research_note",
            from_state=current.state,
            to_state=current.state,
            actor=NOTE_WRITER,
            at=at,
            changes=encode_changes({"research_notes": note}),
            prev_hash=current.event_hash,
        )
    )
    new = replace(current, {"research_notes": note, "version": version, "updated_at": at, "event_hash": event.hash})
    return Change(new, event, expected_version=current.version)


def hammer(store: Store, writer: int, sids: list[str], attempts: int, start: Callable[[], object]) -> Tally:
    """``attempts`` writes on ``sids`` in turn, alternating Flow.evaluate and a raw commit."""
    clock = FakeClock(START + dt.timedelta(days=1))
    flow = Flow(store, clock)
    tally = Tally(writer)
    start()
    for i in range(attempts):
        sid = sids[(writer + i) % len(sids)]
        tag = f"w{writer}-{i}"
        tally.attempts += 1
        try:
            if i % 2 == 0:
                new = flow.evaluate(sid, EVALUATOR_ACTOR, quality=i % 11, value=writer % 11, effect=5, evaluator=tag)
                tally.wins.append((sid, new.version, "evaluate", tag))
            else:
                current = store.load(sid)
                time.sleep(0.001)  # between read and write, as a portal thinks: others get in
                change = next_change(current, tag, clock.now())
                store.commit(change)
                tally.wins.append((sid, change.event.version, "research_note", tag))
        except ConcurrencyConflict:
            tally.conflicts += 1
        except Exception as exc:  # anything else is a finding: keep going, report it at the end
            tally.errors.append(f"{tag} on {sid}: {type(exc).__name__}: {exc}")
    return tally


def _process_main(url: str, writer: int, sids: list[str], attempts: int, barrier: Any, results: Any) -> None:
    """One writer process: its own store on ``url``, started with the others by ``barrier``."""
    try:
        with SqlStore(url) as store:
            tally = hammer(store, writer, sids, attempts, lambda: barrier.wait(BARRIER_TIMEOUT))
    except Exception as exc:
        tally = Tally(writer, errors=[f"writer {writer} failed: {type(exc).__name__}: {exc}"])
    results.put(attrs.asdict(tally, recurse=False))


# --- checking a run ---------------------------------------------------------------------------
def tag_of(event: Event) -> str:
    if event.kind == "evaluate":
        evaluation = event.changes["evaluation"]
        assert isinstance(evaluation, dict)
        return str(evaluation["evaluator"])
    assert event.kind == "research_note", event.kind
    return str(event.changes["research_notes"])


def setup(store: Store) -> tuple[list[str], dict[str, int]]:
    """Three adopted suggestions (evaluate is legal there); their ids and versions before the run."""
    flow = make_flow(store)
    rows = [drive_to(flow, State.ADOPTED) for _ in range(SUGGESTIONS)]
    return [s.id for s in rows], {s.id: s.version for s in rows}


def seq_gaps(store: Store, sids: list[str]) -> int:
    """How many places of the log 1..last_seq no event holds, or holds twice (0 for a store that cannot say)."""
    if not isinstance(store, HistoryScanner):
        return 0
    seqs = sorted(e.seq or 0 for sid in sids for e in store.history(sid))
    return len(set(range(1, store.last_seq() + 1)) ^ set(seqs)) + len(seqs) - len(set(seqs))


def check(store: Store, tallies: list[Tally], initial: dict[str, int], per_writer: int, name: str,
          seconds: float, base: Path) -> dict[str, Any]:
    """Check the run (see the module docstring) and record its figures."""
    errors = [e for t in tallies for e in t.errors]
    attempts = sum(t.attempts for t in tallies)
    wins = [w for t in tallies for w in t.wins]
    conflicts = sum(t.conflicts for t in tallies)

    claimed = {(sid, version, kind, tag) for sid, version, kind, tag in wins}
    written: set[tuple[str, int, str, str]] = set()
    duplicated = 0
    for sid, before in initial.items():
        events = store.history(sid)
        row = store.load(sid)
        assert [e.version for e in events] == list(range(1, len(events) + 1)), f"{sid}: versions not 1..n"
        assert row.version == len(events), f"{sid}: row version {row.version}, {len(events)} events"
        new = events[before:]
        tags = [tag_of(e) for e in new]
        duplicated += len(tags) - len(set(tags))
        written |= {(sid, e.version, e.kind, tag) for e, tag in zip(new, tags, strict=True)}
    lost = len(claimed - written)
    phantom = len(written - claimed)
    problems = Flow(store, FakeClock(START)).verify_all()
    events_written = sum(store.load(sid).version - before for sid, before in initial.items())
    gaps = seq_gaps(store, list(initial))

    figures: dict[str, Any] = {
        "writers": len(tallies),
        "suggestions": len(initial),
        "attempts": attempts,
        "wins": len(wins),
        "conflicts": conflicts,
        "other_errors": len(errors),
        "events_written": events_written,
        "lost_updates": lost,
        "events_without_a_winner": phantom,
        "duplicated_events": duplicated,
        "log_gaps": gaps,
        "history_problems": len(problems),
        "seconds": round(seconds, 2),
    }
    record(base, name, figures)

    assert errors == [], errors[:10]
    assert attempts == WRITERS * per_writer
    assert len(wins) + conflicts == attempts
    assert len(wins) == len(claimed), "two winners claimed the same version"
    assert len(wins) == events_written, f"{len(wins)} winners but {events_written} events written"
    assert (lost, phantom, duplicated) == (0, 0, 0), f"lost {lost}, without a winner {phantom}, duplicated {duplicated}"
    assert gaps == 0, f"{gaps} places of the log are empty or doubled"
    assert problems == [], [str(p) for p in problems[:10]]
    assert conflicts > 0, "no writer ever collided: the run tested no concurrency"
    return figures


def record(base: Path, name: str, figures: dict[str, Any]) -> None:
    path = base / FIGURES
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{name}: {json.dumps(figures, ensure_ascii=False)}\n(written to {path})")


# --- (a) threads sharing one store -----------------------------------------------------------------
@pytest.mark.parametrize("store", IN_PROCESS, indirect=True)
def test_eight_threads_on_one_store(store: Store, tmp_path_factory: pytest.TempPathFactory) -> None:
    if SQL_MISSING is None and isinstance(store, SqlStore):
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    sids, initial = setup(store)
    barrier = threading.Barrier(WRITERS, timeout=BARRIER_TIMEOUT)
    tallies: list[Tally | None] = [None] * WRITERS

    def run(writer: int) -> None:
        tallies[writer] = hammer(store, writer, sids, THREAD_ATTEMPTS, barrier.wait)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(w,), name=f"hammer-{w}") for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RESULT_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    done = [t for t in tallies if t is not None]
    assert len(done) == WRITERS, "a writer thread died"
    name = "sqlite_threads" if SQL_MISSING is None and isinstance(store, SqlStore) else "memory_threads"
    check(store, done, initial, THREAD_ATTEMPTS, name, time.monotonic() - started, tmp_path_factory.getbasetemp())


# --- (b) processes on PostgreSQL and MariaDB --------------------------------------------------------
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
def test_eight_processes_on_one_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    store = open_store(backend, request, tmp_path)
    url = str(request.getfixturevalue(f"{backend}_migrated"))
    try:
        sids, initial = setup(store)
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(WRITERS)
        results = ctx.Queue()
        processes = [
            ctx.Process(target=_process_main, args=(url, w, sids, PROCESS_ATTEMPTS, barrier, results),
                        name=f"hammer-{w}")
            for w in range(WRITERS)
        ]
        started = time.monotonic()
        for p in processes:
            p.start()
        try:
            tallies = [Tally(**results.get(timeout=RESULT_TIMEOUT)) for _ in processes]
        finally:
            for p in processes:
                p.join(10)
                if p.is_alive():
                    p.kill()
        assert [p.exitcode for p in processes] == [0] * WRITERS
        assert sorted(t.writer for t in tallies) == list(range(WRITERS))
        check(store, tallies, initial, PROCESS_ATTEMPTS, f"{backend}_processes", time.monotonic() - started,
              tmp_path_factory.getbasetemp())
    finally:
        store.close()


@pytest.mark.parametrize("store", IN_PROCESS, indirect=True)
def test_a_stale_write_is_a_conflict_and_writes_nothing(store: Store) -> None:
    """The building block of the runs above, once, deterministically: the second of two writers loses."""
    sids, initial = setup(store)
    sid = sids[0]
    stale = store.load(sid)
    store.commit(next_change(stale, "first", START + dt.timedelta(days=1)))
    with pytest.raises(ConcurrencyConflict) as caught:
        store.commit(next_change(stale, "second", START + dt.timedelta(days=1)))
    assert (caught.value.expected_version, caught.value.actual_version) == (stale.version, stale.version + 1)
    assert [tag_of(e) for e in store.history(sid)[initial[sid]:]] == ["first"]
    assert seq_gaps(store, sids) == 0
    assert Flow(store, FakeClock(START)).verify_all() == []


# --- (c) the same command retried at once, (d) ticks at once --------------------------------------
def in_threads(work: Callable[[int], None]) -> None:
    errors: list[str] = []

    def run(writer: int) -> None:
        try:
            work(writer)
        except Exception as exc:
            errors.append(f"writer {writer}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RESULT_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == [], errors[:10]


@pytest.mark.parametrize("store", EVERY_BACKEND, indirect=True)
def test_eight_threads_retrying_one_command_under_one_idempotency_key_write_it_once(
    store: Store, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A portal that retries a command on a timeout sends it again under the same key, maybe in parallel.

    Every one of the 8 senders of each key must get the same suggestion back, and the
    history must hold the command once: no conflict, no key error, no second event.
    """
    keys = 20
    sids, initial = setup(store)
    sid = sids[0]
    barrier = threading.Barrier(WRITERS, timeout=BARRIER_TIMEOUT)
    results: list[tuple[int, int, str]] = []

    def work(writer: int) -> None:
        flow = Flow(store, FakeClock(START + dt.timedelta(days=1)))
        barrier.wait()
        for k in range(keys):
            s = flow.evaluate(sid, EVALUATOR_ACTOR, quality=k % 11, value=1, effect=2, evaluator=f"key{k}",
                              idempotency_key=f"evaluate-{k}")
            assert s.evaluation is not None
            results.append((k, s.version, s.evaluation.evaluator))

    started = time.monotonic()
    in_threads(work)
    events = store.history(sid)[initial[sid]:]
    by_key = {k: {(v, e) for kk, v, e in results if kk == k} for k in range(keys)}
    backend = request.node.callspec.params["store"]
    figures = {"writers": WRITERS, "keys": keys, "sends": len(results), "events_written": len(events),
               "keys_with_differing_answers": sum(len(a) != 1 for a in by_key.values()),
               "seconds": round(time.monotonic() - started, 2)}
    record(tmp_path_factory.getbasetemp(), f"{backend}_idempotent_retries", figures)
    assert len(results) == WRITERS * keys
    assert sorted(tag_of(e) for e in events) == sorted(f"key{k}" for k in range(keys)), "a key written twice"
    for k, answers in by_key.items():
        assert len(answers) == 1, f"key {k}: senders got {answers}"
        ((version, tag),) = answers
        assert tag_of(events[version - initial[sid] - 1]) == tag
    assert seq_gaps(store, sids) == 0
    assert Flow(store, FakeClock(START)).verify_all() == []


@pytest.mark.parametrize("store", EVERY_BACKEND, indirect=True)
def test_eight_ticks_at_once_act_on_each_overdue_suggestion_once(
    store: Store, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two schedulers (or a scheduler and a retry) running ``tick`` together must not flag twice."""
    states = [State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.OBJECTED, State.RESEARCHED, State.ADOPTED,
              State.REPLIED, State.RETURNED]
    flow = make_flow(store)
    before = {s.id: s for s in (drive_to(flow, states[i % len(states)]) for i in range(40))}
    later = START + dt.timedelta(days=200)  # every step of every one of them is overdue
    barrier = threading.Barrier(WRITERS, timeout=BARRIER_TIMEOUT)
    written: list[Event] = []

    def work(writer: int) -> None:
        ticker = Flow(store, FakeClock(later))
        barrier.wait()
        written.extend(ticker.tick())

    started = time.monotonic()
    in_threads(work)
    after = {sid: store.load(sid) for sid in before}
    backend = request.node.callspec.params["store"]
    figures = {"tickers": WRITERS, "overdue_suggestions": len(before), "events_written": len(written),
               "seconds": round(time.monotonic() - started, 2)}
    record(tmp_path_factory.getbasetemp(), f"{backend}_concurrent_ticks", figures)
    assert sorted(e.suggestion_id for e in written) == sorted(before), "not exactly one event per suggestion"
    for sid, row in before.items():
        assert after[sid].version == row.version + 1
        expected = State.UNRATED if row.state is State.REPLIED else row.state
        assert after[sid].state is expected
    assert Flow(store, FakeClock(later)).tick() == []
    assert seq_gaps(store, list(before)) == 0
    assert Flow(store, FakeClock(later)).verify_all() == []
