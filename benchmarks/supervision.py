"""Supervision: the first page of the overdue list over a million suggestions on SQLite.

``supervision.overdue_first_page`` — value: p50 milliseconds of ``Flow.overdue(limit=50)``,
target ≤ 50 ms (the target is on the value).  Ratio: speed-up of the index, baseline /
ours (higher is better), no target of its own.

The database: ``SqlStore.open`` creates the schema with the shipped migrations; a few
template suggestions are written through ``Flow`` on that store (one per state), and
their stored rows — exactly as ``SqlStore`` writes them, read back with ``sqlite3`` — are
copied with raw ``executemany`` to 1,000,000 rows (``--quick``: 50,000), varying id,
area, lead unit (and its unit link rows), registration number and times.  Indexes are
dropped for the fill and recreated from the migration's own DDL afterwards.  All rows
belong to the campaign ``YC2024``: the flow under test is the campaign's flow, so its
queries filter on ``campaign`` — a column that does not narrow anything here, the worst
case for an index led by it.  The figure records the plan the planner chose, and the
p50 and plan of the same query without the campaign filter.

Mix: 30 % open (2 received, 3 registered, 12 transferred, 5 researched, 3.5 decided,
4 replied, 0.5 returned), their due times spread evenly over 60 days either side of
"now", so about half of them are overdue; 70 % closed (rated, unrated, withdrawn, not
accepted), which have no due time.  No ``ANALYZE`` is run (the store does not run it).

Ours: ``Flow.overdue(office, limit=50)`` through ``SqlStore`` — SQL plus decoding 50 rows.
Baseline: the same call with the statement rewritten on its way to the driver to read
``FROM jianyi_suggestions NOT INDEXED`` (a full scan and a sort), everything else equal.
Both results are checked to be the same 50 ids.  The query plans (``EXPLAIN QUERY
PLAN``) of both are printed and stored in the figure.

List pages on the same database, each value the p50 milliseconds of one page of 50
through ``Flow.list_suggestions`` (target ≤ 50 ms on the value, no baseline):
``supervision.list_first_page`` and ``supervision.list_deep_page`` — the office's list in
received order, its first page and the page after walking 200 pages (10,000 rows; 10 with
``--quick``) by cursor; ``supervision.unit_list_first_page`` and
``supervision.unit_list_deep_page`` — a handling unit's list as lead unit (主办) in due
order, the same two pages.  A keyset cursor makes a deep page cost what the first does.

The same four list figures on PostgreSQL, ``supervision.postgres.*`` (skipped with the
reason when ``JIANYI_FLOW_TEST_POSTGRES_URL`` is unset or unreachable): a schema of the
run's own, the templates written through ``Flow``, then copied to the same number of rows
through SQLAlchemy Core (the same mix and spread), then ``ANALYZE`` (what autovacuum does on
a live server).

Run alone: ``python -m benchmarks.supervision [--quick] [--rows N]``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jianyi_flow import SHANGHAI, FakeClock, Flow, Outcome, Rating, ReplyForm, ResearchMethod, State
from jianyi_flow.sql import SqlStore

from ._common import Figure, figure, log, median, skipped
from ._fixtures import CO, LEAD, OFFICE, UNIT, draft, proposer_actor

TARGET_MS = 50.0
CAMPAIGN = "YC2024"
NOW = dt.datetime(2024, 11, 15, 10, 0, tzinfo=SHANGHAI)
DEPARTMENTS = ("FGW", "JXW", "KJJ", "SWW", "DSJ", "CZJ", "CGJ", "JTJ", "ZJW", "NYNC", "GHZY", "STHJ", "SLJ", "WHLY")
AREAS = ("A1", "A2", "A3", "A4", "A5", "A6", "A7")

# (state, share): open states carry a due time, closed ones do not
MIX: tuple[tuple[str, float], ...] = (
    ("received", 0.02), ("registered", 0.03), ("transferred", 0.12), ("researched", 0.05),
    ("returned", 0.005), ("adopted", 0.015), ("declined", 0.02), ("replied", 0.04),
    ("rated", 0.58), ("unrated", 0.07), ("withdrawn", 0.02), ("not_accepted", 0.03),
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores a (UTC) datetime


def _templates(store: SqlStore) -> None:
    """One suggestion per state of :data:`MIX`, written through Flow (so rows are exactly SqlStore's)."""
    clock = FakeClock(NOW - dt.timedelta(days=90))
    ids = iter(f"T{n:03d}" for n in range(1000))
    flow = Flow(store, clock, campaign=CAMPAIGN, ids=lambda: next(ids))

    def new(n: int) -> str:
        return flow.receive(draft(n), proposer_actor(n)).id

    steps: dict[str, Any] = {
        "register": lambda sid: flow.register(sid, OFFICE),
        "transfer": lambda sid: flow.transfer(sid, OFFICE, lead_unit=LEAD, co_units=[CO]),
        "research": lambda sid: flow.research(sid, UNIT, findings="经实地调研和部门会商，形成办理意见。",
                      method=ResearchMethod.FIELD_VISIT),
        "adopt": lambda sid: flow.decide(sid, UNIT, outcome=Outcome.ADOPTED),
        "decline": lambda sid: flow.decide(sid, UNIT, outcome=Outcome.DECLINED, reason="条件暂不具备"),
        "reply": lambda sid: flow.reply(sid, UNIT, text="感谢您的建议，办理情况答复如下。", form=ReplyForm.WRITTEN),
    }
    paths = {
        "received": [],
        "registered": ["register"],
        "transferred": ["register", "transfer"],
        "researched": ["register", "transfer", "research"],
        "adopted": ["register", "transfer", "research", "adopt"],
        "declined": ["register", "transfer", "research", "decline"],
        "replied": ["register", "transfer", "research", "adopt", "reply"],
    }
    sid = new(22)  # unrated: the rating window closes unrated on a tick (done first: the tick closes all)
    for step in paths["replied"]:
        steps[step](sid)
    clock.advance(days=60)
    flow.tick()
    for n, (state, path) in enumerate(paths.items()):
        sid = new(n)
        for step in path:
            steps[step](sid)
        assert flow.get(sid, OFFICE).state.value == state
    sid = new(20)  # returned
    flow.register(sid, OFFICE)
    flow.transfer(sid, OFFICE, lead_unit=LEAD)
    flow.object_transfer(sid, UNIT, reason="不属于本单位职责范围")
    flow.accept_objection(sid, OFFICE)
    sid = new(21)  # rated
    for step in paths["replied"]:
        steps[step](sid)
    flow.rate(sid, proposer_actor(21), rating=Rating.SATISFIED)
    sid = new(23)
    flow.withdraw(sid, proposer_actor(23), reason="建议人主动撤回")
    sid = new(24)
    flow.not_accept(sid, OFFICE, reason="属个人诉求")


def _fill(path: Path, rows: int, seed: int = 20241115) -> None:
    """Copy the template rows to ``rows`` suggestions with raw executemany (indexes rebuilt after)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    cur = con.execute("SELECT * FROM jianyi_suggestions")
    columns = [d[0] for d in cur.description]
    by_state: dict[str, dict[str, Any]] = {}
    for raw in cur.fetchall():
        row = dict(zip(columns, raw, strict=True))
        by_state.setdefault(row["state"], row)
    missing = {state for state, _ in MIX} - by_state.keys()
    if missing:
        raise RuntimeError(f"supervision: no template for {sorted(missing)}")
    con.execute("DELETE FROM jianyi_suggestion_units")
    con.execute("DELETE FROM jianyi_events")
    con.execute("DELETE FROM jianyi_outbox")
    con.execute("DELETE FROM jianyi_suggestions")
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
        "AND tbl_name IN ('jianyi_suggestions', 'jianyi_suggestion_units')"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    con.commit()

    placeholders = ", ".join("?" for _ in columns)
    insert_row = f"INSERT INTO jianyi_suggestions ({', '.join(columns)}) VALUES ({placeholders})"
    insert_unit = ("INSERT INTO jianyi_suggestion_units (unit, relation, suggestion_id, due_at, received_at, "
                   "registration_number) VALUES (?, ?, ?, ?, ?, ?)")

    def generate() -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
        for row, links in _copies(by_state, rows, seed, lambda t: t.strftime(_SQLITE_TIME)):
            copies = (row["due_at"], row["received_at"], row["registration_number"])
            yield tuple(row[c] for c in columns), [(u, relation, row["id"], *copies) for relation, u in links]

    chunk: list[tuple[Any, ...]] = []
    units: list[tuple[Any, ...]] = []
    for values, links in generate():
        chunk.append(values)
        units.extend(links)
        if len(chunk) >= 20000:
            con.executemany(insert_row, chunk)
            con.executemany(insert_unit, units)
            chunk, units = [], []
    if chunk:
        con.executemany(insert_row, chunk)
        con.executemany(insert_unit, units)
    con.commit()
    for _, sql in indexes:
        con.execute(sql)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _copies(by_state: dict[str, dict[str, Any]], rows: int, seed: int, when: Any) -> Iterator[
        tuple[dict[str, Any], list[tuple[str, str]]]]:
    """Rows copied from the templates (state by :data:`MIX`) and their unit links; ``when`` formats a UTC time."""
    rng = random.Random(seed)
    states = [s for s, _ in MIX]
    weights = [w for _, w in MIX]
    now_utc = NOW.astimezone(dt.UTC).replace(tzinfo=None)
    year_start = dt.datetime(2024, 1, 1)
    for i in range(rows):
        t = by_state[rng.choices(states, weights)[0]]
        sid = f"Y{i:08d}"
        received = year_start + dt.timedelta(minutes=rng.randrange(300 * 24 * 60))
        lead = rng.choice(DEPARTMENTS) if t["lead_unit"] else None
        _, recommending, co = json.loads(t["units"])  # [lead, recommending, co-units], as SqlStore writes it
        due = None
        if t["due_at"] is not None:  # end of a Shanghai day, 60 days either side of now
            day = (now_utc + dt.timedelta(days=rng.uniform(-60, 60))).date()
            due = when(dt.datetime.combine(day, dt.time(15, 59, 59, 999999)))
        row = dict(t)
        row.update(
            id=sid,
            area=rng.choice(AREAS),
            lead_unit=lead,
            units=json.dumps([lead, recommending, co], ensure_ascii=False, separators=(",", ":")),
            registration_number=f"{CAMPAIGN}-{received:%Y%m%d}-{sid}" if t["registration_number"] else None,
            due_at=due,
            received_at=when(received),
            updated_at=when(received + dt.timedelta(days=rng.uniform(0, 30))),
        )
        links = [("lead", lead)] if lead else []
        links += [("recommending", recommending)] if recommending else []
        links += [("co", u) for u in co]
        links += [("any", u) for u in dict.fromkeys(u for u in (recommending, lead, *co) if u)]
        yield row, links


def _fill_core(store: SqlStore, rows: int, seed: int = 20241115) -> None:
    """The same copy as :func:`_fill` through SQLAlchemy Core, for a server database."""
    from jianyi_flow.storage.sql.schema import events, outbox, suggestion_units, suggestions

    with store.engine.begin() as conn:
        by_state: dict[str, dict[str, Any]] = {}
        for r in conn.execute(sa.select(suggestions)):
            by_state.setdefault(r.state, dict(r._mapping))
        for table in (outbox, events, suggestion_units, suggestions):
            conn.execute(table.delete())
    chunk: list[dict[str, Any]] = []
    units: list[dict[str, Any]] = []

    def flush() -> None:
        with store.engine.begin() as conn:
            conn.execute(suggestions.insert(), chunk)
            if units:
                conn.execute(suggestion_units.insert(), units)
        chunk.clear()
        units.clear()

    for row, links in _copies(by_state, rows, seed, lambda t: t.replace(tzinfo=dt.UTC)):
        chunk.append(row)
        units.extend({"unit": u, "relation": relation, "suggestion_id": row["id"], "due_at": row["due_at"],
                      "received_at": row["received_at"], "registration_number": row["registration_number"]}
                     for relation, u in links)
        if len(chunk) >= 10000:
            flush()
    if chunk:
        flush()
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def _postgres_lists(quick: bool, rows: int) -> list[Figure]:
    """The four list figures on PostgreSQL, or the same names skipped with the reason."""
    from .postgres import _unusable, private_namespace

    names = ("list_first_page", "list_deep_page", "unit_list_first_page", "unit_list_deep_page")
    reason = _unusable("postgres")
    if reason is not None:
        return [skipped(f"supervision.postgres.{name}", reason, unit="ms (p50)", target=TARGET_MS)
                for name in names]
    url = os.environ["JIANYI_FLOW_TEST_POSTGRES_URL"]
    with private_namespace("postgres", url) as (target_url, connect_args):
        store = SqlStore.open(target_url, connect_args=connect_args)
        try:
            _templates(store)
            started = time.perf_counter()
            log(f"supervision: filling {rows:,} suggestions on PostgreSQL")
            _fill_core(store, rows)
            log(f"supervision: filled in {time.perf_counter() - started:.1f} s")
            flow = Flow(store, FakeClock(NOW), campaign=CAMPAIGN)
            walk, repeats = (10, 15) if quick else (200, 41)
            office_first, office_deep, office_at = _pages(flow, OFFICE, walk, repeats)
            unit_first, unit_deep, unit_at = _pages(flow, UNIT, walk, repeats, relation="lead", order="due_at")
        finally:
            store.close()
    return _list_figures("supervision.postgres", "PostgreSQL", rows, (office_first, office_deep, office_at),
                         (unit_first, unit_deep, unit_at))


def _list_figures(prefix: str, where: str, n: int, office: tuple[float, float, str],
                  unit: tuple[float, float, str]) -> list[Figure]:
    return [
        figure(f"{prefix}.{name}", value=ms, baseline=None, ratio=None, unit="ms (p50)",
               ratio_is="no baseline; target is on the value", target=TARGET_MS, on="value", op="<=",
               note=f"Flow.list_suggestions(limit=50), {what}, over {n:,} suggestions on {where}", rows=n)
        for name, ms, what in (
            ("list_first_page", office[0], "the office's list in received order, first page"),
            ("list_deep_page", office[1], f"the same list, the page {office[2]}"),
            ("unit_list_first_page", unit[0], f"{UNIT.unit} as lead unit, due order, first page"),
            ("unit_list_deep_page", unit[1], f"the same list, the page {unit[2]}"),
        )
    ]


class _Rewriter:
    """Rewrites the suggestions query on its way to the driver (NOT INDEXED) and remembers the last one."""

    def __init__(self) -> None:
        self.not_indexed = False
        self.last: tuple[str, Any] | None = None

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> tuple[str, Any]:
        if statement.startswith("EXPLAIN") or "FROM jianyi_suggestions" not in statement:
            return statement, parameters
        if self.not_indexed:
            statement = statement.replace("FROM jianyi_suggestions", "FROM jianyi_suggestions NOT INDEXED", 1)
        self.last = (statement, parameters)
        return statement, parameters


def _plan(store: SqlStore, statement: str, parameters: Any) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return [str(r[-1]) for r in rows]


def _time_ms(call: Any, repeats: int) -> tuple[float, list[str]]:
    times: list[float] = []
    ids: list[str] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - start) * 1e3)
        ids = [s.id for s in result]
    return median(times), ids


def _pages(flow: Flow, actor: Any, walk: int, repeats: int, **filters: Any) -> tuple[float, float, str]:
    """p50 ms of the first page and of the page after ``walk`` pages, and where the deep page starts."""
    first_ms, _ = _time_ms(lambda: flow.list_suggestions(actor, limit=50, **filters).items, repeats)
    page = flow.list_suggestions(actor, limit=50, **filters)
    walked = 1
    while walked < walk and page.next_cursor is not None:
        page = flow.list_suggestions(actor, limit=50, cursor=page.next_cursor, **filters)
        walked += 1
    if page.next_cursor is None:
        raise RuntimeError(f"supervision: the list ended after {walked} pages; no deep page to time")
    cursor = page.next_cursor
    deep_ms, deep_ids = _time_ms(lambda: flow.list_suggestions(actor, limit=50, cursor=cursor, **filters).items,
                                 repeats)
    if len(deep_ids) != 50:
        raise RuntimeError("supervision: a deep page came back short")
    return first_ms, deep_ms, f"{walked * 50:,} rows in"


def run(quick: bool, rows: int | None = None) -> list[Figure]:
    n = rows or (50_000 if quick else 1_000_000)
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_supervision_"))
    try:
        path = directory / "supervision.db"
        store = SqlStore.open(f"sqlite:///{path}")
        _templates(store)
        store.close()
        started = time.perf_counter()
        log(f"supervision: filling {n:,} suggestions")
        _fill(path, n)
        log(f"supervision: filled in {time.perf_counter() - started:.1f} s, "
            f"{path.stat().st_size / 2**20:.0f} MiB")
        store = SqlStore(f"sqlite:///{path}")
        rewriter = _Rewriter()
        sa.event.listen(store.engine, "before_cursor_execute", rewriter, retval=True)
        flow = Flow(store, FakeClock(NOW), campaign=CAMPAIGN)
        plain = Flow(store, FakeClock(NOW))  # no campaign filter: the store-level query

        flow.overdue(OFFICE, limit=50)  # warm the statement cache and the page cache
        ours_ms, ours_ids = _time_ms(lambda: flow.overdue(OFFICE, limit=50), 15 if quick else 41)
        assert rewriter.last is not None
        plan = _plan(store, *rewriter.last)
        plain_ms, _ = _time_ms(lambda: plain.overdue(OFFICE, limit=50), 15 if quick else 41)
        plain_plan = _plan(store, *rewriter.last)

        rewriter.not_indexed = True
        base_ms, base_ids = _time_ms(lambda: flow.overdue(OFFICE, limit=50), 3 if quick else 5)
        assert rewriter.last is not None
        base_plan = _plan(store, *rewriter.last)
        rewriter.not_indexed = False
        walk, repeats = (10, 15) if quick else (200, 41)
        office_first, office_deep, office_at = _pages(flow, OFFICE, walk, repeats)
        unit_first, unit_deep, unit_at = _pages(flow, UNIT, walk, repeats, relation="lead", order="due_at")
        if ours_ids != base_ids or len(ours_ids) != 50:
            raise RuntimeError("supervision: the indexed and the full-scan query returned different pages")
        if any(s.state not in (State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.RESEARCHED,
                               State.RETURNED, State.ADOPTED, State.DECLINED, State.REPLIED,
                               State.PARTIALLY_ADOPTED) for s in flow.overdue(OFFICE, limit=50)):
            raise RuntimeError("supervision: a closed suggestion was listed as overdue")
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    log("supervision: EXPLAIN QUERY PLAN, Flow.overdue(limit=50) with campaign: " + " | ".join(plan))
    log("supervision: EXPLAIN QUERY PLAN, without campaign filter: " + " | ".join(plain_plan))
    log("supervision: EXPLAIN QUERY PLAN, baseline (NOT INDEXED): " + " | ".join(base_plan))
    extra: dict[str, Any] = {"rows": n, "plan": plan, "baseline_plan": base_plan,
                             "no_campaign_filter_p50_ms": round(plain_ms, 3), "no_campaign_filter_plan": plain_plan}
    return [
        figure(
            "supervision.overdue_first_page",
            value=ours_ms, baseline=base_ms, ratio=base_ms / ours_ms,
            unit="ms (p50)", ratio_is="speed-up: baseline / ours (higher is better); target is on the value",
            target=TARGET_MS, on="value", op="<=",
            note=f"Flow.overdue(limit=50), campaign flow, over {n:,} suggestions on SQLite; baseline: same "
                 "call with FROM jianyi_suggestions NOT INDEXED",
            **extra,
        ),
        *_list_figures("supervision", "SQLite", n, (office_first, office_deep, office_at),
                       (unit_first, unit_deep, unit_at)),
        *_postgres_lists(quick, n),
    ]


if __name__ == "__main__":
    args = sys.argv[1:]
    count = int(args[args.index("--rows") + 1]) if "--rows" in args else None
    for fig in run(quick="--quick" in args, rows=count):
        print(fig)
