"""The rows a ``SqlStore.batch()`` keeps between its commands, and the partial updates they allow.

Inside a batch the store remembers each row it loaded or committed (as ``load`` would
return it, with its encoded ``data`` document).  A commit that starts from a remembered
row sets only the columns that changed and re-encodes only the fields that changed, and on
SQLite a ``load`` of a remembered row reads nothing.  None of this may ever show: every
test here compares what the batch did with what a plain commit or a fresh read gives.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from dbs import (  # noqa: F401 - fixtures
    BACKENDS,
    backend_store,
    mysql_migrated,
    mysql_url,
    postgres_migrated,
    postgres_url,
    sqlite_copy,
    sqlite_template,
    wipe,
)
from jianyi_flow import SHANGHAI, State
from jianyi_flow.domain.model import Evaluation, Outcome, ReportForm
from jianyi_flow.errors import ConcurrencyConflict, IdempotencyKeyReused, NotFound, ValidationError
from jianyi_flow.sql import SqlStore
from jianyi_flow.sql import store as sql_store
from jianyi_flow.storage.sql.schema import suggestions
from jianyi_flow.testing import advance, create, make_maximal, make_suggestion, message
from jianyi_flow.testing.contract import ODD_ZONES


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:  # noqa: F811
    yield from backend_store(request, sqlite_template, tmp_path)


def other_store(store: SqlStore) -> SqlStore:
    """A second store on the same database: another writer, with connections of its own."""
    return SqlStore(store.engine.url.render_as_string(hide_password=False))


def stored_data(store: SqlStore, suggestion_id: str) -> str:
    """The ``data`` column's text exactly as stored."""
    with store.engine.connect() as conn:
        text = conn.execute(
            sa.select(sa.cast(suggestions.c.data, sa.Text)).where(suggestions.c.id == suggestion_id)
        ).scalar_one()
    assert isinstance(text, str)
    return text


def cache_of(store: SqlStore) -> dict[str, Any]:
    cache = store._local.cache
    assert isinstance(cache, dict)
    return cache


# --- what a batch remembers is what a fresh read gives ------------------------------------
def test_a_row_loaded_in_the_batch_after_its_commit_is_the_row_read_afresh(store: SqlStore) -> None:
    """Committed values in odd zones, a list for a tuple...: the batch's row is the stored one."""
    first = create(make_suggestion("C-1", lead_unit="u1", due_at=dt.datetime(2024, 9, 1, tzinfo=SHANGHAI)))
    store.commit(first)
    inside: list[Any] = []
    with store.batch():
        row = store.load("C-1")
        for n, zone in enumerate(ODD_ZONES):
            change = advance(
                row,
                at=(row.updated_at + dt.timedelta(minutes=7)).astimezone(zone),
                due_at=(row.due_at or row.updated_at).astimezone(zone) + dt.timedelta(days=1, microseconds=n + 1),
                co_units=["u2", f"u{n + 3}"],  # a list: it is read back as a tuple
                research_notes=f"第 {n} 次",
            )
            store.commit(change)
            row = store.load("C-1")
            inside.append(row)
        assert row.co_units == ("u2", f"u{len(ODD_ZONES) + 2}")
    afresh = store.load("C-1")
    assert repr(inside[-1]) == repr(afresh)
    assert inside[-1] == afresh
    assert afresh.due_at is not None and afresh.due_at.tzinfo is SHANGHAI


def test_every_field_changed_at_once_is_written_and_remembered_as_stored(store: SqlStore) -> None:
    full = make_maximal("C-2")
    store.commit(create(make_suggestion("C-2")))
    with store.batch():
        row = store.load("C-2")
        fields = {f.name: getattr(full, f.name) for f in attrs.fields(type(full))
                  if f.name not in ("id", "version", "state", "updated_at", "event_hash")}
        store.commit(advance(row, state=State.ADOPTED, **fields))
        inside = store.load("C-2")
    afresh = store.load("C-2")
    assert repr(inside) == repr(afresh)
    for name, value in fields.items():
        assert getattr(afresh, name) == value, name


