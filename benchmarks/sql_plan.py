"""How long ``SqlStore`` takes to turn one command's ``Change`` into statement parameters (``_Plan``).

Not a figure (no target, no baseline): a measurement tool for the store's Python cost per
command, which docs/performance.md quotes.  It runs the 2024 simulation with
``--suggestions`` suggestions (default 3,000) on an in-memory SQLite ``SqlStore``, records
every ``Change`` the write-behind path sees together with the cached row it starts from,
then times ``_Plan(change, prev, fresh=True)`` plus the write-behind check ``_storable``
on those recordings, per command kind and over the whole mix (best of ``--rounds``).

    python -m benchmarks.sql_plan [--suggestions 3000] [--rounds 3]

It reads private names of ``jianyi_flow.storage.sql.store`` on purpose: it measures them.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sql_plan", description=__doc__.splitlines()[0])
    parser.add_argument("--suggestions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import jianyi_flow.storage.sql.store as sql_store
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.simulation import CampaignSimulator
    from jianyi_flow.sql import SqlStore

    recorded: list[tuple[Any, Any]] = []
    defer = sql_store.SqlStore._defer

    def recording(self: Any, change: Any, cache: Any, pending: Any) -> None:
        recorded.append((change, cache.get(change.suggestion.id)))
        defer(self, change, cache, pending)

    sql_store.SqlStore._defer = recording  # type: ignore[method-assign]
    try:
        store = SqlStore.open("sqlite://")
        CampaignSimulator(yongchuan_2024(), store, seed=1, suggestions=args.suggestions).run()
        store.close()
    finally:
        sql_store.SqlStore._defer = defer  # type: ignore[method-assign]

    def best(items: list[tuple[Any, Any]]) -> float:
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for change, prev in items:
                plan = sql_store._Plan(change, prev, fresh=True)
                sql_store._storable(plan)
            times.append(time.perf_counter() - started)
        return min(times) / len(items) * 1e6

    by_kind: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for change, prev in recorded:
        by_kind[change.event.kind].append((change, prev))
    for kind in sorted(by_kind, key=lambda k: -len(by_kind[k])):
        print(f"{kind:16s} {len(by_kind[kind]):7,d}  {best(by_kind[kind]):6.1f} µs")
    print(f"{'all':16s} {len(recorded):7,d}  {best(recorded):6.1f} µs")


if __name__ == "__main__":
    main()
