"""SQL storage on SQLite against a raw SQLAlchemy Core floor doing the same read and writes.

Two figures, both throughput ratios, ours / floor (higher is better):

``storage.command_vs_core_floor`` — target ≥ 0.8.
    Ours: ``Flow.transfer`` on ``SqlStore("sqlite:///…")`` (a file database, WAL,
    ``synchronous=NORMAL``: what :func:`jianyi_flow.sql.create_engine` sets), one
    transaction per command: read the row, run the command (permission, due times,
    hash-sealed event), then one write transaction (``BEGIN IMMEDIATE``; update the row
    with a version check, refresh its unit links, take the next log position, insert the
    event, insert the outbox message).
    Floor: raw SQLAlchemy Core on the same schema and engine settings, statements built
    once, one transaction per command (``BEGIN IMMEDIATE``): ``SELECT`` the row by id,
    ``UPDATE … SET state, version, updated_at WHERE id = ? AND version = ?`` (checking the
    row count), ``INSERT`` the history event (the very event row our store wrote, read back
    before the clock starts).  The floor does no domain work, no outbox and no unit links:
    it is the least a command's read and writes can cost through Core.

``storage.bulk_vs_core_floor`` — no target.
    The same, 200 commands per transaction: ours runs ``Flow.transfer`` inside
    ``SqlStore.batch()`` (each command a savepoint), the floor runs its read and two writes
    for 200 suggestions in one ``BEGIN IMMEDIATE`` transaction.

Both sides start from identical databases (the same registered suggestions, written
through ``SqlStore.commit`` before timing).  Each round times both sides back to back on
equal fresh batches (which side goes first alternates); the ratio is the median of the
per-round ratios, and value and baseline are the medians of each side.  The figure also
carries ``store_commit_us``: ``SqlStore.commit`` of recorded Changes (the store's writes
with no read and no Flow), which splits our cost between the store and the command.

Run alone: ``python -m benchmarks.storage [--quick]``.
"""

from __future__ import annotations

import itertools
import shutil
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

# Lightweight table clauses: the floor passes raw column values (as SQLite stores them), no type processing.
EVENT_COLUMNS = ("suggestion_id", "version", "seq", "kind", "from_state", "to_state", "actor_id", "actor_role",
                 "actor_unit", "actor_name", "at", "reason", "changes", "payload", "prev_hash", "hash", "notices",
                 "workflow", "policy", "mac")
_rows = sa.table("jianyi_suggestions", sa.column("id"), sa.column("state"), sa.column("version"),
                 sa.column("updated_at"), sa.column("data"))
_all_row_columns = sa.text("*")
_events = sa.table("jianyi_events", *(sa.column(c) for c in EVENT_COLUMNS))


def commit_all(store: SqlStore, changes: Sequence[Change]) -> None:
    """Write recorded Changes, 500 per transaction (set-up, never timed)."""
    for chunk in batches(changes, 500):
        with store.batch():
            for c in chunk:
                store.commit(c)


