"""The supervision query (overdue, due soon) reads an index instead of scanning every suggestion.

The statement checked is the one SqlStore really sends (captured from the engine).  On
SQLite, with 2 000 rows, both as the store leaves the file (no statistics: nothing runs
``ANALYZE``, and a planner without statistics is the easy one to mislead) and after
``ANALYZE``.  On PostgreSQL with 20 000 rows after ``ANALYZE``, where the planner would
happily scan a small table.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from dbs import postgres_migrated, postgres_url, wipe
from jianyi_flow import SHANGHAI, State
from jianyi_flow.service.flow import OPEN_STATES
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import Query
from jianyi_flow.testing import create, make_suggestion

__all__ = ["postgres_migrated", "postgres_url"]  # fixtures

T0 = dt.datetime(2024, 9, 1, 9, tzinfo=SHANGHAI)
NOW = T0 + dt.timedelta(days=20)
CLOSED = [State.RATED, State.UNRATED, State.WITHDRAWN, State.NOT_ACCEPTED]


def fill(store: SqlStore, count: int) -> None:
    """``count`` suggestions over a 60-day window; 30% closed (no due time), as in a running campaign."""
    rng = random.Random(count)
    changes = []
    for n in range(count):
        if rng.random() < 0.3:
            s = make_suggestion(f"s{n:06d}", state=rng.choice(CLOSED), due_at=None, lead_unit=f"u{n % 40}")
        else:
            due = T0 + dt.timedelta(minutes=rng.randrange(60 * 24 * 60))
            s = make_suggestion(f"s{n:06d}", state=rng.choice(sorted(OPEN_STATES)), due_at=due,
                                lead_unit=f"u{n % 40}", area=f"a{n % 12}")
        changes.append(create(s))
    for i in range(0, count, 2000):
        store.commit_many(changes[i : i + 2000])


class Captured:
    """The SQL and parameters of the last SELECT on the suggestions table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statement = ""
        self.parameters: Any = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "jianyi_suggestions" in statement:
            self.statement, self.parameters = statement, parameters


QUERIES = {
    "overdue": Query(states=OPEN_STATES, due_before=NOW, limit=50),
    "overdue in a campaign": Query(states=OPEN_STATES, due_before=NOW, campaign="jy2024", limit=50),
    "due soon": Query(states=OPEN_STATES, due_after=NOW, due_before=NOW + dt.timedelta(days=3), limit=50),
    "overdue in an area": Query(states=OPEN_STATES, due_before=NOW, area="a3", limit=50),
    "overdue of a lead unit": Query(states=OPEN_STATES, due_before=NOW, campaign="jy2024", unit="u3", limit=50),
    "tick": Query(states=OPEN_STATES, due_before=NOW, campaign="jy2024", limit=500, overdue_unflagged=True),
}
"""What Flow.overdue / due_soon / tick send (Flow passes its campaign when it has one)."""

DUE_ORDERED = re.compile(
    r"SEARCH jianyi_suggestions USING INDEX ix_jianyi_suggestions_(due|area|topic) "
    r"\((\w+=\? AND )?due_at>\? AND due_at<\?\)"
)
"""A plan line reading a due-ordered index by a due-time range (after any equality prefix)."""

UNIT_FIRST = re.compile(
    r"SEARCH jianyi_suggestion_units USING COVERING INDEX ix_jianyi_suggestion_units_unit \(unit=\?\)"
)
"""The plan line of a unit filter answered from the unit index first."""


@pytest.fixture(scope="module", params=[False, True], ids=["no statistics", "analyzed"])
def sqlite_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """2 000 suggestions on SQLite, as the store leaves them (no ANALYZE), and after ANALYZE."""
    path: Path = tmp_path_factory.mktemp("plans") / "plans.db"
    store = SqlStore.open(f"sqlite:///{path}")
    fill(store, 2000)
    if request.param:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    yield store
    store.close()


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sqlite_supervision_queries_read_a_due_ordered_index(sqlite_store: SqlStore, name: str) -> None:
    query = QUERIES[name]
    captured = Captured(sqlite_store.engine)
    rows = sqlite_store.query(query)
    assert rows and [(r.due_at, r.id) for r in rows] == sorted((r.due_at, r.id) for r in rows if r.due_at)
    with sqlite_store.engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + captured.statement, captured.parameters)]
    text = "\n".join(plan)
    assert "SCAN jianyi_suggestions" not in text, text
    if query.unit is not None and UNIT_FIRST.search(text) and "SEARCH jianyi_suggestions USING INDEX" in text:
        # Without statistics (and with no campaign index since migration 0002) SQLite, like
        # PostgreSQL with them, starts from the unit's rows, looks each up by id and sorts:
        # bounded by the unit's suggestions (measured in docs/storage.md), never a table scan.
        return
    assert any(DUE_ORDERED.fullmatch(line) for line in plan), text
    assert "TEMP B-TREE" not in text, f"the rows are sorted after reading, not read in order:\n{text}"


def test_sqlite_plan_check_can_fail(sqlite_store: SqlStore) -> None:
    """Without the index the same checks see a scan and a sort (so the test above means something)."""
    with sqlite_store.engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM jianyi_suggestions NOT INDEXED WHERE due_at < ? ORDER BY due_at, id",
            ("2024-09-21 00:00:00.000000",),
        )]
    assert not any(DUE_ORDERED.fullmatch(line) for line in plan)
    assert any(line.startswith("SCAN jianyi_suggestions") for line in plan)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_overdue_query_uses_the_due_index(postgres_migrated: str) -> None:
    store = SqlStore(postgres_migrated)
    try:
        wipe(store.engine)
        fill(store, 20_000)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE jianyi_suggestions")
        captured = Captured(store.engine)
        due_ordered = re.compile(r"Index Scan using ix_jianyi_suggestions_(due|area) on jianyi_suggestions")
        for name, query in QUERIES.items():
            rows = store.query(query)
            assert rows, name
            with store.engine.connect() as conn:
                plan = "\n".join(
                    r[0] for r in conn.exec_driver_sql("EXPLAIN " + captured.statement, captured.parameters)
                )
            assert "Seq Scan" not in plan, f"{name}:\n{plan}"
            if query.unit is not None:
                continue  # a unit's few rows are best found from the unit index, then sorted: PostgreSQL knows
            assert due_ordered.search(plan), f"{name}:\n{plan}"
            assert "Sort" not in plan, f"{name}: sorted after reading:\n{plan}"
    finally:
        wipe(store.engine)
        store.close()
