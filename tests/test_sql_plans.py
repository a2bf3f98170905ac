"""The lists Flow asks for read an index in order instead of scanning and sorting.

The statement checked is the one SqlStore really sends (captured from the engine), for
every order of ``Flow.list_suggestions`` with each relation filter, the overdue and
due-soon lists, ``Flow.tick``'s scan — each on its first page and on a deep page (after a
cursor).  On SQLite, with 3 000 rows, both as the store leaves the file (no statistics:
nothing runs ``ANALYZE``, and a planner without statistics is the easy one to mislead) and
after ``ANALYZE``; on PostgreSQL with 20 000 rows after ``ANALYZE``, where the planner
would happily scan a small table (there, a list whose rows the planner expects to be about
a page may be read through the index as a bitmap and sorted: sorting a page costs nothing).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from dbs import postgres_migrated, postgres_url, wipe
from jianyi_flow import SHANGHAI, State
from jianyi_flow.domain.model import Proposer
from jianyi_flow.service.flow import OPEN_STATES
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import Order, Query
from jianyi_flow.testing import create, make_suggestion

__all__ = ["postgres_migrated", "postgres_url"]  # fixtures

T0 = dt.datetime(2024, 9, 1, 9, tzinfo=SHANGHAI)
NOW = T0 + dt.timedelta(days=20)
CLOSED = [State.RATED, State.UNRATED, State.WITHDRAWN, State.NOT_ACCEPTED]
UNITS = 40


def fill(store: SqlStore, count: int) -> None:
    """``count`` suggestions over a 60-day window; 30% closed (no due time), as in a running campaign."""
    rng = random.Random(count)
    with store.batch():
        for n in range(count):
            received = T0 + dt.timedelta(minutes=rng.randrange(60 * 24 * 60))
            common: dict[str, Any] = {
                "at": received, "lead_unit": f"u{n % UNITS}", "co_units": (f"u{(n + 7) % UNITS}",),
                "recommending_unit": f"t{n % 9}", "area": f"a{n % 12}", "topic": f"t{n % 5}",
                "registration_number": f"R{n:06d}", "received_by": f"information_officer:io{n % 50}",
                "proposer": Proposer(name="张三", account=f"wx{n % 500}"),
            }
            if rng.random() < 0.3:
                s = make_suggestion(f"s{n:06d}", state=rng.choice(CLOSED), due_at=None, **common)
            else:
                due = received + dt.timedelta(minutes=rng.randrange(60 * 24 * 20))
                s = make_suggestion(f"s{n:06d}", state=rng.choice(sorted(OPEN_STATES)), due_at=due, **common)
            store.commit(create(s))


class Captured:
    """The SQL and parameters of the last SELECT on the suggestions table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statement = ""
        self.parameters: Any = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "jianyi_suggestions" in statement:
            self.statement, self.parameters = statement, parameters


C = "jy2024"
OPEN = OPEN_STATES
QUERIES: dict[str, tuple[Query, str]] = {
    # Flow.list_suggestions: each order, the office's view (campaign only)
    "received": (Query(campaign=C, order=Order.RECEIVED, limit=50), "suggestions_received"),
    "received, newest first": (Query(campaign=C, order=Order.RECEIVED, descending=True, limit=50),
                               "suggestions_received"),
    "due": (Query(campaign=C, order=Order.DUE, limit=50), "suggestions_due"),
    "registration": (Query(campaign=C, order=Order.REGISTRATION, limit=50), "suggestions_registration"),
    "id": (Query(campaign=C, order=Order.ID, limit=50), "pk"),
    # a unit's lists, by relation and order
    **{f"unit {relation} by {order.value}": (Query(campaign=C, order=order, limit=50,
                                                   **{relation: "t3" if relation == "recommending_unit" else "u3"}),
                                             f"units_{index}")
       for relation in ("unit", "lead_unit", "co_unit", "recommending_unit")
       for order, index in ((Order.RECEIVED, "received"), (Order.DUE, "due"),
                            (Order.REGISTRATION, "registration"), (Order.ID, "pk"))},
    "unit overdue": (Query(states=OPEN, due_before=NOW, campaign=C, unit="u3", order=Order.DUE, limit=50),
                     "units_due"),
    "lead unit overdue": (Query(states=OPEN, due_before=NOW, campaign=C, lead_unit="u3", order=Order.DUE,
                                limit=50), "units_due"),
    # other people's views
    "proposer's own": (Query(campaign=C, proposer_account="wx7", order=Order.RECEIVED, limit=50),
                       "suggestions_proposer"),
    "information officer's": (Query(campaign=C, received_by="information_officer:io7", order=Order.RECEIVED,
                                    limit=50), "suggestions_received_by"),
    # supervision: overdue, due soon, by area or topic
    "overdue": (Query(states=OPEN, due_before=NOW, campaign=C, order=Order.DUE, limit=50), "suggestions_due"),
    "due soon": (Query(states=OPEN, due_after=NOW, due_before=NOW + dt.timedelta(days=3), campaign=C,
                       order=Order.DUE, limit=50), "suggestions_due"),
    "overdue in an area": (Query(states=OPEN, due_before=NOW, area="a3", campaign=C, order=Order.DUE, limit=50),
                           "suggestions_area"),
    "an area by received": (Query(area="a3", campaign=C, order=Order.RECEIVED, limit=50),
                            "suggestions_area_received"),
    "a topic by received": (Query(topic="t3", campaign=C, order=Order.RECEIVED, limit=50),
                            "suggestions_topic_received"),
    "tick": (Query(states=OPEN, due_before=NOW, campaign=C, order=Order.DUE, limit=500, overdue_unflagged=True),
             "suggestions_due"),
}
"""What Flow sends, and the index each must be answered from (``ix_jianyi_<name>``, or the table's primary key)."""