class Floor:
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

    def many(self, ps: Sequence[dict[str, Any]]) -> None:
        """Several commands' reads and writes in one transaction."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for p in ps:
                self._command(conn, p)
            conn.commit()


class _Bench:
    """Two identical SQLite files, ours and the floor's, and a supply of registered suggestions."""

    def __init__(self, directory: Path) -> None:
        self.ours = SqlStore.open(f"sqlite:///{directory / 'ours.db'}")
        self.floor_store = SqlStore.open(f"sqlite:///{directory / 'floor.db'}")  # only to preload it
        self.floor_engine = create_engine(f"sqlite:///{directory / 'floor.db'}")
        self.floor = Floor(self.floor_engine)
        self.batch = 0

    def prepare(self, n: int) -> tuple[list[str], list[Change], list[dict[str, Any]]]:
        """``n`` registered suggestions in both databases; their ids, transfer Changes and the floor's params."""
        self.batch += 1
        rec = Recorder()
        flow, _ = make_flow(rec, prefix=f"B{self.batch:03d}-")
        sids = registered(flow, n)
        setup = list(rec.changes)
        commit_all(self.ours, setup)
        commit_all(self.floor_store, setup)
        for sid in sids:
            flow.transfer(sid, OFFICE, lead_unit=LEAD)
        transfers = rec.changes[len(setup):]
        # the event rows exactly as SqlStore writes them: written to a scratch database and read back raw
        scratch = SqlStore.open("sqlite://")
        commit_all(scratch, setup)
        commit_all(scratch, transfers)
        with scratch.engine.connect() as conn:
            found = {(r.suggestion_id, r.version): dict(r._mapping)
                     for r in conn.execute(sa.select(_events).where(_events.c.version == 3))}
        scratch.close()
        params = [Floor.params(found[(c.event.suggestion_id, c.event.version)], c.expected_version)
                  for c in transfers]
        return sids, transfers, params

    def ours_commands(self, sids: list[str]) -> float:
        flow, _ = make_flow(self.ours)

        def work() -> int:
            for sid in sids:
                flow.transfer(sid, OFFICE, lead_unit=LEAD)
            return len(sids)

        return per_op(work)

    def floor_commands(self, params: list[dict[str, Any]]) -> float:
        one = self.floor.one

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

    def floor_bulk(self, params: list[dict[str, Any]]) -> float:
        chunks = list(batches(params, BATCH))
        many = self.floor.many

        def work() -> int:
            for chunk in chunks:
                many(chunk)
            return len(params)

        return per_op(work)

    def ours_commits(self, changes: list[Change]) -> float:
        """``SqlStore.commit`` of recorded Changes: our store's writes alone, no read, no Flow."""
        commit = self.ours.commit

        def work() -> int:
            for c in changes:
                commit(c)
            return len(changes)

        return per_op(work)

    def round(self, n_cmd: int, n_bulk: int, floor_first: bool) -> tuple[float, float, float, float, float]:
        """One round: each side writes the same fresh suggestions in its own database, back to back."""
        sids, _, params = self.prepare(n_cmd)
        if floor_first:
            floor_cmd, ours_cmd = self.floor_commands(params), self.ours_commands(sids)
        else:
            ours_cmd, floor_cmd = self.ours_commands(sids), self.floor_commands(params)
        _, changes, params = self.prepare(n_cmd)
        self.floor.many(params)  # keep both databases alike
        commits = self.ours_commits(changes)
        sids, _, params = self.prepare(n_bulk)
        if floor_first:
            floor_bulk, ours_bulk = self.floor_bulk(params), self.ours_bulk(sids)
        else:
            ours_bulk, floor_bulk = self.ours_bulk(sids), self.floor_bulk(params)
        return ours_cmd, floor_cmd, ours_bulk, floor_bulk, commits

    def check(self) -> None:
        """Both databases hold the same rows (id, version, state) and as many events."""
        q_rows = sa.select(_rows.c.id, _rows.c.version, _rows.c.state)
        q_events = sa.select(sa.func.count()).select_from(_events)
        with self.ours.engine.connect() as a, self.floor_engine.connect() as b:
            if sorted(a.execute(q_rows).all()) != sorted(b.execute(q_rows).all()):
                raise RuntimeError("storage: ours and the floor wrote different rows")
            if a.execute(q_events).scalar() != b.execute(q_events).scalar():
                raise RuntimeError("storage: ours and the floor wrote different numbers of events")

    def close(self) -> None:
        self.ours.close()
        self.floor_store.close()
        self.floor_engine.dispose()


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
    ours_cmd, floor_cmd, ours_bulk, floor_bulk, commits = (median([r[i] for r in results]) for i in range(5))
    cmd_ratios = [r[1] / r[0] for r in results]
    bulk_ratios = [r[3] / r[2] for r in results]
    return [
        figure(
            "storage.command_vs_core_floor",
            value=1 / ours_cmd, baseline=1 / floor_cmd, ratio=median(cmd_ratios),
            unit="commands/s", ratio_is="throughput: ours / floor (higher is better)", target=TARGET_COMMAND,
            op=">=", digits=0,
            note="Flow.transfer on SqlStore(sqlite file, WAL), 1 txn per command, vs raw Core in 1 txn per "
                 "command: select the row, update state+version with a version check, insert the event; "
                 f"median of {rounds} paired rounds (ratio per round: {', '.join(f'{x:.2f}' for x in cmd_ratios)})",
            ours_us=round(ours_cmd * 1e6, 1), floor_us=round(floor_cmd * 1e6, 1),
            store_commit_us=round(commits * 1e6, 1),
        ),
        figure(
            "storage.bulk_vs_core_floor",
            value=1 / ours_bulk, baseline=1 / floor_bulk, ratio=median(bulk_ratios),
            unit="commands/s", ratio_is="throughput: ours / floor (higher is better)", digits=0,
            note=f"Flow.transfer in SqlStore.batch(), {BATCH} commands per txn, vs the floor's select, update and "
                 f"insert for {BATCH} commands per txn; median of {rounds} paired rounds (ratio per round: "
                 f"{', '.join(f'{x:.2f}' for x in bulk_ratios)})",
            ours_us=round(ours_bulk * 1e6, 1), floor_us=round(floor_bulk * 1e6, 1),
        ),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
