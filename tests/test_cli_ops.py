"""The operations commands: verify, checkpoint, health, versions, worker (SIGTERM), and relays sharing a database."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dbs import BACKENDS, backend_store, mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_template
from helpers import fill_transferred
from jianyi_flow import Flow
from jianyi_flow.cli import main
from jianyi_flow.sql import SqlStore
from jianyi_flow.worker import Relay, SpoolSender

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures





@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    target = tmp_path / "ops.db"
    target.write_bytes(sqlite_template.read_bytes())
    with SqlStore(url) as store:
        fill_transferred(store)
    yield url


def test_verify_exits_0_on_an_intact_store_and_1_on_a_tampered_one(
        sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--store", sqlite_url]) == 0
    assert "every history verifies" in capsys.readouterr().out
    with SqlStore(sqlite_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_events SET reason = 'x' WHERE version = 2"))
    assert main(["verify", "--store", sqlite_url, "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert problems and all(p["problem"] == "content does not match its hash" for p in problems)


def test_checkpoint_then_verify_with_the_anchor(sqlite_url: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "anchor.key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    log = tmp_path / "checkpoints.jsonl"
    assert main(["checkpoint", "--store", sqlite_url, "--anchor-key-file", str(key), "--checkpoints", str(log)]) == 0
    assert "checkpoint at log position 9: 3 suggestions, 9 events" in capsys.readouterr().out
    # written without the anchor key, the events carry no seal: the audit with the key says so
    assert main(["verify", "--store", sqlite_url, "--anchor-key-file", str(key), "--checkpoints", str(log)]) == 1
    assert "keyed seal (mac) missing or wrong" in capsys.readouterr().out
    assert main(["verify", "--store", sqlite_url, "--checkpoints", str(log)]) == 1  # checkpoints need the key
    assert "needs --anchor-key-file" in capsys.readouterr().err


def test_health_and_versions(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--store", sqlite_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"]["revision"] == report["schema"]["head"]
    assert report["outbox_pending"] == 9 and "official_until" in report["calendar"]
    assert main(["versions", "--store", sqlite_url, "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    (workflow,) = versions["workflow"].values()
    assert workflow == {"suggestions": 3, "events": 9}


def test_the_worker_delivers_and_stops_cleanly_on_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "notices.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "jianyi_flow.cli", "worker", "--store", sqlite_url, "--spool", str(spool),
         "--interval", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if spool.exists() and len(spool.read_text(encoding="utf-8").splitlines()) == 12:
                break
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    # the 9 notices of the commands, and the 3 of the overdue flags its first tick wrote (the clock is today's)
    assert "worker stopped: 12 notices delivered, 0 failed, 1 ticks (3 events)" in out
    assert sorted(json.loads(line)["id"] for line in spool.read_text(encoding="utf-8").splitlines()) == list(
        range(1, 13))


@pytest.fixture(params=BACKENDS)
def shared(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:
    yield from backend_store(request, sqlite_template, tmp_path)


def test_relays_sharing_one_database_deliver_each_message_once(shared: SqlStore, tmp_path: Path) -> None:
    """Four relays at once, each with its own spool: no message is delivered by two of them."""
    flow = fill_transferred(shared, n=20)
    spools = [SpoolSender(tmp_path / f"relay-{i}.jsonl") for i in range(4)]
    barrier = threading.Barrier(4)

    def run(i: int) -> None:
        relay = Relay(Flow(shared, flow.clock), spools[i], batch=3, lease=dt.timedelta(minutes=5))
        barrier.wait()
        relay.drain()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    delivered = [int(str(m["id"])) for s in spools for m in s.delivered()]
    assert sorted(delivered) == list(range(1, 61))  # 20 suggestions × 3 notices, each exactly once
