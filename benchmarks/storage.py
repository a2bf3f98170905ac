"""SQL storage on SQLite against a raw SQLAlchemy Core floor doing the same writes.

Two figures, both throughput ratios, ours / floor (higher is better):

``storage.command_vs_core_floor`` — target ≥ 0.6.
    Ours: ``Flow.transfer`` on ``SqlStore("sqlite:///…")`` (a file database, WAL,
    ``synchronous=NORMAL``: what :func:`jianyi_flow.sql.create_engine` sets), one
    transaction per command.  That is: load the row (a read), run the command, and commit
    it (``BEGIN IMMEDIATE``, update the row, rewrite its unit links, insert the event,
    insert the outbox message).
    Floor: raw SQLAlchemy Core against the same schema (:mod:`jianyi_flow.storage.sql.schema`),
    statements built once, one transaction per command, issuing exactly the writes our
    store issues for a transfer — ``UPDATE jianyi_suggestions SET … WHERE id=? AND
    version=?`` (checking the row count), ``DELETE`` + ``INSERT`` of the unit links,
    ``INSERT`` event, ``INSERT`` outbox message — with the parameter dicts prepared before
    the clock starts.  The floor does not read the row first and does no domain work:
    it is the least a command's writes can cost through Core.

``storage.bulk_vs_core_floor`` — target ≥ 0.5.
    Ours: ``SqlStore.commit_many`` with 200 Changes per transaction (the Changes of real
    transfers, recorded on a MemoryStore first).  Floor: the same writes, 200 commands per
    transaction, each statement sent once per batch with ``executemany``.

Both sides use the same engine settings and start from identical databases (the same
registered suggestions, written with ``commit_many`` before timing).  Each round times
both sides back to back on equal fresh batches (which side goes first alternates); the
ratio is the median of the per-round ratios, and value and baseline are the medians of
each side, because paired rounds cancel the slow drifts of a shared machine's load.  The
figure also carries ``store_commit_us``: ``SqlStore.commit`` of the very same Changes
(our store's writes with no read and no Flow), which splits our cost between the store
and the command around it.

Run alone: ``python -m benchmarks.storage [--quick]``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from jianyi_flow import Change
from jianyi_flow.domain.codec import encode_value
from jianyi_flow.sql import SqlStore, create_engine
from jianyi_flow.storage.sql.schema import events, outbox, suggestion_units, suggestions
from jianyi_flow.storage.sql.store import COLUMN_FIELDS, DATA_FIELDS

from ._common import Figure, figure, log, median, per_op
from ._fixtures import LEAD, OFFICE, Recorder, batches, make_flow, registered

TARGET_COMMAND = 0.6
TARGET_BULK = 0.5
BATCH = 200


# --- the floor: the same writes through raw Core ------------------------------------------------
class Floor:
    """Raw SQLAlchemy Core writes of recorded Changes (updates only), statements built once."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        s, su = suggestions, suggestion_units
        self.update = s.update().where(s.c.id == bindparam("w_id"), s.c.version == bindparam("w_version"))
        self.delete_units = su.delete().where(su.c.suggestion_id == bindparam("w_id"))
        self.insert_units = su.insert()
        self.insert_event = events.insert()
        self.insert_outbox = outbox.insert()

    @staticmethod
    def params(change: Change) -> dict[str, Any]:
        """The statement parameters of one update Change (prepared before timing)."""
        row = change.suggestion
        e = change.event
        units = row.units()
        return {
            "row": {
                "w_id": row.id,
                "w_version": change.expected_version,
                **{name: getattr(row, name) for name in COLUMN_FIELDS if name != "id"},
                "state": row.state.value,
                "units_key": json.dumps(list(units), ensure_ascii=False),
                "data": {name: encode_value(name, getattr(row, name)) for name in DATA_FIELDS},
            },
            "id": {"w_id": row.id},
            "units": [{"suggestion_id": row.id, "unit": u} for u in units],
            "event": {
                "suggestion_id": e.suggestion_id,
                "version": e.version,
                "kind": e.kind,
                "from_state": None if e.from_state is None else e.from_state.value,
                "to_state": e.to_state.value,
                "actor_id": e.actor.id,
                "actor_role": e.actor.role.value,
                "actor_unit": e.actor.unit,
                "actor_name": e.actor.name,
                "at": e.at,
                "reason": e.reason,
                "changes": dict(e.changes),
                "payload": dict(e.payload),
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            },
            "messages": [
                {"topic": m.topic, "suggestion_id": m.suggestion_id, "version": m.version, "recipient": m.recipient,
                 "payload": dict(m.payload), "created_at": m.created_at, "attempts": 0}
                for m in change.messages
            ],
        }

    def one(self, p: dict[str, Any]) -> None:
        """One command's writes in their own transaction."""
        with self.engine.begin() as conn:
            if conn.execute(self.update, p["row"]).rowcount != 1:
                raise RuntimeError("floor: optimistic update matched no row")
            conn.execute(self.delete_units, p["id"])
            if p["units"]:
                conn.execute(self.insert_units, p["units"])
            conn.execute(self.insert_event, p["event"])
            if p["messages"]:
                conn.execute(self.insert_outbox, p["messages"])

    def many(self, ps: Sequence[dict[str, Any]]) -> None:
        """Several commands' writes in one transaction, one executemany per statement."""
        with self.engine.begin() as conn:
            if conn.execute(self.update, [p["row"] for p in ps]).rowcount != len(ps):
                raise RuntimeError("floor: optimistic update matched fewer rows")
            conn.execute(self.delete_units, [p["id"] for p in ps])
            units = [u for p in ps for u in p["units"]]
            if units:
                conn.execute(self.insert_units, units)
            conn.execute(self.insert_event, [p["event"] for p in ps])
            messages = [m for p in ps for m in p["messages"]]
            if messages:
                conn.execute(self.insert_outbox, messages)


