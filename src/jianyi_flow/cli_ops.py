"""The operations commands of ``jianyi-flow``: audit, anchor, worker, health.

- ``jianyi-flow verify --store URL [--anchor-key-file F] [--checkpoints LOG] [--json]`` audits
  every history (exit status 1 when it finds a problem);
- ``jianyi-flow checkpoint --store URL --anchor-key-file F --checkpoints LOG`` appends a signed
  checkpoint of the store to the log;
- ``jianyi-flow worker --store URL [--spool FILE] [--interval S] [--tick-minutes M]`` delivers
  the outbox and ticks deadlines until SIGTERM or Ctrl-C;
- ``jianyi-flow health --store URL [--json]`` reports the schema revision, the calendar's
  coverage and the outbox backlog;
- ``jianyi-flow versions --store URL [--json]`` lists the workflow and deadline-policy versions
  a store holds (docs/versions.md);
- ``jianyi-flow export --store URL --pseudonymise [--campaign C] [--out FILE]`` writes the store
  for analysts as JSON lines without any personal data (:mod:`jianyi_flow.service.export`);
- ``jianyi-flow vault-personal-data --store URL --reason R [--anchor-key-file F]`` moves the
  personal data of suggestions received before the vault out of their histories;
- ``jianyi-flow erase-expired --store URL --campaign C --days N --actor ID --reason R
  [--anchor-key-file F]`` pseudonymises every proposer of the campaign whose suggestion closed
  N days ago or more (docs/security.md, "Personal data").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from .domain.clock import SystemClock
from .domain.model import Actor, Role
from .errors import ValidationError
from .service.audit import Anchor
from .service.flow import Flow
from .service.permissions import PermissionTable
from .storage.base import HistoryScanner, OutboxBacklog, Store

__all__ = ["add_parsers", "run"]

COMMANDS = ("verify", "checkpoint", "worker", "health", "versions", "export", "vault-personal-data",
            "erase-expired")


def add_parsers(sub: Any) -> None:
    """Add the operations sub-commands to ``jianyi-flow``'s sub-parsers."""
    ver = sub.add_parser("verify", help="audit every history in a store (exit 1 on problems)")
    ver.add_argument("--store", required=True, help="database URL")
    ver.add_argument("--anchor-key-file", default=None, help="file holding the anchor key (checks keyed seals)")
    ver.add_argument("--checkpoints", default=None, help="checkpoint log to check the store against")
    ver.add_argument("--json", action="store_true", help="print the problems as JSON")
    ver.add_argument("--limit", type=int, default=50, help="print at most this many problems (default 50)")

    cp = sub.add_parser("checkpoint", help="append a signed checkpoint of the store to a log outside it")
    cp.add_argument("--store", required=True, help="database URL")
    cp.add_argument("--anchor-key-file", required=True, help="file holding the anchor key")
    cp.add_argument("--checkpoints", required=True, help="the checkpoint log (appended to)")

    wk = sub.add_parser("worker", help="deliver the outbox and tick deadlines until stopped (SIGTERM)")
    wk.add_argument("--store", required=True, help="database URL")
    wk.add_argument("--spool", default=None, help="append notices to this JSON-lines file (default: log them)")
    wk.add_argument("--interval", type=float, default=2.0, help="seconds between rounds (default 2)")
    wk.add_argument("--tick-minutes", type=float, default=10.0, help="minutes between deadline ticks (default 10)")
    wk.add_argument("--rounds", type=int, default=None, help="stop after this many rounds (default: run until stopped)")

    vs = sub.add_parser("versions", help="the workflow and deadline-policy versions a store holds")
    vs.add_argument("--store", required=True, help="database URL")
    vs.add_argument("--json", action="store_true", help="print as JSON")

    ex = sub.add_parser("export", help="the store as JSON lines for analysts, without personal data")
    ex.add_argument("--store", required=True, help="database URL")
    ex.add_argument("--pseudonymise", action="store_true",
                    help="required: say that the export leaves out every personal datum (the only kind there is)")
    ex.add_argument("--campaign", default=None, help="only this campaign's suggestions")
    ex.add_argument("--out", default=None, help="write to this file (default: standard output)")

    va = sub.add_parser("vault-personal-data",
                        help="move the personal data of suggestions received before the vault out of their histories")
    va.add_argument("--store", required=True, help="database URL")
    va.add_argument("--reason", required=True, help="why (recorded in every event)")
    va.add_argument("--anchor-key-file", default=None, help="file holding the anchor key (seals the new events)")

    ee = sub.add_parser("erase-expired",
                        help="pseudonymise every proposer of a campaign whose suggestion closed N days ago or more")
    ee.add_argument("--store", required=True, help="database URL")
    ee.add_argument("--campaign", required=True, help="the campaign code")
    ee.add_argument("--days", type=int, required=True, help="the retention period in days")
    ee.add_argument("--actor", required=True, help="id of the collection-office member running it (recorded)")
    ee.add_argument("--reason", required=True, help="why (recorded in every event)")
    ee.add_argument("--anchor-key-file", default=None, help="file holding the anchor key (seals the new events)")

    he = sub.add_parser("health", help="schema revision, calendar coverage and outbox backlog")
    he.add_argument("--store", required=True, help="database URL")
    he.add_argument("--json", action="store_true", help="print as JSON")


