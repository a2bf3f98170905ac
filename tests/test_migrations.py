"""The shipped Alembic migrations: they build exactly ``metadata``, carry data over, and the store checks them.

Each test gets an empty database (a SQLite file, or a schema/database of its own on the
PostgreSQL and MariaDB test servers, see tests/dbs.py).  Rows "as an older store wrote
them" are inserted with plain SQL in that revision's shape.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dbs import empty_mysql_url, empty_postgres_url
from jianyi_flow.domain.clock import SHANGHAI
from jianyi_flow.domain.codec import SUGGESTION_FIELDS, encode_value
from jianyi_flow.domain.model import Actor, ReportForm, Role
from jianyi_flow.errors import SchemaMismatch, StoreError
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import Change, Order, Query
from jianyi_flow.storage.sql import migrate as db
from jianyi_flow.storage.sql.engine import create_engine
from jianyi_flow.storage.sql.schema import REVISION, metadata
from jianyi_flow.testing import OFFICE_ACTOR, T0, advance, create, make_suggestion, message

__all__ = ["empty_mysql_url", "empty_postgres_url"]  # fixtures

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return str(request.getfixturevalue(f"empty_{request.param}_url"))


@pytest.fixture
def engine(empty_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(empty_url)
    yield engine
    engine.dispose()


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return db.is_jianyi_flow_table(name) if type_ == "table" else True


def differences(engine: sa.Engine, target: sa.MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``target``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "version_table": db.VERSION_TABLE}
        )
        return list(compare_metadata(context, target))


def collations(engine: sa.Engine) -> dict[str, str | None]:
    """``table.column`` → collation of every text column of ours, as the database reports it."""
    found: dict[str, str | None] = {}
    inspector = sa.inspect(engine)
    for table in metadata.tables:
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.String):
                found[f"{table}.{column['name']}"] = getattr(column["type"], "collation", None)
    return found


def key_columns() -> set[str]:
    return {f"{t.name}.{c.name}" for t in metadata.sorted_tables for c in t.columns if type(c.type).__name__ == "Key"}


def test_the_store_writes_the_head_revision() -> None:
    assert db.head() == REVISION == "0005"


def test_migrations_build_exactly_the_metadata(engine: sa.Engine) -> None:
    assert db.current(engine) is None
    db.upgrade(engine)
    assert db.current(engine) == REVISION
    assert differences(engine, metadata) == []
    _check_key_collations(engine)


def _check_key_collations(engine: sa.Engine) -> None:
    """Autogenerate does not compare collations: every key column is checked here."""
    found = collations(engine)
    expected = {"postgresql": "C", "mysql": "utf8mb4_nopad_bin", "sqlite": None}[engine.dialect.name]
    assert {name: found[name] for name in key_columns()} == dict.fromkeys(key_columns(), expected)


def test_the_comparison_would_notice_a_difference(engine: sa.Engine) -> None:
    """The check above can fail: a column, an index or a type that differs is reported."""
    db.upgrade(engine)
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    suggestions = changed.tables["jianyi_suggestions"]
    suggestions.append_column(sa.Column("extra", sa.Integer, nullable=True))
    suggestions.indexes.discard(next(i for i in suggestions.indexes if i.name == "ix_jianyi_suggestions_area"))
    changed.tables["jianyi_events"].c.kind.type = sa.String(10)
    found = {d[0] if isinstance(d, tuple) else d[0][0] for d in differences(engine, changed)}
    assert {"add_column", "remove_index", "modify_type"} <= found


def test_upgrade_is_idempotent_and_downgrade_removes_only_jianyi_flow(engine: sa.Engine) -> None:
    db.upgrade(engine)
    db.upgrade(engine)
    assert db.current(engine) == REVISION
    db.downgrade(engine, "base")
    assert db.current(engine) is None
    left = set(sa.inspect(engine).get_table_names())
    assert not any(db.is_jianyi_flow_table(name) and name != db.VERSION_TABLE for name in left), left


# --- rows as older stores wrote them ---------------------------------------------------------------------
COLUMNS_0002 = ("id", "campaign", "state", "version", "area", "topic", "lead_unit", "recommending_unit",
                "registration_number", "due_at", "received_at", "updated_at")
"""The suggestion fields the store kept in columns before 0003 (the others were in ``data``)."""

def _utc_type() -> Any:
    from jianyi_flow.storage.sql.types import UtcDateTime

    return UtcDateTime()


def _old_tables(with_flag_column: bool) -> dict[str, sa.Table]:
    m = sa.MetaData()
    columns = [sa.Column("version", sa.Integer()), sa.Column("units_key", sa.Text()), sa.Column("data", sa.Text())]
    for name in COLUMNS_0002:
        if name == "version":
            continue
        columns.append(sa.Column(name, _utc_type() if name.endswith("_at") else sa.String()))
    if with_flag_column:
        columns.append(sa.Column("overdue_flagged_at", _utc_type()))
    utc = _utc_type
    return {
        "suggestions": sa.Table("jianyi_suggestions", m, *columns),
        "units": sa.Table("jianyi_suggestion_units", m, sa.Column("suggestion_id", sa.String()),
                          sa.Column("unit", sa.String())),
        "events": sa.Table("jianyi_events", m, *[sa.Column(n, sa.String()) for n in (
            "suggestion_id", "kind", "from_state", "to_state", "actor_id", "actor_role", "actor_unit", "actor_name",
            "reason", "changes", "payload", "prev_hash", "hash")], sa.Column("version", sa.Integer()),
            sa.Column("at", utc())),
        "outbox": sa.Table("jianyi_outbox", m, *[sa.Column(n, sa.String()) for n in (
            "topic", "suggestion_id", "recipient", "payload")], sa.Column("version", sa.Integer()),
            sa.Column("created_at", utc()), sa.Column("attempts", sa.Integer())),
        "keys": sa.Table("jianyi_idempotency", m, sa.Column("key", sa.String()),
                         sa.Column("suggestion_id", sa.String()), sa.Column("version", sa.Integer()),
                         sa.Column("command", sa.String())),
    }


def write_old(engine: sa.Engine, change: Change, *, revision: str = "0003", key: str | None = None) -> None:
    """Write ``change`` as the store of ``revision`` (0002 or 0003) did: old columns, units, no seq, keys by key."""
    s, e = change.suggestion, change.event
    flag_column = revision == "0003"
    old = [*COLUMNS_0002, *(("overdue_flagged_at",) if flag_column else ())]
    t = _old_tables(flag_column)
    units = list(s.units())
    row = {name: getattr(s, name) for name in old}
    row["state"] = s.state.value
    row["units_key"] = json.dumps(units, ensure_ascii=False)
    row["data"] = json.dumps({name: encode_value(name, getattr(s, name)) for name in SUGGESTION_FIELDS
                              if name not in old}, ensure_ascii=False, separators=(",", ":"))
    with engine.begin() as conn:
        if change.expected_version == 0:
            conn.execute(t["suggestions"].insert().values(row))
        else:
            conn.execute(t["suggestions"].update().where(t["suggestions"].c.id == s.id).values(row))
            conn.execute(t["units"].delete().where(t["units"].c.suggestion_id == s.id))
        for unit in units:
            conn.execute(t["units"].insert().values(suggestion_id=s.id, unit=unit))
        conn.execute(t["events"].insert().values(
            suggestion_id=e.suggestion_id, version=e.version, kind=e.kind,
            from_state=None if e.from_state is None else e.from_state.value, to_state=e.to_state.value,
            actor_id=e.actor.id, actor_role=e.actor.role.value, actor_unit=e.actor.unit, actor_name=e.actor.name,
            at=e.at, reason=e.reason, changes=json.dumps(dict(e.changes), ensure_ascii=False),
            payload=json.dumps(dict(e.payload), ensure_ascii=False), prev_hash=e.prev_hash, hash=e.hash))
        for m in change.messages:
            conn.execute(t["outbox"].insert().values(
                topic=m.topic, suggestion_id=m.suggestion_id, version=m.version, recipient=m.recipient,
                payload=json.dumps(dict(m.payload), ensure_ascii=False), created_at=m.created_at, attempts=0))
        if key is not None:
            conn.execute(t["keys"].insert().values(key=key, suggestion_id=s.id, version=s.version, command=e.kind))


# --- 0002 and 0003 ---------------------------------------------------------------------------------------
def test_0002_drops_the_campaign_and_lead_unit_indexes_and_its_downgrade_restores_them(engine: sa.Engine) -> None:
    def indexes() -> set[str]:
        return {i["name"] for i in sa.inspect(engine).get_indexes("jianyi_suggestions") if i["name"]}

    db.upgrade(engine, "0001")
    assert {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} <= indexes()
    change = create(make_suggestion("M-1", lead_unit="u1"))
    write_old(engine, change, revision="0002")
    db.upgrade(engine, "0002")
    assert not {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} & indexes()
    db.downgrade(engine, "0001")
    assert {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} <= indexes()
    db.upgrade(engine)
    with SqlStore(engine) as store:
        assert store.load("M-1") == change.suggestion
    assert differences(engine, metadata) == []


def test_0003_moves_overdue_flagged_at_to_a_column_and_its_downgrade_moves_it_back(engine: sa.Engine) -> None:
    due = dt.datetime(2024, 9, 5, 23, 59, 59, tzinfo=SHANGHAI)
    changes = [
        create(make_suggestion("F-1", due_at=due, overdue_flagged_at=due)),  # flagged for its due time
        create(make_suggestion("F-2", due_at=due + dt.timedelta(days=9), overdue_flagged_at=due)),  # then moved
        create(make_suggestion("F-3", due_at=due)),  # never flagged
        *[create(make_suggestion(f"P-{n:04d}", due_at=due)) for n in range(1100)],  # more than one page
    ]
    db.upgrade(engine, "0002")
    for change in changes:
        write_old(engine, change, revision="0002")
    db.upgrade(engine, "0003")
    with engine.connect() as conn:
        documents = [json.loads(t) for t in conn.execute(sa.text("SELECT data FROM jianyi_suggestions")).scalars()]
    assert len(documents) == len(changes) and not any("overdue_flagged_at" in d for d in documents)
    db.downgrade(engine, "0002")
    assert "overdue_flagged_at" not in {c["name"] for c in sa.inspect(engine).get_columns("jianyi_suggestions")}
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT id, data FROM jianyi_suggestions WHERE id LIKE 'F-%'")).all())
    utc = due.astimezone(dt.UTC).isoformat()
    assert {sid: json.loads(text)["overdue_flagged_at"] for sid, text in found.items()} == {
        "F-1": utc, "F-2": utc, "F-3": None}
    db.upgrade(engine)
    with SqlStore(engine) as store:
        assert [store.load(c.suggestion.id) for c in changes[:3]] == [c.suggestion for c in changes[:3]]
        unflagged = store.query(Query(due_before=due + dt.timedelta(days=30), overdue_unflagged=True))
        assert "F-1" not in {r.id for r in unflagged} and len(unflagged) == len(changes) - 1


def test_0003_and_0004_cannot_be_printed_as_sql() -> None:
    from alembic import command

    command.upgrade(db.alembic_config(url="sqlite:///unused.db"), "0001:0002", sql=True)  # the others can
    for revisions in ("0002:0003", "0003:0004"):
        with pytest.raises(StoreError, match=revisions[-4:]):
            command.upgrade(db.alembic_config(url="sqlite:///unused.db"), revisions, sql=True)


# --- 0004 ------------------------------------------------------------------------------------------------
WARD = Actor(id="clerk-7", role=Role.HANDLING_UNIT, unit="u_traffic", name="交通局")


def _history_at_0003() -> list[tuple[Change, str | None]]:
    """Three suggestions, their events interleaved in time, some under idempotency keys, some messages."""
    t = T0
    a1 = create(make_suggestion("A", at=t, recommending_unit="town-1", received_by="information_officer:io-1",
                                due_provisional=True,
                                proposer=attrs.evolve(make_suggestion("x").proposer, account="wx_a")),
                messages=[message("A", 1, "office", topic="receive", at=t)])  # 0003 events had no notices
    b1 = create(make_suggestion("B", at=t + dt.timedelta(minutes=1)))
    a2 = advance(a1.suggestion, at=t + dt.timedelta(minutes=2), kind="transfer", lead_unit="u_traffic",
                 co_units=("u_env", "u_police"), due_at=t + dt.timedelta(days=15), registration_number="R-0001",
                 messages=[message("A", 2, "unit:u_traffic", topic="transfer", at=t + dt.timedelta(minutes=2))])
    c1 = create(make_suggestion("C", at=t + dt.timedelta(minutes=2), co_units=("u_env",)))  # same time as A v2
    b2 = advance(b1.suggestion, at=t + dt.timedelta(minutes=3), upward_reports=(ReportForm.EXCERPT,),
                 forwarded_to_city_at=t + dt.timedelta(minutes=3))
    a3 = advance(a2.suggestion, at=t + dt.timedelta(minutes=4), actor=WARD, research_notes="调研")
    return [(a1, "key-a1"), (b1, None), (a2, "key-a2"), (c1, None), (b2, None), (a3, "key-a3")]


def test_0004_carries_a_0003_database_over(engine: sa.Engine) -> None:
    """Rows, events, keys and messages written by the 0003 store read back the same; the log is numbered."""
    from jianyi_flow import FakeClock, Flow

    history = _history_at_0003()
    db.upgrade(engine, "0003")
    for change, key in history:
        write_old(engine, change, key=key)
    db.upgrade(engine)
    assert db.current(engine) == REVISION
    assert differences(engine, metadata) == []
    _check_key_collations(engine)
    latest = {change.suggestion.id: change.suggestion for change, _ in history}
    with SqlStore(engine) as store:
        for sid, row in latest.items():
            assert store.load(sid) == row
        # events numbered by (at, suggestion id, version): A1 B1 A2 C1 B2 A3
        assert [(e.suggestion_id, e.version, e.seq, e.notices) for h in store.scan_histories(None, 10)
                for e in h.events] == [("A", 1, 1, ()), ("A", 2, 3, ()), ("A", 3, 6, ()), ("B", 1, 2, ()),
                                       ("B", 2, 5, ()), ("C", 1, 4, ())]
        assert store.last_seq() == 6
        # the scope of a key is the actor that used it
        a1 = store.idempotency(OFFICE_ACTOR.key, "key-a1")
        assert a1 is not None and (a1.suggestion_id, a1.version, a1.command) == ("A", 1, "receive")
        a3 = store.idempotency(WARD.key, "key-a3")
        assert a3 is not None and (a3.suggestion_id, a3.version, a3.command, a3.fingerprint) == ("A", 3, "edit", "")
        assert store.idempotency(OFFICE_ACTOR.key, "key-a2") is not None
        assert store.idempotency(OFFICE_ACTOR.key, "key-a3") is None
        # the new columns and unit rows answer queries
        assert [s.id for s in store.query(Query(unit="u_env"))] == ["A", "C"]
        assert [s.id for s in store.query(Query(co_unit="u_police"))] == ["A"]
        assert [s.id for s in store.query(Query(lead_unit="u_traffic", order=Order.DUE))] == ["A"]
        assert [s.id for s in store.query(Query(recommending_unit="town-1", order=Order.REGISTRATION))] == ["A"]
        assert [s.id for s in store.query(Query(proposer_account="wx_a"))] == ["A"]
        assert [s.id for s in store.query(Query(received_by="information_officer:io-1"))] == ["A"]
        assert [s.id for s in store.query(Query(provisional=True))] == ["A"]
        assert [s.id for s in store.query(Query(reported_upward=True))] == ["B"]
        assert [s.id for s in store.query(Query(forwarded_to_city=True))] == ["B"]
        [a] = [h for h in store.scan_histories(None, 1)]
        assert [m.recipient for m in a.messages] == ["office", "unit:u_traffic"]
        assert Flow(store, FakeClock(T0)).verify_all() == []
        # and the store writes on from there: the unit rows' copies follow, the log goes on at 7
        moved = advance(latest["A"], due_at=T0 + dt.timedelta(days=20))
        assert store.commit(moved).seq == 7
        assert [s.id for s in store.query(Query(unit="u_police", order=Order.DUE,
                                                due_after=T0 + dt.timedelta(days=19)))] == ["A"]
    db.downgrade(engine, "0003")
    with engine.connect() as conn:
        units = set(conn.execute(sa.text("SELECT suggestion_id, unit FROM jianyi_suggestion_units")).all())
        keys = sorted(conn.execute(sa.select(sa.column("key")).select_from(sa.table("jianyi_idempotency"))).scalars())
    assert units == {("A", "town-1"), ("A", "u_traffic"), ("A", "u_env"), ("A", "u_police"), ("C", "u_env")}
    assert keys == ["key-a1", "key-a2", "key-a3"]
    db.upgrade(engine)
    with SqlStore(engine) as store:
        assert store.load("A") == moved.suggestion and store.last_seq() == 7


def test_0004_stops_at_a_row_it_cannot_read_and_resumes_once_it_is_fixed(engine: sa.Engine) -> None:
    db.upgrade(engine, "0003")
    for n in range(3):
        write_old(engine, create(make_suggestion(f"R-{n}", lead_unit="u1")))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_suggestions SET data = '[1]' WHERE id = 'R-1'"))
    with pytest.raises(StoreError, match=r"'R-1'.*JSON object"):
        db.upgrade(engine)
    assert db.current(engine) == "0003"
    good = create(make_suggestion("R-1", lead_unit="u1")).suggestion
    data = {name: encode_value(name, getattr(good, name)) for name in SUGGESTION_FIELDS
            if name not in (*COLUMNS_0002, "overdue_flagged_at")}
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_suggestions SET data = :d WHERE id = 'R-1'"),
                     {"d": json.dumps(data, ensure_ascii=False)})
    db.upgrade(engine)
    assert db.current(engine) == REVISION and differences(engine, metadata) == []
    with SqlStore(engine) as store:
        assert [s.id for s in store.query(Query(lead_unit="u1"))] == ["R-0", "R-1", "R-2"]


def test_0004_downgrade_refuses_a_key_two_actors_used(engine: sa.Engine) -> None:
    db.upgrade(engine)
    with SqlStore(engine) as store:
        store.commit(create(make_suggestion("D-1"), key="k", scope="office:a"))
        store.commit(create(make_suggestion("D-2"), key="k", scope="office:b"))
    with pytest.raises(StoreError, match="several actors"):
        db.downgrade(engine, "0003")
    assert db.current(engine) == REVISION


@pytest.mark.mysql
def test_0004_makes_mariadb_keys_no_pad(empty_mysql_url: str) -> None:
    """At 0003 ``"k"`` and ``"k "`` were one key on MariaDB; from 0004 on they are two."""
    engine = create_engine(empty_mysql_url)
    try:
        db.upgrade(engine, "0003")
        write_old(engine, create(make_suggestion("k")), key="k")
        with pytest.raises(sa.exc.IntegrityError):
            write_old(engine, create(make_suggestion("k ")), key="k ")
        db.upgrade(engine)
        with SqlStore(engine) as store:
            store.commit(create(make_suggestion("k "), key="k ", scope=OFFICE_ACTOR.key))
            assert {store.load("k").id, store.load("k ").id} == {"k", "k "}
            assert [r.suggestion_id for r in (store.idempotency(OFFICE_ACTOR.key, "k"),
                                              store.idempotency(OFFICE_ACTOR.key, "k ")) if r] == ["k", "k "]
    finally:
        engine.dispose()


# --- the store checks the revision -----------------------------------------------------------------------
def test_a_store_on_a_database_without_tables_says_to_upgrade(empty_url: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        SqlStore(empty_url)
    assert caught.value.found is None and caught.value.expected == REVISION
    assert "jianyi-flow db upgrade" in str(caught.value) and "SqlStore.open" in caught.value.__notes__[0]
    assert db.current(empty_url) is None  # nothing was created behind the caller's back
    with SqlStore.open(empty_url) as store:
        assert store.query(Query()) == []
    assert db.current(empty_url) == REVISION


# --- 0005 ------------------------------------------------------------------------------------------------


def test_0005_adds_the_vault_and_its_downgrade_keeps_the_only_copy_of_the_data(engine: sa.Engine) -> None:
    from helpers import OFFICE, make_draft, make_flow

    db.upgrade(engine, "0004")
    assert "jianyi_personal_data" not in sa.inspect(engine).get_table_names()
    db.upgrade(engine)
    with SqlStore(engine) as store:
        s = make_flow(store, vault=True).receive(make_draft(), OFFICE)
    with pytest.raises(StoreError, match="only copy"):
        db.downgrade(engine, "0004")
    assert db.current(engine) == REVISION
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jianyi_personal_data WHERE suggestion_id = :sid"), {"sid": s.id})
    db.downgrade(engine, "0004")
    assert db.current(engine) == "0004" and "jianyi_personal_data" not in sa.inspect(engine).get_table_names()
    db.upgrade(engine)
    assert differences(engine, metadata) == []


def test_a_store_on_an_older_revision_says_to_upgrade(engine: sa.Engine) -> None:
    db.upgrade(engine, "0003")
    with pytest.raises(SchemaMismatch, match=r"0003.*jianyi-flow db upgrade") as caught:
        SqlStore(engine)
    assert caught.value.found == "0003"


def test_a_store_on_a_newer_revision_says_to_upgrade_the_library(engine: sa.Engine) -> None:
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {db.VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(SchemaMismatch) as caught:
        SqlStore(engine)
    assert caught.value.found == "0099" and "newer jianyi_flow" in caught.value.__notes__[0]
    with pytest.raises(SchemaMismatch):
        SqlStore.open(engine, migrate=False)


def test_version_table_is_separate_from_the_hosts(engine: sa.Engine) -> None:
    """A host application's Alembic history (``alembic_version``) and tables are left untouched."""
    host = sa.MetaData()
    host_version = sa.Table("alembic_version", host, sa.Column("version_num", sa.String(32), primary_key=True))
    host_things = sa.Table("host_things", host, sa.Column("id", sa.Integer, primary_key=True))
    host.create_all(engine)
    with engine.begin() as conn:
        conn.execute(host_version.insert().values(version_num="host_rev_7"))
        conn.execute(host_things.insert().values(id=42))

    db.upgrade(engine)

    names = set(sa.inspect(engine).get_table_names())
    assert {db.VERSION_TABLE, "alembic_version", "host_things", *metadata.tables} <= names
    with engine.connect() as conn:
        assert conn.execute(sa.select(host_version.c.version_num)).scalars().all() == ["host_rev_7"]
        assert conn.execute(sa.text(f"SELECT version_num FROM {db.VERSION_TABLE}")).scalars().all() == [REVISION]
        assert conn.execute(sa.select(host_things.c.id)).scalars().all() == [42]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": db.host_include_name})
        assert compare_metadata(context, host) == []
        unfiltered = MigrationContext.configure(conn)
        assert any(d[0] == "remove_table" for d in compare_metadata(unfiltered, host))  # the hook matters

    db.downgrade(engine, "base")
    with engine.connect() as conn:
        assert conn.execute(sa.select(host_version.c.version_num)).scalars().all() == ["host_rev_7"]
        assert conn.execute(sa.select(host_things.c.id)).scalars().all() == [42]


def test_sqlite_migrations_leave_foreign_keys_enforced(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fk.db'}", poolclass=sa.pool.StaticPool)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_upgrade_of_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        db.upgrade(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StoreError):
        db.current(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
