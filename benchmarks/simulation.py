"""Simulation: the whole 2024 Yongchuan campaign with 100,000 suggestions, on MemoryStore and SQLite.

``CampaignSimulator(yongchuan_2024(), store, seed=1, suggestions=N).run()`` drives every
suggestion through ``Flow`` with a virtual clock (arrivals over the receiving phases,
misroutes, slow units, extensions, daily ``tick``s, ratings, reopenings, the summary
phase); on a store with ``batch()`` each agenda chunk of 200 items is one transaction.
N = 100,000 (``--quick``: 300).  Each run is a fresh child process, so its peak RSS
(``VmHWM``) is its own; each timed child starts after ``os.sync()`` (not timed), so that no
child waits for the write-back of an earlier child's database.

The baseline of every time figure is the Core floor: raw SQLAlchemy Core replaying the
writes of the SQLite run, batched — every event the run wrote, in commit order, as one row
write (``INSERT`` of the suggestion at version 1, else ``UPDATE … WHERE id=? AND
version=?`` of every column) plus one event ``INSERT``, plus the outbox messages the event
queued and, with the suggestion's ``INSERT``, its unit links, 200 events per transaction
with ``executemany``, on a fresh file database with the same schema and engine settings
(parameters are read from the SQLite run's database before the clock runs).  The floor
does no reads, no hashing and no validation.  Full runs go in the order memory, SQLite,
batching SQLite, floor, floor, batching SQLite, SQLite, so a steady drift of the machine's
speed moves the means alike; ``--quick`` runs each child once.

``simulation.sqlite.vs_floor`` — cost, ours / floor (lower is better), target ≤ 2.0: the
    simulation on ``SqlStore`` (a SQLite file, WAL) against the floor.
``simulation.sqlite_batching.vs_floor`` — cost, ours / floor, target ≤ 2.0: the same simulation
    on ``BatchingSqlStore`` (a SQLite file, WAL), whose batches buffer their commits and write
    them with ``executemany`` at the block's end or before a read that needs them, against the
    same floor.  Its event log (suggestion, version, seq and hash of every event) must equal the
    ``SqlStore`` run's, or the group fails.
``simulation.memory.vs_floor`` — cost, ours / floor, target ≤ 0.8: the same simulation on
    the plain :class:`MemoryStore` against the same floor.
``simulation.sqlite.peak_rss`` — value ≤ 512 MiB: peak RSS of the SQLite child (the larger
    of its runs); ratio against an idle child that imported the same modules.
``simulation.memory.peak_rss`` — the same for the MemoryStore child, no target (it holds
    every suggestion and event in memory: see ``memory.bytes_per_suggestion``).

Each simulation child also reports the garbage collector's own time during ``run()``
(``gc_s``) and its collections by generation (``gc_collections``).

Run alone: ``python -m benchmarks.simulation [--quick] [--suggestions N]``; one part:
``python -m benchmarks.simulation --child memory|sqlite|sqlite_batching N [DB]`` (prints
seconds, commands, peak RSS and, on SQLite, a digest of the event log as JSON),
``--child floor SOURCE_DB TARGET_DB``, ``--child idle``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import Figure, figure, log, peak_rss_bytes, run_child

TARGET_SQLITE_VS_FLOOR = 2.0
TARGET_MEMORY_VS_FLOOR = 0.8
TARGET_RSS_MIB = 512.0
BATCH = 200
SEED = 1


# --- the children ------------------------------------------------------------------------------
def _simulate(kind: str, n: int, db: str | None) -> dict[str, Any]:
    from jianyi_flow import MemoryStore
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.simulation import CampaignSimulator
    from jianyi_flow.sql import BatchingSqlStore, SqlStore

    store: Any
    if kind == "memory":
        store = MemoryStore()
    elif kind == "sqlite_batching":
        store = BatchingSqlStore.open(f"sqlite:///{db}")
    else:
        store = SqlStore.open(f"sqlite:///{db}")
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            log(f"simulation/{kind}: {done:,}/{total:,} arrived")

    collector = _CollectorTime()
    started = time.perf_counter()
    gc.callbacks.append(collector)
    try:
        result = CampaignSimulator(yongchuan_2024(), store, seed=SEED, suggestions=n, progress=progress).run()
    finally:
        gc.callbacks.remove(collector)
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "commands": result.commands, "ticks": result.ticks,
            "log_digest": None if db is None else _log_digest(db),
            "peak_rss": peak_rss_bytes(), "by_command": dict(result.by_command),
            "batched": callable(getattr(store, "batch", None)),
            "gc_s": round(collector.seconds, 3), "gc_collections": collector.collections}


def _log_digest(db: str) -> str:
    """SHA-256 of every event's suggestion, version, seq and hash in log order (not timed)."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(db)
    try:
        for sid, version, seq, event_hash in conn.execute(
                "SELECT suggestion_id, version, seq, hash FROM jianyi_events ORDER BY seq"):
            digest.update(f"{sid}:{version}:{seq}:{event_hash}\n".encode())
    finally:
        conn.close()
    return digest.hexdigest()


