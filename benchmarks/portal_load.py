"""Load figure of the reference portal (examples/portal): its command endpoints over HTTP.

``python -m benchmarks.portal_load [--quick] [--store URL] [--workers 1 4] [--clients 8]``

For each worker count it starts the portal (``python -m examples.portal --workers N``) on
127.0.0.1 against a fresh PostgreSQL schema, then ``--clients`` threads each walk their
share of ``--suggestions`` suggestions through the seven commands a citizen, a clerk and
a handling unit post as forms (receive, register, transfer, research, decide, reply,
rate), each with ``expected_version`` and an idempotency key, as the browser would.
One command in ten is posted a second time with the same key (a retry after a lost
answer).  The run is bounded by the number of suggestions, not by time.

Measured:

* requests per second of the command endpoints (every POST, retries included);
* the library's share of a request: the portal's ``Server-Timing`` header gives the time
  of the request inside the app (``app``) and inside ``jianyi_flow`` calls (``flow``);
  the share is sum(flow) / sum(app), and flow / client-observed latency beside it;
* afterwards, with the servers stopped: every suggestion has exactly its seven events
  (none lost, none duplicated by the retries), ``Flow.verify_all()`` finds no problem,
  and the outbox holds one message per notice the events name — relayed once each.

It exits non-zero if the after-run check fails.  In the harness (``python -m benchmarks``,
group ``portal``) :func:`harness` runs it with 1 and 4 workers, or with 1 worker under
``--quick``; the figures are skipped, with the reason, when ``JIANYI_FLOW_TEST_POSTGRES_URL``
is unset or the portal extra (``pip install -e '.[portal]'``) is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENV = "JIANYI_FLOW_TEST_POSTGRES_URL"
DEFAULT_STORE = os.environ.get(ENV, "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COMMANDS_PER_SUGGESTION = 7
RETRY_EVERY = 10
DEMO_CLOCK = "2024-09-02T09:30"


# --- a private schema and the portal process -------------------------------------------------------


@contextlib.contextmanager
def private_schema(url: str) -> Iterator[str]:
    """A new schema on the PostgreSQL server at ``url``, first on the search path; dropped after."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    base = make_url(url)
    admin = sa.create_engine(base, poolclass=NullPool)
    schema = f"portal_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def portal(store: str, workers: int, state_dir: Path) -> Iterator[int]:
    """The portal on a free port of 127.0.0.1 until the block ends; yields the port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(state_dir / "server.log", "wb")  # closed after the process ends
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.portal", "--store", store, "--workers", str(workers), "--port", str(port),
         "--state-dir", str(state_dir), "--demo-clock", DEMO_CLOCK],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("portal exited: " + (state_dir / "server.log").read_text(errors="replace")[-2000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the portal did not answer within 60 s")
            time.sleep(0.2)
        # every worker process answers before the clock starts (each imports the app on its own)
        for _ in range(workers * 4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/login")
            conn.getresponse().read()
            conn.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- the clients -------------------------------------------------------------------------------------


_TIMING = re.compile(r"(\w+);dur=([\d.]+)")


class Session:
    """One demo account's keep-alive connection and session cookie."""

    def __init__(self, port: int, account: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""
        status, _headers = self.post("/login", {"account": account}, timed=False)
        assert status == 303, f"login as {account}: {status}"

    def post(self, path: str, form: dict[str, Any], *, timed: bool = True,
             samples: list[tuple[float, float, float]] | None = None) -> tuple[int, dict[str, str]]:
        body = urllib.parse.urlencode(form, doseq=True)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        started = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=headers)
        response = response_of(self.conn)
        latency = time.perf_counter() - started
        got = {k.lower(): v for k, v in response.getheaders()}
        response.read()
        cookie = got.get("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        if timed and samples is not None:
            parts = dict(_TIMING.findall(got.get("server-timing", "")))
            samples.append((latency * 1000, float(parts.get("app", "nan")), float(parts.get("flow", "nan"))))
        return response.status, got


def response_of(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    return conn.getresponse()


class Client(threading.Thread):
    """Walks ``count`` suggestions through the seven commands, as three demo accounts."""

    def __init__(self, port: int, count: int, number: int) -> None:
        super().__init__(name=f"client-{number}")
        self.port = port
        self.count = count
        self.number = number
        self.samples: list[tuple[float, float, float]] = []
        self.sids: list[str] = []
        self.errors: list[str] = []
        self.posts = 0

    def send(self, session: Session, path: str, form: dict[str, Any], retry: bool) -> str:
        form = {**form, "idempotency_key": uuid.uuid4().hex}
        status, headers = session.post(path, form, samples=self.samples)
        self.posts += 1
        if status != 303:
            self.errors.append(f"{path}: {status}")
        if retry:  # the same form again with the same key: must give the same answer and write nothing
            again, headers2 = session.post(path, form, samples=self.samples)
            self.posts += 1
            if again != 303 or headers2.get("location") != headers.get("location"):
                self.errors.append(f"{path} retried: {again} {headers2.get('location')}")
        return headers.get("location", "")

    def run(self) -> None:
        citizen = Session(self.port, "zhangsan")
        clerk = Session(self.port, "clerk-wang")
        unit = Session(self.port, "fgw-liu")
        n = 0
        for i in range(self.count):
            def retry() -> bool:
                nonlocal n
                n += 1
                return n % RETRY_EVERY == 0
            location = self.send(citizen, "/submit", {
                "title": f"负载测试建议 {self.number}-{i}", "subject": "优化公交线路", "problem": "高峰拥挤。",
                "measures": "增开区间车。", "area": "A4", "name": "张三", "phone": "13812345678",
                "kind": "citizen", "consent": "1"}, retry())
            sid = location.rsplit("/", 1)[-1]
            if not sid:
                continue
            self.sids.append(sid)
            steps: list[tuple[Session, str, dict[str, Any]]] = [
                (clerk, "register", {}),
                (clerk, "transfer", {"lead_unit": "FGW", "co_units": ["JTJ"]}),
                (unit, "research", {"findings": "座谈听取意见。", "method": "forum"}),
                (unit, "decide", {"outcome": "adopted"}),
                (unit, "reply", {"text": "已采纳。", "form": "online"}),
                (citizen, "rate", {"rating": "satisfied"}),
            ]
            for version, (session, command, form) in enumerate(steps, start=1):
                self.send(session, f"/s/{sid}/do/{command}", {**form, "expected_version": version}, retry())


# --- one run -----------------------------------------------------------------------------------------


def walk(port: int, clients: int, suggestions: int, first: int) -> tuple[list[Client], float]:
    """``suggestions`` walked by ``clients`` threads at once; the threads and the wall time."""
    per = [suggestions // clients + (1 if i < suggestions % clients else 0) for i in range(clients)]
    threads = [Client(port, count, first + i) for i, count in enumerate(per) if count]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return threads, time.perf_counter() - started


def timings(threads: list[Client]) -> tuple[list[float], list[float], list[float]]:
    samples = [s for t in threads for s in t.samples]
    return [s[0] for s in samples], [s[1] for s in samples], [s[2] for s in samples]


def load(store: str, workers: int, clients: int, suggestions: int) -> dict[str, Any]:
    """Start the portal with ``workers`` processes, run the clients, check the store; the measurements.

    Three phases against one portal: a warm-up (each worker process compiles its templates
    and statements), the measured run with ``clients`` threads, and a serial run with one
    client for the uncontended time of a request and the library's part of it.  The after-run
    check covers the suggestions of all three.
    """
    with tempfile.TemporaryDirectory(prefix="portal-load-") as tmp:
        with portal(store, workers, Path(tmp)) as port:
            warm, _ = walk(port, clients, max(clients, 2 * workers), 1000)
            threads, elapsed = walk(port, clients, suggestions, 0)
            serial, _ = walk(port, 1, max(4, suggestions // 8), 2000)
        everyone = [*warm, *threads, *serial]
        errors = [e for t in everyone for e in t.errors]
        sids = [sid for t in everyone for sid in t.sids]
        check = after_run(store, sids, Path(tmp))
    posts = sum(t.posts for t in threads)
    latency, app, flow = timings(threads)
    s_latency, s_app, s_flow = timings(serial)
    return {
        "workers": workers, "clients": clients, "suggestions": sum(len(t.sids) for t in threads), "posts": posts,
        "seconds": elapsed, "rps": posts / elapsed, "latency_p50_ms": statistics.median(latency),
        "latency_p95_ms": sorted(latency)[int(0.95 * (len(latency) - 1))],
        "app_ms_mean": statistics.fmean(app), "flow_ms_mean": statistics.fmean(flow),
        "library_share_of_app": sum(flow) / sum(app), "library_share_of_latency": sum(flow) / sum(latency),
        "serial_latency_ms_mean": statistics.fmean(s_latency), "serial_app_ms_mean": statistics.fmean(s_app),
        "serial_flow_ms_mean": statistics.fmean(s_flow),
        "serial_library_share_of_latency": sum(s_flow) / sum(s_latency),
        "http_errors": errors[:10], "http_error_count": len(errors), **check,
        "ok": check["ok"] and not errors,
    }


def after_run(store: str, sids: list[str], tmp: Path) -> dict[str, Any]:
    """Events and outbox after the run: none lost, none duplicated, histories verified, notices relayed once."""
    from examples.portal.democlock import DemoClock

    from jianyi_flow import make_flow
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.sql import SqlStore
    from jianyi_flow.worker import Relay, SpoolSender

    clock = DemoClock(tmp / "demo-clock.json")
    with SqlStore(store) as db:
        flow = make_flow(yongchuan_2024(), db, clock)
        wrong: list[str] = []
        notices = 0
        for sid in sids:
            events = db.history(sid)
            versions = [e.version for e in events]
            if versions != list(range(1, COMMANDS_PER_SUGGESTION + 1)):
                wrong.append(f"{sid}: versions {versions}")
            notices += sum(len(e.notices) for e in events)
        problems = flow.verify_all()
        pending = db.outbox_pending()
        spool = SpoolSender(tmp / "relayed.jsonl")
        relayed = Relay(flow, spool, batch=200).drain(rounds=10_000)
        ids = [int(str(m["id"])) for m in spool.delivered()]
    return {
        "events_expected": len(sids) * COMMANDS_PER_SUGGESTION,
        "suggestions_with_wrong_events": len(wrong), "wrong_examples": wrong[:5],
        "verify_all_problems": len(problems), "problem_examples": [str(p) for p in problems[:5]],
        "notices_named": notices, "outbox_pending": pending, "relayed": relayed,
        "relayed_duplicates": len(ids) - len(set(ids)),
        "ok": not wrong and not problems and pending == notices == relayed == len(set(ids)),
    }


# --- figures -------------------------------------------------------------------------------------------


def run(quick: bool, store: str = DEFAULT_STORE, worker_counts: tuple[int, ...] = (1, 4), clients: int = 8,
        suggestions: int | None = None) -> list[dict[str, Any]]:
    """The figures, in the format of ``benchmarks/_common.py`` (no targets: the issue asks for the numbers)."""
    count = suggestions or (24 if quick else 240)
    figures: list[dict[str, Any]] = []
    for workers in worker_counts:
        with private_schema(store) as url:
            from jianyi_flow.sql import SqlStore

            SqlStore.open(url, migrate=True).close()
            m = load(url, workers, clients, count)
        print(json.dumps(m, ensure_ascii=False), file=sys.stderr, flush=True)
        common = {"baseline": None, "ratio": None, "target": None, "meets": None, "goal": None, "measured": m}
        figures.append({"name": f"portal.commands_rps.workers_{workers}", "value": round(m["rps"], 1),
                        "unit": "requests/s", "ratio_is": "—",
                        "note": f"{m['posts']} command POSTs ({count} suggestions × 7, 1 in {RETRY_EVERY} retried) "
                                f"from {clients} client threads; p50 {m['latency_p50_ms']:.1f} ms, "
                                f"p95 {m['latency_p95_ms']:.1f} ms", **common})
        figures.append({"name": f"portal.library_share.workers_{workers}",
                        "value": round(100 * m["serial_library_share_of_latency"], 1),
                        "unit": "% of a request (one client)", "ratio_is": "—",
                        "note": f"one client at a time: jianyi_flow {m['serial_flow_ms_mean']:.2f} ms of "
                                f"{m['serial_latency_ms_mean']:.2f} ms per command request ("
                                f"{m['serial_app_ms_mean']:.2f} ms inside the app); under load "
                                f"{m['flow_ms_mean']:.1f} of {m['app_ms_mean']:.1f} ms in the app "
                                f"({100 * m['library_share_of_app']:.0f} %: waits for the GIL and the database count "
                                "as the library's)", **common})
        figures.append({"name": f"portal.after_run_ok.workers_{workers}", "value": 1.0 if m["ok"] else 0.0,
                        "unit": "1 = ok", "ratio_is": "—",
                        "note": f"1 = no event lost or duplicated, verify_all clean, each notice relayed once: "
                                f"{m['events_expected']} events, {m['notices_named']} notices, {m['relayed']} relayed",
                        **common})
    return figures


def harness(quick: bool) -> list[dict[str, Any]]:
    """The ``portal`` group of ``python -m benchmarks``: bounded (24 or 240 suggestions per worker count)."""
    from ._common import skipped

    workers = (1,) if quick else (1, 4)
    names = [f"portal.{what}.workers_{w}" for w in workers for what in ("commands_rps", "library_share",
                                                                          "after_run_ok")]
    reason = None
    url = os.environ.get(ENV)
    if not url:
        reason = f"{ENV} is not set (the portal load test runs on PostgreSQL)"
    else:
        try:
            import fastapi  # noqa: F401
            import itsdangerous  # noqa: F401
            import jinja2  # noqa: F401
            import multipart  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            reason = f"the portal extra is not installed ({exc}); pip install -e '.[portal]'"
    if reason is not None:
        return [skipped(name, reason, unit="—", ratio_is="—") for name in names]
    figures = run(quick, url, worker_counts=workers)
    bad = [f["name"] for f in figures if f["name"].startswith("portal.after_run_ok") and f["value"] != 1.0]
    if bad:
        raise RuntimeError(f"portal: the after-run check failed: {bad}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portal_load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 suggestions per run instead of 240")
    parser.add_argument("--store", default=DEFAULT_STORE, help="PostgreSQL URL (a private schema is made and dropped)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--suggestions", type=int)
    args = parser.parse_args(argv)
    figures = run(args.quick, args.store, tuple(args.workers), args.clients, args.suggestions)
    ok = True
    for f in figures:
        print(f"{f['name']:<36} {f['value']:>8} {f['unit']}  {f['note']}")
        if f["name"].startswith("portal.after_run_ok") and f["value"] != 1.0:
            ok = False
            print(json.dumps(f["measured"], ensure_ascii=False, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
