"""The ``jianyi-flow`` entry point and its operations commands run in-process: usage mistakes, missing
stores, resumed runs, the progress bar, the worker, and the text output of verify, health and versions."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dbs import sqlite_template
from helpers import fill_transferred
from jianyi_flow import cli
from jianyi_flow.cli import _safe_url, main
from jianyi_flow.cli_ops import versions_of
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.sql.migrate import VERSION_TABLE, head

__all__ = ["sqlite_template"]  # fixture





@pytest.fixture
def empty_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated store with nothing in it."""
    target = tmp_path / "empty.db"
    target.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{target}"


@pytest.fixture
def filled_url(empty_url: str) -> Iterator[str]:
    """Three transferred suggestions (nine events, nine notices waiting in the outbox)."""
    with SqlStore(empty_url) as store:
        fill_transferred(store)
    yield empty_url


def _call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _events(url: str) -> int:
    with SqlStore(url) as store, store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM jianyi_events")).scalar_one())


# --- usage mistakes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [("many", "expected a whole number, got 'many'"), ("-3", "must not be negative, got -3")],
)
def test_suggestions_must_be_a_non_negative_whole_number(
        capsys: pytest.CaptureFixture[str], value: str, says: str) -> None:
    status, out, err = _call(capsys, "simulate", "--suggestions", value)
    assert (status, out) == (2, "")
    assert err == f"jianyi-flow: error: argument --suggestions: {says}\n"


