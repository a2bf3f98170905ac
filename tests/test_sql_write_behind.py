"""Write-behind inside an SQLite ``SqlStore.batch()``: checked at commit, written later, never seen to differ.

Inside an SQLite batch a commit is checked against the rows the batch holds and queued;
the rows, events and messages are written together before the batch's next read of the
database and when it ends (see ``SqlStore._defer``).  Every test here compares what such
a batch leaves with what committing the same changes one by one leaves, or checks that an
error still comes from the ``commit`` that caused it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa

from jianyi_flow import SHANGHAI, State
from jianyi_flow.errors import ConcurrencyConflict, DuplicateSuggestion, NotFound, StoreError, ValidationError
from jianyi_flow.sql import SqlStore
from jianyi_flow.sql import store as sql_store
from jianyi_flow.storage.base import Query
from jianyi_flow.storage.sql.schema import events, outbox, suggestion_units, suggestions
from jianyi_flow.testing import advance, create, make_suggestion

T0 = dt.datetime(2024, 9, 2, 9, tzinfo=SHANGHAI)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore.open(f"sqlite:///{tmp_path / 'wb.db'}") as s:
        yield s


def dump(store: SqlStore) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row of the four tables a commit writes, in a stable order (outbox in id order).

    The data documents are compared as text: write-behind builds them from per-field pieces."""
    with store.engine.connect() as conn:
        return {
            "suggestions": [tuple(r) for r in conn.execute(  # data as the stored text, byte for byte
                sa.select(*[c for c in suggestions.c if c.name != "data"],
                          sa.type_coerce(suggestions.c.data, sa.Text())).order_by(suggestions.c.id))],
            "units": [tuple(r) for r in conn.execute(sa.select(suggestion_units).order_by(*suggestion_units.c))],
            "events": [tuple(r) for r in conn.execute(sa.select(events).order_by(events.c.suggestion_id,
                                                                                 events.c.version))],
            "outbox": [tuple(r)[1:] for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))],
        }


def run_script(store: SqlStore) -> None:
    """Creates, edits twice, transfers with co-units, re-routes, closes: several rows touched several times."""
    a = create(make_suggestion("W-1", at=T0), notify=["office"])
    b = create(make_suggestion("W-2", at=T0, recommending_unit="u9"), notify=["office"])
    store.commit(a)
    store.commit(b)
    a2 = advance(a.suggestion, state=State.REGISTERED, registration_number="R-1", notify=["proposer"])
    store.commit(a2)
    b2 = advance(store.load("W-2"), state=State.REGISTERED, registration_number="R-2")
    store.commit(b2)
    a3 = advance(store.load("W-1"), state=State.TRANSFERRED, lead_unit="u1", co_units=("u2", "u3"),
                 due_at=T0 + dt.timedelta(days=60), notify=["unit:u1", "unit:u2"])
    store.commit(a3)
    b3 = advance(b2.suggestion, state=State.TRANSFERRED, lead_unit="u4", due_at=T0 + dt.timedelta(days=30))
    store.commit(b3)
    a4 = advance(a3.suggestion, state=State.REGISTERED, lead_unit=None, co_units=(), due_at=None,
                 notify=["office"])
    store.commit(a4)
    c = create(make_suggestion("W-3", at=T0 + dt.timedelta(hours=1)))
    store.commit(c)
    store.commit(advance(c.suggestion, research_notes="研究意见", notify=["proposer"]))


@pytest.mark.parametrize("paramstyle", ["qmark", "named"])
def test_a_batch_leaves_exactly_what_one_commit_at_a_time_leaves(tmp_path: Path, paramstyle: str) -> None:
    """Byte for byte.  With ``qmark`` (the driver's default) the flush binds parameter tuples straight
    from the rows it holds; with ``named`` the statements are not prepared for the driver and the
    same rows go through Core as dicts."""
    with SqlStore.open(f"sqlite:///{tmp_path / 'plain.db'}") as plain:
        run_script(plain)
        expected = dump(plain)
    with SqlStore.open(f"sqlite:///{tmp_path / 'batched.db'}", paramstyle=paramstyle) as batched:
        assert (batched._ins_row.sql is not None) == (paramstyle == "qmark")
        with batched.batch():
            run_script(batched)
            assert batched._local.pending is not None  # nothing was written on the way...
        assert dump(batched) == expected  # ...and the end wrote it all, messages in commit order
        assert batched.query(Query(unit="u4")) == [batched.load("W-2")]
        assert batched.query(Query(unit="u1")) == []  # W-1's links were rewritten when it was re-routed


