"""SQL storage on SQLite against raw SQLAlchemy floors doing the same read and writes.

Three figures, all throughput ratios, ours / floor (higher is better):

``storage.command_vs_core_floor`` — target ≥ 0.8.
    Ours: ``Flow.transfer`` on ``SqlStore("sqlite:///…")`` (a file database, WAL,
    ``synchronous=NORMAL``: what :func:`jianyi_flow.sql.create_engine` sets), one
    transaction per command: read the row (and its vaulted personal data), run the
    command (permission, due times, hash-sealed event), then write (update the row with a
    version check, refresh its unit links, take the next log position, insert the event,
    insert the outbox message), all in one ``BEGIN IMMEDIATE`` transaction.
    Floor: the very read and writes of the same command — the statements and parameters
    our store sent to the driver, captured on a copy of the floor's database before the
    clock starts — replayed through ``Connection.exec_driver_sql`` on the same engine
    settings, one ``BEGIN IMMEDIATE`` transaction per command, fetching what ours fetches
    and checking the version-checked update's row count.  It does no domain work, builds
    no statement and converts no value: it is the least the same read and writes can cost
    through SQLAlchemy, so the ratio is the share of a command's time that is the
    database's own work.

``storage.bulk_vs_core_floor`` — no target.
    The same, 200 commands per transaction: ours runs ``Flow.transfer`` inside
    ``SqlStore.batch()`` (each command a savepoint), the floor replays the same commands'
    statements for 200 suggestions in one ``BEGIN IMMEDIATE`` transaction.

``storage.command_vs_lean_floor`` — no target.
    Ours against a leaner floor in a third database: Core statements built once,
    ``SELECT`` the row by id, ``UPDATE … SET state, version, updated_at WHERE id = ? AND
    version = ?`` (checking the row count) and ``INSERT`` of the history event (the very
    event row our store wrote).  No personal data, unit links, log counter or outbox: what a
    bare state machine persisting one history row would cost.

All databases start alike (the same registered suggestions, written through
``SqlStore.commit`` before timing).  Each round times the sides back to back on equal
fresh batches (which side goes first alternates); a ratio is the median of the
per-round ratios, and value and baseline are the medians of each side.  At the end, ours
and the same-writes floor must hold identical rows, events, unit links and outbox
messages.  The first figure also carries ``store_commit_us``: ``SqlStore.commit`` of
recorded Changes (the store's writes with no read and no Flow), which splits our cost
between the store and the command.

Run alone: ``python -m benchmarks.storage [--quick]``.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from jianyi_flow import Change
from jianyi_flow.sql import SqlStore, create_engine

from ._common import Figure, figure, log, median, per_op
from ._fixtures import LEAD, OFFICE, Recorder, batches, make_flow, registered

TARGET_COMMAND = 0.8
BATCH = 200

# Lightweight table clauses: the lean floor passes raw column values (as SQLite stores them), no type processing.
EVENT_COLUMNS = ("suggestion_id", "version", "seq", "kind", "from_state", "to_state", "actor_id", "actor_role",
                 "actor_unit", "actor_name", "at", "reason", "changes", "payload", "prev_hash", "hash", "notices",
                 "workflow", "policy", "mac")
_rows = sa.table("jianyi_suggestions", sa.column("id"), sa.column("state"), sa.column("version"),
                 sa.column("updated_at"), sa.column("data"))
_all_row_columns = sa.text("*")
_events = sa.table("jianyi_events", *(sa.column(c) for c in EVENT_COLUMNS))

Statement = tuple[str, Any]
"""One statement as the driver received it: its SQL text and its parameters (a list for executemany)."""


def commit_all(store: SqlStore, changes: Sequence[Change]) -> None:
    """Write recorded Changes, 500 per transaction (set-up, never timed)."""
    for chunk in batches(changes, 500):
        with store.batch():
            for c in chunk:
                store.commit(c)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database file (the standard library's online backup)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def captured_commands(store: SqlStore, sids: Sequence[str]) -> list[list[Statement]]:
    """``Flow.transfer`` of each suggestion on ``store``, and the statements each command sent to the driver.

    Each command's statements are those between its ``BEGIN IMMEDIATE`` and its commit
    (the floor issues its own ``BEGIN IMMEDIATE``).
    """
    commands: list[list[Statement]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement == "BEGIN IMMEDIATE":
            commands.append([])
        else:
            commands[-1].append((statement, list(parameters) if executemany else parameters))

    flow, _ = make_flow(store)
    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        for sid in sids:
            flow.transfer(sid, OFFICE, lead_unit=LEAD)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    if len(commands) != len(sids):
        raise RuntimeError(f"storage: captured {len(commands)} transactions for {len(sids)} commands")
    return commands


class SameFloor:
    """Our store's own read and writes of each command, replayed through ``exec_driver_sql``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @staticmethod
    def _command(conn: sa.Connection, statements: Sequence[Statement]) -> None:
        for text, params in statements:
            result = conn.exec_driver_sql(text, params or None)
            if result.returns_rows:
                if not result.all():
                    raise RuntimeError(f"floor: no row from {text[:60]!r}")
            elif text.startswith("UPDATE jianyi_suggestions ") and result.rowcount != 1:
                raise RuntimeError("floor: optimistic update matched no row")

    def one(self, statements: Sequence[Statement]) -> None:
        """One command's read and writes in their own transaction."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            self._command(conn, statements)
            conn.commit()

    def many(self, commands: Sequence[Sequence[Statement]]) -> None:
        """Several commands' reads and writes in one transaction."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for statements in commands:
                self._command(conn, statements)
            conn.commit()


