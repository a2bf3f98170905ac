"""PostgreSQL and MariaDB: does throughput scale with workers, and does optimistic concurrency lose nothing?

The figures run ``Flow`` on ``SqlStore(url)`` in a private namespace made for the run and
dropped afterwards: on PostgreSQL a schema ``bench_<random>`` (``search_path`` set through
the connection's ``options``), on MariaDB a database ``bench_<random>``; the tables are
created by the shipped migrations.  Workers are processes started with ``multiprocessing``
(spawn), each with its own store and connection pool, released together by a barrier;
wall time runs from the first worker's start to the last worker's end.  The URL is
``JIANYI_FLOW_TEST_POSTGRES_URL`` (group ``postgres``) or ``JIANYI_FLOW_TEST_MYSQL_URL``
(group ``mysql``, :mod:`benchmarks.mysql`); when the variable is unset or the server
cannot be reached, the group's figures are skipped with the reason.

``<group>.scaling_4_vs_1_workers`` — ratio: throughput with 4 workers / with 1 worker
    (higher is better), target ≥ 2.5.  Each worker owns its own registered suggestions
    and runs ``transfer → research → decide → reply`` on each (4 commands, each its own
    transaction: a read, then the write).  1 worker does as many commands as each of the 4.  Full runs alternate 1 and 4
    workers for 3 rounds and keep the best of each.  The figure also records how busy the
    workers' own CPUs and the whole machine were (from ``/proc/stat``).

``<group>.lost_updates`` — value: lost updates, target 0 (on the value).  4 workers
    hammer ONE suggestion (already rated) with ``evaluate`` — read, command, commit with
    the version read — retrying on ``ConcurrencyConflict`` until each has committed K
    times.  Afterwards the suggestion's version must equal its version before plus every
    commit a worker was told succeeded, and its history must hold exactly that many
    events (versions 1..N, no gap).  Lost = (expected version - final version) + |events
    - final version|.  Ratio: lost / commits acknowledged (lower is better).

Run alone: ``python -m benchmarks.postgres [--quick]`` (``python -m benchmarks.mysql [--quick]``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any

from ._common import Figure, busy_cores, cpu_times, figure, log, skipped

TARGET_SCALING = 2.5
WORKERS = 4
ENV = {"postgres": "JIANYI_FLOW_TEST_POSTGRES_URL", "mysql": "JIANYI_FLOW_TEST_MYSQL_URL"}
"""The environment variable naming each group's server."""
NAMES = {"postgres": "PostgreSQL", "mysql": "MariaDB/MySQL"}

Target = tuple[str, dict[str, Any]]
"""Where the workers connect: the URL and the engine's ``connect_args``."""


def _unusable(group: str) -> str | None:
    """Why the group's server cannot be used here, or ``None``."""
    url = os.environ.get(ENV[group])
    if not url:
        return f"{ENV[group]} is not set (the {NAMES[group]} URL)"
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any failure to connect means "skip"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{NAMES[group]} unreachable at {url.split('@')[-1]}: {type(exc).__name__}: {detail[:160]}"
    return None