@pytest.mark.parametrize("paramstyle", ["qmark", "named"])
def test_updates_of_rows_written_before_the_batch_leave_the_same(tmp_path: Path, paramstyle: str) -> None:
    """The flush's UPDATE path on both bindings: rows committed before the batch, then moved on inside it."""

    def script(store: SqlStore, in_batch: bool) -> None:
        made = [create(make_suggestion(f"U-{n}", at=T0, recommending_unit="u9" if n % 2 else None))
                for n in range(4)]
        for c in made:
            store.commit(c)
        with store.batch() if in_batch else contextlib.nullcontext():
            for n, c in enumerate(made):
                s = store.load(c.suggestion.id)
                store.commit(advance(s, state=State.REGISTERED, registration_number=f"R-{n}",
                                     due_at=T0 + dt.timedelta(days=n)))
            for n, c in enumerate(made[:2]):  # a unit change: the links are rewritten
                store.commit(advance(store.load(c.suggestion.id), state=State.TRANSFERRED, lead_unit=f"u{n}",
                                     co_units=("u7",), notify=[f"unit:u{n}"]))
            store.commit(advance(store.load("U-3"), research_notes="研究", due_at=None))

    with SqlStore.open(f"sqlite:///{tmp_path / 'plain.db'}") as plain:
        script(plain, in_batch=False)
        expected = dump(plain)
    with SqlStore.open(f"sqlite:///{tmp_path / 'batched.db'}", paramstyle=paramstyle) as batched:
        script(batched, in_batch=True)
        assert dump(batched) == expected


def test_every_read_of_the_batch_sees_its_writes(store: SqlStore) -> None:
    with store.batch():
        run_script(store)
        pending = store._local.pending
        assert pending is not None and pending.events  # held back so far
        assert [e.version for e in store.history("W-1")] == [1, 2, 3, 4]  # a read: written first
        assert not store._local.pending.events
        assert [s.id for s in store.query(Query(unit="u4"))] == ["W-2"]
        store.commit(advance(store.load("W-3"), research_notes="再次研究"))
        assert store.query(Query(states={State.RECEIVED}))[-1].research_notes == "再次研究"


def test_errors_still_come_from_the_commit_that_caused_them(store: SqlStore) -> None:
    store.commit(create(make_suggestion("E-1", at=T0)))
    with store.batch():
        made = create(make_suggestion("E-2", at=T0))
        store.commit(made)
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("E-1", at=T0)))  # in the database, not yet read by the batch
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("E-2", at=T0)))  # created by this batch, not yet written
        with pytest.raises(NotFound):
            store.commit(advance(make_suggestion("E-404", at=T0), research_notes="x"))
        first = advance(made.suggestion, research_notes="first")
        store.commit(first)
        with pytest.raises(ConcurrencyConflict):
            store.commit(advance(made.suggestion, research_notes="stale"))
        good = advance(first.suggestion, research_notes="never")
        bad = attrs.evolve(good, event=attrs.evolve(good.event, payload={"bad": {1, 2}}))
        with pytest.raises(ValidationError):
            store.commit(bad)
        store.commit(advance(first.suggestion, research_notes="second"))
    assert [e.version for e in store.history("E-2")] == [1, 2, 3]
    assert store.load("E-2").research_notes == "second"
    assert [e.version for e in store.history("E-1")] == [1]


def test_what_only_the_database_can_refuse_fails_the_whole_batch(store: SqlStore) -> None:
    """An event the history already holds (a damaged database) is found when the batch writes: all of it goes."""
    made = create(make_suggestion("D-1", at=T0))
    store.commit(made)
    store.commit(create(make_suggestion("D-2", at=T0)))
    nxt = advance(made.suggestion, research_notes="x")
    with store.engine.begin() as conn:  # plant the event the next command will write
        row = {c.name: None for c in events.columns}
        row.update(suggestion_id="D-1", version=2, kind="edit", to_state="received", actor_id="x",
                   actor_role="collection_office", at=T0, changes={}, payload={}, prev_hash="", hash="")
        conn.execute(events.insert(), [row])
    with pytest.raises(StoreError, match="event already exists"), store.batch():
        store.commit(advance(store.load("D-2"), research_notes="lost with the batch"))
        store.commit(nxt)
    assert store.load("D-2").version == 1 and store.load("D-1").version == 1