def test_a_partial_update_writes_the_same_document_as_a_whole_one(store: SqlStore, tmp_path: Path) -> None:
    """The batch's partial update and a plain commit of the same change leave the same ``data`` text."""
    base = make_suggestion("C-3", lead_unit="u1", due_at=dt.datetime(2024, 9, 1, tzinfo=SHANGHAI))
    store.commit(create(base))
    store.commit(create(attrs.evolve(base, id="C-4")))
    changes = {
        "outcome": Outcome.PARTIALLY_ADOPTED,
        "adopted_part": "第二条",
        "upward_reports": (ReportForm.EXCERPT,),
        "evaluation": Evaluation(8, 7, 9, "评审组"),
        "replied_at": dt.datetime(2024, 9, 3, 10, 0, 0, 5, tzinfo=dt.UTC),
        "due_at": None,
    }
    plain = store.load("C-4")
    with store.batch():
        row = store.load("C-3")
        store.commit(advance(row, **changes))
    store.commit(advance(plain, **changes))
    ours, theirs = stored_data(store, "C-3"), stored_data(store, "C-4")
    hash_of = re.compile(r'"event_hash":"[0-9a-f]+"')  # the hash covers the id: the one difference
    assert hash_of.sub("", ours) == hash_of.sub("", theirs)
    assert len(hash_of.findall(ours)) == 1


def test_a_change_whose_event_under_reports_still_writes_the_row_it_carries(store: SqlStore) -> None:
    store.commit(create(make_suggestion("C-5")))
    with store.batch():
        row = store.load("C-5")
        change = advance(row, recorded={}, research_notes="只写在行上", topic="health", extended=True)
        store.commit(change)
    assert store.load("C-5") == change.suggestion


def test_a_change_built_from_another_copy_of_the_row_is_written_whole(store: SqlStore) -> None:
    """Nothing is taken from the remembered row unless the new row holds the very same objects."""
    first = create(make_suggestion("C-6", lead_unit="u1"))
    store.commit(first)
    with store.batch():
        store.load("C-6")  # remembered...
        copy = attrs.evolve(first.suggestion, title="另一个标题", proposer=attrs.evolve(first.suggestion.proposer))
        change = advance(copy, research_notes="x")  # ...but the change starts from an equal copy
        store.commit(change)
    assert store.load("C-6") == change.suggestion


def test_a_value_that_cannot_be_remembered_is_read_back(store: SqlStore) -> None:
    """A ``str`` subclass comes back as ``str``: the batch drops its row and reads it again."""

    class Note(str):
        pass

    store.commit(create(make_suggestion("C-7")))
    with store.batch():
        row = store.load("C-7")
        store.commit(advance(row, area=Note("shapingba")))
        assert "C-7" not in cache_of(store)
        inside = store.load("C-7")
        assert type(inside.area) is str
    assert repr(store.load("C-7")) == repr(inside)


# --- failures and other writers -------------------------------------------------------------
def test_a_rolled_back_command_leaves_no_stale_row(store: SqlStore) -> None:
    """The command fails after its UPDATE ran: its savepoint is rolled back, and so is what the batch remembers."""
    store.commit(create(make_suggestion("C-8")))
    store.commit(create(make_suggestion("C-9"), key="taken"))
    with store.batch():
        row = store.load("C-8")
        with pytest.raises(IdempotencyKeyReused):
            store.commit(advance(row, research_notes="rolled back", key="taken"))
        again = store.load("C-8")
        assert again == row and again.research_notes is None
        done = advance(again, research_notes="kept")
        store.commit(done)
        assert store.load("C-8") == done.suggestion
    assert store.load("C-8") == done.suggestion
    assert [e.version for e in store.history("C-8")] == [1, 2]


def test_a_value_json_refuses_fails_the_command_and_leaves_no_trace(store: SqlStore) -> None:
    """On a server the event fails after the row's UPDATE ran (the savepoint goes back); on SQLite
    the write-behind encodes the event before it queues anything.  Either way nothing changed."""
    store.commit(create(make_suggestion("C-10")))
    with store.batch():
        row = store.load("C-10")
        change = advance(row, research_notes="x")
        bad = attrs.evolve(change, event=attrs.evolve(change.event, payload={"bad": {1, 2}}))
        with pytest.raises(ValidationError):
            store.commit(bad)
        held = cache_of(store).get("C-10")
        assert held is None or held.row == row  # a held row is still the stored one
        assert store.load("C-10") == row
        assert [e.version for e in store.history("C-10")] == [1]
        store.commit(change)  # and the good change still goes through
    assert store.load("C-10") == change.suggestion


def test_a_conflict_inside_the_batch_drops_the_row(store: SqlStore) -> None:
    store.commit(create(make_suggestion("C-11")))
    with store.batch():
        row = store.load("C-11")
        store.commit(advance(row, research_notes="first"))
        with pytest.raises(ConcurrencyConflict):
            store.commit(advance(row, research_notes="stale"))
        assert store.load("C-11").research_notes == "first"


