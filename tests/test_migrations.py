"""The shipped Alembic migrations: they build exactly ``metadata``, in their own version table.

Each test gets an empty database (a SQLite file, or a schema/database of its own on the
PostgreSQL and MariaDB test servers, see tests/dbs.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dbs import empty_mysql_url, empty_postgres_url
from jianyi_flow.domain.clock import SHANGHAI
from jianyi_flow.errors import StoreError
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import Query
from jianyi_flow.storage.sql import migrate as db
from jianyi_flow.storage.sql.engine import create_engine
from jianyi_flow.storage.sql.schema import metadata

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


def test_migrations_build_exactly_the_metadata(engine: sa.Engine) -> None:
    assert db.current(engine) is None
    db.upgrade(engine)
    assert db.current(engine) == db.head() == "0003"
    assert differences(engine, metadata) == []


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
    assert db.current(engine) == "0003"
    db.downgrade(engine, "base")
    assert db.current(engine) is None
    left = set(sa.inspect(engine).get_table_names())
    assert not any(db.is_jianyi_flow_table(name) and name != db.VERSION_TABLE for name in left), left


def _write_as_0002(engine: sa.Engine, suggestion: Any) -> None:
    """Insert a row as the store wrote it before 0003: ``overdue_flagged_at`` inside ``data``.

    (Today's store writes the column, which an older schema does not have.)
    """
    from jianyi_flow.domain.model import SUGGESTION_FIELDS, encode_value
    from jianyi_flow.storage.sql.schema import suggestion_units, suggestions
    from jianyi_flow.storage.sql.store import COLUMN_FIELDS

    old_columns = [name for name in COLUMN_FIELDS if name != "overdue_flagged_at"]
    table = sa.Table("jianyi_suggestions", sa.MetaData(),
                     *[c._copy() for c in suggestions.columns if c.name != "overdue_flagged_at"])
    units = list(suggestion.units())
    with engine.begin() as conn:
        values = {name: getattr(suggestion, name) for name in old_columns}
        values["state"] = suggestion.state.value
        conn.execute(table.insert().values(
            **values,
            units_key=json.dumps(units, ensure_ascii=False),
            data={name: encode_value(name, getattr(suggestion, name))
                  for name in SUGGESTION_FIELDS if name not in old_columns},
        ))
        for unit in units:
            conn.execute(suggestion_units.insert().values(suggestion_id=suggestion.id, unit=unit))


def test_0002_drops_the_campaign_and_lead_unit_indexes_and_its_downgrade_restores_them(engine: sa.Engine) -> None:
    """A database at 0001 with rows in it goes to 0002 and back; the rows stay, the indexes come and go."""
    from jianyi_flow.testing import make_suggestion

    def indexes() -> set[str]:
        return {i["name"] for i in sa.inspect(engine).get_indexes("jianyi_suggestions") if i["name"]}

    db.upgrade(engine, "0001")
    assert {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} <= indexes()
    _write_as_0002(engine, make_suggestion("M-1", lead_unit="u1"))
    db.upgrade(engine, "0002")
    assert not {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} & indexes()
    assert {"ix_jianyi_suggestions_due", "ix_jianyi_suggestions_area", "ix_jianyi_suggestions_topic"} <= indexes()
    db.downgrade(engine, "0001")
    assert {"ix_jianyi_suggestions_campaign", "ix_jianyi_suggestions_lead_unit"} <= indexes()
    db.upgrade(engine)
    with SqlStore(engine) as store:
        assert store.load("M-1").lead_unit == "u1"
    assert differences(engine, metadata) == []


def test_0003_moves_overdue_flagged_at_to_a_column_and_its_downgrade_moves_it_back(engine: sa.Engine) -> None:
    """Rows written at 0002 (the flag time inside ``data``) read back the same after 0003, and after a round trip."""
    from jianyi_flow.testing import make_suggestion

    due = dt.datetime(2024, 9, 5, 23, 59, 59, tzinfo=SHANGHAI)
    rows = [
        make_suggestion("F-1", due_at=due, overdue_flagged_at=due),  # flagged for its due time
        make_suggestion("F-2", due_at=due + dt.timedelta(days=9), overdue_flagged_at=due),  # flagged, then moved
        make_suggestion("F-3", due_at=due),  # never flagged
        *[make_suggestion(f"P-{n:04d}", due_at=due) for n in range(1100)],  # more than one page of 1,000
    ]
    db.upgrade(engine, "0002")
    for row in rows:
        _write_as_0002(engine, row)
    db.upgrade(engine)
    assert db.current(engine) == "0003"
    with engine.connect() as conn:
        documents = [json.loads(t) for t in conn.execute(sa.text("SELECT data FROM jianyi_suggestions")).scalars()]
    assert len(documents) == len(rows) and not any("overdue_flagged_at" in d for d in documents)
    with SqlStore(engine) as store:
        for row in rows[:3]:
            assert store.load(row.id) == row
        unflagged = store.query(Query(due_before=due + dt.timedelta(days=30), overdue_unflagged=True))
        assert "F-1" not in {r.id for r in unflagged} and {"F-2", "F-3"} <= {r.id for r in unflagged}
        assert len(unflagged) == len(rows) - 1
    db.downgrade(engine, "0002")
    assert "overdue_flagged_at" not in {c["name"] for c in sa.inspect(engine).get_columns("jianyi_suggestions")}
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT id, data FROM jianyi_suggestions WHERE id LIKE 'F-%'")).all())
    flagged = {sid: json.loads(text)["overdue_flagged_at"] for sid, text in found.items()}
    for text in found.values():  # back where the store before 0003 wrote it: that store reads it on its fast path
        keys = list(json.loads(text))
        assert keys[keys.index("extended") + 1] == "overdue_flagged_at"
    utc = due.astimezone(dt.UTC).isoformat()
    assert flagged == {"F-1": utc, "F-2": utc, "F-3": None}
    db.upgrade(engine)
    with SqlStore(engine) as store:
        assert [store.load(row.id) for row in rows[:3]] == rows[:3]


def test_a_0003_upgrade_stopped_by_a_bad_row_names_it_and_resumes_once_it_is_fixed(engine: sa.Engine) -> None:
    """SQLite and MariaDB commit the new column at once: the retry must not trip over it."""
    from jianyi_flow.testing import make_suggestion

    due = dt.datetime(2024, 9, 5, 23, 59, 59, tzinfo=SHANGHAI)
    db.upgrade(engine, "0002")
    _write_as_0002(engine, make_suggestion("B-1", due_at=due, overdue_flagged_at=due))
    _write_as_0002(engine, make_suggestion("B-2", due_at=due))

    def set_flag(sid: str, value: Any) -> None:
        with engine.begin() as conn:
            text = conn.execute(sa.text("SELECT data FROM jianyi_suggestions WHERE id = :id"), {"id": sid}).scalar()
            document = json.loads(text)
            document["overdue_flagged_at"] = value
            conn.execute(sa.text("UPDATE jianyi_suggestions SET data = :d WHERE id = :id"),
                         {"d": json.dumps(document, ensure_ascii=False), "id": sid})

    set_flag("B-2", 20240905)  # not ISO text: hand-edited
    with pytest.raises(StoreError, match=r"'B-2'.*overdue_flagged_at"):
        db.upgrade(engine)
    assert db.current(engine) == "0002"
    naive = due.astimezone(dt.UTC).replace(tzinfo=None)
    set_flag("B-2", naive.isoformat())  # naive text: the store before 0003 read it as the machine's local time
    db.upgrade(engine)
    assert db.current(engine) == "0003"
    with SqlStore(engine) as store:
        assert store.load("B-1").overdue_flagged_at == due
        assert store.load("B-2").overdue_flagged_at == naive.astimezone(dt.UTC)
    assert differences(engine, metadata) == []


def test_0003_cannot_be_printed_as_sql() -> None:
    from alembic import command

    command.upgrade(db.alembic_config(url="sqlite:///unused.db"), "0001:0002", sql=True)  # the others can
    with pytest.raises(StoreError, match="0003"):
        command.upgrade(db.alembic_config(url="sqlite:///unused.db"), "0002:0003", sql=True)


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
        assert conn.execute(sa.text(f"SELECT version_num FROM {db.VERSION_TABLE}")).scalars().all() == ["0003"]
        assert conn.execute(sa.select(host_things.c.id)).scalars().all() == [42]
    # the host's own autogenerate, with the hook from docs/storage.md, proposes nothing about our tables
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": db.host_include_name})
        assert compare_metadata(context, host) == []
        unfiltered = MigrationContext.configure(conn)
        assert any(d[0] == "remove_table" for d in compare_metadata(unfiltered, host))  # the hook matters

    db.downgrade(engine, "base")
    with engine.connect() as conn:
        assert conn.execute(sa.select(host_version.c.version_num)).scalars().all() == ["host_rev_7"]
        assert conn.execute(sa.select(host_things.c.id)).scalars().all() == [42]


def test_store_open_migrates_and_plain_store_does_not(empty_url: str) -> None:
    plain = SqlStore(empty_url)
    try:
        with pytest.raises(StoreError, match="upgrade"):
            plain.load("x")
    finally:
        plain.close()
    assert db.current(empty_url) is None
    with SqlStore.open(empty_url) as store:
        assert store.query(Query()) == []
    assert db.current(empty_url) == "0003"


def test_upgrade_of_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        db.upgrade(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StoreError):
        db.current(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