def test_report_refuses_a_campaign_the_preset_does_not_hold(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "r.md"
    status, out, err = _call(capsys, "report", "--store", f"sqlite:///{tmp_path / 'j.db'}", "--campaign", "other-2030",
                             "--format", "md", "--out", str(out_file))
    assert (status, out) == (2, "")
    assert err == "jianyi-flow: error: campaign 'other-2030' is not the preset's ('YC2024'); pass --preset\n"
    assert list(tmp_path.iterdir()) == []  # neither the store nor the report was created


def test_report_on_a_missing_sqlite_file_does_not_create_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    status, out, err = _call(capsys, "report", "--store", f"sqlite:///{missing}", "--format", "md",
                             "--out", str(tmp_path / "r.md"))
    assert (status, out) == (2, "")
    assert err == f"jianyi-flow: error: no database at {missing}\n"
    assert list(tmp_path.iterdir()) == []


def test_report_on_an_in_memory_sqlite_store_says_it_holds_no_schema(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = _call(capsys, "report", "--store", "sqlite:///:memory:", "--format", "md", "--out", "r.md")
    assert (status, out) == (1, "")
    assert err.startswith("jianyi-flow: error: the database schema is at revision (none), this version needs ")
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no file called ':memory:', no report


def test_an_os_error_is_one_line_and_the_existing_file_is_left_alone(
        capsys: pytest.CaptureFixture[str], filled_url: str, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a directory\n", encoding="utf-8")
    status, out, err = _call(capsys, "report", "--store", filled_url, "--format", "csv", "--out", str(taken),
                             "--at", "2025-01-31")
    assert (status, out) == (1, "")
    assert err == f"jianyi-flow: error: File exists: {taken}\n"
    assert taken.read_text(encoding="utf-8") == "not a directory\n"


def test_ctrl_c_is_reported_as_interrupted_with_status_130(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from jianyi_flow.simulation import CampaignSimulator

    def interrupted(self: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(CampaignSimulator, "run", interrupted)
    status, out, err = _call(capsys, "simulate", "--suggestions", "5")
    assert (status, out, err) == (130, "", "jianyi-flow: interrupted\n")


def test_python_dash_m_exits_with_mains_status(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``python -m jianyi_flow.cli`` runs: the module as ``__main__`` (runpy cannot load it under pytest)."""
    path = Path(cli.__file__)
    monkeypatch.setattr("sys.argv", ["jianyi-flow", "simulate", "--suggestions", "-1"])
    with pytest.raises(SystemExit) as exit_info:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"),
             {"__name__": "__main__", "__package__": "jianyi_flow", "__file__": str(path)})
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "jianyi-flow: error: argument --suggestions: must not be negative, got -1\n"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://jianyi:s3cret@db.example:5432/jianyi", "postgresql+psycopg://jianyi:***@db.example:5432/jianyi"),
        ("postgresql+psycopg://jianyi@db.example/jianyi", "postgresql+psycopg://jianyi@db.example/jianyi"),
        ("mysql+pymysql://root:p@ss@db/x", "mysql+pymysql://root:***@db/x"),
        ("sqlite:///jianyi.db", "sqlite:///jianyi.db"),
    ],
)
def test_messages_hide_the_password_of_a_url(url: str, shown: str) -> None:
    assert _safe_url(url) == shown
    assert "s3cret" not in _safe_url(url) and "p@ss" not in _safe_url(url)


# --- simulate --------------------------------------------------------------------------------------


def test_simulate_resumes_a_run_already_in_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    args = ("simulate", "--suggestions", "12", "--seed", "3", "--store", url, "--json")
    status, out, err = _call(capsys, *args)
    assert (status, err) == (0, "")
    first = json.loads(out)
    assert first["suggestions"] == 12
    events = _events(url)
    status, out, err = _call(capsys, *args)
    assert status == 0
    replayed = err.strip().splitlines()
    assert len(replayed) == 1 and replayed[0].startswith("jianyi-flow: resumed: ")
    done, _, total = replayed[0].removeprefix("jianyi-flow: resumed: ").split()[:3]
    assert done == total and int(done) > 0  # every command was already there
    assert replayed[0].endswith(" commands were already in the store")
    assert json.loads(out)["history_digest"] == first["history_digest"]
    assert _events(url) == events  # nothing written twice


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_simulate_draws_a_progress_bar_on_a_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["simulate", "--suggestions", "8", "--seed", "1"]) == 0
    assert "simulated 8 suggestions" in capsys.readouterr().out
    drawn = terminal.getvalue()
    frames = drawn.split("\r")[1:]
    assert frames and all(f.startswith("[") and " suggestions" in f for f in frames)
    assert frames[-1] == "[" + "#" * 40 + "] 8/8 suggestions\n"  # full, then closed with a newline
    assert drawn.endswith("\n") and drawn.count("\n") == 1


def test_simulate_json_has_no_progress_bar_even_on_a_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["simulate", "--suggestions", "4", "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["suggestions"] == 4
    assert terminal.getvalue() == ""


# --- operations commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],
        ["health"],
        ["versions"],
        ["worker", "--rounds", "1"],
        ["checkpoint", "--anchor-key-file", "k", "--checkpoints", "log"],
        ["calendar", "health"],
        ["calendar", "retime", "--reason", "通知已发布"],
    ],
)
def test_store_commands_refuse_a_missing_sqlite_file_without_creating_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "typo.db"
    status, out, err = _call(capsys, *args, "--store", f"sqlite:///{missing}")
    assert (status, out) == (1, "")
    assert err == f"jianyi-flow: error: --store: no database at {missing}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_store_at_another_revision_is_refused_with_the_upgrade_to_run(
        capsys: pytest.CaptureFixture[str], filled_url: str) -> None:
    with SqlStore(filled_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0001'"))
    status, out, err = _call(capsys, "health", "--store", filled_url)
    assert (status, out) == (1, "")
    assert err.startswith(f"jianyi-flow: error: the database schema is at revision 0001, this version needs {head()}: "
                          f"run `jianyi-flow db upgrade ")
    assert len(err.splitlines()) == 1


def test_verify_limits_the_problems_it_prints(capsys: pytest.CaptureFixture[str], filled_url: str) -> None:
    with SqlStore(filled_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_events SET reason = 'x' WHERE version = 2"))
    status, out, _ = _call(capsys, "verify", "--store", filled_url, "--limit", "1")
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 3
    assert "content does not match its hash" in lines[0]
    assert lines[1:] == ["... and 2 more", "3 problems found"]


def test_health_as_text(capsys: pytest.CaptureFixture[str], filled_url: str) -> None:
    status, out, _ = _call(capsys, "health", "--store", filled_url)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"schema revision: {head()} (latest: {head()})"
    assert lines[1].startswith("calendar: ") and ", official schedule until " in lines[1]
    assert lines[1].endswith("open deadlines counted over provisional days: 0")
    assert lines[2] == "outbox: 9 notices waiting"
    assert len(lines) == 3


def test_versions_as_text_agree_with_the_json(capsys: pytest.CaptureFixture[str], filled_url: str) -> None:
    assert main(["versions", "--store", filled_url, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    status, out, _ = _call(capsys, "versions", "--store", filled_url)
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert [(r[0], r[1], int(r[2]), int(r[4])) for r in rows] == [
        (kind, version, row["suggestions"], row["events"])
        for kind in ("workflow", "policy") for version, row in found[kind].items()
    ]
    assert all(r[3] == "suggestions" and r[5] == "events" for r in rows)
    assert sum(int(r[2]) for r in rows if r[0] == "workflow") == 3
    assert sum(int(r[4]) for r in rows if r[0] == "policy") == 9


@pytest.mark.parametrize("page", [1, 2, 3])
def test_versions_counts_every_history_across_pages(filled_url: str, page: int) -> None:
    with SqlStore(filled_url) as store:
        assert versions_of(store, page=page) == versions_of(store)
        (workflow,) = versions_of(store, page=page)["workflow"].values()
    assert workflow == {"suggestions": 3, "events": 9}


def test_the_worker_runs_the_given_rounds_then_reports(
        capsys: pytest.CaptureFixture[str], filled_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "notices.jsonl"
    status, out, err = _call(capsys, "worker", "--store", filled_url, "--spool", str(spool), "--interval", "0",
                             "--rounds", "1")
    assert (status, err) == (0, "")
    # the 9 notices of the commands and the 3 of the overdue flags its first tick wrote
    assert out == "worker stopped: 12 notices delivered, 0 failed, 1 ticks (3 events)\n"
    assert sorted(json.loads(line)["id"] for line in spool.read_text(encoding="utf-8").splitlines()) == list(
        range(1, 13))
    assert _events(filled_url) == 12


def test_the_worker_refuses_a_tick_interval_of_zero(
        capsys: pytest.CaptureFixture[str], filled_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "notices.jsonl"
    status, out, err = _call(capsys, "worker", "--store", filled_url, "--spool", str(spool), "--tick-minutes", "0",
                             "--rounds", "1")
    assert (status, out) == (1, "")
    assert err == "jianyi-flow: error: --tick-minutes: must be more than 0\n"
    assert not spool.exists() and _events(filled_url) == 9
    with SqlStore(filled_url) as store:
        assert store.outbox_pending() == 9


def test_the_worker_stops_on_sigterm_and_restores_the_handlers(
        capsys: pytest.CaptureFixture[str], filled_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "notices.jsonl"
    caught: list[int] = []

    def ours(signum: int, frame: object) -> None:
        caught.append(signum)

    original = signal.signal(signal.SIGTERM, ours)  # so a worker that ignored SIGTERM would not kill pytest
    try:
        def delivered() -> int:
            return len(spool.read_text(encoding="utf-8").splitlines()) if spool.exists() else 0

        def terminate_once_the_worker_is_idle() -> None:
            deadline = time.monotonic() + 30
            while (signal.getsignal(signal.SIGTERM) is ours or delivered() < 12) and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)

        killer = threading.Thread(target=terminate_once_the_worker_is_idle)
        killer.start()
        started = time.monotonic()
        # --rounds only as a backstop (60 s): a worker deaf to SIGTERM fails the test instead of hanging it
        status = main(["worker", "--store", filled_url, "--spool", str(spool), "--interval", "0.05",
                       "--rounds", "1200"])
        seconds = time.monotonic() - started
        killer.join(timeout=60)
        assert signal.getsignal(signal.SIGTERM) is ours  # put back
    finally:
        signal.signal(signal.SIGTERM, original)
    assert status == 0 and caught == [] and seconds < 45
    assert capsys.readouterr().out.startswith("worker stopped: 12 notices delivered, 0 failed, 1 ticks")
    assert len(spool.read_text(encoding="utf-8").splitlines()) == 12


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///campaign.db", "campaign.db"),
    ("sqlite:////tmp/campaign.db?timeout=5", "/tmp/campaign.db"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///file::memory:?cache=shared", None),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", None),
    ("not a url", None),
    ("sqlite:///file:campaign.db?mode=ro&uri=true", "campaign.db"),
    ("sqlite:///file:///tmp/my%20campaign.db?uri=true", "/tmp/my campaign.db"),
    ("sqlite:///file:memdb?mode=memory&uri=true", None),
])
def test_the_file_a_sqlite_url_names(url: str, path: str | None) -> None:
    from jianyi_flow.storage.sql.engine import sqlite_file

    assert sqlite_file(url) == path