class LeanFloor:
    """Raw Core: select the row, update state and version with a version check, insert the event."""

    seq = itertools.count(10**12)  # log positions of the floor's own events, clear of the preloaded ones

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.select = sa.select(_all_row_columns).select_from(_rows).where(_rows.c.id == bindparam("w_id"))
        self.update = (
            _rows.update()
            .where(_rows.c.id == bindparam("w_id"), _rows.c.version == bindparam("w_version"))
            .values(state=bindparam("n_state"), version=bindparam("n_version"),
                    updated_at=bindparam("n_updated_at"))
        )
        self.insert_event = _events.insert()

    @classmethod
    def params(cls, event_row: dict[str, Any], expected_version: int) -> dict[str, Any]:
        """The statement parameters of one command (prepared before timing)."""
        return {
            "id": {"w_id": event_row["suggestion_id"]},
            "row": {"w_id": event_row["suggestion_id"], "w_version": expected_version,
                    "n_state": event_row["to_state"], "n_version": event_row["version"],
                    "n_updated_at": event_row["at"]},
            "event": {**event_row, "seq": next(cls.seq)},
        }

    def _command(self, conn: sa.Connection, p: dict[str, Any]) -> None:
        if conn.execute(self.select, p["id"]).first() is None:
            raise RuntimeError("floor: no such row")
        if conn.execute(self.update, p["row"]).rowcount != 1:
            raise RuntimeError("floor: optimistic update matched no row")
        conn.execute(self.insert_event, p["event"])

    def one(self, p: dict[str, Any]) -> None:
        """One command's read and writes in their own transaction."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            self._command(conn, p)
            conn.commit()


class _Batch:
    """Registered suggestions present in every database, and what each side needs to transfer them."""

    def __init__(self, sids: list[str], changes: list[Change], same: list[list[Statement]],
                 lean: list[dict[str, Any]]) -> None:
        self.sids, self.changes, self.same, self.lean = sids, changes, same, lean


class _Bench:
    """Three SQLite files alike — ours, the same-writes floor's, the lean floor's — and a supply of suggestions."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ours = SqlStore.open(f"sqlite:///{directory / 'ours.db'}")
        # the floors' databases are created and preloaded through SqlStore; the floors use engines of their own
        self.preload = [SqlStore.open(f"sqlite:///{directory / name}") for name in ("floor.db", "lean.db")]
        self.floor_engine = create_engine(f"sqlite:///{directory / 'floor.db'}")
        self.lean_engine = create_engine(f"sqlite:///{directory / 'lean.db'}")
        self.floor = SameFloor(self.floor_engine)
        self.lean = LeanFloor(self.lean_engine)
        self.batch = 0

    def prepare(self, n: int) -> _Batch:
        """``n`` registered suggestions in every database, and each side's means to transfer them."""
        self.batch += 1
        rec = Recorder()
        flow, _ = make_flow(rec, prefix=f"B{self.batch:03d}-")
        sids = registered(flow, n)
        setup = list(rec.changes)
        for store in (self.ours, *self.preload):
            commit_all(store, setup)
        for sid in sids:
            flow.transfer(sid, OFFICE, lead_unit=LEAD)
        transfers = rec.changes[len(setup):]
        # the same commands on a copy of the floor's database: their statements, and the event rows they wrote
        scratch_path = self.directory / f"scratch{self.batch}.db"
        copy_database(self.directory / "floor.db", scratch_path)
        scratch = SqlStore.open(f"sqlite:///{scratch_path}")
        same = captured_commands(scratch, sids)
        with scratch.engine.connect() as conn:
            found = {(r.suggestion_id, r.version): dict(r._mapping)
                     for r in conn.execute(sa.select(_events).where(_events.c.kind == "transfer"))}
        scratch.close()
        scratch_path.unlink()
        lean = [LeanFloor.params(found[(c.event.suggestion_id, c.event.version)], c.expected_version)
                for c in transfers]
        return _Batch(sids, transfers, same, lean)

    def ours_commands(self, sids: list[str]) -> float:
        flow, _ = make_flow(self.ours)

        def work() -> int:
            for sid in sids:
                flow.transfer(sid, OFFICE, lead_unit=LEAD)
            return len(sids)

        return per_op(work)

    def floor_commands(self, commands: list[list[Statement]]) -> float:
        one = self.floor.one

        def work() -> int:
            for statements in commands:
                one(statements)
            return len(commands)

        return per_op(work)

    def lean_commands(self, params: list[dict[str, Any]]) -> float:
        one = self.lean.one

        def work() -> int:
            for p in params:
                one(p)
            return len(params)

        return per_op(work)

    def ours_bulk(self, sids: list[str]) -> float:
        flow, _ = make_flow(self.ours)
        chunks = list(batches(sids, BATCH))
        store = self.ours

        def work() -> int:
            for chunk in chunks:
                with store.batch():
                    for sid in chunk:
                        flow.transfer(sid, OFFICE, lead_unit=LEAD)
            return len(sids)

        return per_op(work)

    def floor_bulk(self, commands: list[list[Statement]]) -> float:
        chunks = list(batches(commands, BATCH))
        many = self.floor.many

        def work() -> int:
            for chunk in chunks:
                many(chunk)
            return len(commands)

        return per_op(work)

    def ours_commits(self, changes: list[Change]) -> float:
        """``SqlStore.commit`` of recorded Changes: our store's writes alone, no read, no Flow."""
        commit = self.ours.commit

        def work() -> int:
            for c in changes:
                commit(c)
            return len(changes)

        return per_op(work)

    def round(self, n_cmd: int, n_bulk: int, floor_first: bool) -> tuple[float, ...]:
        """One round: each side writes the same fresh suggestions in its own database, back to back."""
        b = self.prepare(n_cmd)
        if floor_first:
            lean_cmd, floor_cmd, ours_cmd = (self.lean_commands(b.lean), self.floor_commands(b.same),
                                             self.ours_commands(b.sids))
        else:
            ours_cmd, floor_cmd, lean_cmd = (self.ours_commands(b.sids), self.floor_commands(b.same),
                                             self.lean_commands(b.lean))
        b = self.prepare(n_cmd)
        self.floor.many(b.same)  # keep the databases alike
        for p in b.lean:
            self.lean.one(p)
        commits = self.ours_commits(b.changes)
        b = self.prepare(n_bulk)
        for p in b.lean:
            self.lean.one(p)
        if floor_first:
            floor_bulk, ours_bulk = self.floor_bulk(b.same), self.ours_bulk(b.sids)
        else:
            ours_bulk, floor_bulk = self.ours_bulk(b.sids), self.floor_bulk(b.same)
        return ours_cmd, floor_cmd, ours_bulk, floor_bulk, commits, lean_cmd

    def check(self) -> None:
        """Ours and the same-writes floor hold identical tables; the lean floor the same rows and as many events."""
        ours = sa.MetaData()
        ours.reflect(self.ours.engine)
        with self.ours.engine.connect() as a, self.floor_engine.connect() as b, self.lean_engine.connect() as c:
            for table in ours.sorted_tables:
                if sorted(a.execute(sa.select(table)).all()) != sorted(b.execute(sa.select(table)).all()):
                    raise RuntimeError(f"storage: ours and the floor wrote different {table.name}")
            q_rows = sa.select(_rows.c.id, _rows.c.version, _rows.c.state)
            q_events = sa.select(sa.func.count()).select_from(_events)
            if sorted(a.execute(q_rows).all()) != sorted(c.execute(q_rows).all()):
                raise RuntimeError("storage: ours and the lean floor wrote different rows")
            if a.execute(q_events).scalar() != c.execute(q_events).scalar():
                raise RuntimeError("storage: ours and the lean floor wrote different numbers of events")

    def close(self) -> None:
        self.ours.close()
        for store in self.preload:
            store.close()
        self.floor_engine.dispose()
        self.lean_engine.dispose()