def _open(url: str) -> Store:
    from .sql import SqlStore

    require_existing(url)
    return SqlStore(url)


def require_existing(url: str) -> None:
    """Refuse a ``sqlite:///`` file that is not there: SqlStore would create it empty, then fail."""
    from .storage.sql.engine import sqlite_file

    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        raise ValidationError("--store", f"no database at {path}")


def _anchor(key_file: str | None, log: str | None) -> Anchor | None:
    if key_file is None:
        if log is not None:
            raise ValidationError("--checkpoints", "checking checkpoints needs --anchor-key-file")
        return None
    return Anchor.from_key_file(key_file, log)


def _flow(store: Store, anchor: Anchor | None = None, *, vault: bool | None = None) -> Flow:
    return Flow(store, SystemClock(), permissions=PermissionTable.default(), anchor=anchor, vault=vault)


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """Run one operations command; the exit status."""
    store = _open(args.store)
    try:
        if args.command == "verify":
            return _verify(args, store, out)
        if args.command == "checkpoint":
            anchor = _anchor(args.anchor_key_file, args.checkpoints)
            cp = _flow(store, anchor).checkpoint()
            out(f"checkpoint at log position {cp.seq}: {cp.suggestions} suggestions, {cp.events} events")
            return 0
        if args.command == "worker":
            return _worker(args, store, out)
        if args.command == "health":
            return _health(args, store, out)
        if args.command == "versions":
            return _versions(args, store, out)
        if args.command == "export":
            return _export(args, store, out)
        if args.command == "vault-personal-data":
            moved = _flow(store, _anchor(args.anchor_key_file, None), vault=True).vault_personal_data(args.reason)
            out(f"personal data of {len(moved)} suggestions moved to the vault")
            return 0
        if args.command == "erase-expired":
            flow = _flow(store, _anchor(args.anchor_key_file, None), vault=True)
            actor = Actor(id=args.actor, role=Role.COLLECTION_OFFICE)
            result = flow.erase_expired(actor, reason=args.reason, retention_days=args.days, campaign=args.campaign)
            out(f"{len(result.events)} proposers pseudonymised; {len(result.skipped)} skipped"
                + (f" ({', '.join(result.skipped[:10])})" if result.skipped else ""))
            return 0
    finally:
        store.close()
    raise ValidationError("command", f"unknown command {args.command!r}")