def test_a_batch_that_fails_forgets_everything(store: SqlStore) -> None:
    store.commit(create(make_suggestion("C-12")))
    with pytest.raises(RuntimeError), store.batch():
        row = store.load("C-12")
        store.commit(advance(row, research_notes="lost"))
        raise RuntimeError("crash")
    assert store._local.cache is None
    assert store.load("C-12").version == 1
    with store.batch():
        assert store.load("C-12").version == 1
        assert store.load("C-12").research_notes is None


def test_rows_changed_by_another_writer_between_two_batches_are_read_afresh(store: SqlStore) -> None:
    """Whatever a batch kept (only SQLite keeps rows past a batch), another writer's commit wins."""
    store.commit(create(make_suggestion("C-13")))
    with store.batch():
        store.load("C-13")
    with other_store(store) as other:
        other.commit(advance(other.load("C-13"), research_notes="by the other writer"))
    with store.batch():
        assert store.load("C-13").research_notes == "by the other writer"


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres),
                                     pytest.param("mysql", marks=pytest.mark.mysql)])
def test_a_row_changed_by_another_connection_during_the_batch_is_a_conflict(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """On a server database the batch does not hold the table: another writer may commit meanwhile.

    The batch's remembered row is then stale; the update from it must still be refused
    (``WHERE version = :expected``), and the batch must then read the other writer's row.
    """
    url = str(request.getfixturevalue(f"{backend}_migrated"))
    with SqlStore(url) as store, SqlStore(url) as other:
        wipe(store.engine)
        store.commit(create(make_suggestion("C-14")))
        with store.batch():
            row = store.load("C-14")
            theirs = advance(other.load("C-14"), research_notes="the other writer")
            other.commit(theirs)
            # a load inside the batch reads the database on a server (only SQLite's lock makes a row safe to reuse)
            assert store.load("C-14") == theirs.suggestion
            with pytest.raises(ConcurrencyConflict):
                store.commit(advance(row, research_notes="stale"))
            assert "C-14" not in cache_of(store)
            fresh = store.load("C-14")
            assert fresh == theirs.suggestion
            mine = advance(fresh, research_notes="after the conflict")
            store.commit(mine)
        assert store.load("C-14") == mine.suggestion


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres),
                                     pytest.param("mysql", marks=pytest.mark.mysql)])
def test_a_stale_remembered_row_never_becomes_a_partial_update(backend: str, request: pytest.FixtureRequest) -> None:
    """Another writer commits after the batch loaded the row; the batch commits from that row: refused."""
    url = str(request.getfixturevalue(f"{backend}_migrated"))
    with SqlStore(url) as store, SqlStore(url) as other:
        wipe(store.engine)
        store.commit(create(make_suggestion("C-15")))
        with store.batch():
            row = store.load("C-15")
            other.commit(advance(other.load("C-15"), topic="health", research_notes="theirs"))
            with pytest.raises(ConcurrencyConflict):
                store.commit(advance(row, research_notes="mine"))
        final = store.load("C-15")
        assert final.topic == "health" and final.research_notes == "theirs" and final.version == 2


@pytest.fixture(params=["sqlite"])
def sqlite_store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:  # noqa: F811
    """Only SQLite keeps rows from one batch to the next (its write lock and data_version)."""
    yield from backend_store(request, sqlite_template, tmp_path)