def run(quick: bool) -> list[Figure]:
    n_cmd, n_bulk, rounds = (150, 400, 2) if quick else (500, 4000, 12)
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_storage_"))
    try:
        bench = _Bench(directory)
        log(f"storage: {rounds} paired rounds, {n_cmd} single commands / {n_bulk} batched commands per side")
        results = [bench.round(n_cmd, n_bulk, floor_first=r % 2 == 1) for r in range(rounds)]
        bench.check()
        bench.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ours_cmd, floor_cmd, ours_bulk, floor_bulk, commits, lean_cmd = (median([r[i] for r in results])
                                                                      for i in range(6))
    cmd_ratios = [r[1] / r[0] for r in results]
    bulk_ratios = [r[3] / r[2] for r in results]
    lean_ratios = [r[5] / r[0] for r in results]

    def per_round(ratios: list[float]) -> str:
        return f"median of {rounds} paired rounds (ratio per round: {', '.join(f'{x:.2f}' for x in ratios)})"

    return [
        figure(
            "storage.command_vs_core_floor",
            value=1 / ours_cmd, baseline=1 / floor_cmd, ratio=median(cmd_ratios),
            unit="commands/s", ratio_is="throughput: ours / floor (higher is better)", target=TARGET_COMMAND,
            op=">=", digits=0,
            note="Flow.transfer on SqlStore(sqlite file, WAL), 1 txn per command, vs the same command's "
                 "statements and parameters replayed through exec_driver_sql, 1 txn per command; "
                 + per_round(cmd_ratios),
            ours_us=round(ours_cmd * 1e6, 1), floor_us=round(floor_cmd * 1e6, 1),
            store_commit_us=round(commits * 1e6, 1),
        ),
        figure(
            "storage.bulk_vs_core_floor",
            value=1 / ours_bulk, baseline=1 / floor_bulk, ratio=median(bulk_ratios),
            unit="commands/s", ratio_is="throughput: ours / floor (higher is better)", digits=0,
            note=f"Flow.transfer in SqlStore.batch(), {BATCH} commands per txn, vs the same commands' statements "
                 f"replayed, {BATCH} commands per txn; " + per_round(bulk_ratios),
            ours_us=round(ours_bulk * 1e6, 1), floor_us=round(floor_bulk * 1e6, 1),
        ),
        figure(
            "storage.command_vs_lean_floor",
            value=1 / ours_cmd, baseline=1 / lean_cmd, ratio=median(lean_ratios),
            unit="commands/s", ratio_is="throughput: ours / lean floor (higher is better)", digits=0,
            note="Flow.transfer as above vs raw Core selecting the row, updating state+version with a version "
                 "check and inserting the event, 1 txn per command (no personal data, unit links, log counter "
                 "or outbox); " + per_round(lean_ratios),
            ours_us=round(ours_cmd * 1e6, 1), floor_us=round(lean_cmd * 1e6, 1),
        ),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
