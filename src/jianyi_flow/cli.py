"""The ``jianyi-flow`` command line.

- ``jianyi-flow simulate --preset NAME|FILE --suggestions N --seed S [--store URL [--batched]] [--json]``
- ``jianyi-flow report --store URL [--campaign CODE] --format md|html|csv|xlsx|json|text --out PATH``
- ``jianyi-flow db upgrade URL``
- ``jianyi-flow diagram``
- ``jianyi-flow verify | checkpoint | worker | health --store URL`` (see :mod:`jianyi_flow.cli_ops`)
- ``jianyi-flow calendar show YEAR | check FILE | health | retime`` (see :mod:`jianyi_flow.cli_calendar`)

Errors (a bad URL, an unknown preset, a negative count...) print one line to stderr and
exit with status 2 (usage) or 1 (anything else), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import cli_calendar, cli_ops
from .errors import JianyiFlowError


class _UsageError(Exception):
    """A command-line mistake: reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print usage and exit itself
        raise _UsageError(message)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jianyi-flow", description="Run a people's-suggestion (人民建议) campaign.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = sub.add_parser("simulate", help="simulate a whole campaign and print its report")
    sim.add_argument("--preset", default="yongchuan-2024",
                     help="campaign preset name, or a campaign file (.json or .toml) (default: yongchuan-2024)")
    sim.add_argument("--suggestions", type=_non_negative, default=1000, help="how many suggestions (default 1000)")
    sim.add_argument("--seed", type=int, default=0, help="random seed: equal seeds give equal event logs")
    sim.add_argument("--store", default=None,
                     help="database URL (default: in memory), e.g. sqlite:///jianyi.db; a store holding part of "
                          "the same run (same campaign, seed and size) is resumed")
    sim.add_argument("--batched", action="store_true",
                     help="with a sqlite:/// --store: write each batch of the run set-based (BatchingSqlStore), "
                          "faster for large runs; a failure loses only the open batch, which a rerun resumes")
    sim.add_argument("--json", action="store_true", help="print the report as JSON on stdout")

    rep = sub.add_parser("report", help="render the campaign report from a store")
    rep.add_argument("--store", required=True, help="database URL, e.g. sqlite:///jianyi.db")
    rep.add_argument("--campaign", default=None, help="campaign code (default: the preset's)")
    rep.add_argument("--preset", default="yongchuan-2024", help="campaign preset the store holds")
    rep.add_argument("--format", required=True, choices=["md", "html", "csv", "xlsx", "json", "text"])
    rep.add_argument("--out", required=True, help="output file (a directory for csv)")
    rep.add_argument("--at", default=None, help="report as of this time (default: now), e.g. 2024-12-31T18:00")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    up = db_sub.add_parser("upgrade", help="create or upgrade jianyi_flow's tables (Alembic)")
    up.add_argument("url", help="database URL")

    sub.add_parser("diagram", help="print the state diagram (Mermaid)")
    cli_ops.add_parsers(sub)
    cli_calendar.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except _UsageError as e:
        print(f"jianyi-flow: error: {e}", file=sys.stderr)
        return 2
    except JianyiFlowError as e:
        print(f"jianyi-flow: error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jianyi-flow: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"jianyi-flow: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    """Driver messages can span lines; the CLI promises one."""
    return " ".join(text.split())


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "diagram":
        from .diagram import mermaid

        sys.stdout.write(mermaid())
        return 0
    if args.command == "db":
        from .storage.sql.migrate import upgrade

        upgrade(args.url)
        print(f"jianyi_flow tables are at the latest revision in {_safe_url(args.url)}")
        return 0
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "report":
        return _report(args)
    if args.command in cli_ops.COMMANDS:
        return cli_ops.run(args)
    if args.command in cli_calendar.COMMANDS:
        return cli_calendar.run(args)
    raise _UsageError(f"unknown command {args.command!r}")


def _open_store(url: str | None, *, existing: bool = False, batched: bool = False) -> Any:
    """A MemoryStore for ``None``; else a SqlStore (a BatchingSqlStore if ``batched``), migrated first unless
    it must already exist."""
    if url is None:
        if batched:
            raise _UsageError("--batched needs --store with a sqlite:/// URL")
        from .storage.memory import MemoryStore

        return MemoryStore()
    from .sql import BatchingSqlStore, SqlStore
    from .storage.sql.engine import sqlite_file

    if batched:
        return BatchingSqlStore.open(url, migrate=True)
    if existing:
        path = sqlite_file(url)
        if path is not None and not os.path.exists(path):
            raise _UsageError(f"no database at {path}")
        return SqlStore(url)
    return SqlStore.open(url, migrate=True)


def _campaign(preset: str) -> Any:
    """A preset by name, or a campaign file (JSON or TOML) by path."""
    from .presets import load

    return load(preset)


def _simulate(args: argparse.Namespace) -> int:
    from .report import build_report
    from .simulation import CampaignSimulator

    campaign = _campaign(args.preset)
    store = _open_store(args.store, batched=args.batched)
    try:
        bar = _ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
        started = time.perf_counter()
        sim = CampaignSimulator(
            campaign, store, seed=args.seed, suggestions=args.suggestions, progress=bar.update if bar else None
        )
        result = sim.run()
        seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
        if result.replayed:
            print(f"jianyi-flow: resumed: {result.replayed} of {result.commands} commands were already in the store",
                  file=sys.stderr)
        report = build_report(campaign, store, result.ended)
        if args.json:
            json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2, sort_keys=False)
            sys.stdout.write("\n")
        else:
            from .render import render_text

            sys.stdout.write(render_text(report))
            print(
                f"\nsimulated {result.suggestions} suggestions, {result.commands} commands and {result.ticks} ticks "
                f"from {result.started:%Y-%m-%d} to {result.ended:%Y-%m-%d} in {seconds:.1f} s"
            )
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    from .domain.clock import SystemClock, parse_time
    from .render import render
    from .report import build_report

    campaign = _campaign(args.preset)
    if args.campaign is not None and args.campaign != campaign.code:
        raise _UsageError(f"campaign {args.campaign!r} is not the preset's ({campaign.code!r}); pass --preset")
    store = _open_store(args.store, existing=True)
    try:
        at = parse_time(args.at) if args.at is not None else SystemClock().now()
        report = build_report(campaign, store, at)
        render(report, args.format, args.out)
    finally:
        store.close()
    print(f"wrote {args.format} report to {args.out}")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


class _ProgressBar:
    """A one-line progress bar on a terminal (stderr), redrawn in place."""

    def __init__(self, stream: TextIO, width: int = 40) -> None:
        self.stream = stream
        self.width = width

    def update(self, done: int, total: int) -> None:
        frac = 1.0 if total == 0 else done / total
        filled = int(frac * self.width)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} suggestions")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


if __name__ == "__main__":
    raise SystemExit(main())