def test_on_sqlite_the_next_batch_starts_from_the_rows_the_last_one_committed(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    store.commit(create(make_suggestion("K-1")))
    with store.batch():
        store.commit(advance(store.load("K-1"), research_notes="first batch"))
        kept = cache_of(store)["K-1"].row
    with store.batch():
        again = store.load("K-1")
        assert again is kept  # no read: the object the first batch committed
        store.commit(advance(again, research_notes="second batch"))
    with store.batch():
        assert store.load("K-1").research_notes == "second batch"
    assert store.load("K-1").research_notes == "second batch"  # outside a batch: read from the database


def test_on_sqlite_a_plain_commit_between_batches_is_seen(sqlite_store: SqlStore) -> None:
    """A commit outside a batch (same store, so maybe the same connection) changes total_changes."""
    store = sqlite_store
    store.commit(create(make_suggestion("K-2")))
    with store.batch():
        store.commit(advance(store.load("K-2"), research_notes="in the batch"))
    store.commit(advance(store.load("K-2"), research_notes="outside any batch"))
    with store.batch():
        row = store.load("K-2")
        assert row.research_notes == "outside any batch" and row.version == 3
        store.commit(advance(row, research_notes="next batch"))  # not a ConcurrencyConflict
    assert store.load("K-2").version == 4


def _write_through_the_engine(store: SqlStore, sid: str) -> None:
    """An integrator's own UPDATE through the store's engine (the same pooled connection)."""
    with store.engine.begin() as conn:
        conn.execute(suggestions.update().where(suggestions.c.id == sid).values(registration_number="R-by-hand"))


def _write_as_another_process(store: SqlStore, sid: str) -> None:
    """A write on a plain sqlite3 connection, as another process would make (it changes data_version)."""
    import sqlite3

    database = store.engine.url.database
    assert database
    raw = sqlite3.connect(database)
    try:
        raw.execute("UPDATE jianyi_suggestions SET registration_number = 'R-by-hand' WHERE id = ?", (sid,))
        raw.commit()
    finally:
        raw.close()


@pytest.mark.parametrize("write", [_write_through_the_engine, _write_as_another_process])
def test_on_sqlite_a_write_between_batches_is_seen(sqlite_store: SqlStore, write: Any) -> None:
    """A row the last batch kept is not handed out once something else wrote to the database."""
    store = sqlite_store
    store.commit(create(make_suggestion("K-3")))
    with store.batch():
        store.commit(advance(store.load("K-3"), research_notes="kept"))
    write(store, "K-3")
    with store.batch():
        assert store.load("K-3").registration_number == "R-by-hand"


def test_on_sqlite_a_failed_batch_keeps_nothing_for_the_next(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    store.commit(create(make_suggestion("K-5")))
    with store.batch():
        store.commit(advance(store.load("K-5"), research_notes="committed"))
    with pytest.raises(RuntimeError), store.batch():
        store.commit(advance(store.load("K-5"), research_notes="rolled back"))
        raise RuntimeError("crash")
    with store.batch():
        row = store.load("K-5")
        assert row.research_notes == "committed" and row.version == 2


def test_the_least_recently_used_rows_go_first(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_store, "_CACHE_ROWS", 8)
    for n in range(12):
        store.commit(create(make_suggestion(f"L-{n:02d}")))
    with store.batch():
        for n in range(8):
            store.load(f"L-{n:02d}")
        store.load("L-00")  # used again: now the most recent
        store.load("L-08")  # the ninth row: the two least recently used go (a quarter of 8)
        assert list(cache_of(store)) == ["L-03", "L-04", "L-05", "L-06", "L-07", "L-00", "L-08"]
        for n in range(9, 12):
            store.load(f"L-{n:02d}")
        assert len(cache_of(store)) <= 8
        assert list(cache_of(store))[-3:] == ["L-09", "L-10", "L-11"]


def test_cache_rows_bounds_the_cache_of_that_store(sqlite_template: Path, tmp_path: Path,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_store, "_CACHE_ROWS", 4)  # the default, for stores given no cache_rows
    url = sqlite_copy(sqlite_template, tmp_path)
    with SqlStore(url, cache_rows=4) as small, SqlStore(url, cache_rows=8) as larger, SqlStore(url) as default:
        for n in range(6):
            small.commit(create(make_suggestion(f"R-{n}")))
        with small.batch():
            for n in range(6):
                small.load(f"R-{n}")
            assert list(cache_of(small)) == ["R-2", "R-3", "R-4", "R-5"]  # one (a quarter of 4) went at a time
        with default.batch():
            for n in range(6):
                default.load(f"R-{n}")
            assert list(cache_of(default)) == ["R-2", "R-3", "R-4", "R-5"]
        with larger.batch():
            for n in range(6):
                larger.load(f"R-{n}")
            assert len(cache_of(larger)) == 6


def test_a_cache_grown_past_its_bound_by_unwritten_rows_shrinks_back(sqlite_template: Path,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """Rows not yet written are never evicted; once written, the next rows bring the cache back under its bound."""
    with SqlStore(sqlite_copy(sqlite_template, tmp_path), cache_rows=4) as store:
        if store.engine.dialect.name != "sqlite":
            pytest.skip("write-behind is SQLite's")
        for n in range(3):
            store.commit(create(make_suggestion(f"X-{n}")))  # committed before: not in any batch's cache
        with store.batch():
            for n in range(10):
                store.commit(create(make_suggestion(f"W-{n}")))
            assert len(cache_of(store)) == 10  # all held back, none written: none may go
        with store.batch():  # the rows the last batch left, now written
            assert len(cache_of(store)) == 10
            for n in range(3):
                store.load(f"X-{n}")
                assert len(cache_of(store)) <= 4
            assert list(cache_of(store))[-3:] == ["X-0", "X-1", "X-2"]


@pytest.mark.parametrize("bad", [0, 3, -1, 4.0, True, "100"])
def test_cache_rows_must_be_a_whole_number_of_at_least_four(sqlite_template: Path, tmp_path: Path,  # noqa: F811
                                                            bad: Any) -> None:
    url = sqlite_copy(sqlite_template, tmp_path)
    with pytest.raises(ValidationError, match="cache_rows"):
        SqlStore(url, cache_rows=bad)
    with pytest.raises(ValidationError, match="cache_rows"):
        SqlStore.open(url, cache_rows=bad)


def test_pieces_of_common_values_are_shared_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    """One object per (field, type, value) for None, flags, counts and enum values; ``True`` is not ``1``."""
    import enum

    monkeypatch.setattr(sql_store, "_COMMON_PIECES", {})
    piece = sql_store._piece
    assert piece("outcome", None) is piece("outcome", None) == '"outcome":null'
    assert piece("extended", True) is piece("extended", True) == '"extended":true'
    assert piece("reopen_count", 1) == '"reopen_count":1'
    assert piece("reopen_count", True) == '"reopen_count":true'  # same hash as 1, other piece
    assert piece("outcome", "adopted") is piece("outcome", "adopted") == '"outcome":"adopted"'
    text = "市民建议：" + "x" * 40
    assert piece("title", text) == '"title":' + sql_store.dumps(text)
    assert ("title", str, text) not in sql_store._COMMON_PIECES  # free text is never kept

    class Level(enum.IntEnum):
        ONE = 1

    assert piece("reopen_count", Level.ONE) == '"reopen_count":' + sql_store.dumps(Level.ONE)
    assert len(sql_store._COMMON_PIECES) == 5  # None, True, 1, True under another key, "adopted"


def test_shared_pieces_stop_at_their_bound_and_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_store, "_COMMON_PIECES", {})
    monkeypatch.setattr(sql_store, "_COMMON_PIECES_MAX", 2)
    for n in range(10):
        assert sql_store._piece("return_count", n) == f'"return_count":{n}'
    assert len(sql_store._COMMON_PIECES) == 2


def test_a_document_of_shared_pieces_is_the_document_encoded_whole(store: SqlStore) -> None:
    store.commit(create(make_maximal("P-1")))
    with store.batch():
        store.load("P-1")
        entry = cache_of(store)["P-1"]
        assert str(sql_store._document(entry)) == sql_store.dumps(entry.data)
        store.commit(advance(entry.row, outcome=None, extended=True, reopen_count=2))
        entry = cache_of(store)["P-1"]
        assert str(sql_store._document(entry)) == sql_store.dumps(entry.data)


def test_on_sqlite_a_remembered_row_is_not_read_again(store: SqlStore) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite's write lock makes a remembered row safe to hand out")
    store.commit(create(make_suggestion("C-16")))
    with store.batch():
        first = store.load("C-16")
        assert store.load("C-16") is first
        change = advance(first, research_notes="x", messages=(message("C-16", 2, "office"),))
        store.commit(change)
        assert store.load("C-16") is cache_of(store)["C-16"].row


def test_query_rows_in_a_batch_are_remembered_for_the_command_that_follows(store: SqlStore) -> None:
    store.commit(create(make_suggestion("C-17", due_at=dt.datetime(2024, 9, 1, tzinfo=SHANGHAI))))
    from jianyi_flow.storage.base import Query

    with store.batch():
        (_found,) = store.query(Query(due_before=dt.datetime(2024, 10, 1, tzinfo=SHANGHAI)))
        assert "C-17" in cache_of(store)
        change = advance(store.load("C-17"), due_at=None)
        store.commit(change)
    assert store.load("C-17") == change.suggestion


def test_commit_many_in_a_batch_forgets_the_rows_it_wrote(store: SqlStore) -> None:
    store.commit(create(make_suggestion("C-18")))
    with store.batch():
        row = store.load("C-18")
        nxt = advance(row, research_notes="many")
        store.commit_many([nxt])
        assert "C-18" not in cache_of(store)
        assert store.load("C-18") == nxt.suggestion


def test_a_missing_row_is_not_found_inside_a_batch(store: SqlStore) -> None:
    with store.batch(), pytest.raises(NotFound):
        store.load("C-none")


# --- the generated decoder ----------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: make_suggestion("D-1"), lambda: make_maximal("D-2")])
def test_the_generated_decoder_builds_what_the_constructor_builds(make: Any) -> None:
    s = make()
    plan = sql_store._Plan(create(s))
    row = plan.row
    data = dict(row["data"])
    columns = [s.id if name == "id" else row[name] for name in sql_store.COLUMN_FIELDS]
    for name in ("due_at", "received_at", "updated_at"):
        value = columns[sql_store.COLUMN_FIELDS.index(name)]
        columns[sql_store.COLUMN_FIELDS.index(name)] = None if value is None else value.astimezone(SHANGHAI)
    fast = sql_store._suggestion((*columns, data))
    slow = sql_store._suggestion_slowly((*columns, data))
    assert repr(fast) == repr(slow) and fast == slow
    del data["typical_case"], data["reopen_count"]  # an older document: defaults apply
    assert sql_store._suggestion((*columns, data)) == sql_store._suggestion_slowly((*columns, data))


# --- the one-step conversions equal what Core does ------------------------------------------
def test_sqlite_datetime_conversions_give_what_core_gives() -> None:
    import random
    from zoneinfo import ZoneInfo

    from sqlalchemy.dialects import sqlite

    from jianyi_flow.storage.sql.types import UtcDateTime, sqlite_utc_bind, sqlite_utc_result

    dialect = sqlite.dialect()
    impl = UtcDateTime().dialect_impl(dialect)
    core_bind = impl.bind_processor(dialect)
    core_result = impl.result_processor(dialect, None)
    assert core_bind is not None and core_result is not None
    rng = random.Random(7)
    zones = [dt.UTC, SHANGHAI, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kathmandu"), *ODD_ZONES]
    for _ in range(5000):
        value = dt.datetime(rng.randint(1, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                            rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, rng.randint(0, 999_999)]),
                            tzinfo=rng.choice(zones), fold=rng.randint(0, 1))
        text = core_bind(value)
        assert sqlite_utc_bind(value) == text
        assert sqlite_utc_bind(value) == text  # the second time from the last-bound pair
        ours, theirs = sqlite_utc_result(text), core_result(text)
        assert repr(ours) == repr(theirs) and ours == theirs
        assert sqlite_utc_result(text) is sqlite_utc_result(text)  # memoised
    for text in ("2024-08-01 02:02:00", "2024-08-01", "2024-08-01T02:02:00.5"):  # typed in a SQL console
        assert repr(sqlite_utc_result(text)) == repr(core_result(text))
    assert sqlite_utc_bind(None) is None and sqlite_utc_result(None) is None
    with pytest.raises(ValidationError):
        sqlite_utc_bind(dt.datetime(2024, 1, 1))  # naive


def test_the_bind_memo_tells_fold_and_zone_apart() -> None:
    """Equal keys must mean one instant: a DST fold's two wall times, and one instant in two zones."""
    from zoneinfo import ZoneInfo

    from sqlalchemy.dialects import sqlite

    from jianyi_flow.storage.sql.types import UtcDateTime, sqlite_utc_bind

    dialect = sqlite.dialect()
    core_bind = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert core_bind is not None
    york = ZoneInfo("America/New_York")
    other = dt.datetime(2024, 8, 1, tzinfo=dt.UTC)
    values = [
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=0),  # 05:30 UTC
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=1),  # 06:30 UTC: equal to the first in its zone
        dt.datetime(2024, 11, 3, 5, 30, tzinfo=dt.UTC),
        dt.datetime(2024, 11, 3, 14, 30, tzinfo=SHANGHAI),  # the first instant again, in another zone
    ]
    for _ in range(2):  # the second round comes from the memo (a new object each time, not the last one)
        for value in values:
            sqlite_utc_bind(other)
            fresh = value.replace()
            assert sqlite_utc_bind(fresh) == core_bind(fresh), fresh
    assert sqlite_utc_bind(values[0]) != sqlite_utc_bind(values[1])