def deep(store: SqlStore, query: Query) -> Query:
    """The same query continued after a row far into it (a deep page)."""
    rows = store.query(attrs.evolve(query, limit=None))
    assert len(rows) > 3
    return attrs.evolve(query, after=query.cursor_of(rows[len(rows) // 3]))


@pytest.fixture(scope="module", params=[False, True], ids=["no statistics", "analyzed"])
def sqlite_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    path: Path = tmp_path_factory.mktemp("plans") / "plans.db"
    store = SqlStore.open(f"sqlite:///{path}")
    fill(store, 3000)
    if request.param:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    yield store
    store.close()


def sqlite_plan(store: SqlStore, query: Query) -> list[str]:
    captured = Captured(store.engine)
    rows = store.query(query)
    assert rows
    with store.engine.connect() as conn:
        return [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + captured.statement, captured.parameters)]


def _sqlite_index(name: str) -> str:
    if name == "pk":
        return "sqlite_autoindex_jianyi_suggestions_1"
    if name == "units_pk":
        return "sqlite_autoindex_jianyi_suggestion_units_1"
    return f"ix_jianyi_{name}"


@pytest.mark.parametrize("page", ["first", "deep"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sqlite_lists_read_one_index_in_order(sqlite_store: SqlStore, name: str, page: str) -> None:
    query, index = QUERIES[name]
    if page == "deep":
        query = deep(sqlite_store, query)
    if index.startswith("units_"):
        index = "units_pk" if index == "units_pk" else index.replace("units_", "suggestion_units_")
    plan = sqlite_plan(sqlite_store, query)
    text = "\n".join(plan)
    assert "TEMP B-TREE" not in text, f"the rows are sorted after reading, not read in order:\n{text}"
    assert not any(re.fullmatch(r"SCAN jianyi_suggestions\w*", line) for line in plan), text
    first = plan[0]
    expected = _sqlite_index(index)
    assert first.endswith(f"USING INDEX {expected}") or f"USING INDEX {expected} (" in first \
        or f"USING COVERING INDEX {expected}" in first or (index == "pk" and "USING INDEX" not in first
                                                          and first.startswith("SCAN")), text
    if page == "deep":  # the cursor starts the range: the index is searched, not scanned from its start
        assert first.startswith("SEARCH"), text


def test_sqlite_plan_check_can_fail(sqlite_store: SqlStore) -> None:
    """Without the index the same checks see a scan and a sort (so the test above means something)."""
    with sqlite_store.engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM jianyi_suggestions NOT INDEXED WHERE due_at < ? ORDER BY due_at, id",
            ("2024-09-21 00:00:00.000000",),
        )]
    assert any("TEMP B-TREE" in line for line in plan)
    assert any(re.fullmatch(r"SCAN jianyi_suggestions\w*", line) for line in plan)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_lists_read_one_index_in_order(postgres_migrated: str) -> None:
    store = SqlStore(postgres_migrated)
    try:
        wipe(store.engine)
        fill(store, 20_000)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        captured = Captured(store.engine)
        failures = []
        for name, (query, index) in QUERIES.items():
            for page, q in (("first", query), ("deep", deep(store, query))):
                assert store.query(q), name
                with store.engine.connect() as conn:
                    plan = "\n".join(
                        r[0] for r in conn.exec_driver_sql("EXPLAIN " + captured.statement, captured.parameters))
                expected = {"pk": "pk_jianyi_suggestions", "units_pk": "pk_jianyi_suggestion_units"}.get(
                    index, f"ix_jianyi_{index.replace('units_', 'suggestion_units_')}")
                if index.startswith("units_") and index.endswith("pk"):
                    expected = "pk_jianyi_suggestion_units"
                # the planner may read a few rows (about a page) through the index as a bitmap and sort them
                sort = re.search(r"Sort  \(cost=[\d.]+ rows=(\d+)", plan)
                sorted_after = sort is not None and int(sort.group(1)) > 2 * (q.limit or 0)
                used = f"using {expected} " in plan or f"Bitmap Index Scan on {expected} " in plan
                if "Seq Scan" in plan or sorted_after or not used:
                    failures.append(f"{name} ({page} page), wanted {expected}:\n{plan}")
        assert not failures, "\n\n".join(failures)
    finally:
        wipe(store.engine)
        store.close()