def _export(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    from .service.export import pseudonymised_export

    if not args.pseudonymise:
        raise ValidationError("--pseudonymise", "an export for analysts leaves out personal data: pass --pseudonymise "
                                                "(the store itself is never exported with it)")
    records = pseudonymised_export(store, campaign=args.campaign)
    lines = (json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    if args.out is None:
        for line in lines:
            out(line)
        return 0
    count = -1  # the header line is not a suggestion
    with open(args.out, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
            count += 1
    print(f"{count} suggestions written to {args.out}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    problems = _flow(store, _anchor(args.anchor_key_file, args.checkpoints)).verify_all()
    if args.json:
        out(json.dumps([{"suggestion_id": p.suggestion_id, "version": p.version, "problem": p.problem}
                        for p in problems], ensure_ascii=False, indent=2))
    else:
        for p in problems[: max(args.limit, 0)]:
            out(str(p))
        if len(problems) > args.limit:
            out(f"... and {len(problems) - args.limit} more")
        out("every history verifies" if not problems else f"{len(problems)} problems found")
    return 0 if not problems else 1


def _worker(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    from .worker import LogSender, Sender, SpoolSender, Worker

    if args.tick_minutes <= 0:
        raise ValidationError("--tick-minutes", "must be more than 0")
    sender: Sender = SpoolSender(args.spool) if args.spool else LogSender()
    worker = Worker(_flow(store), sender, interval=args.interval, tick_every=dt.timedelta(minutes=args.tick_minutes))

    def stop(signum: int, frame: object) -> None:
        worker.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stats = worker.run(rounds=args.rounds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out(f"worker stopped: {stats.delivered} notices delivered, {stats.failed} failed, {stats.ticks} ticks "
        f"({stats.events} events)")
    return 0


def health_of(store: Store, url: str | None = None) -> dict[str, Any]:
    """What ``jianyi-flow health`` reports, as data."""
    report: dict[str, Any] = {}
    if url is not None:
        from .storage.sql.migrate import current, head

        report["schema"] = {"revision": current(url), "head": head()}
    report["calendar"] = _flow(store).calendar_health().to_dict()
    if isinstance(store, OutboxBacklog):
        report["outbox_pending"] = store.outbox_pending()
    return report


def _health(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    report = health_of(store, args.store)
    if args.json:
        out(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        schema = report.get("schema", {})
        out(f"schema revision: {schema.get('revision')} (latest: {schema.get('head')})")
        cal = report["calendar"]
        out(f"calendar: {cal['mode']}, official schedule until {cal['official_until']} "
            f"({cal['official_days_left']} days left); open deadlines counted over provisional days: "
            f"{cal['provisional_deadlines']}")
        if "outbox_pending" in report:
            out(f"outbox: {report['outbox_pending']} notices waiting")
    ok = report.get("schema", {}).get("revision") == report.get("schema", {}).get("head")
    return 0 if ok else 1


def versions_of(store: Store, page: int = 1000) -> dict[str, dict[str, dict[str, int]]]:
    """Per workflow and per policy version: the suggestions now under it and the events written under it."""
    if not isinstance(store, HistoryScanner):
        raise ValidationError("store", "listing versions needs a store that can scan its histories")
    out: dict[str, dict[str, dict[str, int]]] = {"workflow": {}, "policy": {}}

    def count(kind: str, version: str | None, what: str) -> None:
        row = out[kind].setdefault(version or "unversioned", {"suggestions": 0, "events": 0})
        row[what] += 1

    after: str | None = None
    while True:
        histories = store.scan_histories(after, page)
        for h in histories:
            for e in h.events:
                count("workflow", e.workflow, "events")
                count("policy", e.policy, "events")
            if h.row is not None:
                count("workflow", h.row.workflow, "suggestions")
                count("policy", h.row.policy, "suggestions")
        if len(histories) < page:
            return out
        after = histories[-1].suggestion_id


def _versions(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    found = versions_of(store)
    if args.json:
        out(json.dumps(found, indent=2))
        return 0
    for kind in ("workflow", "policy"):
        for version, row in found[kind].items():
            out(f"{kind:8} {version:32} {row['suggestions']:>8} suggestions {row['events']:>9} events")
    return 0