def test_json_text_is_what_json_dumps_writes() -> None:
    import enum
    import json
    import random

    from jianyi_flow.storage.sql.types import dumps

    class Level(enum.IntEnum):
        HIGH = 3

    def reference(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    rng = random.Random(11)

    def sample(depth: int = 0) -> Any:
        pick = rng.randrange(12 if depth < 4 else 9)
        if pick == 9:
            keys = [rng.choice(["a", "状态", "1", "\u2028"]) + str(rng.randrange(9)) for _ in range(3)]
            return {key: sample(depth + 1) for key in keys}
        if pick >= 10:
            return [sample(depth + 1) for _ in range(rng.randrange(4))]
        return [None, True, False, rng.randint(-(10**20), 10**20), rng.random() * 1e10, "办理\"\\\n\x00中文",
                "", Level.HIGH, 1.0][pick]

    from jianyi_flow.storage.sql.store import _piece

    for _ in range(3000):
        value = sample()
        assert dumps(value) == reference(value)
        assert _piece("field", value) == '"field":' + reference(value)  # a data field's piece of the document
    for bad in (float("nan"), {"x": float("inf")}, {"s": {1, 2}}, {(1, 2): 3}, object()):
        with pytest.raises(ValidationError):
            dumps(bad)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(ValidationError, match="Circular"):
        dumps(cycle)
    assert dumps({}) == "{}" and dumps(None) == "null" and dumps({1: 2, None: 3}) == reference({1: 2, None: 3})


def test_units_key_text_is_what_json_dumps_writes() -> None:
    """``units_key`` keeps json.dumps' default separators; values it cannot write raise json's own errors."""
    import json
    import math

    from jianyi_flow.storage.sql.types import dumps_spaced

    class Code(str):
        pass

    odd = ["JW", "区卫生健康委", "a\"b\\c\n\x00", Code("XFB")]
    for value in ([], ["JW"], odd, [1, 2.5, math.nan, None, True, {"k": [1]}]):
        assert dumps_spaced(value) == json.dumps(value, ensure_ascii=False)
    assert sql_store._units_key(("JW", "WJW")) == '["JW", "WJW"]'
    cycle: list[Any] = []
    cycle.append(cycle)
    for bad in ([{1, 2}], [object()], cycle):
        with pytest.raises((TypeError, ValueError)) as ours:
            dumps_spaced(bad)
        with pytest.raises(type(ours.value)) as theirs:
            json.dumps(bad, ensure_ascii=False)
        assert str(ours.value) == str(theirs.value)


def test_a_query_in_a_batch_hands_back_the_rows_it_holds_at_the_same_version(store: SqlStore) -> None:
    """tick asks for the same past-due rows every day: a held row at its stored version is not decoded again."""
    from jianyi_flow.storage.base import Query

    due = dt.datetime(2024, 9, 1, tzinfo=SHANGHAI)
    store.commit(create(make_suggestion("Q-1", due_at=due)))
    store.commit(create(make_suggestion("Q-2", due_at=due + dt.timedelta(hours=1))))
    past_due = Query(due_before=dt.datetime(2024, 10, 1, tzinfo=SHANGHAI))
    with store.batch():
        first = store.query(past_due)
        assert [r.id for r in first] == ["Q-1", "Q-2"]
        again = store.query(past_due)
        assert all(a is b for a, b in zip(first, again, strict=True))
        change = advance(store.load("Q-2"), research_notes="moved on")
        store.commit(change)
        third = store.query(past_due)
        assert third[0] is first[0] and third[1] == change.suggestion
    assert store.query(past_due) == [first[0], change.suggestion]  # and outside the batch, read afresh


def test_a_query_in_a_batch_reads_a_row_another_writer_moved_on(store: SqlStore) -> None:
    """A held row at an older version than the stored one is never handed out (server databases)."""
    if store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's batch holds the write lock: no other writer can commit meanwhile")
    from jianyi_flow.storage.base import Query

    store.commit(create(make_suggestion("Q-3", due_at=dt.datetime(2024, 9, 1, tzinfo=SHANGHAI))))
    past_due = Query(due_before=dt.datetime(2024, 10, 1, tzinfo=SHANGHAI))
    with other_store(store) as other, store.batch():
        (held,) = store.query(past_due)
        theirs = advance(other.load("Q-3"), research_notes="the other writer")
        other.commit(theirs)
        (fresh,) = store.query(past_due)
        assert fresh == theirs.suggestion and fresh.version == held.version + 1


@pytest.mark.parametrize("in_batch", [False, True], ids=["plain", "in a batch"])
def test_a_query_over_an_undecodable_document_is_a_store_error(store: SqlStore, in_batch: bool) -> None:
    from contextlib import nullcontext

    from jianyi_flow.errors import StoreError
    from jianyi_flow.storage.base import Query

    store.commit(create(make_suggestion("Q-4")))
    with store.engine.begin() as conn:
        conn.execute(suggestions.update().where(suggestions.c.id == "Q-4").values(data=sa.literal("{not json")))
    with store.batch() if in_batch else nullcontext(), pytest.raises(StoreError, match="cannot be decoded"):
        store.query(Query())


# --- the compiled diff's inline fast paths decide exactly as the general functions ----------
def _reference_diff() -> Any:
    """The diff with no fast path: every changed field through ``_changed_column`` / ``_changed_field``."""
    lines = ["def diff(s, old, row, data, canon, touched):"]
    for name in sql_store._UPDATE_COLUMNS:
        lines.append(f"    if s.{name} is not old.{name}: _column({name!r}, s.{name}, old.{name}, row, canon)")
    for name in sql_store.DATA_FIELDS:
        lines.append(f"    if s.{name} is not old.{name}: _field({name!r}, s.{name}, row, data, canon); "
                     f"touched.append({name!r})")
    namespace: dict[str, Any] = {"_column": sql_store._changed_column, "_field": sql_store._changed_field}
    exec("\n".join(lines), namespace)
    return namespace["diff"]


def test_fields_stored_as_is_encode_and_decode_to_themselves() -> None:
    from jianyi_flow.domain.model import decode_value, encode_value

    full = make_maximal("as-is")
    for name in sql_store._AS_IS_FIELDS:
        value = getattr(full, name)
        assert value is not None, name
        assert encode_value(name, value) is value and decode_value(name, value) is value, name


def test_the_compiled_diff_matches_the_general_one() -> None:
    import random
    from zoneinfo import ZoneInfo

    from jianyi_flow.domain.model import SUGGESTION_FIELDS, Channel, Rating, encode_value

    class Text(str):
        pass

    reference = _reference_diff()
    rng = random.Random(5)
    base = make_maximal("d-1")
    york = ZoneInfo("America/New_York")
    t = dt.datetime(2024, 11, 3, 1, 30, tzinfo=york)

    def variants(name: str, value: Any) -> list[Any]:
        out: list[Any] = [None, value]
        if isinstance(value, dt.datetime):
            out += [value + dt.timedelta(seconds=1), value.astimezone(dt.UTC), value.astimezone(york),
                    value.replace(fold=1), value.replace(microsecond=value.microsecond),  # equal, not identical
                    t, t.replace(fold=1), t.astimezone(SHANGHAI)]
        elif isinstance(value, State):
            out += [State.REPLIED, value.value]
        elif isinstance(value, Channel):
            out += [Channel.LETTER, value.value]
        elif isinstance(value, Rating):
            out += [Rating.DISSATISFIED]
        elif isinstance(value, bool):
            out += [not value, int(value)]
        elif isinstance(value, int):
            out += [value + 1, True, str(value), int(str(value + 10**6)) - 10**6]  # the last: equal, not the same
        elif isinstance(value, str):
            out += [value + "改", Text(value), "".join(list(value))]  # the last: equal, not identical
        elif isinstance(value, tuple):
            out += [(*value, "u9"), list(value)]
        return out

    candidates = {name: variants(name, getattr(base, name)) for name in SUGGESTION_FIELDS}
    prevs = [sql_store._NOTHING, sql_store._Cached(base, {n: encode_value(n, getattr(base, n))
                                                          for n in sql_store.DATA_FIELDS}, base.units(), True)]
    for _ in range(3000):
        prev = rng.choice(prevs)
        changes = {name: rng.choice(candidates[name]) for name in rng.sample(list(candidates), rng.randint(1, 12))
                   if name not in ("id",)}
        new = attrs.evolve(base, **changes)
        results = []
        for diff in (sql_store._diff_fields, reference):
            row: dict[str, Any] = {}
            data = prev.data.copy()
            canon: dict[str, Any] = {}
            touched: list[str] = []
            try:
                diff(new, prev.row, row, data, canon, touched)
            except Exception as exc:  # a value of the wrong type: both must refuse it alike
                results.append(("error", type(exc).__name__, str(exc)))
                continue
            results.append((row, data, canon, touched))
        fast, general = results
        assert repr(fast) == repr(general), changes
