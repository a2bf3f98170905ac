"""How long each command's JSON texts take to write: ``json`` alone against orjson through ``jsontext``.

Not a figure (no target): a measurement tool for the per-event numbers docs/performance.md
quotes for ``jianyi_flow.domain.jsontext``.  It runs the 2024 simulation with ``--suggestions``
suggestions (default 3,000, seed 1) on a ``MemoryStore``, reads back every event and row,
and times, per command kind and over the whole mix (best of ``--rounds``, µs per event):

* ``hash text``: the canonical text the hash chain covers — json's C encoder built once
  plus ``str.encode`` (what ``history`` did before ``jsontext``) against
  ``history._canonical_bytes`` (``jsontext.prepare``, then orjson, else the same encoder);
* ``columns``: the event's ``changes`` and ``payload`` as the SQL store writes them
  (``sql.types.dumps``, json's C encoder built once) against what orjson through
  ``jsontext.prepare`` would take for the same texts — measured, and not used by the store,
  because it does not pay there;
* ``units_key`` (per row): ``json.dumps(units, ensure_ascii=False)`` against
  ``sql.types.dumps_spaced``.

Every pair is checked to give the same text before it is timed.

    python -m benchmarks.json_text [--suggestions 3000] [--rounds 3]

It reads private names of ``jianyi_flow.domain.history`` and ``jianyi_flow.storage.sql.types`` on purpose:
it measures them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any


def _best(fn: Callable[[Any], Any], values: Sequence[Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for value in values:
            fn(value)
        times.append(time.perf_counter() - started)
    return min(times) / len(values) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.json_text", description=__doc__.splitlines()[0])
    parser.add_argument("--suggestions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import orjson

    from jianyi_flow import history
    from jianyi_flow.domain.jsontext import NOT_PLAIN, prepare
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.simulation import CampaignSimulator
    from jianyi_flow.sql import types
    from jianyi_flow.storage.memory import MemoryStore

    store = MemoryStore()
    CampaignSimulator(yongchuan_2024(), store, seed=1, suggestions=args.suggestions).run()
    ids = store.suggestion_ids(None, 10**9)
    events = [e for sid in ids for e in store.history(sid)]
    units = [list(store.load(sid).units()) for sid in ids]

    fast = history._FAST
    if fast is None:
        raise SystemExit("json's C accelerator is not available: nothing to compare with")

    def old_hash(content: Any) -> bytes:
        return fast(content).encode("utf-8", "surrogatepass")

    def orjson_text(value: Any) -> str:
        ready = prepare(value)
        if ready is not NOT_PLAIN:
            try:
                return orjson.dumps(ready).decode()
            except TypeError:
                pass
        return types.dumps(value)

    def old_columns(event: Any) -> tuple[str, str]:
        return types.dumps(event.changes), types.dumps(event.payload)

    def new_columns(event: Any) -> tuple[str, str]:
        return orjson_text(event.changes), orjson_text(event.payload)

    def old_units(codes: list[str]) -> str:
        return json.dumps(codes, ensure_ascii=False)

    contents = [history.canonical(e) for e in events]
    for content, event in zip(contents, events, strict=True):
        if old_hash(content) != history._canonical_bytes(content):
            raise SystemExit(f"hash texts differ for {event.suggestion_id} v{event.version}")
        if old_columns(event) != new_columns(event):
            raise SystemExit(f"column texts differ for {event.suggestion_id} v{event.version}")
    for codes in units:
        if old_units(codes) != types.dumps_spaced(codes):
            raise SystemExit(f"units_key texts differ for {codes}")

    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        by_kind[event.kind].append(i)
    head = f"{'hash: json':>10s} {'jsontext':>9s}  {'columns: dumps':>14s} {'orjson':>7s}"
    print(f"{'µs per event':16s} {'events':>8s}  {head}")
    for kind in [*sorted(by_kind, key=lambda k: -len(by_kind[k])), "all"]:
        picked = range(len(events)) if kind == "all" else by_kind[kind]
        cs = [contents[i] for i in picked]
        es = [events[i] for i in picked]
        print(f"{kind:16s} {len(cs):8,d}  {_best(old_hash, cs, args.rounds):10.2f} "
              f"{_best(history._canonical_bytes, cs, args.rounds):9.2f}  "
              f"{_best(old_columns, es, args.rounds):14.2f} {_best(new_columns, es, args.rounds):7.2f}")
    print(f"units_key per row ({len(units):,d} rows): json.dumps {_best(old_units, units, args.rounds):.2f} µs, "
          f"dumps_spaced {_best(types.dumps_spaced, units, args.rounds):.2f} µs")


if __name__ == "__main__":
    main()
