"""``python -m benchmarks [--quick] [--json] [--only NAME ...]``: every figure, one table.

Each figure is a ratio against a baseline measured in the same run (see
``benchmarks/_common.py`` for the fields and docs/performance.md for what each measures).
The groups are in :data:`MODULES`; ``postgres``, ``mysql`` and ``portal`` need
``JIANYI_FLOW_TEST_POSTGRES_URL`` / ``JIANYI_FLOW_TEST_MYSQL_URL`` and are skipped, with
the reason, without them.
Without ``--json`` the table goes to stdout; with ``--json`` stdout carries one JSON object
per figure (one per line, as each module finishes) and the table goes to stderr.
Progress always goes to stderr.

The exit status is 0 whether or not targets are met; it is 1 only if the harness itself
broke (an exception in a module), after the other modules have run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from ._common import Figure, machine

MODULES: dict[str, str] = {
    "engine": "benchmarks.engine",
    "calendar": "benchmarks.calendar_bench",
    "memory": "benchmarks.memory",
    "storage": "benchmarks.storage",
    "audit": "benchmarks.audit",
    "peer": "benchmarks.peer",
    "supervision": "benchmarks.supervision",
    "postgres": "benchmarks.postgres",
    "mysql": "benchmarks.mysql",
    "portal": "benchmarks.portal_load",
    "simulation": "benchmarks.simulation",
}
"""Figure groups in the order they run (cheap and in-process first, subprocesses last)."""


def _calendar(quick: bool) -> list[Figure]:
    """calendar_bench's figure, with the fields every other figure has."""
    from . import calendar_bench

    out = []
    for row in calendar_bench.run(quick):
        row = dict(row)
        row.setdefault("unit", "µs/op")
        row.setdefault("ratio_is", "speed-up: baseline / ours (higher is better)")
        row.setdefault("goal", f"ratio >= {row['target']:g}")
        row.setdefault("note", "ChinaCalendar.add_working_days(d, 15) vs chinese_calendar.find_workday(15, d)")
        out.append(row)
    return out


def _runner(name: str) -> Callable[[bool], list[Figure]]:
    if name == "calendar":
        return _calendar
    module = importlib.import_module(MODULES[name])
    run: Callable[[bool], list[Figure]] = module.harness if name == "portal" else module.run
    return run


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.3g}"
    return str(x)


def _verdict(f: Figure) -> str:
    if f.get("skipped"):
        return "SKIPPED"
    if f.get("meets") is None:
        return "(no target)"
    return "met" if f["meets"] else "MISSED"


def table(figures: list[Figure], out: TextIO) -> None:
    """The figures as one aligned text table, then the ratio definitions and notes."""
    header = ("figure", "value", "baseline", "unit", "ratio", "ratio is", "goal", "result")
    rows = [header]
    for f in figures:
        ratio_is = str(f.get("ratio_is") or "").split(";")[0].split(" (")[0]
        rows.append((f["name"], _fmt(f["value"]), _fmt(f["baseline"]), str(f.get("unit", "")), _fmt(f["ratio"]),
                     ratio_is, str(f.get("goal") or "—"), _verdict(f)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j in (0, 3, 5, 6, 7) else c.rjust(w) for j, (c, w) in
                        enumerate(zip(r, widths, strict=True))).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)
    print(file=out)
    for f in figures:
        print(f"{f['name']}: {f.get('ratio_is', '')}", file=out)
        if f.get("note"):
            print(f"    {f['note']}", file=out)
        for key in ("plan", "no_campaign_filter_plan", "baseline_plan"):
            if f.get(key):
                print(f"    EXPLAIN QUERY PLAN ({key}): " + " | ".join(f[key]), file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run takes under 2 minutes")
    parser.add_argument("--json", action="store_true", help="one JSON object per figure on stdout")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(MODULES),
                        help=f"run only these groups ({', '.join(MODULES)})")
    args = parser.parse_args(argv)
    names = args.only or list(MODULES)
    table_out = sys.stderr if args.json else sys.stdout
    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), file=table_out, flush=True)
    figures: list[Figure] = []
    broken: list[str] = []
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            produced = _runner(name)(args.quick)
        except Exception:  # report, carry on with the others, exit 1 at the end
            broken.append(name)
            traceback.print_exc(file=sys.stderr)
            continue
        for f in produced:
            figures.append(f)
            if args.json:
                print(json.dumps(f, ensure_ascii=False), flush=True)
        print(f"   {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(file=table_out)
    table(figures, table_out)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=table_out)
    print(f"\n{len(figures)} figures in {time.perf_counter() - started:.0f} s"
          f"{' (--quick)' if args.quick else ''}; "
          f"{sum(1 for f in figures if f.get('meets') is True)} met, "
          f"{sum(1 for f in figures if f.get('meets') is False)} missed, "
          f"{sum(1 for f in figures if f.get('skipped'))} skipped", file=table_out)
    if broken:
        print(f"harness broke in: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
