"""BatchingSqlStore's buffer: what a batch reads, refuses, rolls back and stores.

The contract kit runs on it in tests/test_store_contract.py.  Here every scenario also runs on
a plain SqlStore and the two databases are compared table by table: buffering changes how a
batch is written, never what is stored or which error a commit raises.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from dbs import sqlite_copy, sqlite_template
from jianyi_flow import FakeClock, ResearchMethod
from jianyi_flow.domain.model import Event
from jianyi_flow.domain.personal import PersonalRecord
from jianyi_flow.errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    StoreError,
    ValidationError,
)
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.sql import BatchingSqlStore, SqlStore, metadata
from jianyi_flow.storage.base import Change, Query
from jianyi_flow.testing import (
    CO_UNIT,
    LEAD_UNIT,
    OFFICE_ACTOR,
    T0,
    UNIT_ACTOR,
    advance,
    create,
    make_draft,
    make_flow,
    make_suggestion,
)

__all__ = ["sqlite_template"]  # fixtures

FAR = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def stores(sqlite_template: Path, tmp_path: Path) -> Any:
    """A SqlStore and a BatchingSqlStore, each on a fresh copy of the migrated template."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "batching").mkdir()
    plain = SqlStore(sqlite_copy(sqlite_template, tmp_path / "plain"))
    batching = BatchingSqlStore(sqlite_copy(sqlite_template, tmp_path / "batching"))
    yield plain, batching
    plain.close()
    batching.close()


@pytest.fixture
def store(stores: tuple[SqlStore, BatchingSqlStore]) -> BatchingSqlStore:
    return stores[1]