def test_the_batch_writes_on_the_way_when_it_holds_many(store: SqlStore, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(sql_store, "_WRITE_BEHIND", 3)
    with store.batch():
        run_script(store)
        held = store._local.pending
        assert held is not None and len(held.events) < 3
    with SqlStore.open(f"sqlite:///{tmp_path / 'plain.db'}") as plain:
        run_script(plain)
        assert dump(store) == dump(plain)


def test_a_row_held_back_is_never_evicted(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_store, "_CACHE_ROWS", 4)
    with store.batch():
        for n in range(10):
            store.commit(create(make_suggestion(f"V-{n}", at=T0)))
        assert len(store._local.cache) == 10  # all ten are only in the cache until written
    assert [s.id for s in store.query(Query())] == [f"V-{n}" for n in range(10)]


def test_a_key_or_a_value_read_back_otherwise_is_written_at_once(store: SqlStore) -> None:
    made = create(make_suggestion("I-1", at=T0))
    with store.batch():
        store.commit(made)
        keyed = advance(made.suggestion, research_notes="once", key="k-1")
        store.commit(keyed)
        assert store._local.pending is not None and not store._local.pending.events  # written with the key
        assert store.idempotency("k-1") is not None


# --- found in review: each of these failed before the fix --------------------------------------
def test_a_write_that_failed_and_was_caught_never_commits_half_a_batch(store: SqlStore) -> None:
    """Rows without their events: the write failing halfway poisons the batch, even if its error is swallowed."""
    d1 = create(make_suggestion("P-1", at=T0))
    d2 = create(make_suggestion("P-2", at=T0))
    store.commit(d1)
    store.commit(d2)
    with store.engine.begin() as conn:  # a damaged history: P-1 v2 is there already
        row = {c.name: None for c in events.columns}
        row.update(suggestion_id="P-1", version=2, kind="edit", to_state="received", actor_id="x",
                   actor_role="collection_office", at=T0, changes={}, payload={}, prev_hash="", hash="")
        conn.execute(events.insert(), [row])
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        store.commit(advance(d2.suggestion, research_notes="y"))  # queued; fine on its own
        store.commit(advance(d1.suggestion, research_notes="x"))  # queued; its event clashes
        with pytest.raises(StoreError, match="event already exists"):
            store.history("P-2")  # the write happens here (Flow.verify_history catches such errors)
        with pytest.raises(StoreError, match="rolled back"):
            store.load("P-2")  # every later call in the batch says so
    assert store.load("P-2").version == store.history("P-2")[-1].version == 1


def test_the_next_batch_never_starts_from_rows_a_failed_batch_held(store: SqlStore) -> None:
    from jianyi_flow.errors import NotFound

    with pytest.raises(StoreError), store.batch():
        store.commit(create(make_suggestion("G-1", at=T0)))
        store._local.pending.events[-1]["hash"] = None  # what only the database refuses, once written
        try:
            store.query(Query())
        except StoreError:
            pass
    with pytest.raises(NotFound):
        store.load("G-1")
    with store.batch(), pytest.raises(NotFound):
        store.load("G-1")


def test_a_value_only_the_database_refuses_fails_its_own_command(store: SqlStore) -> None:
    """A required column left empty: refused from its own commit, the rest of the batch stays."""
    with pytest.raises(StoreError):
        store.commit(create(make_suggestion("N-1", at=T0, area=None)))  # outside a batch
    with store.batch():
        store.commit(create(make_suggestion("G-2", at=T0)))
        with pytest.raises(StoreError):
            store.commit(create(make_suggestion("N-2", at=T0, area=None)))
        no_recipient = create(make_suggestion("N-3", at=T0), notify=["office"])
        no_recipient = attrs.evolve(no_recipient, messages=(attrs.evolve(no_recipient.messages[0], recipient=None),))
        with pytest.raises(StoreError):
            store.commit(no_recipient)  # an outbox column
        listed = create(make_suggestion("N-4", at=T0))
        listed = attrs.evolve(listed, event=attrs.evolve(listed.event, reason=["not", "text"]))
        with pytest.raises(StoreError):
            store.commit(listed)  # a type the driver cannot bind
        store.commit(create(make_suggestion("G-3", at=T0)))
    assert [store.load(i).version for i in ("G-2", "G-3")] == [1, 1]
    assert [s.id for s in store.query(Query())] == ["G-2", "G-3"]


def test_a_commit_after_close_inside_a_batch_is_refused(tmp_path: Path) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'closed.db'}")
    with pytest.raises(StoreError, match="end"), store.batch():
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.commit(create(make_suggestion("Z-1", at=T0)))
        raise StoreError("end")


@pytest.mark.parametrize("in_batch", [False, True], ids=["plain", "in a batch"])
def test_a_malformed_stale_change_is_a_validation_error_in_and_out_of_a_batch(store: SqlStore, in_batch: bool) -> None:
    """Validation comes before the version check, in a batch as outside (tick skips conflicts silently)."""
    from contextlib import nullcontext

    made = create(make_suggestion("M-1", at=T0))
    store.commit(made)
    stale = advance(made.suggestion, research_notes="x")
    store.commit(stale)
    bad = attrs.evolve(stale, event=attrs.evolve(stale.event, at=T0.replace(tzinfo=None)))
    with store.batch() if in_batch else nullcontext(), pytest.raises(ValidationError):
        store.commit(bad)