class _Bench:
    """Two identical SQLite files, ours and the floor's, and a supply of registered suggestions."""

    def __init__(self, directory: Path) -> None:
        self.ours = SqlStore.open(f"sqlite:///{directory / 'ours.db'}")
        SqlStore.open(f"sqlite:///{directory / 'floor.db'}").close()  # same migrations, same schema
        self.floor_engine = create_engine(f"sqlite:///{directory / 'floor.db'}")
        self.floor_store = SqlStore(self.floor_engine)  # only to preload the floor's database
        self.floor = Floor(self.floor_engine)
        self.batch = 0

    def prepare(self, n: int) -> tuple[list[str], list[Change]]:
        """``n`` registered suggestions in both databases; their ids and their transfer Changes."""
        self.batch += 1
        rec = Recorder()
        flow, _ = make_flow(rec, prefix=f"B{self.batch:03d}-")
        sids = registered(flow, n)
        setup = list(rec.changes)
        for chunk in batches(setup, 500):
            self.ours.commit_many(chunk)
            self.floor_store.commit_many(chunk)
        for sid in sids:
            flow.transfer(sid, OFFICE, lead_unit=LEAD)
        return sids, rec.changes[len(setup):]

    def ours_commands(self, sids: list[str]) -> float:
        flow, _ = make_flow(self.ours)

        def work() -> int:
            for sid in sids:
                flow.transfer(sid, OFFICE, lead_unit=LEAD)
            return len(sids)

        return per_op(work)

    def floor_commands(self, changes: list[Change]) -> float:
        params = [Floor.params(c) for c in changes]
        one = self.floor.one

        def work() -> int:
            for p in params:
                one(p)
            return len(params)

        return per_op(work)

    def ours_bulk(self, changes: list[Change]) -> float:
        chunks = list(batches(changes, BATCH))
        commit_many = self.ours.commit_many

        def work() -> int:
            for chunk in chunks:
                commit_many(chunk)
            return len(changes)

        return per_op(work)

    def floor_bulk(self, changes: list[Change]) -> float:
        chunks = list(batches([Floor.params(c) for c in changes], BATCH))
        many = self.floor.many

        def work() -> int:
            for chunk in chunks:
                many(chunk)
            return len(changes)

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
        sids, changes = self.prepare(n_cmd)
        if floor_first:
            floor_cmd, ours_cmd = self.floor_commands(changes), self.ours_commands(sids)
        else:
            ours_cmd, floor_cmd = self.ours_commands(sids), self.floor_commands(changes)
        _, changes = self.prepare(n_cmd)
        self.floor_store.commit_many(changes)  # keep both databases alike
        commits = self.ours_commits(changes)
        _, changes = self.prepare(n_bulk)
        if floor_first:
            floor_bulk, ours_bulk = self.floor_bulk(changes), self.ours_bulk(changes)
        else:
            ours_bulk, floor_bulk = self.ours_bulk(changes), self.floor_bulk(changes)
        return ours_cmd, floor_cmd, ours_bulk, floor_bulk, commits

    def check(self) -> None:
        """Both databases hold the same rows and events (the floor wrote what we wrote)."""
        q_rows = sa.select(suggestions.c.id, suggestions.c.version, suggestions.c.state, suggestions.c.data)
        q_events = sa.select(sa.func.count()).select_from(events)
        with self.ours.engine.connect() as a, self.floor_engine.connect() as b:
            ours = sorted(a.execute(q_rows).all())
            theirs = sorted(b.execute(q_rows).all())
            if ours != theirs:
                raise RuntimeError("storage: ours and the floor wrote different rows")
            if a.execute(q_events).scalar() != b.execute(q_events).scalar():
                raise RuntimeError("storage: ours and the floor wrote different numbers of events")

    def close(self) -> None:
        self.ours.close()
        self.floor_store.close()
        self.floor_engine.dispose()


def run(quick: bool) -> list[Figure]:
    n_cmd, n_bulk, rounds = (300, 1000, 4) if quick else (500, 4000, 12)
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_storage_"))
    try:
        bench = _Bench(directory)
        log(f"storage: {rounds} paired rounds, {n_cmd} single commands / {n_bulk} bulk changes per side")
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
            note="Flow.transfer on SqlStore(sqlite file, WAL), 1 txn per command, vs raw Core doing the same "
                 "writes (update row, relink units, insert event, insert outbox), 1 txn per command; "
                 f"median of {rounds} paired rounds (ratio per round: "
                 f"{', '.join(f'{x:.2f}' for x in cmd_ratios)})",
            ours_us=round(ours_cmd * 1e6, 1), floor_us=round(floor_cmd * 1e6, 1),
            store_commit_us=round(commits * 1e6, 1),
        ),
        figure(
            "storage.bulk_vs_core_floor",
            value=1 / ours_bulk, baseline=1 / floor_bulk, ratio=median(bulk_ratios),
            unit="changes/s", ratio_is="throughput: ours / floor (higher is better)", target=TARGET_BULK,
            op=">=", digits=0,
            note=f"SqlStore.commit_many, {BATCH} transfer Changes per txn, vs the same writes through raw Core, "
                 f"{BATCH} per txn with executemany; median of {rounds} paired rounds (ratio per round: "
                 f"{', '.join(f'{x:.2f}' for x in bulk_ratios)})",
            ours_us=round(ours_bulk * 1e6, 1), floor_us=round(floor_bulk * 1e6, 1),
        ),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