@contextlib.contextmanager
def private_namespace(group: str, url: str) -> Iterator[Target]:
    """A schema (PostgreSQL) or a database (MariaDB) of its own for the run, dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    kind = "SCHEMA" if group == "postgres" else "DATABASE"
    quote = '"' if group == "postgres" else "`"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE {kind} {quote}{name}{quote}")
    try:
        if group == "postgres":
            yield url, {"options": f"-csearch_path={name}"}
        else:
            yield make_url(url).set(database=name).render_as_string(hide_password=False), {}
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP {kind} IF EXISTS {quote}{name}{quote}" + (" CASCADE" if group == "postgres"
                                                                                 else ""))
        admin.dispose()


# --- workers (module level: spawn imports them) -------------------------------------------------
def _open(target: Target) -> Any:
    from jianyi_flow.sql import SqlStore

    url, connect_args = target
    return SqlStore(url, connect_args=connect_args) if connect_args else SqlStore(url)


def _commands_worker(target: Target, sids: list[str], barrier: Any, out: Any) -> None:
    from jianyi_flow import Outcome, ReplyForm, ResearchMethod

    from ._fixtures import LEAD, OFFICE, UNIT, make_flow

    store = _open(target)
    flow, _ = make_flow(store)
    flow.get(sids[0], OFFICE)  # connect before the clock starts
    barrier.wait()
    start = time.monotonic()
    cpu = time.process_time()
    done = 0
    for sid in sids:
        flow.transfer(sid, OFFICE, lead_unit=LEAD)
        flow.research(sid, UNIT, findings="经实地调研和部门会商，形成办理意见。", method=ResearchMethod.FIELD_VISIT)
        flow.decide(sid, UNIT, outcome=Outcome.ADOPTED)
        flow.reply(sid, UNIT, text="感谢您的建议，办理情况答复如下。", form=ReplyForm.WRITTEN)
        done += 4
    end = time.monotonic()
    cpu = time.process_time() - cpu
    store.close()
    out.put((start, end, done, cpu))


def _hammer_worker(target: Target, sid: str, commits: int, worker: int, barrier: Any, out: Any) -> None:
    from jianyi_flow import Actor, ConcurrencyConflict, Role

    from ._fixtures import OFFICE, make_flow

    store = _open(target)
    flow, _ = make_flow(store)
    evaluator = Actor(f"evaluator-{worker}", Role.EVALUATOR)
    flow.get(sid, OFFICE)
    barrier.wait()
    ok = conflicts = 0
    while ok < commits:
        try:
            flow.evaluate(sid, evaluator, quality=(ok + worker) % 11, value=7, effect=5, evaluator=f"评审{worker}")
        except ConcurrencyConflict:
            conflicts += 1
            continue
        ok += 1
    store.close()
    out.put((ok, conflicts))


def _run_workers(target: Any, argsets: list[tuple[Any, ...]]) -> list[Any]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(argsets))
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, out)) for args in argsets]
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"a worker exited with {p.exitcode}")
    return results


def _throughput(target: Target, groups: list[list[str]]) -> tuple[float, float, float]:
    """Commands per second of wall time; the workers' own CPU cores busy; the whole machine's cores busy."""
    before = cpu_times()
    results = _run_workers(_commands_worker, [(target, sids) for sids in groups])
    machine_busy = busy_cores(before, cpu_times())  # includes worker start-up: an upper bound
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    done = sum(r[2] for r in results)
    cpu = sum(r[3] for r in results)
    return done / (end - start), cpu / (end - start), machine_busy


def run(quick: bool) -> list[Figure]:
    return run_group("postgres", quick)


def run_group(group: str, quick: bool) -> list[Figure]:
    """The two figures of ``group`` (``"postgres"`` or ``"mysql"``)."""
    reason = _unusable(group)
    scaling_kw: dict[str, Any] = {"unit": "commands/s", "ratio_is": "throughput: 4 workers / 1 worker (higher is "
                                  "better)", "target": TARGET_SCALING, "op": ">="}
    lost_kw: dict[str, Any] = {"unit": "lost updates", "ratio_is": "lost / commits acknowledged (lower is better); "
                               "target is on the value", "target": 0.0, "on": "value", "op": "<="}
    if reason is not None:
        log(f"{group}: skipped: {reason}")
        return [skipped(f"{group}.scaling_4_vs_1_workers", reason, **scaling_kw),
                skipped(f"{group}.lost_updates", reason, **lost_kw)]

    from jianyi_flow import Outcome, Rating, ReplyForm, ResearchMethod

    from ._fixtures import LEAD, OFFICE, UNIT, Recorder, batches, draft, make_flow, proposer_actor, registered

    url = os.environ[ENV[group]]
    per_worker = 25 if quick else 400  # suggestions; 4 commands each
    commits = 20 if quick else 250  # per hammer worker
    rounds = 1 if quick else 3  # best round of each
    with private_namespace(group, url) as target:
        from jianyi_flow.sql import SqlStore

        store = SqlStore.open(target[0], connect_args=target[1]) if target[1] else SqlStore.open(target[0])
        rec = Recorder()
        flow, _ = make_flow(rec)
        sids = registered(flow, per_worker * (1 + WORKERS) * rounds)
        # the hammered suggestion: rated, so evaluate may run on it again and again
        hammered = flow.receive(draft(10**6), proposer_actor(10**6)).id
        flow.register(hammered, OFFICE)
        flow.transfer(hammered, OFFICE, lead_unit=LEAD)
        flow.research(hammered, UNIT, findings="调研", method=ResearchMethod.FORUM)
        flow.decide(hammered, UNIT, outcome=Outcome.ADOPTED)
        flow.reply(hammered, UNIT, text="答复", form=ReplyForm.WRITTEN)
        flow.rate(hammered, proposer_actor(10**6), rating=Rating.SATISFIED)
        for chunk in batches(rec.changes, 500):
            with store.batch():
                for change in chunk:
                    store.commit(change)
        before = store.load(hammered).version

        one = four = 0.0
        one_cpu = four_cpu = one_busy = four_busy = 0.0
        fresh = iter(sids)
        for r in range(rounds):
            log(f"{group}: round {r + 1}/{rounds}: 1 worker, then {WORKERS}, x {per_worker * 4} commands each")
            t, c, b = _throughput(target, [[next(fresh) for _ in range(per_worker)]])
            if t > one:
                one, one_cpu, one_busy = t, c, b
            groups = [[next(fresh) for _ in range(per_worker)] for _ in range(WORKERS)]
            t, c, b = _throughput(target, groups)
            if t > four:
                four, four_cpu, four_busy = t, c, b

        log(f"{group}: {WORKERS} workers hammer one suggestion, {commits} commits each")
        started = time.monotonic()
        results = _run_workers(_hammer_worker, [(target, hammered, commits, w) for w in range(WORKERS)])
        hammer_s = time.monotonic() - started
        acknowledged = sum(r[0] for r in results)
        conflicts = sum(r[1] for r in results)
        final = store.load(hammered).version
        history = store.history(hammered)
        versions_ok = [e.version for e in history] == list(range(1, len(history) + 1))
        lost = (before + acknowledged - final) + abs(len(history) - final) + (0 if versions_ok else 1)
        chain = make_flow(store)[0].verify_history(hammered)
        store.close()
    return [
        figure(f"{group}.scaling_4_vs_1_workers", value=four, baseline=one, ratio=four / one, digits=0,
               note=f"Flow on SqlStore({NAMES[group]}), {WORKERS} spawned processes vs 1, each {per_worker * 4} "
                    f"commands (transfer, research, decide, reply) on its own suggestions; {os.cpu_count()} CPUs "
                    f"shared with the server; best of {rounds} interleaved round(s); workers' own CPU: "
                    f"{one_cpu:.2f} cores (1 worker) / {four_cpu:.2f} ({WORKERS}); whole machine busy: "
                    f"{one_busy:.2f} / {four_busy:.2f} of {os.cpu_count()} cores",
               client_cpu_cores={"1": round(one_cpu, 2), str(WORKERS): round(four_cpu, 2)},
               machine_busy_cores={"1": round(one_busy, 2), str(WORKERS): round(four_busy, 2)},
               **scaling_kw),
        figure(f"{group}.lost_updates", value=float(lost), baseline=float(acknowledged),
               ratio=lost / acknowledged, digits=0,
               note=f"{WORKERS} processes x {commits} acknowledged evaluate commands on one suggestion with "
                    f"ConcurrencyConflict retries ({conflicts} conflicts retried, {hammer_s:.1f} s); final version "
                    f"{final} = {before} + {acknowledged}? events {len(history)}; hash chain problems: {len(chain)}",
               conflicts=conflicts, final_version=final, events=len(history), chain_problems=len(chain),
               **lost_kw),
    ]


if __name__ == "__main__":
    for fig in run(quick="--quick" in sys.argv[1:]):
        print(fig)
