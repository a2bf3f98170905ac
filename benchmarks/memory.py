"""Memory: bytes per suggestion held by a MemoryStore after the full lifecycle.

``memory.bytes_per_suggestion`` — value: bytes per suggestion with its history, target
≤ 8 KiB (8192 B; the target is on the value).  Ratio: ours / baseline (lower is better),
no target of its own, where the baseline is the same information written as compact UTF-8
JSON (every field of the row and of each of its events — roughly what a SQL row and its
history rows hold as text).

Method: ``tracemalloc`` traces a fresh process-wide heap; N suggestions (distinct texts,
the clock moving a few minutes between commands so times are distinct objects, as they
are in use) are driven through ``receive → register → transfer → research → decide →
reply → rate → evaluate`` (8 events, 4 outbox messages each) on a ``Flow`` with sequential ids.
After ``gc.collect()`` the growth of traced memory over the snapshot taken before the
run, divided by N, is the figure.  Garbage is excluded; the flow's small caches (due
times per day, at most a few hundred KiB in all) are included.  The figure also lists
where the bytes were allocated (``tracemalloc`` statistics by line, bytes per suggestion),
which is what says which objects dominate.

Run alone: ``python -m benchmarks.memory [--quick]``.
"""

from __future__ import annotations

import enum
import gc
import json
import linecache
import sys
import tracemalloc
import types
from typing import Any

import attrs

from jianyi_flow import MemoryStore

from ._common import Figure, figure, log
from ._fixtures import lifecycle, make_flow

TARGET_BYTES = 8 * 1024


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for marker in ("/site-packages/", "/src/", "/main/", "/lib/python3"):
        if marker in name:
            name = name.split(marker, 1)[1]
            break
    return f"{name}:{frame.lineno}"


def _json_bytes(store: MemoryStore, sids: list[str]) -> int:
    total = 0
    for sid in sids:
        row = attrs.asdict(store.load(sid))
        history = [attrs.asdict(e) for e in store.history(sid)]
        total += len(json.dumps([row, history], ensure_ascii=False, separators=(",", ":"), default=str)
                     .encode("utf-8"))
    return total


def census(store: MemoryStore) -> dict[str, int]:
    """Bytes (``sys.getsizeof``) of every object reachable from the store, by type.

    Classes, modules, functions and enum members are shared by every suggestion and are
    neither counted nor followed.
    """
    roots = list(gc.get_referents(store))  # its __dict__ (or slots): every container it holds
    seen: set[int] = {id(store)}
    sizes: dict[str, int] = {}
    stack: list[Any] = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType, enum.Enum)):
            continue
        seen.add(id(obj))
        name = type(obj).__qualname__
        sizes[name] = sizes.get(name, 0) + sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def run(quick: bool) -> list[Figure]:
    n = 500 if quick else 20000
    log(f"memory: {n:,} suggestions through the full lifecycle under tracemalloc")
    gc.collect()
    tracemalloc.start(1)
    try:
        store = MemoryStore()
        flow, clock = make_flow(store, prefix="M")
        gc.collect()
        before = tracemalloc.take_snapshot()
        base_current = tracemalloc.get_traced_memory()[0]
        sids: list[str] = []
        step = lambda: clock.advance(minutes=7)  # noqa: E731
        for i in range(n):
            s = lifecycle(flow, i, advance=step)
            step()
            flow.evaluate(s.id, _evaluator(), quality=7, value=6, effect=8, evaluator="评审组")
            sids.append(s.id)
            step()
        gc.collect()
        after = tracemalloc.take_snapshot()
        grown = tracemalloc.get_traced_memory()[0] - base_current
        stats = after.compare_to(before, "lineno")
    finally:
        tracemalloc.stop()
    events = sum(len(store.history(sid)) for sid in sids) / n
    by_type = {name: round(size / n, 1) for name, size in census(store).items() if size / n >= 8}
    log("memory: by type (bytes/suggestion, sys.getsizeof of objects reachable from the store): "
        + ", ".join(f"{k} {v:.0f}" for k, v in by_type.items()))
    per = grown / n
    json_per = _json_bytes(store, sids) / n
    top: list[dict[str, Any]] = []
    for stat in stats[:12]:
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[0]
        top.append({"where": _where(frame), "code": linecache.getline(frame.filename, frame.lineno).strip(),
                    "bytes_per_suggestion": round(stat.size_diff / n, 1),
                    "objects_per_suggestion": round(stat.count_diff / n, 2)})
    for line in top:
        log(f"memory: {line['bytes_per_suggestion']:8.1f} B/suggestion  {line['objects_per_suggestion']:6.2f} "
            f"objects  {line['where']}  {line['code'][:70]}")
    return [
        figure(
            "memory.bytes_per_suggestion",
            value=per, baseline=json_per, ratio=per / json_per,
            unit="bytes/suggestion", ratio_is="cost: ours / compact JSON of the same data (lower is better); "
                                              "target is on the value",
            target=float(TARGET_BYTES), on="value", op="<=", digits=0,
            note=f"MemoryStore after {n:,} suggestions x {events:.0f} events (full lifecycle + evaluate), "
                 "tracemalloc growth / N",
            events_per_suggestion=round(events, 2), by_type=by_type, top_lines=top,
        )
    ]


def _evaluator() -> Any:
    from jianyi_flow import Actor, Role

    return Actor("evaluator-1", Role.EVALUATOR, name="评审组")


if __name__ == "__main__":
    for fig in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(fig, ensure_ascii=False, indent=1))