class _CollectorTime:
    """A ``gc.callbacks`` entry that sums the collector's own time and counts its collections, by generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


def _floor(source: str, target: str) -> dict[str, Any]:
    """Replay the source database's events as raw Core writes, 200 per transaction; time the writes only."""
    import sqlalchemy as sa
    from sqlalchemy import bindparam

    from jianyi_flow.sql import SqlStore, create_engine, metadata

    suggestions, events, outbox, suggestion_units = (
        metadata.tables[name] for name in ("jianyi_suggestions", "jianyi_events", "jianyi_outbox",
                                           "jianyi_suggestion_units"))

    SqlStore.open(f"sqlite:///{target}").close()  # the schema, by the shipped migrations
    engine = create_engine(f"sqlite:///{target}")
    s = suggestions
    insert_row = s.insert()
    update_row = s.update().where(s.c.id == bindparam("w_id"), s.c.version == bindparam("w_version"))
    insert_event = events.insert()
    insert_message = outbox.insert()
    insert_unit = suggestion_units.insert()

    src = sqlite3.connect(source)
    # the final rows give every written row its size; typed values come back through SQLAlchemy
    src_engine = sa.create_engine(f"sqlite:///{source}")
    with src_engine.connect() as conn:
        rows = {r.id: dict(r._mapping) for r in conn.execute(sa.select(s))}
        # every message the run queued, by the event that queued it (no id: the target numbers them)
        messages: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for m in conn.execute(sa.select(*[c for c in outbox.columns if c.name != "id"]).order_by(outbox.c.id)):
            messages.setdefault((m.suggestion_id, m.version), []).append(dict(m._mapping))
        units: dict[str, list[dict[str, Any]]] = {}
        for u in conn.execute(sa.select(suggestion_units)):
            units.setdefault(u.suggestion_id, []).append(dict(u._mapping))
    src_engine.dispose()
    total = src.execute("SELECT count(*) FROM jianyi_events").fetchone()[0]
    event_columns = [c.name for c in events.columns]
    seconds = 0.0
    written = 0
    sent = 0
    chunk_size = 20_000
    src_events_engine = sa.create_engine(f"sqlite:///{source}")
    with src_events_engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk_size).execute(
            sa.select(events).order_by(sa.text("jianyi_events.rowid")))
        for part in result.partitions(chunk_size):
            evs = [dict(zip(event_columns, r, strict=True)) for r in part]
            plans: list[tuple[list[dict[str, Any]], ...]] = []
            for i in range(0, len(evs), BATCH):
                batch = evs[i:i + BATCH]
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                links: list[dict[str, Any]] = []
                queued: list[dict[str, Any]] = []
                for e in batch:
                    sid = e["suggestion_id"]
                    row = rows[sid]
                    if e["version"] == 1:
                        inserts.append({**row, "version": 1, "state": e["to_state"], "updated_at": e["at"]})
                        links.extend(units.get(sid, ()))
                    else:
                        values = {k: v for k, v in row.items() if k != "id"}
                        updates.append({**values, "version": e["version"], "state": e["to_state"],
                                        "updated_at": e["at"], "w_id": row["id"], "w_version": e["version"] - 1})
                    queued.extend(messages.get((sid, e["version"]), ()))
                plans.append((inserts, updates, batch, links, queued))
            started = time.perf_counter()
            for inserts, updates, batch, links, queued in plans:
                with engine.begin() as c:
                    if inserts:
                        c.execute(insert_row, inserts)
                    if links:
                        c.execute(insert_unit, links)
                    if updates and c.execute(update_row, updates).rowcount != len(updates):
                        raise RuntimeError("floor: an update matched no row")
                    c.execute(insert_event, batch)
                    if queued:
                        c.execute(insert_message, queued)
            seconds += time.perf_counter() - started
            written += len(evs)
            sent += sum(len(p[4]) for p in plans)
    src_events_engine.dispose()
    src.close()
    engine.dispose()
    if written != total:
        raise RuntimeError(f"floor: wrote {written} events of {total}")
    if sent != sum(len(m) for m in messages.values()):
        raise RuntimeError(f"floor: wrote {sent} messages of {sum(len(m) for m in messages.values())}")
    return {"seconds": seconds, "events": written, "messages": sent, "peak_rss": peak_rss_bytes()}