def tables(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows as SQLite stores them, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            keys = ", ".join(c.name for c in table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {keys}")]
    return out


def assert_same_database(plain: SqlStore, batching: BatchingSqlStore) -> None:
    ours, theirs = tables(batching), tables(plain)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], f"{name} differs"
    seqs = [r[0] for r in batching.engine.connect().exec_driver_sql("SELECT seq FROM jianyi_events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "the log has gaps"
    assert batching.last_seq() == plain.last_seq() == len(seqs)


def same_on_both(stores: tuple[SqlStore, BatchingSqlStore], scenario: Callable[[SqlStore], list[Any]], *,
                 gapless: bool = True) -> list[Any]:
    """``scenario`` on SqlStore and on BatchingSqlStore: the same outcomes and the same tables; the outcomes."""
    plain, batching = stores
    theirs, ours = scenario(plain), scenario(batching)
    assert ours == theirs
    if gapless:
        assert_same_database(plain, batching)
    else:
        assert tables(batching) == tables(plain)
    return ours


def outcome(call: Callable[[], Any]) -> Any:
    """What a call gave: its value, or its error's type and text (to compare two stores)."""
    try:
        return call()
    except JianyiFlowError as exc:
        return type(exc).__name__, str(exc)


# --- the same database as SqlStore -----------------------------------------------------------------
def test_a_simulation_stores_the_same_database_as_sqlstore(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    results = [CampaignSimulator(yongchuan_2024(), s, seed=3, suggestions=40).run() for s in stores]
    assert results[0].commands == results[1].commands > 300
    assert results[0].by_command == results[1].by_command
    assert_same_database(*stores)
    assert make_flow(stores[1]).verify_all() == []


class Killed(Exception):
    """The process died."""


class DiesAfter(BatchingSqlStore):
    """A BatchingSqlStore whose process dies at a chosen commit, inside a batch."""

    deadline: int | None = None

    def commit(self, change: Change) -> Event:
        if self.deadline is not None:
            if self.deadline == 0:
                self.deadline = None
                raise Killed(change.suggestion.id)
            self.deadline -= 1
        return super().commit(change)


def test_a_killed_simulation_resumes_to_the_same_database(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    """A kill loses the open batch, buffered and written parts alike; the resumed run stores what SqlStore does."""
    plain, batching = stores
    first = CampaignSimulator(yongchuan_2024(), plain, seed=3, suggestions=40).run()
    batching.close()
    store = DiesAfter(str(batching.engine.url))
    try:
        store.deadline = first.commands // 2
        with pytest.raises(Killed):
            CampaignSimulator(yongchuan_2024(), store, seed=3, suggestions=40).run()
        kept = store.last_seq()
        assert 0 < kept < plain.last_seq()
        resumed = CampaignSimulator(yongchuan_2024(), store, seed=3, suggestions=40).run()
        assert 0 < resumed.replayed < resumed.commands == first.commands
        assert_same_database(plain, store)
    finally:
        store.close()


def hand_made(store: SqlStore) -> list[Any]:
    """Creates, unit changes, sort-key changes, failures and reads, in three batches."""
    got: list[Any] = []
    a = create(make_suggestion("hm-a", lead_unit="u1", co_units=("u2", "u3")), notify=["office"], key="k-a")
    b = create(make_suggestion("hm-b", lead_unit="u1"), notify=["unit:u1"])
    with store.batch():
        got.append(outcome(lambda: store.commit(a).seq))
        a2 = advance(a.suggestion, co_units=("u2",), notify=["unit:u2"])  # a link removed
        got.append(outcome(lambda: store.commit(a2).seq))
        got.append(outcome(lambda: store.commit(b).seq))
        got.append(outcome(lambda: store.load("hm-a")))
        got.append(outcome(lambda: store.commit(create(make_suggestion("hm-a")))))  # duplicate
        got.append(outcome(lambda: store.commit(create(make_suggestion("hm-c"), key="k-a"))))  # key taken
        got.append(outcome(lambda: store.commit(a2)))  # stale
        got.append(outcome(lambda: store.commit(advance(make_suggestion("hm-none")))))  # not found
        got.append(outcome(lambda: store.commit(advance(a2.suggestion, reason="lone \ud800"))))  # text SQLite refuses
        b2 = advance(b.suggestion, due_at=T0 + dt.timedelta(days=15), co_units=("u4",))  # keys and a link added
        got.append(outcome(lambda: store.commit(b2).seq))
        got.append([s.id for s in store.query(Query(unit="u4"))])  # a read: the buffer is written first
        b3 = advance(b2.suggestion, due_at=T0 + dt.timedelta(days=20), key="k-b3")  # after the write
        got.append(outcome(lambda: store.commit(b3).seq))
        got.append(outcome(lambda: store.load("hm-b")))
    with store.batch():
        # commits without a load in the batch: the store reads what it needs
        a3 = advance(a2.suggestion, lead_unit="u9", topic="water", notify=["unit:u9"])
        got.append(outcome(lambda: store.commit(a3).seq))
        got.append(outcome(lambda: store.commit(advance(b3.suggestion, registration_number="YC-1")).seq))
        got.append(outcome(lambda: store.commit(advance(b2.suggestion))))  # stale against the database
        got.append(outcome(lambda: store.commit(create(make_suggestion("hm-d"), key="k-b3"))))  # key in the database
        got.append(outcome(lambda: store.idempotency(OFFICE_ACTOR.key, "k-b3")))
        got.append(outcome(lambda: store.commit(advance(a3.suggestion, co_units=()))))
    with store.batch():
        for i in range(5):  # several suggestions with the same change: one executemany per statement
            c = create(make_suggestion(f"hm-e{i}", lead_unit="u1"), notify=["office"])
            got.append(outcome(lambda c=c: store.commit(c).seq))
            got.append(outcome(lambda c=c: store.commit(advance(c.suggestion, lead_unit="u2")).seq))
    got.append([s.id for s in store.query(Query(unit="u2"))])
    return got


def test_hand_made_changes_store_what_sqlstore_stores(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, hand_made)
    assert ("DuplicateSuggestion", str(DuplicateSuggestion("hm-a"))) in ours
    assert any(isinstance(o, tuple) and o[0] == "ConcurrencyConflict" for o in ours)
    assert any(isinstance(o, tuple) and o[0] == "IdempotencyKeyReused" for o in ours)
    assert any(isinstance(o, tuple) and o[0] == "ValidationError" for o in ours)


def vault_run(store: SqlStore) -> list[Any]:
    """A Flow keeping personal data in the vault, with an erasure (written at once) inside a batch."""
    salts = (f"{i:032x}" for i in itertools.count(1))  # the same salts on both stores
    flow = make_flow(store, FakeClock(T0), vault=True, salts=lambda: next(salts))
    got: list[Any] = []
    with store.batch():
        s = flow.receive(make_draft(), OFFICE_ACTOR, idempotency_key="r-1")
        t = flow.receive(make_draft(title="第二条建议"), OFFICE_ACTOR, idempotency_key="r-2")
        flow.register(s.id, OFFICE_ACTOR, idempotency_key="g-1")
        flow.transfer(s.id, OFFICE_ACTOR, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,))
        got.append(store.load(s.id))
        got.append(store.personal_data(s.id))
        flow.erase_personal_data(t.id, OFFICE_ACTOR, reason="本人申请删除")
        got.append(store.load(t.id))
        got.append(store.idempotency(OFFICE_ACTOR.key, "r-2"))  # forgotten with the erasure
        got.append(flow.receive(make_draft(), OFFICE_ACTOR, idempotency_key="r-1").id)  # the same request again
        flow.research(s.id, UNIT_ACTOR, findings="属实", method=ResearchMethod.FIELD_VISIT)
        got.append(store.load(s.id))
    got.append([e.seq for e in store.history(s.id)])
    got.append(flow.verify_all())
    return got


def test_a_vault_and_an_erasure_inside_a_batch(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, vault_run)
    assert ours[3] is None and ours[-1] == []


# --- reads inside a batch ---------------------------------------------------------------------------
def test_reads_inside_a_batch_see_its_commits(store: BatchingSqlStore) -> None:
    a = create(make_suggestion("r-a", lead_unit="u1"), notify=["office"], key="rk")
    b = advance(a.suggestion, lead_unit="u2", notify=["unit:u2"])
    with store.batch():
        assert store.commit(a).seq == 1
        assert store.load("r-a") == a.suggestion  # from the buffer
        assert store.idempotency(a.idempotency.scope, "rk") == a.idempotency  # type: ignore[union-attr]
        assert store.commit(b).seq == 2
        assert [s.id for s in store.query(Query(unit="u2"))] == ["r-a"]
        assert store.count(Query(lead_unit="u1")) == 0
        assert [e.seq for e in store.history("r-a")] == [1, 2]
        assert store.last_seq() == 2
        assert [h.suggestion_id for h in store.scan_histories(None, 10)] == ["r-a"]
        assert [m.recipient for m in store.claim(10, FAR, dt.timedelta(seconds=1))] == ["office", "unit:u2"]
        c = advance(b.suggestion, reply="答复")
        assert store.commit(c).seq == 3  # after the buffer was written: the log runs on
        assert store.load("r-a") == c.suggestion
        assert store.outbox_pending() == 2
    assert store.load("r-a") == c.suggestion
    assert [e.seq for e in store.history("r-a")] == [1, 2, 3]


def test_a_failed_commit_raises_at_once_and_keeps_the_others(store: BatchingSqlStore) -> None:
    a = create(make_suggestion("f-a"), key="fk")
    with store.batch():
        store.commit(a)
        with pytest.raises(ConcurrencyConflict) as conflict:
            store.commit(advance(attrs.evolve(a.suggestion, version=4)))
        assert (conflict.value.expected_version, conflict.value.actual_version) == (4, 1)
        with pytest.raises(NotFound):
            store.commit(advance(make_suggestion("f-none")))
        with pytest.raises(IdempotencyKeyReused):
            store.commit(create(make_suggestion("f-b"), key="fk"))
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("f-a")))
        with pytest.raises(ValidationError):  # refused while planning, as SqlStore refuses it
            store.commit(create(make_suggestion("f-" + "x" * 300)))
        assert store.commit(create(make_suggestion("f-b"), key="fk2")).seq == 2
    assert [s.id for s in store.query(Query())] == ["f-a", "f-b"]
    assert store.last_seq() == 2


def test_an_exception_in_the_block_rolls_back_the_whole_batch(store: BatchingSqlStore) -> None:
    store.commit(create(make_suggestion("x-0")))
    with pytest.raises(RuntimeError), store.batch():
        store.commit(create(make_suggestion("x-a"), notify=["office"], key="xk"))
        assert store.count(Query()) == 2  # the buffer is written, inside the batch's transaction
        store.commit(create(make_suggestion("x-b")))
        raise RuntimeError("the importer crashed")
    assert [s.id for s in store.query(Query())] == ["x-0"]
    assert store.last_seq() == 1 and store.outbox_pending() == 0
    assert store.idempotency("office-1", "xk") is None
    with store.batch():
        assert store.commit(create(make_suggestion("x-a"))).seq == 2  # the log runs on from the database


def test_a_write_the_database_refuses_fails_the_whole_batch(store: BatchingSqlStore) -> None:
    """A refusal no check foresaw (here: the log counter set back by hand) surfaces when the buffer is written."""
    store.commit(create(make_suggestion("w-a")))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE jianyi_counters SET value = 0")
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        assert store.commit(create(make_suggestion("w-b"))).seq == 1  # buffered: its place is taken
        with pytest.raises(StoreError, match="writing the batch failed"):
            store.query(Query())
        with pytest.raises(StoreError, match="failed earlier"):
            store.commit(create(make_suggestion("w-c")))
        with pytest.raises(StoreError, match="failed earlier"):
            store.load("w-a")
    assert [s.id for s in store.query(Query())] == ["w-a"]


def test_nested_batches_and_transactions_join_the_outer_batch(store: BatchingSqlStore) -> None:
    a = create(make_suggestion("n-a"))
    with store.batch():
        with store.batch():
            store.commit(a)
        assert store.transaction(lambda: store.load("n-a")) == a.suggestion
        nxt = advance(a.suggestion, topic="water")
        assert store.transaction(lambda: store.commit(nxt)).seq == 2
        assert store.load("n-a") == nxt.suggestion
    assert store.load("n-a") == nxt.suggestion


def test_outside_a_batch_it_is_sqlstore(store: BatchingSqlStore) -> None:
    a = create(make_suggestion("o-a"))
    assert store.commit(a).seq == 1
    with pytest.raises(ConcurrencyConflict):
        store.commit(advance(attrs.evolve(a.suggestion, version=3)))
    assert store.load("o-a") == a.suggestion
    assert repr(store).startswith("BatchingSqlStore(")


@pytest.mark.parametrize("url", ["postgresql+psycopg://nobody@127.0.0.1:1/none", "mysql+pymysql://nobody@127.0.0.1:1/x"])
def test_other_databases_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(ValidationError, match="SQLite only"):
        BatchingSqlStore(url)
    with pytest.raises(ValidationError, match="SQLite only"):  # before the migrations would connect to it
        BatchingSqlStore.open(url)


def test_an_engine_of_another_database_is_refused() -> None:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(ValidationError, match="SQLite only"):
            BatchingSqlStore(engine)
    finally:
        engine.dispose()


def key_written_at_once(store: SqlStore) -> list[Any]:
    """A change with a key that SqlStore writes at once (it rewrites an event): the batch sees the key."""
    a = create(make_suggestion("ka-a"))
    store.commit(a)
    first = store.history("ka-a")[0]
    got: list[Any] = []
    with store.batch():
        got.append(outcome(lambda: store.idempotency(OFFICE_ACTOR.key, "k1")))  # looked up: not held yet
        change = attrs.evolve(advance(a.suggestion, key="k1"), redacted=(first,))
        got.append(outcome(lambda: store.commit(change).seq))
        got.append(outcome(lambda: store.idempotency(OFFICE_ACTOR.key, "k1")))
        got.append(outcome(lambda: store.commit(create(make_suggestion("ka-b"), key="k1"))))  # key taken
        got.append(outcome(lambda: store.commit(create(make_suggestion("ka-c"))).seq))
    got.append([s.id for s in store.query(Query())])
    return got


def test_a_key_written_at_once_is_seen_by_the_batch(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, key_written_at_once)
    assert ours[3][0] == "IdempotencyKeyReused"


def texts_and_refusals(store: SqlStore) -> list[Any]:
    """A text SQLite refuses in a commit that is refused anyway: the error SqlStore meets first."""
    a = create(make_suggestion("tx-a"), key="tk")
    got: list[Any] = []
    with store.batch():
        store.commit(a)
        store.commit(advance(a.suggestion))
        got.append(outcome(lambda: store.commit(advance(a.suggestion, reason="lone \ud800"))))  # stale
        got.append(outcome(lambda: store.commit(create(make_suggestion("tx-a"), notify=["x\ud800"]))))  # duplicate
        got.append(outcome(lambda: store.commit(create(make_suggestion("tx-b", topic="t\ud800"), key="tk"))))
        got.append(outcome(lambda: store.commit(create(make_suggestion("tx-c", topic="t\ud800")))))
        got.append(outcome(lambda: store.commit(create(make_suggestion("tx-d"), key="k\ud800"))))
        got.append(outcome(lambda: store.commit(create(make_suggestion("tx-e"), notify=["x\ud800"]))))
        got.append(outcome(lambda: store.commit(advance(make_suggestion("tx-\ud800")))))  # an id it cannot look up
    return got


def test_a_refused_text_is_reported_where_sqlstore_meets_it(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, texts_and_refusals)
    assert [o[0] for o in ours] == [
        "ConcurrencyConflict", "DuplicateSuggestion", "IdempotencyKeyReused", "ValidationError", "ValidationError",
        "ValidationError", "ValidationError"]


def required_times(store: SqlStore) -> list[Any]:
    """A row without a time its NOT NULL column needs: refused by the commit, the batch goes on."""
    a = create(make_suggestion("rt-a"))
    b = create(make_suggestion("rt-b"))
    c = advance(a.suggestion)
    no_update = attrs.evolve(c, suggestion=attrs.evolve(c.suggestion, updated_at=None))
    no_receipt = attrs.evolve(b, suggestion=attrs.evolve(b.suggestion, received_at=None))
    got: list[Any] = []
    with store.batch():
        got.append(outcome(lambda: store.commit(a).seq))
        got.append(outcome(lambda: store.commit(advance(a.suggestion, received_at=None))))
        got.append(outcome(lambda: store.commit(no_update)))
        got.append(outcome(lambda: store.commit(no_receipt)))
        got.append(outcome(lambda: store.commit(b).seq))
    got.append(store.last_seq())
    return got


def test_a_row_without_a_required_time_is_refused_by_its_commit(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, required_times)
    assert [o[0] for o in ours[1:4]] == ["ValidationError"] * 3 and ours[-1] == 2


def over_an_unreadable_row(store: SqlStore) -> list[Any]:
    """A commit over a stored row this version cannot decode writes over it, as SqlStore's does."""
    a = create(make_suggestion("ur-a"))
    b = create(make_suggestion("ur-b"))
    store.commit(a)
    store.commit(b)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE jianyi_suggestions SET data = 'not json' WHERE id IN ('ur-a', 'ur-b')")
    got: list[Any] = []
    with store.batch():
        got.append(outcome(lambda: store.load("ur-a")))
        got.append(outcome(lambda: store.commit(create(make_suggestion("ur-a")))))
        a2 = advance(a.suggestion, topic="fixed")
        got.append(outcome(lambda: store.commit(a2).seq))
        got.append(outcome(lambda: store.commit(advance(a2.suggestion, topic="again")).seq))
        got.append(outcome(lambda: store.load("ur-a").topic))
        got.append(outcome(lambda: store.load("ur-b")))
    got.append(outcome(lambda: store.load("ur-a").topic))
    return got


def test_a_commit_over_an_unreadable_row(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, over_an_unreadable_row)
    assert ours[2:5] == [3, 4, "again"] and ours[-1] == "again"


def unbindable_vault_values(store: SqlStore) -> list[Any]:
    """A vault record the driver could not bind is refused by its commit, not by the batch's write."""
    a = create(make_suggestion("ub-a"))
    got: list[Any] = []
    with store.batch():
        got.append(outcome(lambda: store.commit(a).seq))
        for record in (PersonalRecord("ub-a", erased_at=T0, erased_version=2**70),
                       PersonalRecord("ub-a", name=["not", "text"], salt="00" * 16)):  # type: ignore[arg-type]
            got.append(outcome(lambda r=record: store.commit(attrs.evolve(advance(a.suggestion), personal_data=r))))
        got.append(outcome(lambda: store.commit(create(make_suggestion("ub-b"))).seq))
    got.append(store.last_seq())
    return got


def test_a_vault_record_the_driver_cannot_bind_is_refused_by_its_commit(
        stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, unbindable_vault_values)
    assert [o[0] for o in ours[1:3]] == ["ValidationError"] * 2 and ours[-1] == 2


def missing_rows_and_events(store: SqlStore) -> list[Any]:
    """Loads of ids the batch cannot find, and a commit whose event version a stray event already holds."""
    a = create(make_suggestion("mr-a"))
    store.commit(a)
    stray = advance(a.suggestion)
    columns = [c.name for c in metadata.tables["jianyi_events"].columns]
    copied = [{"version": "2", "seq": "seq + 1000"}.get(name, name) for name in columns]
    with store.engine.begin() as conn:  # an event at version 2 without the row moving to it
        conn.exec_driver_sql(f"INSERT INTO jianyi_events ({', '.join(columns)}) SELECT {', '.join(copied)} "
                             "FROM jianyi_events WHERE suggestion_id = 'mr-a'")
    got: list[Any] = []
    with store.batch():
        got.append(outcome(lambda: store.load("mr-none")))
        got.append(outcome(lambda: store.commit(create(make_suggestion("mr-b"), key="kb")).seq))
        got.append(outcome(lambda: store.commit(create(make_suggestion("mr-c"), key="kb"))))  # key taken
        got.append(outcome(lambda: store.load("mr-c")))  # looked up by the refused create: still not there
        got.append(outcome(lambda: store.commit(stray)))
    got.append([s.id for s in store.query(Query())])
    return got


def test_loads_of_missing_rows_and_a_stray_event(stores: tuple[SqlStore, BatchingSqlStore]) -> None:
    ours = same_on_both(stores, missing_rows_and_events, gapless=False)
    assert [o[0] for o in (ours[0], ours[2], ours[3], ours[4])] == [
        "NotFound", "IdempotencyKeyReused", "NotFound", "ConcurrencyConflict"]


def test_rows_update_every_column_once_the_statements_for_changed_columns_run_out(
        stores: tuple[SqlStore, BatchingSqlStore], monkeypatch: pytest.MonkeyPatch) -> None:
    from jianyi_flow.storage.sql import batching as batching_module

    monkeypatch.setattr(batching_module, "UPDATES_MAX", 0)
    plain, batching = stores
    for store in (plain, batching):
        a = create(make_suggestion("um-a"))
        with store.batch():
            store.commit(a)
        with store.batch():
            store.commit(advance(a.suggestion, topic="t2"))
    assert_same_database(plain, batching)


def test_a_missing_log_counter_is_a_store_error(store: BatchingSqlStore) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM jianyi_counters")
    with pytest.raises(StoreError, match="event counter"), store.batch():
        store.commit(create(make_suggestion("lc-a")))
    assert store.query(Query()) == []


def test_an_interrupted_write_of_the_buffer_rolls_the_batch_back(
        store: BatchingSqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: BatchingSqlStore, conn: Any, pending: Any) -> None:
        raise KeyboardInterrupt

    store.commit(create(make_suggestion("ki-0")))
    monkeypatch.setattr(BatchingSqlStore, "_write_plans", interrupted)
    with pytest.raises(KeyboardInterrupt), store.batch():
        store.commit(create(make_suggestion("ki-a")))
    monkeypatch.undo()
    assert [s.id for s in store.query(Query())] == ["ki-0"]
    with store.batch():  # the next batch starts clean
        store.commit(create(make_suggestion("ki-b")))
    assert [s.id for s in store.query(Query())] == ["ki-0", "ki-b"]


def test_a_commit_interrupted_while_it_is_buffered_fails_the_batch(
        store: BatchingSqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt the caller swallows must not leave a half-updated buffer (a gap in ``seq``, a
    change written though its commit raised): the batch is rolled back."""
    from jianyi_flow.storage.sql import batching as batching_module

    class Interrupting(list[Any]):
        interrupted = False

        def append(self, item: Any) -> None:
            if not Interrupting.interrupted:  # once: what comes after must be refused by the store itself
                Interrupting.interrupted = True
                raise KeyboardInterrupt
            super().append(item)

    @attrs.define
    class InterruptedPending(batching_module._Pending):
        plans: list[Any] = attrs.field(factory=Interrupting)

    store.commit(create(make_suggestion("bi-0")))
    monkeypatch.setattr(batching_module, "_Pending", InterruptedPending)
    with pytest.raises(StoreError, match="interrupted while it was buffered"), store.batch():
        with pytest.raises(KeyboardInterrupt):
            store.commit(create(make_suggestion("bi-a")))
        with pytest.raises(StoreError, match="failed earlier"):  # nothing more is accepted
            store.commit(create(make_suggestion("bi-b")))
    monkeypatch.undo()
    assert [s.id for s in store.query(Query())] == ["bi-0"]
    with store.batch():  # the next batch starts clean, the log without a gap
        store.commit(create(make_suggestion("bi-c")))
    assert [e.seq for s in ("bi-0", "bi-c") for e in store.history(s)] == [1, 2]


@pytest.mark.parametrize("url", ["", "not a url at all", "://"])
def test_a_url_that_does_not_parse_is_refused_as_sqlstore_refuses_it(url: str) -> None:
    with pytest.raises(JianyiFlowError) as theirs:
        SqlStore(url)
    with pytest.raises(JianyiFlowError) as ours:
        BatchingSqlStore(url)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


@pytest.mark.parametrize(("failure", "raised", "says"), [
    (ValidationError("value", "the database refused a value"), ValidationError, "refused a value"),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), StoreError, "text cannot be stored"),
    (OverflowError("Python int too large to convert to SQLite INTEGER"), StoreError,  # any other: still ours
     r"writing the batch failed.*OverflowError"),
])
def test_an_error_while_the_buffer_is_written_fails_the_batch(
        store: BatchingSqlStore, monkeypatch: pytest.MonkeyPatch, failure: Exception, raised: type[Exception],
        says: str) -> None:
    def fails(self: BatchingSqlStore, conn: Any, pending: Any) -> None:
        raise failure

    store.commit(create(make_suggestion("ef-0")))
    monkeypatch.setattr(BatchingSqlStore, "_write_plans", fails)
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        store.commit(create(make_suggestion("ef-a")))
        with pytest.raises(raised, match=says):
            store.history("ef-0")
        with pytest.raises(StoreError, match="failed earlier"):
            store.load("ef-0")
    monkeypatch.undo()
    assert [s.id for s in store.query(Query())] == ["ef-0"]
