"""Shared pieces of the benchmark harness: the figure format, timing helpers, subprocesses.

Every figure is a dict with the keys ``name, value, baseline, ratio, target, meets`` and,
always here, ``unit`` (of ``value`` and ``baseline``), ``ratio_is`` (what the ratio
divides by what, so its direction is unambiguous) and ``goal`` (the exact test behind
``meets``, e.g. ``"ratio <= 2.0"`` or ``"value <= 50 ms"``).  ``note`` says what was
measured.  A figure without a target has ``target``/``meets`` ``None``; a skipped
figure has ``value``/``baseline``/``ratio``/``meets`` ``None`` and ``skipped`` set to
the reason.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import operator
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Figure = dict[str, Any]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
}


def figure(
    name: str,
    *,
    value: float | None,
    baseline: float | None,
    ratio: float | None,
    unit: str,
    ratio_is: str,
    target: float | None = None,
    on: str = "ratio",
    op: str = "<=",
    note: str | None = None,
    digits: int = 3,
    **extra: Any,
) -> Figure:
    """One figure.  ``meets`` tests ``on`` (``"ratio"`` or ``"value"``) ``op`` ``target``."""
    meets: bool | None = None
    goal: str | None = None
    if target is not None:
        tested = ratio if on == "ratio" else value
        meets = None if tested is None else bool(_OPS[op](tested, target))
        goal = f"{on} {op} {target:g}" + (f" {unit}" if on == "value" else "")
    out: Figure = {
        "name": name,
        "value": _round(value, digits),
        "baseline": _round(baseline, digits),
        "ratio": _round(ratio, 3),
        "target": target,
        "meets": meets,
        "unit": unit,
        "ratio_is": ratio_is,
        "goal": goal,
    }
    if note:
        out["note"] = note
    out.update(extra)
    return out


def skipped(name: str, reason: str, *, unit: str = "", ratio_is: str = "", target: float | None = None,
            on: str = "ratio", op: str = "<=") -> Figure:
    """A figure that could not be measured here, with the reason (never a made-up number)."""
    out = figure(name, value=None, baseline=None, ratio=None, unit=unit, ratio_is=ratio_is, target=target,
                 on=on, op=op)
    out["meets"] = None
    out["skipped"] = reason
    out["note"] = f"skipped: {reason}"
    return out


def _round(x: float | None, digits: int) -> float | None:
    if x is None:
        return None
    if abs(x) >= 100:
        return round(x, 1)
    return round(x, digits)


def log(message: str) -> None:
    """Progress goes to stderr so ``--json`` output stays one JSON object per line."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def collected() -> Iterator[None]:
    """Start a timed section from a clean heap (garbage from set-up is not charged to it)."""
    gc.collect()
    yield


def per_op(func: Callable[[], int]) -> float:
    """Run ``func`` once (it returns how many operations it did); seconds per operation."""
    gc.collect()
    start = time.perf_counter()
    ops = func()
    return (time.perf_counter() - start) / ops


def alternate(rounds: int, *measures: Callable[[], float]) -> list[float]:
    """Run each measurement ``rounds`` times, interleaved (A B C A B C ...); the best of each.

    Interleaving exposes ours and the baseline to the same background load; taking the
    best round is the usual estimator for "what the code costs" on a noisy machine.
    """
    best = [float("inf")] * len(measures)
    for _ in range(rounds):
        for i, measure in enumerate(measures):
            best[i] = min(best[i], measure())
    return best


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def run_child(module: str, args: list[str], *, timeout: float) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh interpreter; its last stdout line is JSON.

    Used where a measurement needs its own process (peak RSS, a clean heap).  The
    child's stderr passes through so its progress stays visible.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {module} {args} exited with {proc.returncode}: {proc.stdout[-2000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_times() -> tuple[int, int]:
    """Machine-wide (busy, total) CPU jiffies from /proc/stat, to tell how loaded the machine was."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many cores were busy on average between two :func:`cpu_times` readings (all processes)."""
    total = after[1] - before[1]
    return 0.0 if total <= 0 else (after[0] - before[0]) / total * (os.cpu_count() or 1)


def machine() -> dict[str, str]:
    """The machine, as docs/performance.md describes it."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import sqlite3

    import sqlalchemy

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    """The checked-out commit, with ``+dirty`` when src/ has uncommitted changes (read-only git calls)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