def _idle() -> dict[str, Any]:
    import jianyi_flow.presets
    import jianyi_flow.simulation
    import jianyi_flow.sql  # noqa: F401

    return {"peak_rss": peak_rss_bytes()}


def child(args: list[str]) -> dict[str, Any]:
    kind = args[0]
    if kind in ("memory", "sqlite", "sqlite_batching"):
        return _simulate(kind, int(args[1]), args[2] if len(args) > 2 else None)
    if kind == "floor":
        return _floor(args[1], args[2])
    if kind == "idle":
        return _idle()
    raise SystemExit(f"unknown child {kind!r}")


# --- the parent --------------------------------------------------------------------------------
def _settle() -> float:
    """Write back what the earlier children left dirty (``os.sync``) before the next one starts; seconds taken.

    Each SQLite child writes many MiB of database pages, which the kernel may still be
    writing back when the next child starts; a checkpoint's ``fsync`` there would then wait
    for them too and charge one child for another's writes.  Not timed in any figure.
    """
    sync = getattr(os, "sync", None)  # Unix only
    started = time.perf_counter()
    if sync is not None:
        sync()
    return time.perf_counter() - started


def _remove_database(path: Path) -> None:
    """Delete an SQLite file and its WAL and shared-memory files (a child's output nobody reads again)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def run(quick: bool, suggestions: int | None = None) -> list[Figure]:
    """The figures; ``suggestions`` overrides the size (the full run's order of children is kept)."""
    n = suggestions or (300 if quick else 100_000)
    timeout = 600 if quick else 7200
    mod = "benchmarks.simulation"
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_simulation_"))
    try:
        synced: list[float] = []
        idle = run_child(mod, ["--child", "idle"], timeout=120)
        log(f"simulation: {n:,} suggestions on MemoryStore (child process)")
        synced.append(_settle())
        mem = run_child(mod, ["--child", "memory", str(n)], timeout=timeout)
        log(f"simulation: memory done in {mem['seconds']:.1f} s; now SQLite and the Core floor")
        db = directory / "simulation.db"
        synced.append(_settle())
        sqls = [run_child(mod, ["--child", "sqlite", str(n), str(db)], timeout=timeout)]
        log(f"simulation: sqlite done in {sqls[0]['seconds']:.1f} s; now BatchingSqlStore")
        batched = directory / "batching.db"
        synced.append(_settle())
        batchings = [run_child(mod, ["--child", "sqlite_batching", str(n), str(batched)], timeout=timeout)]
        _remove_database(batched)
        log(f"simulation: sqlite_batching done in {batchings[0]['seconds']:.1f} s; now the Core floor")
        floors = []
        for i in range(1 if quick else 2):
            target = directory / f"floor{i}.db"
            synced.append(_settle())
            floors.append(run_child(mod, ["--child", "floor", str(db), str(target)], timeout=timeout))
            _remove_database(target)  # nothing reads it: its pages need not be written back
            log(f"simulation: floor done in {floors[-1]['seconds']:.1f} s")
        _remove_database(db)
        if not quick:  # sandwiched: SQLite, batching, floor, floor, batching, SQLite
            synced.append(_settle())
            again = directory / "batching-again.db"
            batchings.append(run_child(mod, ["--child", "sqlite_batching", str(n), str(again)], timeout=timeout))
            _remove_database(again)
            log(f"simulation: sqlite_batching again done in {batchings[1]['seconds']:.1f} s")
            synced.append(_settle())
            sqls.append(run_child(mod, ["--child", "sqlite", str(n), str(directory / "again.db")], timeout=timeout))
            log(f"simulation: sqlite again done in {sqls[1]['seconds']:.1f} s")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sql = sqls[0]
    if mem["commands"] != sql["commands"] or any(r["commands"] != sql["commands"] for r in sqls):
        raise RuntimeError(f"simulation: MemoryStore ran {mem['commands']} commands, SQLite "
                           f"{[r['commands'] for r in sqls]}")
    if any(r["commands"] != sql["commands"] or r["log_digest"] != sql["log_digest"] for r in batchings):
        raise RuntimeError("simulation: BatchingSqlStore wrote another event log than SqlStore")
    if len({f["events"] for f in floors}) != 1 or floors[0]["events"] < sql["commands"]:
        raise RuntimeError(f"simulation: {sql['commands']} commands but the floors wrote "
                           f"{[f['events'] for f in floors]} events")
    mib = 2**20
    common = {"suggestions": n, "commands": sql["commands"], "ticks": sql["ticks"], "events": floors[0]["events"]}
    floor_s = sum(f["seconds"] for f in floors) / len(floors)
    sql_s = sum(r["seconds"] for r in sqls) / len(sqls)
    sql_peak = max(r["peak_rss"] for r in sqls)
    batching_s = sum(r["seconds"] for r in batchings) / len(batchings)
    runs = {"sqlite_runs_s": [round(r["seconds"], 3) for r in sqls],
            "floor_runs_s": [round(f["seconds"], 3) for f in floors],
            "sync_before_children_s": [round(t, 3) for t in synced],
            "gc_s": [r.get("gc_s") for r in sqls]}
    messages = floors[0].get("messages", 0)
    cost = "cost: ours / Core floor (lower is better)"
    floor_note = (f"floor: raw Core writing the same rows, events, unit links and {messages:,} outbox messages, "
                  "200 events/txn with executemany")
    rss_is = "cost: ours / idle interpreter with the same imports (lower is better)"
    return [
        figure("simulation.sqlite.vs_floor", value=sql_s, baseline=floor_s, ratio=sql_s / floor_s,
               unit="s", ratio_is=cost, target=TARGET_SQLITE_VS_FLOOR, op="<=",
               note=f"CampaignSimulator, yongchuan_2024, seed={SEED}, {n:,} suggestions on SqlStore(sqlite file, "
                    f"WAL), agenda chunks of 200 in SqlStore.batch(); {floor_note}"
                    + ("" if quick else "; means of the order simulation, floor, floor, simulation"),
               **runs, **common),
        figure("simulation.sqlite_batching.vs_floor", value=batching_s, baseline=floor_s,
               ratio=batching_s / floor_s, unit="s", ratio_is=cost, target=TARGET_SQLITE_VS_FLOOR, op="<=",
               note=f"the same simulation on BatchingSqlStore(sqlite file, WAL), agenda chunks of 200 in its "
                    f"buffered batch(), event log equal to SqlStore's; {floor_note}"
                    + ("" if quick else "; means of the order batching, floor, floor, batching"),
               sqlite_batching_runs_s=[round(r["seconds"], 3) for r in batchings],
               floor_runs_s=runs["floor_runs_s"], gc_s=[r.get("gc_s") for r in batchings], **common),
        figure("simulation.memory.vs_floor", value=mem["seconds"], baseline=floor_s, ratio=mem["seconds"] / floor_s,
               unit="s", ratio_is=cost, target=TARGET_MEMORY_VS_FLOOR, op="<=",
               note=f"the same simulation on MemoryStore; {floor_note}",
               gc_s=mem.get("gc_s"), gc_collections=mem.get("gc_collections"), **common),
        figure("simulation.sqlite.peak_rss", value=sql_peak / mib, baseline=idle["peak_rss"] / mib,
               ratio=sql_peak / idle["peak_rss"], unit="MiB", ratio_is=rss_is + "; target is on the value",
               target=TARGET_RSS_MIB, on="value", op="<=",
               note="peak RSS (VmHWM) of the SQLite child" + ("" if quick else " (the larger of its two runs)")),
        figure("simulation.memory.peak_rss", value=mem["peak_rss"] / mib, baseline=idle["peak_rss"] / mib,
               ratio=mem["peak_rss"] / idle["peak_rss"], unit="MiB", ratio_is=rss_is,
               note="peak RSS (VmHWM) of the MemoryStore child, which holds every suggestion and event"),
    ]


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        print(json.dumps(child(argv[1:])))
    else:
        size = int(argv[argv.index("--suggestions") + 1]) if "--suggestions" in argv else None
        for fig in run(quick="--quick" in argv, suggestions=size):
            print(fig)
